"""Scene boxes on the map as GeoJSON: pixel corners through the scene's affine transform, optionally to WGS84.

Also the CRS and transform checks that region files (``rsvlm.geo.regions``) share, so a bad CRS or a
degenerate transform reads the same one-line error wherever it comes from.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsvlm.errors import AnnotationError, RsvlmError
from rsvlm.fileio import atomic_write

if TYPE_CHECKING:
    from rsvlm.data.sample import Affine6
    from rsvlm.geo.boxes import SceneBoxes


def boxes_geojson(scene_boxes: SceneBoxes, transform: Affine6, crs: str, *, wgs84: bool = True) -> dict[str, Any]:
    """``SceneBoxes.to_geojson``: one Polygon per box (see there for the conventions)."""
    a, b, c, d, e, f = check_transform(transform)
    src_crs = parse_crs(crs, "scene CRS")
    # Pixel corners top-left, top-right, bottom-right, bottom-left wind counter-clockwise on the map when the
    # transform keeps orientation (determinant > 0); north-up rasters (e < 0) flip it, so go the other way.
    corners = [0, 1, 2, 3] if a * e - b * d > 0 else [0, 3, 2, 1]
    cols = scene_boxes.boxes[:, [0, 2, 2, 0]][:, corners]
    rows = scene_boxes.boxes[:, [1, 1, 3, 3]][:, corners]
    ring = np.stack([a * cols + b * rows + c, d * cols + e * rows + f], axis=-1)
    rings = np.concatenate([ring, ring[:, :1]], axis=1).tolist()
    geometries: list[dict[str, Any]] = [{"type": "Polygon", "coordinates": [r]} for r in rings]
    if wgs84 and geometries:
        from rasterio.warp import transform_geom

        geometries = [_ccw_geometry(g) for g in transform_geom(src_crs, "EPSG:4326", geometries)]
    pixel_boxes, scores = scene_boxes.boxes.tolist(), scene_boxes.scores.tolist()
    features = [
        {
            "type": "Feature",
            "id": i,
            "geometry": geometry,
            "properties": {"label": label, "score": scores[i], "pixel_bbox": pixel_boxes[i]},
        }
        for i, (geometry, label) in enumerate(zip(geometries, scene_boxes.labels, strict=True))
    ]
    collection: dict[str, Any] = {"type": "FeatureCollection"}
    if not wgs84:
        collection["crs"] = {"type": "name", "properties": {"name": _crs_urn(src_crs)}}
    collection["features"] = features
    return collection


def check_transform(transform: Sequence[float]) -> Affine6:
    values = tuple(float(v) for v in transform)
    if len(values) != 6 or not all(math.isfinite(v) for v in values):
        raise RsvlmError(f"affine transform {tuple(transform)} is not six finite numbers (a, b, c, d, e, f)")
    a, b, c, d, e, f = values
    if a * e - b * d == 0:
        raise RsvlmError(f"affine transform {values} is degenerate; pass the scene's pixel-to-map transform")
    return a, b, c, d, e, f


def parse_crs(crs: str, what: str, path: Path | None = None) -> Any:
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
    atomic_write(path, json.dumps(collection, allow_nan=False, ensure_ascii=False))
    return path
