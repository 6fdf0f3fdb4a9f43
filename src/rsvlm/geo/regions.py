"""Counting scene boxes per class and per named region, and reading those regions from GeoJSON files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsvlm.errors import AnnotationError, RsvlmError
from rsvlm.geo.geojson import check_transform, parse_crs

if TYPE_CHECKING:
    from rsvlm.data.sample import Affine6
    from rsvlm.geo.boxes import SceneBoxes


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
    a, b, c, d, e, f = check_transform(transform)
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

    path = Path(path)
    fix = "write a GeoJSON FeatureCollection of Polygon features"
    data, features = read_features(path, "regions", fix)
    file_crs = parse_crs(geojson_crs(data, path), "regions CRS", path)
    dst_crs = parse_crs(scene_crs, "scene CRS")
    merged: dict[str, list[Any]] = {}
    for index, feature in enumerate(features):
        where = f"feature {index}"
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
            raise AnnotationError(path, f"{where} has geometry {kind!r}, not a Polygon or MultiPolygon", fix)
        geom = reproject(feature_shape(geometry, path, where), file_crs, dst_crs, path, where)
        properties = feature.get("properties")
        name = properties.get("name") if isinstance(properties, dict) else None
        merged.setdefault(str(index) if name is None else str(name), []).append(geom)
    return [(name, parts[0] if len(parts) == 1 else shapely.union_all(parts)) for name, parts in merged.items()]


def read_features(path: Path, what: str, fix: str) -> tuple[dict[str, Any], list[Any]]:
    """The top-level object and the features of a GeoJSON FeatureCollection (or of one Feature), or one line
    naming what is wrong (``what`` names the file's role: ``regions``, ``labels``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnnotationError(path, f"{what} file not found", "check the path") from None
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
    return data, features


def feature_shape(geometry: dict[str, Any], path: Path, where: str) -> Any:
    """A GeoJSON geometry as a shapely one, refusing malformed, empty or non-finite coordinates."""
    import shapely
    from shapely.geometry import shape

    try:
        geom = shape(geometry)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, shapely.errors.ShapelyError):
        raise AnnotationError(path, f"{where} has malformed coordinates", "check its [x, y] pairs") from None
    if geom.is_empty or not bool(np.isfinite(shapely.get_coordinates(geom)).all()):
        raise AnnotationError(path, f"{where} has an empty or non-finite geometry", "check its coordinates")
    return geom


def reproject(geom: Any, src_crs: Any, dst_crs: Any, path: Path, where: str) -> Any:
    """A shapely geometry from ``src_crs`` into ``dst_crs`` (rasterio CRSs), valid afterwards.

    Edges are straight lines in the file's CRS (RFC 7946), so polygons are densified before reprojection to
    stay where they were drawn; an invalid ring (self-crossing) is repaired with ``shapely.make_valid``.
    """
    import shapely
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping, shape

    if src_crs != dst_crs:
        left, bottom, right, top = geom.bounds
        if max(right - left, top - bottom) > 0:
            geom = shapely.segmentize(geom, max(right - left, top - bottom) / 64)
        try:
            geom = shape(transform_geom(src_crs, dst_crs, mapping(geom)))
        except Exception as exc:  # GDAL/PROJ raise their own error classes (CPLE_*)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise AnnotationError(
                path, f"{where} cannot be put into the scene CRS ({reason})", "check the file's CRS and coordinates"
            ) from None
        if not bool(np.isfinite(shapely.get_coordinates(geom)).all()):
            raise AnnotationError(
                path, f"{where} cannot be put into the scene CRS (it lands outside the projection's domain)",
                "check the file's CRS and coordinates",
            )  # fmt: skip
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    return geom


def geojson_crs(data: dict[str, Any], path: Path) -> str:
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
