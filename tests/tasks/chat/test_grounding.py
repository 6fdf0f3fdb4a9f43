from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rsvlm.data.sample import Boxes, Sample
from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.geometry import PixelBox, iou
from rsvlm.tasks.chat.grounding import GroundingTask, grounding_metrics


def _sample(box: tuple[float, float, float, float], width: int, height: int, angle: float | None = None) -> Sample:
    angles = None if angle is None else np.array([angle])
    boxes = Boxes(np.array([box], dtype=np.float64), ("target",), angles)
    return Sample(id="s", question="the target", boxes=boxes, meta={"width": width, "height": height})


def test_metrics_by_hand() -> None:
    target = PixelBox(0, 0, 10, 10)
    preds = [PixelBox(0, 0, 10, 10), PixelBox(0, 0, 10, 4), None, PixelBox(0, 0, 10, 6)]  # IoU 1, .4, 0, .6
    m = grounding_metrics(preds, [target] * 4)
    assert m == {"n": 4, "unparseable": 1, "acc@0.5": 50.0, "acc@0.25": 75.0, "mean_iou": pytest.approx(50.0)}


def test_non_square_rotated_box_is_scored_in_pixels() -> None:
    """A 400 x 100 image; the target is the 100 x 100 pixel square in its middle. GeoChat answers with the
    same square turned 45°: in pixels that overlaps the target with IoU √2/2. Rotating on the 0-100 grid
    (or on [0, 1] coordinates) instead turns a thin 0.25 x 1 rectangle and gives another number."""
    width, height = 400, 100
    sample = _sample((150, 0, 250, 100), width, height)
    answer = "{<37.5><0><62.5><100>|<45>}"
    m = GroundingTask().score([sample], [answer], "geochat-100")
    assert m["mean_iou"] == pytest.approx(100 * math.sqrt(2) / 2)
    assert m["acc@0.5"] == 100.0

    # the published mistake, reproduced by hand: IoU taken on normalised coordinates
    # two 0.25-wide strips crossing at 45° overlap in a rhombus of area 0.25² / sin 45°
    normalised = iou(PixelBox(0.375, 0.0, 0.625, 1.0, 45), PixelBox(0.375, 0.0, 0.625, 1.0))
    rhombus = 0.25**2 / math.sin(math.radians(45))
    assert normalised == pytest.approx(rhombus / (0.25 + 0.25 - rhombus))  # 0.2147
    assert abs(100 * normalised - m["mean_iou"]) > 40


def test_non_square_axes_scale_by_width_and_height() -> None:
    sample = _sample((40, 40, 200, 120), width=400, height=200)
    task = GroundingTask()
    assert task.score([sample], ["[0.1, 0.2, 0.5, 0.6]"], "unit")["mean_iou"] == pytest.approx(100.0)
    # scaling y by the width (a square-image assumption) would miss the target entirely
    wrong = PixelBox.from_fractions(0.1, 0.2, 0.5, 0.6, width=400, height=400)
    assert iou(wrong, PixelBox(40, 40, 200, 120)) < 0.5
    assert task.score([sample], ["<|box_start|>(100,200),(500,600)<|box_end|>"], "qwen-1000")["acc@0.5"] == 100.0
    assert task.score([sample], ["(40, 40), (200, 120)"], "pixel")["acc@0.5"] == 100.0


def test_rotated_target() -> None:
    sample = _sample((-2, -1, 2, 1), width=10, height=10, angle=90)
    assert GroundingTask().score([sample], ["(-2, -1, 2, 1)"], "pixel")["mean_iou"] == pytest.approx(100 / 3)


def test_unparseable_answers_count_as_iou_zero() -> None:
    sample = _sample((0, 0, 10, 10), width=100, height=100)
    m = GroundingTask().score([sample, sample], ["{<0><0><10><10>}", "It is in the corner."], "geochat-100")
    assert (m["unparseable"], m["acc@0.5"], m["mean_iou"]) == (1, 50.0, pytest.approx(50.0))


def test_task_contract_and_errors() -> None:
    task = GroundingTask()
    sample = _sample((0, 0, 10, 10), width=100, height=100)
    assert task.accepts(sample)
    assert not task.accepts(replace(sample, question=None))
    two = Boxes(np.array([[0, 0, 1, 1], [2, 2, 3, 3]], dtype=np.float64), ("a", "b"))
    assert not task.accepts(replace(sample, boxes=two))
    assert task.prompt(sample, "geochat") == "[refer] Give me the location of <p> the target </p>"
    assert task.prompt(sample, "qwen2-vl").startswith("Output the bounding box of <|object_ref_start|>the target")
    with pytest.raises(RsvlmError, match="no image width/height in meta"):
        task.score([replace(sample, meta={})], ["[1, 2, 3, 4]"], "pixel")
    with pytest.raises(RsvlmError, match="unknown box format"):
        task.score([sample], ["[1, 2, 3, 4]"], "xyxy")


@pytest.mark.shared
def test_neon_non_square_crop(shared_data: Path) -> None:
    """The YELL crop is 1249 x 1035 pixels; tree boxes written in each model convention come back in pixels."""
    from rsvlm.data.registry import open_dataset

    sample = next(s for s in open_dataset(shared_data / "neon_trees").records if s.id.startswith("2019_YELL"))
    assert sample.meta["size"] == (1249, 1035)
    assert sample.boxes is not None
    width, height = sample.meta["size"]
    task = GroundingTask()
    samples, qwen, unit = [], [], []
    for k in range(20):
        x1, y1, x2, y2 = (float(v) for v in sample.boxes.xyxy[k])
        boxes = Boxes(sample.boxes.xyxy[k : k + 1], ("Tree",))
        samples.append(replace(sample, question=f"tree {k}", boxes=boxes, meta={"width": width, "height": height}))
        q1, q2, q3, q4 = (round(v * 1000) for v in (x1 / width, y1 / height, x2 / width, y2 / height))
        qwen.append(f"({q1},{q2}),({q3},{q4})")
        unit.append(f"[{x1 / width:.3f}, {y1 / height:.3f}, {x2 / width:.3f}, {y2 / height:.3f}]")
    for answers, box_format in ((qwen, "qwen-1000"), (unit, "unit")):
        m = task.score(samples, answers, box_format)
        assert m["acc@0.5"] == 100.0
        assert m["mean_iou"] > 90.0  # only rounding to the model's grid is lost
