"""Chat commands as a user runs them: every back-end layout answers through `rsvlm ask` and is scored
through `rsvlm eval vqa`; a run killed mid-way and rerun ends with the metrics of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.models.chat import tiny_chat

WRITERS: dict[str, Callable[[Path], Path]] = {
    "llava": tiny_chat.write_hf_llava,
    "llava_next": tiny_chat.write_hf_llava_next,
    "qwen2_vl": tiny_chat.write_hf_qwen2_vl,
    "geochat": tiny_chat.write_llava_repo,  # GeoChat's own release layout, converted on first load
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("rsvlm-cache")
    return {**os.environ, "RSVLM_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("chat-models")
    return {layout: write(root / layout) for layout, write in WRITERS.items()}


def rsvlm(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "rsvlm", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("layout", list(WRITERS))
def test_every_layout_answers_and_is_scored(
    layout: str, folders: dict[str, Path], fixtures: Path, env: dict[str, str], tmp_path: Path
) -> None:
    image = fixtures / "rsvqa" / "images" / "0.png"
    asked = rsvlm(env, "ask", image, "How many buildings are there?", "--model", folders[layout], "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["question"] == "How many buildings are there?" and isinstance(answer["answer"], str)
    again = rsvlm(env, "ask", image, "How many buildings are there?", "--model", folders[layout], "--json")
    assert json.loads(again.stdout)["answer"] == answer["answer"]  # greedy: the same answer every time

    out = tmp_path / "run"
    run = rsvlm(env, "eval", "vqa", "--model", folders[layout], "--data", fixtures / "rsvqa", "--out", out, "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["protocol"]["id"] == "vqa-rsvqa/1" and report["n"] == 7  # 8 questions, one inactive
    assert report["model"]["family"] in {"llava", "llava-next", "qwen2-vl", "geochat"}
    assert 0.0 <= report["metrics"]["overall"] <= 100.0
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 7 and all(json.loads(line)["width"] == 32 for line in lines)


def test_missing_model_and_image_errors(fixtures: Path, env: dict[str, str]) -> None:
    no_weights = rsvlm(env, "ask", fixtures / "rsvqa" / "images" / "0.png", "hi", "--model", "geochat-7b")
    assert no_weights.returncode == 2 and "rsvlm never downloads weights" in no_weights.stderr
    missing = rsvlm(env, "ask", "nope.png", "hi", "--model", "geochat-7b")
    assert missing.returncode == 2 and "nope.png" in missing.stderr
    unknown = rsvlm(env, "eval", "vqa", "--model", "no-such-model", "--data", fixtures / "rsvqa")
    assert unknown.returncode == 2 and "no-such-model" in unknown.stderr


def _metrics(report: dict[str, Any]) -> Any:
    return report["metrics"]


def test_killed_run_resumes_to_identical_metrics(
    folders: dict[str, Path], shared_data: Path, env: dict[str, str], tmp_path: Path
) -> None:
    args: list[str | Path] = ["eval", "vqa", "--model", folders["llava"], "--data", shared_data / "rsvqa" / "lr"]
    args += ["--limit", "60", "--batch-size", "1", "--max-new-tokens", "8", "--json"]
    whole = rsvlm(env, *args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr

    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rsvlm", *map(str, args), "--out", str(cut)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = cut / "predictions.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.is_file() and log.read_text().count("\n") >= 5):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = log.read_text().count("\n")
    assert 5 <= done < 60  # killed part-way, not before and not after
    resumed = rsvlm(env, *args, "--out", cut)
    assert resumed.returncode == 0, resumed.stderr
    assert _metrics(json.loads(resumed.stdout)) == _metrics(json.loads(whole.stdout))
    assert log.read_text().count("\n") == 60


def test_grounding_and_counting_runs(
    folders: dict[str, Path], fixtures: Path, env: dict[str, str], tmp_path: Path
) -> None:
    model: list[str | Path] = ["--model", folders["qwen2_vl"], "--max-new-tokens", "12", "--json"]
    grounding = rsvlm(env, "eval", "grounding", "--data", fixtures / "rsvg", "--out", tmp_path / "g", *model)
    assert grounding.returncode == 0, grounding.stderr
    report = json.loads(grounding.stdout)
    assert report["n"] == 2 and report["model"]["box_format"] == "qwen-1000"
    assert {"acc@0.5", "acc@0.25", "mean_iou", "unparseable"} <= set(report["metrics"])
    counting = rsvlm(
        env, "eval", "counting", "--data", fixtures / "voc", "-o", "object_name=trees", "--out", tmp_path / "c", *model
    )
    assert counting.returncode == 0, counting.stderr
    assert json.loads(counting.stdout)["protocol"]["object_name"] == "trees"
    bad = rsvlm(env, "eval", "counting", "--data", fixtures / "voc", "-o", "colour=red", *model)
    assert bad.returncode == 2 and "colour" in bad.stderr


def test_subset_keeps_only_listed_images(
    folders: dict[str, Path], fixtures: Path, env: dict[str, str], tmp_path: Path
) -> None:
    subset = tmp_path / "heldout.txt"
    subset.write_text("1.png\n")
    args: list[str | Path] = ["eval", "vqa", "--model", folders["llava"], "--data", fixtures / "rsvqa"]
    run = rsvlm(env, *args, "--subset", subset, "--out", tmp_path / "run", "--max-new-tokens", "4", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["n"] == 4  # the four questions of image 1 only
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    refused = rsvlm(env, *args, "--subset", empty)
    assert refused.returncode == 2 and "empty" in refused.stderr
