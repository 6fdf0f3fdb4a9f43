"""The two few-shot kinds: ``golden-few-shot`` through the real runner, leaderboard and report on released embeddings,
``few-shot`` with a tiny model on a labelled folder (its own train/test split, a prompt-learning method beside the
features-only ones), and their options checked when the suite is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsvlm.bench import runner
from rsvlm.bench.kind import Context
from rsvlm.bench.kinds import KINDS
from rsvlm.bench.leaderboard import ResultRow, board_of
from rsvlm.bench.report import finish_run
from rsvlm.bench.spec import load_suite
from rsvlm.errors import RsvlmError

GOLDEN = """
name: fewshot-check
version: 1
description: The golden few-shot task on two shot counts and one seed.
tasks:
  - id: golden-remoteclip-fewshot
    kind: golden-few-shot
    data: {path: golden/whurs19/results/WHURS19/RemoteCLIP/ViT-B-32, manifest: golden-whurs19.txt}
    metrics: [best_16, best_1, zero_shot, best_hm]
    options: {methods: [zero-shot, tip-adapter, clip-adapter, coop], shots: [1, 16], seeds: [1],
              base_to_novel: true, set: [clip-adapter.epochs=5]}
"""


@pytest.mark.shared
def test_golden_few_shot_runs_through_the_runner_into_leaderboard_and_report(tmp_path: Path, shared_data: Path) -> None:
    spec = tmp_path / "suite.yaml"
    spec.write_text(GOLDEN, encoding="utf-8")
    out = runner.run_suite(load_suite(spec), [], tmp_path / "run", shared_data, log=lambda m: None)
    result = json.loads((out / "results/published/golden-remoteclip-fewshot.json").read_text())
    metrics = result["metrics"]
    assert metrics["zero_shot"] == pytest.approx(94.81, abs=0.01)  # the 501-image test half
    assert metrics["best_16"] >= metrics["zero_shot"] and {"best_1", "best_hm", "tip-adapter@16"} <= set(metrics)
    details = result["details"]["fewshot"]
    assert details["skipped"][0]["method"] == "coop" and details["options"]["clip-adapter"]["epochs"] == 5
    finish_run(out)
    rows = {(r.task, r.metric) for r in board_of(out).rows}
    assert ("golden-remoteclip-fewshot", "best_16") in rows and ("golden-remoteclip-fewshot", "zero_shot") in rows
    html = (out / "report.html").read_text()
    assert "top-1 vs shots" in html and "Base-to-novel" in html


def test_few_shot_kind_with_a_tiny_model(fixtures: Path, tmp_path: Path) -> None:
    from rsvlm.models.openclip import load_contrastive
    from rsvlm.models.registry import get_spec
    from tests.models.tiny import source_model, tiny_spec, write_checkpoint

    spec = tiny_spec(get_spec("remoteclip-vit-b-32"))
    model = load_contrastive(spec, write_checkpoint(source_model(spec), "state_dict", tmp_path / "w"))
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: tiny\nversion: 1\ndescription: tiny\ntasks:\n  - id: split-fewshot\n    kind: few-shot\n"
        "    data: {path: scene_split}\n    metrics: [best_1, zero_shot]\n"
        "    options: {methods: [zero-shot, prototype, coop], shots: [1, 2], seeds: [1, 2], set: [coop.epochs=1]}\n",
        encoding="utf-8",
    )
    (task,) = load_suite(suite).tasks
    ctx = Context(fixtures, tmp_path / "run", "tiny", model, lambda m: None)
    measured = KINDS["few-shot"].run(task, ctx)
    assert measured.samples == 2  # the folder's own test split
    assert {"zero_shot", "best_1", "best_2", "prototype@1", "majority"} <= set(measured.metrics)
    assert "coop" in {r["method"] for r in measured.details["fewshot"]["rows"]}
    details = measured.details["fewshot"]
    assert details["split"] == "the data's own split: train -> test" and details["skipped"] == []
    section = KINDS["few-shot"].section
    assert section is not None
    html = section([ResultRow(task="t", kind="few-shot", model="tiny", metrics={}, details=measured.details)], tmp_path)
    assert "<svg" in html and "coop" in html


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ("{methods: [nope]}", "unknown adaptation method 'nope'"),
        ("{shots: [0, 1]}", "shot count 0 is not a whole number"),
        ("{set: [tip-adapter.epochs=3]}", "method tip-adapter: unknown option(s) epochs"),
        ("{methods: [zero-shot], set: [coop.epochs=3]}", "not among the compared methods"),
    ],
)
def test_few_shot_options_are_checked_when_the_suite_is_read(options: str, fragment: str, tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: bad\nversion: 1\ndescription: bad\ntasks:\n  - id: t\n    kind: golden-few-shot\n"
        f"    data: {{path: golden}}\n    metrics: [zero_shot]\n    options: {options}\n",
        encoding="utf-8",
    )
    with pytest.raises(RsvlmError) as err:
        load_suite(suite)
    assert "task 't'" in str(err.value) and fragment in str(err.value)
