from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rsvlm.build.instructions import build_instructions, load_instruction_config, referring_expressions
from rsvlm.data.registry import open_dataset
from rsvlm.data.sample import Boxes
from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.box_parsing import parse_box


def _config(fixtures: Path, tmp_path: Path) -> Path:
    text = f"""
seed: 3
box_format: unit
exclude:
  - {{path: {fixtures}/rsicd, images: {fixtures}/rsicd_images, split: test}}
sources:
  - {{task: caption, path: {fixtures}/rsicd, images: {fixtures}/rsicd_images, split: train}}
  - {{task: chat-classify, path: {fixtures}/rsicd_images, format: scene-folder}}
  - {{task: vqa, path: {fixtures}/rsvqa, test_fraction: 0.5}}
  - {{task: counting, path: {fixtures}/voc, tile: 20, test_images: [tile_b.png]}}
  - {{task: grounding, path: {fixtures}/voc, name: voc-refer, tile: 40}}
"""
    path = tmp_path / "build.yaml"
    path.write_text(text)
    return path


def test_build_from_real_readers(fixtures: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest = build_instructions(load_instruction_config(_config(fixtures, tmp_path)), out)
    records = open_dataset(out / "train.json").records  # the llava reader reads what we wrote
    assert len(records) == manifest["conversations"] == sum(manifest["per_task"].values())
    assert manifest["per_task"]["caption"] == 10  # 2 matched train images x 5 captions

    images = {r.image_path.name for r in records if r.image_path is not None}
    assert not images & {"airport_3.jpg", "beach_7.jpg"}  # RSICD test images never leak in via scene labels
    assert manifest["excluded_images_dropped"] == 2

    vqa = next(s for s in manifest["sources"] if s["task"] == "vqa")
    held = (out / "heldout" / "rsvqa.txt").read_text().split()
    assert held == vqa["split"]["test"] and len(held) == 1
    vqa_images = {r.image_path.name for r in records if r.image_path is not None and "rsvqa" in str(r.id)}
    assert vqa_images and not vqa_images & set(held)  # split by image, not by question

    counts = [r for r in records if r.question is not None and r.question.startswith("How many trees")]
    assert counts and all(r.answer is not None and r.answer.isdigit() for r in counts)
    held_tiles = open_dataset(out / "heldout" / "voc-counting")  # held-out region as VOC tiles
    assert {r.id.split("_")[1] for r in held_tiles.records} == {"b"}

    grounding = [r for r in records if r.id.startswith("voc-refer")]
    assert grounding
    for r in grounding:
        assert r.image_path is not None and r.answer is not None
        box = parse_box(r.answer, "unit", width=40, height=40)
        assert box is not None and 0 <= box.x1 <= box.x2 <= 40


def test_build_is_deterministic(fixtures: Path, tmp_path: Path) -> None:
    config = load_instruction_config(_config(fixtures, tmp_path))
    build_instructions(config, tmp_path / "a")
    build_instructions(config, tmp_path / "b")
    a = json.loads((tmp_path / "a" / "train.json").read_text())
    b = json.loads((tmp_path / "b" / "train.json").read_text())
    assert [c["id"] for c in a] == [c["id"] for c in b] and a == b


def test_referring_expressions_are_unique_by_a_margin() -> None:
    boxes = Boxes(np.array([[0.0, 30, 10, 40], [20, 0, 40, 20], [30, 30, 38, 38]]), ("Tree",) * 3)
    found = dict(referring_expressions(boxes, "trees"))
    assert found == {"the largest tree": 1, "the northernmost tree": 1, "the westernmost tree": 0}
    tie = Boxes(np.array([[0.0, 0, 10, 10], [20, 0, 30, 10]]), ("Tree",) * 2)
    assert "the largest tree" not in dict(referring_expressions(tie, "trees"))


def test_config_typos_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("sources:\n  - {task: vqa, path: x, test_fraktion: 0.2}\n")
    with pytest.raises(RsvlmError, match="test_fraktion"):
        load_instruction_config(path)
    path.write_text("sources:\n  - {task: segment, path: x}\n")
    with pytest.raises(RsvlmError, match="task must be one of"):
        load_instruction_config(path)
