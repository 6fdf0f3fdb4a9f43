"""Boxes over whole scenes: per-tile detections → one set of scene boxes without the overlap's duplicates.

A scene larger than a model's input is cut into overlapping tiles; a box producer (a chat model doing
grounding, ``rsvlm.geo.producers``, or any detector) answers per tile in TILE pixels. ``stitch`` shifts every
box by its tile's offset into SCENE pixels and removes the duplicates that the overlap creates. Map output is
``rsvlm.geo.geojson`` (``SceneBoxes.to_geojson``); counts per class and region are ``rsvlm.geo.regions``.

Pixel convention everywhere (as in ``rsvlm.data.sample``): corner convention, ``(0, 0)`` is the top-left
corner of the top-left pixel, so a box covering pixel columns 100..149 is ``x1=100, x2=150``, and the scene's
affine transform maps such a corner straight to map coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.data.sample import Affine6, RasterImage

FloatArray = npt.NDArray[np.float64]


# ---- types ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detection:
    """One box a producer found in a tile, in that tile's pixels (corner convention)."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float = 1.0
    label: str = "object"

    def __post_init__(self) -> None:
        values = (self.x1, self.y1, self.x2, self.y2, self.score)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"detection values must be finite, got {values}")
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise ValueError(f"detection must satisfy x1 <= x2 and y1 <= y2, got {values[:4]}")


def _as_boxes(boxes: Any, n_what: str) -> FloatArray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        array = array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"{n_what} boxes must have shape (n, 4), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{n_what} boxes must be finite")
    if bool(np.any(array[:, 2:] < array[:, :2])):
        raise ValueError(f"{n_what} boxes must satisfy x1 <= x2 and y1 <= y2")
    return array


def _as_scores(scores: Any, n: int, n_what: str) -> FloatArray:
    array = np.asarray(scores, dtype=np.float64).reshape(-1)
    if array.shape != (n,):
        raise ValueError(f"{n_what}: {array.shape[0]} scores for {n} boxes")
    if not np.isfinite(array).all():
        raise ValueError(f"{n_what} scores must be finite")
    return array


@dataclass(frozen=True)
class TileDetections:
    """What a producer found in one tile: boxes in TILE pixels plus where the tile lies in the scene.

    ``col_off``/``row_off`` are the scene pixel column and row of the tile's top-left corner, so a tile box
    ``x`` is scene ``x + col_off`` and ``y`` is scene ``y + row_off``.
    """

    col_off: int
    row_off: int
    boxes: FloatArray
    """Shape (n, 4): ``x1, y1, x2, y2`` in tile pixels."""
    scores: FloatArray
    """Shape (n,)."""
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        where = f"tile at ({self.col_off}, {self.row_off})"
        boxes = _as_boxes(self.boxes, where)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", _as_scores(self.scores, len(boxes), where))
        object.__setattr__(self, "labels", tuple(self.labels))
        if len(self.labels) != len(boxes):
            raise ValueError(f"{where}: {len(self.labels)} labels for {len(boxes)} boxes")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def from_detections(cls, detections: Sequence[Detection], *, col_off: int, row_off: int) -> TileDetections:
        """Pack a producer's answer for the tile whose top-left corner is scene pixel (col_off, row_off)."""
        boxes = np.array([[d.x1, d.y1, d.x2, d.y2] for d in detections], dtype=np.float64).reshape(-1, 4)
        scores = np.array([d.score for d in detections], dtype=np.float64)
        return cls(col_off, row_off, boxes, scores, tuple(d.label for d in detections))


@dataclass(frozen=True)
class SceneBoxes:
    """Boxes in SCENE pixels after stitching, best first (score, then area)."""

    boxes: FloatArray
    """Shape (n, 4): ``x1, y1, x2, y2`` in scene pixels."""
    scores: FloatArray
    labels: tuple[str, ...]
    size: tuple[int, int] | None = None
    """(width, height) of the scene when the boxes were clipped to it."""

    def __post_init__(self) -> None:
        boxes = _as_boxes(self.boxes, "scene")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", _as_scores(self.scores, len(boxes), "scene"))
        object.__setattr__(self, "labels", tuple(self.labels))
        if len(self.labels) != len(boxes):
            raise ValueError(f"scene: {len(self.labels)} labels for {len(boxes)} boxes")

    def __len__(self) -> int:
        return len(self.boxes)

    def centres(self) -> FloatArray:
        """Box centres (n, 2) as (col, row) in scene pixels."""
        return (self.boxes[:, :2] + self.boxes[:, 2:]) / 2

    def to_geojson(self, transform: Affine6, crs: str, *, wgs84: bool = True) -> dict[str, Any]:
        """A FeatureCollection with one Polygon per box: its four pixel corners through ``transform``.

        ``wgs84=True`` (the default) writes RFC 7946 GeoJSON: lon/lat in WGS84, each geometry reprojected
        with ``rasterio.warp.transform_geom`` (which also cuts a box crossing the antimeridian into a
        MultiPolygon). Only the corners are reprojected: a box edge, straight in the scene CRS, stays a straight
        lon/lat segment, an error far below a pixel for boxes of object size.

        ``wgs84=False`` keeps the scene CRS's coordinates and adds the ``"crs"`` member of the 2008 GeoJSON
        draft (``urn:ogc:def:crs:EPSG::<code>``). RFC 7946 removed that member and readers may ignore it, but
        GDAL/QGIS still honour it, which is what makes a metric-CRS file open in the right place.

        Properties: ``label``, ``score`` and ``pixel_bbox`` (scene-pixel ``[x1, y1, x2, y2]``); the feature
        ``id`` is the box's index in this object. Rings are counter-clockwise and start at the top-left pixel
        corner.
        """
        from rsvlm.geo.geojson import boxes_geojson

        return boxes_geojson(self, transform, crs, wgs84=wgs84)


@runtime_checkable
class BoxProducer(Protocol):
    """Anything that finds boxes in one tile: returns them in that tile's pixels (corner convention)."""

    def __call__(self, image: RasterImage) -> list[Detection]: ...


# ---- stitching ----------------------------------------------------------------------------------------


def stitch(
    tiles: Iterable[TileDetections],
    *,
    iou_threshold: float = 0.5,
    ios_threshold: float | None = 0.7,
    scene_size: tuple[int, int] | None = None,
) -> SceneBoxes:
    """Shift every tile's boxes into scene pixels and keep one box per object, class by class.

    The rule, greedy in rank order (higher score first; equal scores: larger box first, then input order):
    a box is dropped when a box of the SAME label already kept has

    - IoU with it above ``iou_threshold`` (plain NMS; with distinct scores exactly ``torchvision.ops.batched_nms``), or
    - an intersection above ``ios_threshold`` times the area of the SMALLER of the two (intersection over
      smaller; ``None`` turns this test off).

    The second test is for tile overlaps: an object cut by a tile border is a partial box in one tile and a
    full box in the next. Their IoU is only the visible fraction (a third of a tree: 0.33, under any NMS
    threshold), but the partial box lies almost wholly inside the full one, so one of them goes. Which one
    is decided by rank: a lower-scored partial box is dropped; a partial box that outscores the full one is
    kept instead of it, so the object is still counted once, with its visible extent. The size tie-break
    makes the full box win for producers without real scores (chat models answer 1.0 for every box).
    The cost: of two same-class objects where one box lies mostly (> ``ios_threshold``) inside the other,
    only the higher-ranked one is kept.

    ``scene_size=(width, height)`` clips boxes to the scene first (a model may answer past a tile at the
    scene's edge). Boxes without area, e.g. wholly outside the scene after clipping, are dropped: they mark
    no object.
    """
    _check_threshold("iou_threshold", iou_threshold)
    if ios_threshold is not None:
        _check_threshold("ios_threshold", ios_threshold)
    parts = [(t.boxes + np.array([t.col_off, t.row_off, t.col_off, t.row_off], dtype=np.float64), t) for t in tiles]
    boxes = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 4))
    scores = np.concatenate([p[1].scores for p in parts]) if parts else np.zeros(0)
    labels = np.array([label for _, t in parts for label in t.labels], dtype=object)
    if scene_size is not None:
        width, height = scene_size
        if width <= 0 or height <= 0:
            raise RsvlmError(f"scene size {width} x {height} is not positive; pass the scene's (width, height)")
        boxes = np.clip(boxes, 0.0, np.array([width, height, width, height], dtype=np.float64))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    solid = area > 0
    boxes, scores, labels, area = boxes[solid], scores[solid], labels[solid], area[solid]
    order = np.lexsort((np.arange(len(boxes)), -area, -scores))
    keep = _greedy_keep(boxes, area, labels, order, iou_threshold, ios_threshold)
    kept = order[keep[order]]
    return SceneBoxes(boxes[kept], scores[kept], tuple(str(v) for v in labels[kept]), scene_size)


def _check_threshold(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise RsvlmError(f"{name} {value} is outside [0, 1]; pass a fraction such as 0.5")


def _greedy_keep(
    boxes: FloatArray,
    area: FloatArray,
    labels: npt.NDArray[Any],
    order: npt.NDArray[np.intp],
    iou_threshold: float,
    ios_threshold: float | None,
) -> npt.NDArray[np.bool_]:
    """Which boxes survive the rule of ``stitch``; only pairs whose boxes touch are ever compared."""
    n = len(boxes)
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    import shapely

    tree = shapely.STRtree(shapely.box(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]))
    # Without a predicate the tree returns pairs whose envelopes meet, which for boxes is exact.
    i, j = tree.query(tree.geometries)
    rank = np.empty(n, dtype=np.intp)
    rank[order] = np.arange(n)
    _, codes = np.unique(labels, return_inverse=True)
    pair = (rank[i] < rank[j]) & (codes[i] == codes[j])  # i could suppress j
    i, j = i[pair], j[pair]
    inter = np.clip(np.minimum(boxes[i, 2], boxes[j, 2]) - np.maximum(boxes[i, 0], boxes[j, 0]), 0, None) * np.clip(
        np.minimum(boxes[i, 3], boxes[j, 3]) - np.maximum(boxes[i, 1], boxes[j, 1]), 0, None
    )
    suppress = inter / (area[i] + area[j] - inter) > iou_threshold
    if ios_threshold is not None:
        suppress |= inter / np.minimum(area[i], area[j]) > ios_threshold
    i, j = i[suppress], j[suppress]
    if len(j) == 0:
        return keep
    by_rank = np.argsort(rank[j], kind="stable")
    i, j = i[by_rank], j[by_rank]
    starts = np.flatnonzero(np.r_[True, j[1:] != j[:-1]])
    ends = np.r_[starts[1:], len(j)]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        # Every suppressor ranks higher than j, so its fate is already final here.
        if keep[i[start:end]].any():
            keep[j[start]] = False
    return keep
