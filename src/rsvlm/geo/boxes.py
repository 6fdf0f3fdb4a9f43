"""Boxes and counts over whole scenes: per-tile detections → one set of scene boxes → GeoJSON and counts.

A scene larger than a model's input is cut into overlapping tiles; a box producer (a chat model doing
grounding, or any detector) answers per tile in TILE pixels. ``stitch`` shifts every box by its tile's offset
into SCENE pixels and removes the duplicates that the overlap creates; ``SceneBoxes.to_geojson`` puts the
boxes on the map through the scene's affine transform; ``count_boxes`` counts them per class and per region.

Pixel convention everywhere (as in ``rsvlm.data.sample``): corner convention, ``(0, 0)`` is the top-left
corner of the top-left pixel, so a box covering pixel columns 100..149 is ``x1=100, x2=150``, and the scene's
affine transform maps such a corner straight to map coordinates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from rsvlm.errors import AnnotationError, RsvlmError

if TYPE_CHECKING:
    from rsvlm.data.sample import Affine6, RasterImage
    from rsvlm.models.chat.protocol import ChatModel, GenerationConfig
    from rsvlm.tasks.chat.geometry import PixelBox

FloatArray = npt.NDArray[np.float64]

GROUNDING_PROTOCOL = "grounding/1"
"""The shipped grounding protocol whose per-family prompt ``ChatGroundingProducer`` asks with."""

DEFAULT_MAX_NEW_TOKENS = 512
"""A box costs a chat model about 20-30 tokens, so a tile with a dozen objects needs far more than the
64-token default of ``GenerationConfig``; a cut-off answer loses its last boxes."""


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
        a, b, c, d, e, f = _check_transform(transform)
        src_crs = _crs(crs, "scene CRS")
        # Pixel corners top-left, top-right, bottom-right, bottom-left wind counter-clockwise on the map when the
        # transform keeps orientation (determinant > 0); north-up rasters (e < 0) flip it, so go the other way.
        corners = [0, 1, 2, 3] if a * e - b * d > 0 else [0, 3, 2, 1]
        cols = self.boxes[:, [0, 2, 2, 0]][:, corners]
        rows = self.boxes[:, [1, 1, 3, 3]][:, corners]
        ring = np.stack([a * cols + b * rows + c, d * cols + e * rows + f], axis=-1)
        rings = np.concatenate([ring, ring[:, :1]], axis=1).tolist()
        geometries: list[dict[str, Any]] = [{"type": "Polygon", "coordinates": [r]} for r in rings]
        if wgs84 and geometries:
            from rasterio.warp import transform_geom

            geometries = [_ccw_geometry(g) for g in transform_geom(src_crs, "EPSG:4326", geometries)]
        pixel_boxes, scores = self.boxes.tolist(), self.scores.tolist()
        features = [
            {
                "type": "Feature",
                "id": i,
                "geometry": geometry,
                "properties": {"label": label, "score": scores[i], "pixel_bbox": pixel_boxes[i]},
            }
            for i, (geometry, label) in enumerate(zip(geometries, self.labels, strict=True))
        ]
        collection: dict[str, Any] = {"type": "FeatureCollection"}
        if not wgs84:
            collection["crs"] = {"type": "name", "properties": {"name": _crs_urn(src_crs)}}
        collection["features"] = features
        return collection


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
    import shapely  # type: ignore[import-untyped]

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


# ---- map output ------------------------------------------------------------------------------------------


def _check_transform(transform: Sequence[float]) -> Affine6:
    values = tuple(float(v) for v in transform)
    if len(values) != 6 or not all(math.isfinite(v) for v in values):
        raise RsvlmError(f"affine transform {tuple(transform)} is not six finite numbers (a, b, c, d, e, f)")
    a, b, c, d, e, f = values
    if a * e - b * d == 0:
        raise RsvlmError(f"affine transform {values} is degenerate; pass the scene's pixel-to-map transform")
    return a, b, c, d, e, f


def _crs(crs: str, what: str, path: Path | None = None) -> Any:
    """A rasterio CRS, or a one-line error naming what could not be read."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return CRS.from_user_input(crs)
    except CRSError:
        if path is not None:
            raise AnnotationError(path, f"unknown CRS {crs!r}", "name it as EPSG:<code> or an OGC URN") from None
        raise RsvlmError(f"unknown {what} {crs!r}: name it as EPSG:<code>, an OGC URN or WKT") from None


def _crs_urn(crs: Any) -> str:
    """The 2008-draft ``crs`` name: an EPSG URN, CRS84 for WGS84 (lon/lat order), else the WKT GDAL reads."""
    code = crs.to_epsg()
    if code == 4326:
        return "urn:ogc:def:crs:OGC:1.3:CRS84"
    return f"urn:ogc:def:crs:EPSG::{code}" if code is not None else str(crs.to_wkt())


def _ccw_ring(ring: Any) -> list[list[float]]:
    """A closed ring as lists, wound counter-clockwise (RFC 7946), its first point kept first."""
    points = [(float(x), float(y)) for x, y, *_ in ring]
    signed = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in pairwise(points))
    if signed < 0:
        points = points[::-1]
    return [[x, y] for x, y in points]


def _ccw_geometry(geometry: Any) -> dict[str, Any]:
    """rasterio's reprojected (Multi)Polygon as plain JSON data, every ring counter-clockwise (boxes have no
    holes); a projection that mirrors the map, such as one with a westing axis, would otherwise flip them."""
    kind = geometry["type"]
    if kind == "Polygon":
        return {"type": kind, "coordinates": [_ccw_ring(r) for r in geometry["coordinates"]]}
    return {"type": kind, "coordinates": [[_ccw_ring(r) for r in part] for part in geometry["coordinates"]]}


def write_geojson(path: str | Path, collection: dict[str, Any]) -> Path:
    """Write a FeatureCollection as compact UTF-8 JSON (no NaN, which JSON forbids); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(collection, allow_nan=False, ensure_ascii=False), encoding="utf-8")
    return path


# ---- counts and regions --------------------------------------------------------------------------------


Region = tuple[str, Any]
"""A region's name and its shapely (Multi)Polygon in the scene CRS's map coordinates."""


def count_boxes(
    scene_boxes: SceneBoxes, regions: Sequence[Region] | None = None, *, transform: Affine6 | None = None
) -> dict[str, Any]:
    """How many boxes per class, and per region when ``regions`` are given.

    A box counts in a region when its centre, put on the map with the scene's ``transform``, lies inside or
    on the region's boundary (so a centre exactly on a border shared by two regions counts in both).
    Returns ``{"total": n, "by_class": {label: n}, "regions": {name: {"total": n, "by_class": {...}}}}``,
    the ``regions`` key only when regions are given; classes are sorted by name.
    """
    out: dict[str, Any] = {"total": len(scene_boxes), "by_class": _by_class(scene_boxes.labels)}
    if regions is None:
        return out
    if transform is None:
        raise RsvlmError("counting per region needs the scene's affine transform: pass transform=(a, b, c, d, e, f)")
    a, b, c, d, e, f = _check_transform(transform)
    import shapely

    centres = scene_boxes.centres()
    xs, ys = a * centres[:, 0] + b * centres[:, 1] + c, d * centres[:, 0] + e * centres[:, 1] + f
    names = [name for name, _ in regions]
    if len(set(names)) != len(names):
        raise RsvlmError("region names repeat; give each region a unique name (read_regions merges same-named ones)")
    geometries = np.array([geometry for _, geometry in regions], dtype=object)
    region_index, box_index = shapely.STRtree(shapely.points(xs, ys)).query(geometries, predicate="covers")
    out["regions"] = {
        name: {
            "total": int(np.count_nonzero(region_index == k)),
            "by_class": _by_class([scene_boxes.labels[i] for i in box_index[region_index == k].tolist()]),
        }
        for k, name in enumerate(names)
    }
    return out


def _by_class(labels: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def read_regions(path: str | Path, scene_crs: str) -> list[Region]:
    """Named polygons from a GeoJSON file, reprojected into the scene CRS for ``count_boxes``.

    The file is a FeatureCollection (or one Feature) of Polygons/MultiPolygons. Its CRS is the legacy
    ``"crs"`` member when present, else WGS84 lon/lat as RFC 7946 prescribes. A region's name is its ``name``
    property, else the feature's index; features sharing a name form one region. Edges are straight lines
    in the file's CRS (RFC 7946), so they are densified before reprojection to stay where they were drawn;
    an invalid ring (self-crossing) is repaired with ``shapely.make_valid``.
    """
    import shapely
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping, shape  # type: ignore[import-untyped]

    path = Path(path)
    fix = "write a GeoJSON FeatureCollection of Polygon features"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnnotationError(path, "regions file not found", "check the path") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AnnotationError(path, f"not readable as JSON ({reason})", fix) from None
    if isinstance(data, dict) and data.get("type") == "Feature":
        features: Any = [data]
    elif isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features")
    else:
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise AnnotationError(path, f"top level is {kind!r}, not a FeatureCollection", fix)
    if not isinstance(features, list) or not features:
        raise AnnotationError(path, "no features", fix)
    file_crs = _crs(_legacy_crs_name(data, path), "regions CRS", path)
    dst_crs = _crs(scene_crs, "scene CRS")
    merged: dict[str, list[Any]] = {}
    for index, feature in enumerate(features):
        where = f"feature {index}"
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
            raise AnnotationError(path, f"{where} has geometry {kind!r}, not a Polygon or MultiPolygon", fix)
        try:
            geom = shape(geometry)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError, shapely.errors.ShapelyError):
            raise AnnotationError(
                path, f"{where} has malformed coordinates", "check its rings of [x, y] pairs"
            ) from None
        if geom.is_empty or not bool(np.isfinite(shapely.get_coordinates(geom)).all()):
            raise AnnotationError(path, f"{where} has an empty or non-finite polygon", "check its coordinates")
        if file_crs != dst_crs:
            left, bottom, right, top = geom.bounds
            if max(right - left, top - bottom) > 0:
                geom = shapely.segmentize(geom, max(right - left, top - bottom) / 64)
            try:
                geom = shape(transform_geom(file_crs, dst_crs, mapping(geom)))
            except Exception as exc:  # GDAL/PROJ raise their own error classes (CPLE_*)
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise AnnotationError(
                    path, f"{where} cannot be put into the scene CRS ({reason})", "check the file's CRS and coordinates"
                ) from None
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
        properties = feature.get("properties")
        name = properties.get("name") if isinstance(properties, dict) else None
        merged.setdefault(str(index) if name is None else str(name), []).append(geom)
    return [(name, parts[0] if len(parts) == 1 else shapely.union_all(parts)) for name, parts in merged.items()]


def _legacy_crs_name(data: dict[str, Any], path: Path) -> str:
    """The file's CRS: the 2008-draft ``crs`` member's name, else WGS84 lon/lat (RFC 7946)."""
    member = data.get("crs")
    if member is None:
        return "OGC:CRS84"
    name = member.get("properties", {}).get("name") if isinstance(member, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise AnnotationError(
            path,
            "its 'crs' member has no name",
            'write {"type": "name", "properties": {"name": "EPSG:..."}} or drop it',
        )
    return name


# ---- chat models as box producers -------------------------------------------------------------------------


def parse_boxes(text: str, box_format: str, *, width: float, height: float) -> list[PixelBox]:
    """Every box in a chat answer, as pixels of the ``width`` x ``height`` image the model saw.

    ``rsvlm.tasks.chat.box_parsing.parse_box`` reads the first box; this finds each box with the same
    patterns it uses (the format's own notation first, else any four numbers) and hands each to
    ``parse_box``, so both read answers identically. A box parse_box rejects (a value off its grid) is skipped.
    """
    from rsvlm.tasks.chat import box_parsing

    spans = box_parsing.box_spans(text, box_format)
    boxes = [box_parsing.parse_box(text[s:e], box_format, width=width, height=height) for s, e in spans]
    return [box for box in boxes if box is not None]


class ChatGroundingProducer:
    """A chat model as a box producer: asks it to locate every ``object_name`` in a tile.

    The question is the shipped grounding protocol's prompt for the model's family with the expression
    ``all <plural>`` (GeoChat's ``[refer]`` wording, LLaVA's RefCOCO wording …); the answer is read in the
    model's ``box_format`` with the grounding parser, scaled by the TILE's width and height, since the tile
    is the image the model saw. Chat models give no confidence, so every box scores 1.0; a rotated
    (GeoChat) box becomes the axis-aligned box around it.
    """

    def __init__(
        self,
        chat_model: ChatModel,
        object_name: str,
        *,
        protocol: str | Path = GROUNDING_PROTOCOL,
        config: GenerationConfig | None = None,
    ) -> None:
        from rsvlm.models.chat.protocol import GenerationConfig
        from rsvlm.tasks.chat.box_parsing import check_box_format
        from rsvlm.tasks.chat.counting import plural
        from rsvlm.tasks.chat.protocols import load_protocol

        if not object_name.strip():
            raise RsvlmError("object name is empty: say what to find, e.g. 'tree'")
        check_box_format(chat_model.box_format)
        loaded = load_protocol(protocol)
        if loaded.task != "grounding":
            raise RsvlmError(f"protocol {loaded.id} is for the {loaded.task} task; pass a grounding protocol")
        self.chat_model = chat_model
        self.label = object_name.strip()
        self.prompt = loaded.prompt(chat_model.family, expression=f"all {plural(self.label)}")
        self.config = config or GenerationConfig(max_new_tokens=DEFAULT_MAX_NEW_TOKENS)

    def __call__(self, image: RasterImage) -> list[Detection]:
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[RasterImage]) -> list[list[Detection]]:
        """One answer per tile, asked in the model's batches (same results as one tile at a time)."""
        from rsvlm.models.chat.protocol import ChatRequest

        answers = self.chat_model.generate([ChatRequest.ask(image, self.prompt) for image in images], self.config)
        if len(answers) != len(images):
            raise RsvlmError(f"chat model {self.chat_model.name} gave {len(answers)} answers for {len(images)} tiles")
        out: list[list[Detection]] = []
        for image, answer in zip(images, answers, strict=True):
            detections = []
            for box in parse_boxes(answer, self.chat_model.box_format, width=image.width, height=image.height):
                if box.angle % 180 == 0:
                    detections.append(Detection(box.x1, box.y1, box.x2, box.y2, 1.0, self.label))
                else:
                    xs, ys = zip(*box.corners(), strict=True)
                    detections.append(Detection(min(xs), min(ys), max(xs), max(ys), 1.0, self.label))
            out.append(detections)
        return out
