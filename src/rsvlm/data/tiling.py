"""Where tiles start along an image: the one rule behind every tiling in rsvlm.

Two tilings share it. Scene maps (``rsvlm.geo.tiling.TileGrid``) let the last tile reach past the edge and pad
it, so every tile has the same size and scale. Dataset tiles (instruction data, counting tiles) keep the last
tile flush with the edge, so no tile holds padding. Box annotations follow their tile by box centre.
"""

from __future__ import annotations

import math

import numpy as np

from rsvlm.data.sample import Boxes

Window = tuple[int, int, int, int]
"""(left, top, width, height) in pixels of the source image."""


def tile_starts(length: int, size: int, stride: int, *, flush: bool) -> range | list[int]:
    """Start offsets of ``size``-px tiles every ``stride`` px along ``length`` px (at least one tile).

    ``flush=False``: the last tile may reach past the end (a ``range``: lengths of huge scenes stay cheap).
    ``flush=True``: one more tile is added flush with the end when the stride does not land there.
    """
    if not flush:
        count = max(1, math.ceil((length - size) / stride) + 1)
        return range(0, count * stride, stride)
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    return starts if starts[-1] == length - size else [*starts, length - size]


def tiles(height: int, width: int, size: int, stride: int) -> list[Window]:
    """(left, top, width, height) windows covering the image; the last row/column is flush with the edge."""
    rows, cols = tile_starts(height, size, stride, flush=True), tile_starts(width, size, stride, flush=True)
    return [(x, y, min(size, width), min(size, height)) for y in rows for x in cols]


def boxes_in_tile(boxes: Boxes, window: Window) -> Boxes:
    """Boxes whose centre lies in the window, shifted to tile coordinates and clipped to it."""
    x, y, w, h = window
    centre = (boxes.xyxy[:, :2] + boxes.xyxy[:, 2:]) / 2
    keep = (centre[:, 0] >= x) & (centre[:, 0] < x + w) & (centre[:, 1] >= y) & (centre[:, 1] < y + h)
    shifted = boxes.xyxy[keep] - np.array([x, y, x, y], dtype=np.float64)
    clipped = np.clip(shifted, 0, [w, h, w, h])
    labels = tuple(lab for lab, k in zip(boxes.labels, keep, strict=True) if k)
    return Boxes(clipped, labels, None if boxes.angles is None else boxes.angles[keep])
