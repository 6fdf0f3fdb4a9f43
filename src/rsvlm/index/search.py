"""Searching an index by text, image or vector, within a place and a time: ranked hits with footprints.

Filters run first on the metadata held in memory (bbox covering columns, then exact polygon tests, then time), and
the vector search is restricted to the ids that pass, so a query "near here" ranks the best tiles near here rather
than filtering the best tiles of the world (``VectorIndex.search(allowed=…)`` searches a small set exactly).
An index built by another model, other weights or another adapter is refused, never searched with the wrong space.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.errors import DataError, RsvlmError

if TYPE_CHECKING:
    from rsvlm.data.sample import RasterImage

MAX_K = 1000


@dataclass(frozen=True)
class SearchQuery:
    text: str | None = None
    image: Path | RasterImage | None = None
    vector: npt.NDArray[np.float32] | None = None
    bbox: tuple[float, float, float, float] | None = None
    """W, S, E, N in WGS84 degrees."""
    within: Any | None = None
    """A shapely geometry in WGS84: hits whose footprint intersects it."""
    time: tuple[datetime | None, datetime | None] | None = None
    """Inclusive UTC range; either end may be open."""
    k: int = 20

    def describe(self) -> dict[str, Any]:
        what: dict[str, Any] = {"text": self.text} if self.text is not None else {}
        if self.image is not None:
            what["image"] = str(self.image) if isinstance(self.image, Path) else "uploaded image"
        if self.vector is not None:
            what["vector"] = f"{len(self.vector)}-d"
        what["k"] = self.k
        if self.bbox is not None:
            what["bbox"] = list(self.bbox)
        if self.within is not None:
            what["within"] = self.within.geom_type
        if self.time is not None:
            what["time"] = [t.isoformat() if t else None for t in self.time]
        return what


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``W,S,E,N`` (or space-separated) in degrees, checked to be a box on the globe."""
    parts = text.replace(",", " ").split()
    try:
        w, s, e, n = (float(p) for p in parts)
    except ValueError:
        raise RsvlmError(f"--bbox {text!r}: give four numbers W S E N in degrees, e.g. 2.2 48.8 2.5 48.9") from None
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= n <= 90) or w > e:
        raise RsvlmError(f"--bbox {text!r}: need -180 ≤ W ≤ E ≤ 180 and -90 ≤ S ≤ N ≤ 90 (W S E N in degrees)")
    return w, s, e, n


def _when(text: str, end: bool) -> datetime | None:
    if text in ("", ".."):
        return None
    try:
        value = datetime.fromisoformat(text if len(text) > 4 else f"{text}-01-01")
    except ValueError:
        raise RsvlmError(f"--time: {text!r} is not a date (use ISO dates, e.g. 2020-01-01/2021-06-30)") from None
    if end and len(text) <= 10:  # a day (or year) given as the end includes that whole day (year)
        value = value.replace(month=12, day=31) if len(text) == 4 else value
        value = value.replace(hour=23, minute=59, second=59, microsecond=999999)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_time(text: str) -> tuple[datetime | None, datetime | None]:
    """``FROM/TO`` in ISO dates or times, either end open (``../2021-06-30``); a lone date is that day."""
    start, sep, stop = text.partition("/")
    if not sep:
        stop = start
    begin, end = _when(start.strip(), False), _when(stop.strip(), True)
    if begin is None and end is None:
        raise RsvlmError(f"--time {text!r}: give FROM/TO, e.g. 2020-01-01/2021-06-30 (.. for an open end)")
    if begin is not None and end is not None and begin > end:
        raise RsvlmError(f"--time {text!r}: FROM is after TO")
    return begin, end


def read_within(path: Path) -> Any:
    """The union of a GeoJSON file's geometries (WGS84, as RFC 7946 says) as one shapely geometry."""
    import json

    import shapely
    from shapely.geometry import shape

    from rsvlm.fileio import read_text

    try:
        data = json.loads(read_text(path, "GeoJSON file"))
        kind = data.get("type")
        if kind == "FeatureCollection":
            geoms = [shape(f["geometry"]) for f in data["features"] if f.get("geometry")]
        elif kind == "Feature":
            geoms = [shape(data["geometry"])]
        else:
            geoms = [shape(data)]
    except (ValueError, KeyError, TypeError, AttributeError, shapely.errors.GEOSException) as exc:
        raise DataError(path, f"is not valid GeoJSON ({exc})", "give a Polygon, Feature or FeatureCollection") from None
    if not geoms:
        raise DataError(path, "holds no geometry", "give at least one polygon")
    return shapely.union_all(geoms)


@dataclass(frozen=True)
class Hit:
    id: int
    rank: int
    score: float
    key: str
    path: str
    window: tuple[int, int, int, int] | None
    label: str | None
    datetime: str | None
    geometry: dict[str, Any] | None
    crs: str | None
    footprint: str | None
    kind: str = "image"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchResult:
    hits: list[Hit]
    took_ms: float
    exact: bool
    candidates: int
    """Entries that passed the place and time filters (all entries without filters)."""
    query: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits": [h.to_dict() for h in self.hits], "took_ms": round(self.took_ms, 3), "exact": self.exact,
            "candidates": self.candidates, "query": self.query,
        }  # fmt: skip

    def to_geojson(self) -> dict[str, Any]:
        """One Feature per hit (null geometry where the source has no georeference), properties for QGIS."""
        features = []
        for hit in self.hits:
            props = {k: v for k, v in hit.to_dict().items() if k != "geometry"}
            props["window"] = ",".join(map(str, hit.window)) if hit.window else None
            features.append({"type": "Feature", "geometry": hit.geometry, "properties": props})
        return {"type": "FeatureCollection", "features": features}
