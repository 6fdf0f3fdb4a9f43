"""Reading the community's GeoParquet embedding layouts: which column is the vector, the id, the time and the place
(found by name and by the GeoParquet metadata, or named by the user), checked whole before anything is written, then
turned batch by batch into index entries with unit vectors. ``rsvlm.index.interchange`` says which layouts these
names come from (Major TOM, Clay, Earth Index, Planet, GeoParquet 1.1) and imports with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.data.raster import Window
from rsvlm.errors import DataError
from rsvlm.index.items import Entry, parse_time_tag

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

FORMAT = "rsvlm-embeddings/1"
"""The ``format`` of the ``rsvlm:embeddings`` metadata that ``export_geoparquet`` writes."""
META_KEY = b"rsvlm:embeddings"
EMBEDDING_NAMES = ("embedding", "embeddings", "vector", "vectors")
ID_NAMES = ("id", "unique_id", "chip_id", "chips_id", "index")
TIME_NAMES = ("datetime", "timestamp", "time", "date", "start_datetime")
POINT_NAMES = (("centre_lon", "centre_lat"), ("center_lon", "center_lat"), ("lon", "lat"), ("longitude", "latitude"))
PATH_NAMES = ("path", "source_url", "parquet_url")
FOOTPRINT_NAMES = (("footprint", "crs"), ("utm_footprint", "utm_crs"))
GEOARROW_DEPTH = {"point": 0, "linestring": 1, "multipoint": 1, "polygon": 2, "multilinestring": 2, "multipolygon": 3}
CHECK_ROWS = 8192
"""Rows per batch of the checking pass (8192 x 1024 floats = 32 MiB)."""
FIX_TIME = "name the time column with --time-column, or give --time-column none"


@dataclass
class Layout:
    """Which column of a file is what, found by name (and the GeoParquet metadata) or named by the user."""

    embedding: str
    id: str | None = None
    time: str | None = None
    geometry: str | None = None
    encoding: str = "WKB"
    crs: Any = None
    """The geometry's CRS when it is not longitude/latitude (a ``pyproj.CRS``), else None."""
    points: tuple[str, str] | None = None
    path: str | None = None
    footprint: tuple[str, str] | None = None
    window: str | None = None
    label: str | None = None
    bands: str | None = None
    ours: dict[str, Any] | None = None
    """The ``rsvlm:embeddings`` metadata of a file rsvlm exported."""
    emb: dict[str, Any] | None = None

    def columns(self) -> list[str]:
        named = [self.embedding, self.id, self.time, self.geometry, *(self.points or ()), self.path,
                 *(self.footprint or ()), self.window, self.label, self.bands]  # fmt: skip
        return list(dict.fromkeys(c for c in named if c is not None))

    def describe(self) -> dict[str, Any]:
        geometry = self.geometry or ("points " + ",".join(self.points) if self.points else None)
        crs = self.crs.to_string() if self.crs is not None else "OGC:CRS84"
        return {"embedding": self.embedding, "id": self.id, "time": self.time, "geometry": geometry, "crs": crs}


def open_parquet(file: Path) -> pq.ParquetFile:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if file.is_dir():
        raise DataError(file, "is a folder", "give its .parquet files (rsvlm index import accepts several)")
    try:
        return pq.ParquetFile(file)
    except FileNotFoundError:
        raise DataError(file, "no such file", "check the path") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(file, f"is not a Parquet file ({exc})", "give a GeoParquet file of embeddings") from None


def find_layout(
    pf: pq.ParquetFile, file: Path, embedding: str | None = None, id_: str | None = None, time_: str | None = None
) -> Layout:
    import pyarrow as pa

    schema = pf.schema_arrow
    by_name = {n.lower(): n for n in schema.names}
    meta = schema.metadata or {}

    def pick(given: str | None, names: tuple[str, ...], option: str) -> str | None:
        if given is not None:
            if given not in schema.names:
                raise DataError(file, f"has no column {given!r} (it has {', '.join(schema.names)})", f"check {option}")
            return given
        return next((by_name[n] for n in names if n in by_name), None)

    found = pick(embedding, EMBEDDING_NAMES, "--embedding-column")
    if found is None:
        looked = ", ".join(EMBEDDING_NAMES)
        raise DataError(file, f"has no embedding column (looked for {looked})", "name it with --embedding-column")
    kind = schema.field(found).type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)) or not (
        pa.types.is_floating(kind.value_type)
    ):
        raise DataError(file, f"column {found!r} is {kind}, not a list of floats", "name it with --embedding-column")
    layout = Layout(found, id=pick(id_, ID_NAMES, "--id-column"), ours=_json(meta, META_KEY), emb=_json(meta, b"emb"))
    if layout.ours is not None and layout.ours.get("format") != FORMAT:
        layout.ours = None
    if time_ is None or time_.lower() != "none":
        layout.time = pick(time_, TIME_NAMES, "--time-column")
    if layout.time is not None:
        kind = schema.field(layout.time).type
        kind = kind.value_type if pa.types.is_dictionary(kind) else kind
        if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind) or _is_text(kind)):
            raise DataError(file, f"column {layout.time!r} is {kind}, not a time", FIX_TIME)
    _find_geometry(layout, _json(meta, b"geo") or {}, by_name, schema, file)
    string = {n for n in schema.names if _is_text(schema.field(n).type)}
    layout.path = next((by_name[n] for n in PATH_NAMES if by_name.get(n) in string), None)
    layout.footprint = next(((by_name[a], by_name[b]) for a, b in FOOTPRINT_NAMES if {a, b} <= by_name.keys()), None)
    layout.window = next((by_name[n] for n in ("window", "pixel_bbox") if n in by_name), None)
    layout.label = by_name["label"] if by_name.get("label") in string else None
    layout.bands = by_name["bands"] if by_name.get("bands") in string else None
    return layout


def _is_text(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _json(meta: dict[bytes, bytes], key: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(meta[key])
    except (KeyError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _find_geometry(layout: Layout, geo: dict[str, Any], by_name: dict[str, str], schema: pa.Schema, file: Path) -> None:
    """The geometry column and its encoding and CRS (GeoParquet metadata first), else longitude/latitude columns."""
    import pyproj

    primary = geo.get("primary_column")
    if isinstance(primary, str) and primary in schema.names:
        column = (geo.get("columns") or {}).get(primary) or {}
        layout.geometry, layout.encoding = primary, str(column.get("encoding", "WKB"))
        if layout.encoding.upper() != "WKB" and layout.encoding.lower() not in GEOARROW_DEPTH:
            raise DataError(file, f"geometry encoding {layout.encoding!r} is not supported", "write it as WKB")
        crs = column.get("crs")
        if crs is not None:  # absent: OGC:CRS84; null (unknown): taken as longitude/latitude, then range-checked
            try:
                found = pyproj.CRS.from_json_dict(crs) if isinstance(crs, dict) else pyproj.CRS.from_user_input(crs)
            except pyproj.exceptions.CRSError as exc:
                raise DataError(file, f"geometry CRS is unreadable ({exc})", "write it as PROJJSON") from None
            if not found.equals(pyproj.CRS("OGC:CRS84"), ignore_axis_order=True):
                layout.crs = found
    elif "geometry" in by_name:
        layout.geometry = by_name["geometry"]
        layout.encoding = "WKT" if _is_text(schema.field(layout.geometry).type) else "WKB"
    else:
        layout.points = next(((by_name[x], by_name[y]) for x, y in POINT_NAMES if {x, y} <= by_name.keys()), None)


def check_rows(pf: pq.ParquetFile, file: Path, layout: Layout) -> tuple[int, int]:
    """One pass over the embeddings, ids and times before anything is written: (rows, dimension), or a one-line
    refusal of null, ragged, NaN or all-zero vectors, missing ids or unreadable times, with how many and the first."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = layout.embedding
    kind = pf.schema_arrow.field(column).type
    dim: int | None = kind.list_size if pa.types.is_fixed_size_list(kind) else None
    rows = 0
    bad: dict[str, list[int]] = {}  # problem -> [rows, first row]; "id" for rows without an id

    def note(problem: str, at: npt.NDArray[np.intp]) -> None:
        if len(at):
            count, first = bad.get(problem, [0, int(at[0]) + rows])
            bad[problem] = [count + len(at), first]

    for batch in pf.iter_batches(
        CHECK_ROWS, columns=list(dict.fromkeys(c for c in (column, layout.id, layout.time) if c))
    ):
        values = batch.column(0)
        nulls = np.asarray(values.is_null())
        note("have no embedding", np.flatnonzero(nulls))
        values = values.filter(pa.array(~nulls))
        if dim is None and len(values):
            dim = int(pc.list_value_length(values)[0].as_py())
        if not pa.types.is_fixed_size_list(kind) and len(values):
            sizes = pc.list_value_length(values).to_numpy(zero_copy_only=False)
            if (sizes != dim).any():
                other = int(sizes[sizes != dim][0])
                raise DataError(file, f"column {column!r} mixes vector sizes ({dim} and {other} values)",
                                "give a file whose embeddings all come from one model")  # fmt: skip
        matrix = values.flatten().to_numpy(zero_copy_only=False).reshape(len(values), dim or 0)
        kept = np.flatnonzero(~nulls)
        finite = np.isfinite(matrix).all(axis=1)
        note("hold NaN or infinite values", kept[~finite])
        note("are all zeros", kept[finite & ~matrix.any(axis=1)])
        if layout.id is not None:
            note("id", np.flatnonzero(np.asarray(batch.column(layout.id).is_null())))
        if layout.time is not None:
            _times(batch.column(layout.time), layout.time, file)  # unreadable times refused before any write
        rows += len(batch)
    if "id" in bad:
        count, first = bad.pop("id")
        raise DataError(file, f"{count} rows have no id in column {layout.id!r} (first: row {first})",
                        "fill them in, or name another column with --id-column")  # fmt: skip
    for problem, (count, first) in bad.items():
        raise DataError(file, f"{count} of {rows} rows of column {column!r} {problem} (first: row {first})",
                        "drop or recompute those rows, then import again")  # fmt: skip
    if rows == 0 or dim is None:
        raise DataError(file, "holds no embeddings", "give a file with at least one row")
    return rows, dim


def batch_rows(batch: pa.RecordBatch, layout: Layout, file: Path, dim: int, first: int) -> tuple[list[Entry], Any]:
    """A batch's entries and their unit vectors (float32)."""
    import pyarrow as pa

    n = batch.num_rows
    values = batch.column(layout.embedding).flatten().to_numpy(zero_copy_only=False)
    if values.size != n * dim:
        raise DataError(file, "changed while it was being imported", "import it again")
    matrix = values.reshape(n, dim).astype(np.float64)
    matrix = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)
    column = {c: batch.column(c) for c in layout.columns()}
    ids = column[layout.id].cast(pa.string()).to_pylist() if layout.id else [str(first + i) for i in range(n)]
    geometry, footprint, crs = _geometry(batch, layout, file)
    times = _times(column[layout.time], layout.time, file).to_pylist() if layout.time else [None] * n
    text: dict[str | None, list[Any]] = {None: [None] * n}
    text.update({c: column[c].to_pylist() for c in (layout.path, layout.label, layout.bands) if c is not None})
    windows = [_window(w) for w in column[layout.window].to_pylist()] if layout.window else [None] * n
    own = str(file.resolve())
    entries = [
        Entry(
            key=f"{file.name}#{ids[i]}",
            path=text[layout.path][i] or own,
            kind="external",
            source=str(file),
            window=windows[i],
            crs=crs[i],
            footprint=footprint[i],
            geometry=geometry[i],
            datetime=times[i],
            bands=tuple(text[layout.bands][i].split(",")) if text[layout.bands][i] else (),
            label=text[layout.label][i],
        )
        for i in range(n)
    ]
    return entries, matrix


def _window(value: Any) -> Window | None:
    """rsvlm's ``col,row,width,height`` or Major TOM's ``pixel_bbox`` ``[x0, y0, x1, y1]``."""
    try:
        if isinstance(value, str):
            return Window(*(int(v) for v in value.split(",")))
        if isinstance(value, list) and len(value) == 4:
            x0, y0, x1, y1 = (int(v) for v in value)
            return Window(x0, y0, x1 - x0, y1 - y0)
    except (TypeError, ValueError):
        return None
    return None


def _geometry(
    batch: pa.RecordBatch, layout: Layout, file: Path
) -> tuple[list[bytes | None], list[str | None], list[str | None]]:
    """WKB in WGS84 longitude/latitude, and the footprint WKT with its CRS where the file has them (rsvlm's own
    ``footprint``/``crs``, Major TOM's ``utm_footprint``/``utm_crs``, or a projected geometry before reprojection)."""
    import shapely

    n = batch.num_rows
    none: list[Any] = [None] * n
    geoms: npt.NDArray[Any]
    if layout.geometry is not None:
        geoms = _decode(batch.column(layout.geometry), layout.encoding, layout.geometry, file)
    elif layout.points is not None:
        lon, lat = (np.asarray(batch.column(c).cast("float64").fill_null(np.nan), np.float64) for c in layout.points)
        geoms = np.asarray(shapely.points(lon, lat), dtype=object)
        geoms[np.isnan(lon) | np.isnan(lat)] = None
    else:
        return none, none, none
    footprint, crs = none, none
    if layout.footprint is not None:
        footprint, crs = (batch.column(c).to_pylist() for c in layout.footprint)
    if layout.crs is not None:
        import pyproj

        if layout.footprint is None:
            footprint = list(shapely.to_wkt(geoms, rounding_precision=-1))
            crs = [layout.crs.to_string() if g is not None else None for g in geoms]
        to_wgs84 = pyproj.Transformer.from_crs(layout.crs, "OGC:CRS84", always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(to_wgs84.transform(xy[:, 0], xy[:, 1])))
    bounds = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        outside = (np.abs(bounds[:, [0, 2]]) > 180).any(axis=1) | (np.abs(bounds[:, [1, 3]]) > 90).any(axis=1)
    if outside.any():
        x, y = bounds[outside][0, :2]
        raise DataError(file, f"geometry has coordinates outside longitude/latitude (e.g. {x:g}, {y:g})",
                        "declare the file's CRS in its GeoParquet metadata")  # fmt: skip
    return list(shapely.to_wkb(geoms)), footprint, crs


def _decode(values: pa.Array, encoding: str, column: str, file: Path) -> npt.NDArray[Any]:
    """Shapely geometries (None where null) of WKB, WKT or a GeoArrow native encoding (separated or interleaved)."""
    import pyarrow as pa
    import shapely

    try:
        if encoding.upper() in ("WKB", "WKT"):
            raw = values.to_numpy(zero_copy_only=False)
            decoded: npt.NDArray[Any] = shapely.from_wkb(raw) if encoding.upper() == "WKB" else shapely.from_wkt(raw)
            return decoded
        level, offsets = (pa.concat_arrays([values]) if values.offset else values), []
        for _ in range(GEOARROW_DEPTH[encoding.lower()]):
            offsets.append(np.asarray(level.offsets))
            level = level.values
        if pa.types.is_struct(level.type):
            xy = np.column_stack([level.field(k).to_numpy(zero_copy_only=False) for k in ("x", "y")])
        else:
            xy = level.values.to_numpy(zero_copy_only=False).reshape(len(level), -1)[:, :2]
        kind = shapely.GeometryType[encoding.upper()]
        geoms = shapely.points(xy) if not offsets else shapely.from_ragged_array(kind, xy, tuple(offsets[::-1]))
    except (shapely.errors.GEOSException, ValueError, KeyError) as exc:
        raise DataError(file, f"column {column!r} holds unreadable {encoding} geometry ({exc})",
                        "write the geometry as WKB") from None  # fmt: skip
    found: npt.NDArray[Any] = np.asarray(geoms, dtype=object)
    found[np.asarray(values.is_null())] = None
    return found


def _times(values: pa.Array, column: str, file: Path) -> pa.Array:
    """UTC times from timestamps (naive ones taken as UTC), dates, or ISO 8601 / Major TOM / TIFF-tag strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    utc = pa.timestamp("us", tz="UTC")
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_timestamp(values.type):
        return pc.cast(values, utc, safe=False)
    if pa.types.is_date(values.type):
        return pc.cast(pc.cast(values, pa.timestamp("us")), utc)
    distinct = pc.unique(values).drop_null()
    parsed = [_parse_time(s) for s in distinct.to_pylist()]
    bad = [s for s, p in zip(distinct.to_pylist(), parsed, strict=True) if p is None and s.strip()]
    if bad:
        raise DataError(file, f"column {column!r} holds {bad[0]!r}, not a time", FIX_TIME)
    return pa.array(parsed, utc).take(pc.index_in(values, value_set=distinct))


def _parse_time(text: str) -> datetime | None:
    try:
        found = datetime.fromisoformat(text.strip())  # ISO 8601, basic (20230119T161811) or extended
    except ValueError:
        return parse_time_tag(text)
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)
