"""Visual grounding: one referring expression, one target box; Acc@0.5, Acc@0.25 and mean IoU in pixels.

The image size a prediction refers to comes from the runner (``sample.meta["width"]``/``["height"]``,
full-image pixels, recorded when the image was loaded), never from the model's input resolution or the
annotation file, so a normalised box is scaled exactly as the model meant it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rsvlm.data.sample import Sample
from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.box_parsing import check_box_format, parse_box
from rsvlm.tasks.chat.geometry import PixelBox, iou
from rsvlm.tasks.chat.protocols import ProtocolTask

DEFAULT_PROTOCOL = "grounding/1"


def grounding_metrics(
    predicted: Sequence[PixelBox | None],
    targets: Sequence[PixelBox],
    thresholds: Sequence[float] = (0.25, 0.5),
    scale: float = 100.0,
) -> dict[str, Any]:
    """Acc@t for each threshold (IoU >= t), mean IoU, and the number of answers without a box (IoU 0)."""
    if len(predicted) != len(targets):
        raise ValueError(f"{len(predicted)} predictions for {len(targets)} targets")
    ious = [iou(p, t) if p is not None else 0.0 for p, t in zip(predicted, targets, strict=True)]
    n = len(ious)
    out: dict[str, Any] = {"n": n, "unparseable": sum(p is None for p in predicted)}
    for t in sorted(thresholds, reverse=True):
        out[f"acc@{t:g}"] = scale * sum(v >= t for v in ious) / n if n else None
    out["mean_iou"] = scale * sum(ious) / n if n else None
    return out


def target_box(sample: Sample) -> PixelBox:
    """The sample's single target box as a ``PixelBox``."""
    if sample.boxes is None or len(sample.boxes) != 1:
        raise RsvlmError(f"grounding sample {sample.id} must carry exactly one target box")
    x1, y1, x2, y2 = (float(v) for v in sample.boxes.xyxy[0])
    angle = float(sample.boxes.angles[0]) if sample.boxes.angles is not None else 0.0
    return PixelBox(x1, y1, x2, y2, angle)


def image_size(sample: Sample) -> tuple[float, float]:
    """(width, height) in pixels of the image the prediction refers to, as the runner recorded it."""
    width, height = sample.meta.get("width"), sample.meta.get("height")
    if not isinstance(width, int | float) or not isinstance(height, int | float) or width <= 0 or height <= 0:
        raise RsvlmError(
            f"grounding sample {sample.id} has no image width/height in meta; the runner must record the size "
            "of the image each prediction refers to before scoring"
        )
    return float(width), float(height)


class GroundingTask(ProtocolTask):
    """Referring expression in ``sample.question``, one target box in ``sample.boxes`` (pixels)."""

    name = "grounding"

    def __init__(self, protocol: str | Path = DEFAULT_PROTOCOL) -> None:
        super().__init__(protocol)

    def accepts(self, sample: Sample) -> bool:
        return bool(sample.question) and sample.boxes is not None and len(sample.boxes) == 1

    def prompt(self, sample: Sample, family: str) -> str:
        if not sample.question:
            raise RsvlmError(f"grounding sample {sample.id} has no referring expression in its question")
        return self._protocol.prompt(family, expression=sample.question.strip())

    def score(self, samples: Sequence[Sample], predictions: Sequence[str], box_format: str) -> dict[str, Any]:
        check_box_format(box_format)
        self.check_finished(samples, predictions)
        boxes: list[PixelBox | None] = []
        targets: list[PixelBox] = []
        for sample, text in zip(samples, predictions, strict=True):
            width, height = image_size(sample)
            boxes.append(parse_box(text, box_format, width=width, height=height))
            targets.append(target_box(sample))
        m = self._protocol.matching
        return grounding_metrics(boxes, targets, m.iou_thresholds, m.scale)
