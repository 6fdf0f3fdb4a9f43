"""``rsvlm bench --adapter``: an adapted model is scored under its own name with the adapter, on the tasks of its
classes only; the rest are recorded as skipped with the reason, never silently scored zero-shot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import rsvlm
from rsvlm.adapt.saved import load_adapter
from rsvlm.digests import files_digest, json_digest
from tests.clihelp import run_main_output

SUITE = """
name: adapter-check
version: 1
description: Scene tasks on the fixtures, for bench --adapter.
tasks:
  - id: folder-zeroshot
    kind: zeroshot
    data: {path: scene_folder}
    metrics: [top1, top5, mean_per_class]
  - id: split-zeroshot
    kind: zeroshot
    data: {path: scene_split, split: test}
    metrics: [top1]
  - id: folder-probe
    kind: linear-probe
    data: {path: scene_folder}
    metrics: [top1]
    options: {test_fraction: 0.5, seeds: [1]}
"""


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core machine, two threads wait on each other and run 10-50x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup(fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench-adapter")
    suite = root / "suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    templates = root / "templates.txt"
    templates.write_text("a satellite photo of {}.\n", encoding="utf-8")
    model = rsvlm.load_model()
    adapter = model.fit_adapter(fixtures / "scene_folder", "prototype", templates=str(templates))
    return {"suite": suite, "adapter": adapter.save(root / "adapter"), "root": root}


def _bench(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code, _, err = run_main_output(monkeypatch, capsys, "bench", *args)
    return code, err


def test_adapted_model_is_scored_with_its_adapter_under_its_own_name(
    setup: dict[str, Path],
    fixtures: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = tmp_path / "run"
    args = [setup["suite"], "--out", run, "--data-root", fixtures]
    code, err = _bench(monkeypatch, capsys, *args, "--adapter", setup["adapter"])
    assert code == 0, err
    assert "folder-probe: skipped, kind linear-probe does not apply adapters" in err
    assert (
        "split-zeroshot: skipped, the adapter's 3 classes (airport, bare land, football field) are not the task's 2"
        in err
    )
    results = run / "results" / "rsvlm-lite-prototype"
    scored = json.loads((results / "folder-zeroshot.json").read_text())
    assert scored["model"] == "rsvlm-lite+prototype" and scored["base_model"] == "rsvlm-lite"
    assert scored["adapter"]["method"] == "prototype" and "skipped" not in scored
    assert scored["seen_in_training"]["status"] == "seen"  # fitted on these very images: flagged, not hidden
    # the score is the adapter's own accuracy on the task's 7 images
    model = rsvlm.load_model()
    adapter = load_adapter(setup["adapter"], model.model)
    records = rsvlm.open_dataset(fixtures / "scene_folder").records
    labels = np.array([adapter.classes.index(str(r.label)) for r in records])
    vectors = model.embed_images([r.image_path for r in records if r.image_path is not None])
    expected = 100.0 * float((adapter.probabilities(vectors).argmax(1) == labels).mean())
    assert scored["metrics"]["top1"] == pytest.approx(expected, abs=1e-9) and scored["samples"] == 7
    for task in ("split-zeroshot", "folder-probe"):
        skipped = json.loads((results / f"{task}.json").read_text())
        assert skipped["metrics"] == {} and skipped["skipped"] and skipped["model"] == "rsvlm-lite+prototype"
    record = json.loads((run / "run.json").read_text())["adapters"]["rsvlm-lite+prototype"]
    folder = setup["adapter"]
    assert record["digest"] == files_digest([folder / "adapter.json", folder / "adapter.safetensors"])
    assert record["json_digest"] == json_digest(json.loads((folder / "adapter.json").read_text()))

    # the plain model in the same run folder: its own column, its own (zero-shot) scores
    code, err = _bench(monkeypatch, capsys, *args, "--models", "rsvlm-lite")
    assert code == 0, err
    board = json.loads((run / "leaderboard.json").read_text())
    assert {"rsvlm-lite", "rsvlm-lite+prototype"} <= set(board["models"])
    plain = json.loads((run / "results" / "rsvlm-lite" / "folder-zeroshot.json").read_text())
    assert "adapter" not in plain and "skipped" not in plain and plain["metrics"]["top1"] >= 0
    assert json.loads((run / "results" / "rsvlm-lite" / "folder-probe.json").read_text())["metrics"]

    # a refitted adapter makes the adapted results stale; the plain ones stay
    refit = model.fit_adapter(fixtures / "scene_folder", "prototype", options={"text_weight": 0.5})
    refit.save(folder)
    code, err = _bench(monkeypatch, capsys, *args, "--adapter", folder)
    assert code == 0, err
    assert "rsvlm-lite+prototype · folder-zeroshot: the saved result came from other weights" in err


def test_an_adapter_is_refused_for_other_models_before_any_work(
    setup: dict[str, Path],
    fixtures: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [setup["suite"], "--out", tmp_path / "run", "--data-root", fixtures, "--adapter", setup["adapter"]]
    code, err = _bench(monkeypatch, capsys, *args, "--models", "openai-vit-b-32")
    assert code == 2 and err.count("error:") == 1, err
    assert "adapter was trained on rsvlm-lite, not on openai-vit-b-32; give --models rsvlm-lite" in err
    assert not (tmp_path / "run" / "results").exists()
