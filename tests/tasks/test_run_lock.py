"""One writer per run folder: a second `rsvlm eval <chat task>` or `rsvlm bench` on a folder in use is refused
in one line before it computes anything, two runs started together never append a prediction twice, and a
holder killed with `kill -9` leaves no stale lock. An `--out` on a full disk is one line too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clihelp import assert_one_line_error, rsvlm
from tests.fsfaults import fill, rsvlm_limited, small_tmpfs, temporary_files
from tests.models.chat import tiny_chat

HOLD = """
import sys, time
from rsvlm.fileio import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""
SUITE = """
name: lock-check
version: 1
description: One zero-shot task on the test fixtures.
tasks:
  - id: scenes-zeroshot
    kind: zeroshot
    data: {path: scene_folder}
    metrics: [top1]
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("rsvlm-cache")
    return {"RSVLM_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_chat.write_hf_llava(tmp_path_factory.mktemp("chat") / "llava")


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """Another process holding the lock on ``tmp_path/run``, as a run in progress does."""
    folder = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc, folder
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _kill_9(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def _vqa(llava: Path, fixtures: Path, out: Path) -> list[str | Path]:
    return ["eval", "vqa", "--model", llava, "--data", fixtures / "rsvqa", "--split", "all", "--out", out, "--json"]


def _prediction_ids(folder: Path) -> list[str]:
    lines = (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return [str(json.loads(line)["id"]) for line in lines]


def test_chat_eval_on_a_folder_in_use_is_refused_until_the_holder_dies(
    holder: tuple[subprocess.Popen[str], Path], llava: Path, fixtures: Path, env: dict[str, str]
) -> None:
    proc, folder = holder
    refused = rsvlm(*_vqa(llava, fixtures, folder), env=env)
    assert_one_line_error(refused, str(folder), f"in use by rsvlm process {proc.pid}", "choose another --out")
    assert not (folder / "predictions.jsonl").exists() and not (folder / "run.json").exists()

    _kill_9(proc)  # the kernel drops the lock with its holder: no stale lock to clean up by hand
    done = rsvlm(*_vqa(llava, fixtures, folder), env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n"] == 7
    ids = _prediction_ids(folder)
    assert len(ids) == len(set(ids)) == 7
    again = rsvlm(*_vqa(llava, fixtures, folder), env=env)  # a resumed run computes nothing twice
    assert again.returncode == 0, again.stderr
    assert _prediction_ids(folder) == ids


def test_two_chat_evals_started_together_never_append_twice(
    llava: Path, fixtures: Path, env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    cmd = [sys.executable, "-m", "rsvlm", *map(str, _vqa(llava, fixtures, folder))]
    procs = [
        subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(*p.communicate(timeout=600), p.returncode) for p in procs]
    assert all("Traceback" not in stderr for _, stderr, _ in results), results
    assert any(code == 0 for _, _, code in results), results
    for _, stderr, code in results:  # the other one either waited its turn (resumed, nothing to do) or was refused
        assert code == 0 or (code == 2 and "is in use by rsvlm process" in stderr), stderr
    ids = _prediction_ids(folder)
    assert len(ids) == len(set(ids)) == 7


def test_bench_on_a_folder_in_use_is_refused_until_the_holder_dies(
    holder: tuple[subprocess.Popen[str], Path], fixtures: Path, env: dict[str, str], tmp_path: Path
) -> None:
    proc, folder = holder
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    args = ("bench", suite, "--out", folder, "--models", "rsvlm-lite", "--data-root", fixtures, "--no-verify")
    refused = rsvlm(*args, env=env)
    assert_one_line_error(refused, str(folder), f"bench run folder is in use by rsvlm process {proc.pid}")
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]  # nothing computed, nothing written

    _kill_9(proc)
    done = rsvlm(*args, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads((folder / "results" / "rsvlm-lite" / "scenes-zeroshot.json").read_text(encoding="utf-8"))
    assert result["samples"] == 7 and 0.0 <= result["metrics"]["top1"] <= 100.0
    assert temporary_files(folder) == []


def test_chat_eval_rerun_on_a_full_disk_is_one_line_and_keeps_the_predictions(
    llava: Path, fixtures: Path, env: dict[str, str], tmp_path: Path
) -> None:
    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        out = disk / "vqa"
        first = rsvlm(*_vqa(llava, fixtures, out), env=env)
        assert first.returncode == 0, first.stderr
        ids = _prediction_ids(out)
        fill(disk)
        full = rsvlm(*_vqa(llava, fixtures, out), env=env)
        assert_one_line_error(full, f"{out / 'metrics.json'}: cannot write (no space left on the device)")
        assert temporary_files(disk) == [] and _prediction_ids(out) == ids
        assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["n"] == 7  # the old one, whole


def test_chat_eval_whose_metrics_cannot_be_written_resumes_without_recomputing(
    llava: Path, fixtures: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """Under a 3.2 kB file-size limit run.json (3.1 kB) and the predictions fit, metrics.json (3.7 kB) does not."""
    out = tmp_path / "vqa"
    limited = rsvlm_limited(3200, *_vqa(llava, fixtures, out), "--batch-size", "2", env=env)
    assert_one_line_error(limited, f"{out / 'metrics.json'}: cannot write (file too large")
    assert temporary_files(out) == [] and not (out / "metrics.json").exists()
    ids = _prediction_ids(out)
    assert len(ids) == len(set(ids)) == 7
    done = rsvlm(*_vqa(llava, fixtures, out), "--batch-size", "2", env=env)
    assert done.returncode == 0, done.stderr
    assert _prediction_ids(out) == ids and json.loads(done.stdout)["n"] == 7
