"""Labelled points and polygons over a scene (what a user draws in QGIS in ten minutes) as few-shot training tiles.

A GeoJSON's features carry a class in one property (``class`` by default; text or numbers). Coordinates are in
the file's CRS: WGS84 lon/lat as RFC 7946 prescribes, the legacy top-level ``"crs"`` member when present, or
the CRS the caller names (which wins); they are reprojected into the scene's CRS. Then:

- a point labels the tile (the map's tile size) centred on it, moved inside the scene when it is near an edge;
- a polygon labels the tiles of the map's tile grid whose centre lies inside it; a polygon holding no tile
  centre (smaller than the grid step) labels the tile centred on its centroid (a point inside it, if hollow).

Each class keeps at most ``max_per_class`` tiles (default 64), drawn with the seed from all its candidate tiles;
a tile with under ``min_valid`` valid pixels (nodata) is passed over, as the map passes over it. Nothing is
dropped silently: features outside the scene, on nodata, of an unselected class, without the class property
or of another geometry are counted by reason in ``SceneLabels.summary()``.

``rsvlm.geo.fewshot`` turns the tiles into a support set and fits an adapter on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsvlm.adapt.method import I64
from rsvlm.data.raster import Window
from rsvlm.errors import AnnotationError, DataError, RsvlmError
from rsvlm.geo.geojson import parse_crs
from rsvlm.geo.label_classes import ClassList, choose_classes, class_notes, class_value, readable_names
from rsvlm.geo.regions import feature_shape, geojson_crs, read_features, reproject

if TYPE_CHECKING:
    from rsvlm.geo.source import Scene

DEFAULT_PROPERTY = "class"
MAX_PER_CLASS = 64
"""Tiles one class may contribute: enough for any few-shot method, and a polygon over half a scene does not
cost thousands of tile reads and embeddings."""

OUTSIDE = "outside the scene"
NODATA = "on nodata"
NOT_SELECTED = "class not selected"
NO_GEOMETRY = "no geometry"
OTHER_GEOMETRY = "not a point or polygon"
CAPPED = "left out by the per-class tile cap"
FIX = "write a GeoJSON FeatureCollection of Point or Polygon features with a class property"


@dataclass(frozen=True)
class LabelTile:
    window: Window
    label: int
    """Index into ``SceneLabels.classes``."""
    feature: int
    """Index of the feature it comes from, in the file."""


@dataclass
class SceneLabels:
    """The labelled tiles of one scene, and an account of every feature that gave none."""

    path: Path
    prop: str
    """The property holding the class."""
    crs: str
    """The file's CRS as named (the caller's, the ``crs`` member's, or ``OGC:CRS84``)."""
    classes: list[str]
    """Class values as text (``1.0`` → ``1``), in the order the user gave, else sorted."""
    names: list[str]
    """Readable names (what prompts say): underscores and CamelCase split, or the names the user gave."""
    tiles: list[LabelTile]
    tile: int
    features: int
    used: int
    skipped: dict[str, int] = field(default_factory=dict)
    """Features that gave no tile, by reason."""
    capped: dict[str, int] = field(default_factory=dict)
    """Candidate tiles of each class left out by the ``max_per_class`` draw."""
    notes: list[str] = field(default_factory=list)

    @property
    def labels(self) -> I64:
        return np.array([t.label for t in self.tiles], dtype=np.int64)

    def counts(self) -> dict[str, int]:
        found = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, found, strict=True)}

    def summary(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "property": self.prop,
            "crs": self.crs,
            "tile": self.tile,
            "classes": dict(zip(self.classes, self.names, strict=True)),
            "tiles_per_class": self.counts(),
            "features": self.features,
            "features_used": self.used,
            "features_skipped": dict(self.skipped),
            "tiles_capped": dict(self.capped),
            "notes": list(self.notes),
        }

    def describe(self) -> str:
        counts = ", ".join(f"{n} {c}" for c, n in self.counts().items())
        skipped = sum(self.skipped.values())
        why = "; ".join(f"{n} {reason}" for reason, n in self.skipped.items())
        return f"{len(self.tiles)} labelled tiles ({counts}) from {self.used} of {self.features} features" + (
            f"; {skipped} skipped ({why})" if skipped else ""
        )


def read_labels(
    path: str | Path,
    scene: Scene,
    tile: int,
    *,
    stride: int | None = None,
    prop: str = DEFAULT_PROPERTY,
    crs: str | None = None,
    classes: ClassList | None = None,
    max_per_class: int = MAX_PER_CLASS,
    seed: int = 0,
    min_valid: float = 0.5,
    min_classes: int = 2,
) -> SceneLabels:
    """The labelled tiles of ``scene`` from a GeoJSON of points/polygons (see the module's docstring).

    ``classes`` keeps only those class values (a mapping also names them: ``{"1": "water"}``); a value the file
    does not hold is an error. ``stride``: the map's tile step, the grid polygons are cut on (default ``tile``).
    ``min_classes``: classes that must have tiles over this scene (1 when its labels are pooled with other
    scenes' into one support set, which ``fewshot.label_support`` checks for two).
    """
    path = Path(path)
    if scene.crs is None:
        raise DataError(
            scene.path,
            "has no CRS, so labels in map coordinates cannot be placed on it",
            "georeference it (gdal_translate -a_srs EPSG:... -a_ullr ...) or label a georeferenced scene",
        )
    if max_per_class < 1:
        raise RsvlmError(f"max_per_class {max_per_class} must be at least 1")
    data, features = read_features(path, "labels", FIX)
    named = crs if crs is not None else geojson_crs(data, path)
    file_crs = parse_crs(named, "labels CRS") if crs is not None else parse_crs(named, "labels CRS", path)
    scene_crs = parse_crs(scene.crs, "scene CRS")
    found, skipped = _read_geometries(path, features, prop, file_crs)
    values = choose_classes(path, prop, [f.value for f in found], classes)
    names = readable_names(values, classes, path)
    for f in found:
        if f.value not in values:
            f.reason = NOT_SELECTED
    grid = _Grid(scene, tile, stride or tile)
    candidates: list[tuple[int, int, Window]] = []  # (class, feature, window)
    spans = []
    for f in found:
        if f.reason is not None:
            continue
        spans.append(f.geom.bounds)
        windows = grid.windows(reproject(f.geom, file_crs, scene_crs, path, f"feature {f.index}"))
        if not windows:
            f.reason = OUTSIDE
        candidates += [(values.index(f.value), f.index, w) for w in windows]
    if not candidates:
        _no_overlap(path, scene, named, file_crs, spans, found)
    tiles, capped, examined = _draw(scene, candidates, values, max_per_class, seed, min_valid)
    kept = {t.feature for t in tiles}
    for f in found:
        if f.reason is None and f.index not in kept:
            f.reason = NODATA if examined.get(f.index) == "all" else CAPPED
        if f.reason is not None:
            skipped[f.reason] = skipped.get(f.reason, 0) + 1
    notes = class_notes(values, names)
    labels = SceneLabels(
        path, prop, named, values, names, tiles, tile, len(features), len(kept), skipped, capped, notes
    )
    _check_classes(labels, explicit=classes is not None, needed=min_classes)
    return labels


@dataclass
class _Found:
    index: int
    value: str
    geom: Any
    reason: str | None = None


def _read_geometries(path: Path, features: list[Any], prop: str, file_crs: Any) -> tuple[list[_Found], dict[str, int]]:
    """Features with a point/polygon geometry and a class value, and the others counted by reason."""
    found: list[_Found] = []
    unused: dict[str, int] = {}
    with_prop = 0
    properties: set[str] = set()
    for index, feature in enumerate(features):
        if not isinstance(feature, dict):
            raise AnnotationError(path, f"feature {index} is not a JSON object", FIX)
        props = feature.get("properties")
        value = class_value(props.get(prop)) if isinstance(props, dict) else None
        properties |= set(props) if isinstance(props, dict) else set()
        with_prop += value is not None
        geometry = feature.get("geometry")
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        reason = (
            f"no {prop!r} value" if value is None
            else NO_GEOMETRY if kind is None
            else OTHER_GEOMETRY if kind not in ("Point", "MultiPoint", "Polygon", "MultiPolygon")
            else None
        )  # fmt: skip
        if reason is not None:
            unused[reason] = unused.get(reason, 0) + 1
            continue
        assert isinstance(geometry, dict)
        geom = feature_shape(geometry, path, f"feature {index}")
        if file_crs.is_geographic:
            _check_degrees(path, geom, index)
        found.append(_Found(index, str(value), geom))
    if not with_prop:
        have = ", ".join(sorted(properties)[:8]) or "none"
        raise AnnotationError(
            path,
            f"no feature has a text or number {prop!r} property (the features' properties: {have})",
            "name the class property with --label-property",
        )
    if not found:
        raise AnnotationError(path, f"no feature is a Point or Polygon with a {prop!r} value", FIX)
    return found, unused


def _check_degrees(path: Path, geom: Any, index: int) -> None:
    """Projected metres read as lon/lat degrees (a file in UTM without a CRS member) fail here, clearly."""
    import shapely

    xy = shapely.get_coordinates(geom)
    if (np.abs(xy[:, 0]) > 360).any() or (np.abs(xy[:, 1]) > 90).any():
        x, y = xy[0]
        raise AnnotationError(
            path,
            f"feature {index} has coordinates ({x:g}, {y:g}) that are not lon/lat degrees, yet the file's CRS is "
            "geographic (RFC 7946 GeoJSON is WGS84 lon/lat unless it names a CRS)",
            "name the file's CRS with --labels-crs EPSG:<code>",
        )


class _Grid:
    """Where a label's tiles go: the tile centred on a point, or the grid tiles centred inside a polygon."""

    def __init__(self, scene: Scene, tile: int, stride: int) -> None:
        from affine import Affine

        self.scene, self.tile = scene, tile
        self.to_pixel = ~Affine(*scene.transform)
        self.cols = np.arange(0, max(scene.width - tile, 0) + 1, stride)
        self.rows = np.arange(0, max(scene.height - tile, 0) + 1, stride)

    def centred(self, col: float, row: float) -> Window:
        c = int(np.clip(round(col - self.tile / 2), 0, max(self.scene.width - self.tile, 0)))
        r = int(np.clip(round(row - self.tile / 2), 0, max(self.scene.height - self.tile, 0)))
        return Window(c, r, min(self.tile, self.scene.width), min(self.tile, self.scene.height))

    def inside(self, col: float, row: float) -> bool:
        return 0 <= col < self.scene.width and 0 <= row < self.scene.height

    def windows(self, geom: Any) -> list[Window]:
        """The candidate windows of one reprojected geometry (empty: it misses the scene)."""
        import shapely
        from shapely import affinity

        t = self.to_pixel
        pixel = affinity.affine_transform(geom, [t.a, t.b, t.d, t.e, t.c, t.f])
        if geom.geom_type in ("Point", "MultiPoint"):
            points = shapely.get_coordinates(pixel)
            return [self.centred(c, r) for c, r in points if self.inside(c, r)]
        scene_box = shapely.box(0, 0, self.scene.width, self.scene.height)
        clipped = pixel.intersection(scene_box)
        if clipped.is_empty or clipped.area == 0:
            return []
        half = self.tile / 2
        cc, rr = np.meshgrid(self.cols + half, self.rows + half)
        hit = shapely.contains_xy(clipped, cc.ravel(), rr.ravel())
        windows = [self.centred(c, r) for c, r in zip(cc.ravel()[hit], rr.ravel()[hit], strict=True)]
        if not windows:  # smaller than the grid step: the tile centred on it (on a point inside, if hollow)
            point = clipped.centroid if clipped.contains(clipped.centroid) else clipped.representative_point()
            windows = [self.centred(point.x, point.y)]
        return windows


def _draw(
    scene: Scene, candidates: list[tuple[int, int, Window]], values: list[str], cap: int, seed: int, min_valid: float
) -> tuple[list[LabelTile], dict[str, int], dict[int, str]]:
    """Up to ``cap`` valid tiles per class, in a seeded random order; which features had every tile examined."""
    rng = np.random.default_rng(seed)
    tiles: list[LabelTile] = []
    capped: dict[str, int] = {}
    seen: dict[int, list[int]] = {}  # feature → [tiles examined, tiles it has]
    for _, feature, _ in candidates:
        seen.setdefault(feature, [0, 0])[1] += 1
    for label, value in enumerate(values):
        pool = [(f, w) for c, f, w in candidates if c == label]
        kept = 0
        for k in rng.permutation(len(pool)):
            if kept == cap:
                capped[value] = capped.get(value, 0) + 1
                continue
            feature, window = pool[int(k)]
            seen[feature][0] += 1
            _, valid = scene.read(window)
            if valid.mean() >= min_valid:
                tiles.append(LabelTile(window, label, feature))
                kept += 1
    tiles.sort(key=lambda t: (t.label, t.feature, t.window.row, t.window.col))
    examined = {f: "all" if done == total else "some" for f, (done, total) in seen.items()}
    return tiles, capped, examined


def _no_overlap(path: Path, scene: Scene, named: str, file_crs: Any, spans: list[Any], found: list[_Found]) -> None:
    """Every feature misses the scene (or lies on classes not selected): say where each is, in the file's CRS."""
    if not spans:
        reasons = sorted({f.reason for f in found if f.reason})
        raise AnnotationError(path, f"no labelled feature is left to use ({', '.join(reasons)})", FIX)
    from rasterio.warp import transform_bounds

    left, bottom, right, top = scene.geo.bounds or (0.0, 0.0, 0.0, 0.0)
    try:
        sl, sb, sr, st = transform_bounds(parse_crs(scene.crs or "", "scene CRS"), file_crs, left, bottom, right, top)
        where = named
    except Exception:  # PROJ cannot put the scene in the file's CRS: say it in the scene's own
        sl, sb, sr, st, where = left, bottom, right, top, f"{scene.crs}, the scene's CRS"
    fl, fb = min(s[0] for s in spans), min(s[1] for s in spans)
    fr, ft = max(s[2] for s in spans), max(s[3] for s in spans)
    raise AnnotationError(
        path,
        f"no feature overlaps the scene {scene.name}: the features span x {fl:.6g}…{fr:.6g}, y {fb:.6g}…{ft:.6g} "
        f"({named}), the scene x {sl:.6g}…{sr:.6g}, y {sb:.6g}…{st:.6g} ({where})",
        "label this scene, or name the file's CRS with --labels-crs if it is not " + named,
    )


def _check_classes(labels: SceneLabels, *, explicit: bool, needed: int) -> None:
    """At least two classes with tiles; a class asked for by name must have tiles, one found in the file may not."""
    counts = labels.counts()
    empty = [c for c, n in counts.items() if n == 0]
    if empty and explicit:
        raise AnnotationError(
            labels.path,
            f"class(es) {', '.join(empty)} have no labelled tile over the scene ({labels.describe()})",
            "label them on this scene, or leave them out of the class list",
        )
    if empty:
        keep = [i for i, c in enumerate(labels.classes) if counts[c]]
        remap = {old: new for new, old in enumerate(keep)}
        labels.notes.append(f"class(es) {', '.join(empty)} have no tile over the scene and are left out")
        labels.classes = [labels.classes[i] for i in keep]
        labels.names = [labels.names[i] for i in keep]
        labels.tiles = [LabelTile(t.window, remap[t.label], t.feature) for t in labels.tiles]
    if len(labels.classes) < needed:
        raise AnnotationError(
            labels.path,
            f"labels over the scene cover {len(labels.classes)} class(es) ({labels.describe()}); "
            f"adapting needs at least {needed}",
            "label examples of at least two classes on this scene",
        )
