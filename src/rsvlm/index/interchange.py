"""Embeddings in and out of an index as one GeoParquet file, in the layout the community publishes its own in.

What the published layouts hold (one row per chip, a list column of floats, WKB geometry in WGS84):

- Major TOM ``Core-*-{SSL4EO,SigLIP,DINOv2}`` (ESA Φ-lab, HF ``Major-TOM``, arXiv 2412.05600): ``unique_id`` (a
  SHA-256 hex), ``embedding``, ``timestamp`` (a string such as ``20230119T161811``), ``product_id``, ``grid_cell``,
  ``grid_row_u``/``grid_col_r``, ``geometry`` (WGS84 polygon), ``centre_lat``/``centre_lon``, ``utm_footprint``
  (WKT) with ``utm_crs``, ``pixel_bbox``; the model is named only in the dataset card.
- Clay v0 (source.coop ``clay/clay-model-v0-embeddings``): ``index``, ``source_url``, ``date`` (date32),
  ``embeddings`` (list<float32>), ``geometry``; Clay's draft for v1 adds a ``source_model`` column, and the LGND Clay
  v1.5 files carry ``chips_id``, ``datetime`` (timestamp), ``embedding``, a ``bbox`` struct and ``geometry``.
- Earth Index (Earth Genome, in cloudnativegeo's ``geo-embeddings-survey``): ``id``, ``embedding``, ``geometry``, and
  the model in an ``emb`` key of the file metadata (``version`` 0.0.1, ``model.id``/``source``, ``embedding_dim``,
  ``datetime``/``start_datetime``/``end_datetime``, STAC ``providers``); Planet's samples name the time ``datetime``.
- GeoParquet 1.1: the ``geo`` metadata, WKB or GeoArrow (``point``, ``polygon`` …) encodings, a ``crs`` member
  (absent: OGC:CRS84) and a ``bbox`` struct column declared as the geometry's ``covering``.

So ``export_geoparquet`` writes ``id`` (the entry key), ``geometry``, ``bbox``, ``datetime`` (the name STAC, Clay
v1.5 and Planet use), ``embedding`` (fixed-size float32, L2-normalised), ``source_model`` and rsvlm's own columns;
the model goes in an ``rsvlm:embeddings`` metadata key (its exact identity, so a re-import answers text queries) and
in an Earth-Index-style ``emb`` key. ``import_geoparquet`` reads any of the layouts above, streaming batches into
parts. Rows with only ``centre_lat``/``centre_lon`` become points rather than invented polygons: the chip size is
unknown, and the index's place filters use the ``bbox`` covering, which a point fills as well.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsvlm.errors import DataError, RsvlmError
from rsvlm.fileio import atomic_path, run_lock
from rsvlm.index.items import Entry
from rsvlm.index.layouts import FORMAT, META_KEY, Layout, batch_rows, check_rows, find_layout, open_parquet
from rsvlm.index.store import MANIFEST, META_COLUMNS, IndexStore, describe_model
from rsvlm.version import __version__

if TYPE_CHECKING:
    import pyarrow as pa

    from rsvlm.adapt.saved import BaseModelId
    from rsvlm.index.build import BuildReport
    from rsvlm.models.protocols import ContrastiveModel

_COVERING = {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}}


# -- export ----------------------------------------------------------------------------------------------------------
def export_geoparquet(index: str | Path, out: str | Path) -> int:
    """Every live entry of ``index`` with its embedding as one GeoParquet 1.1 file at ``out``: written part by part
    (memory holds one part) into a temporary file that is renamed when whole. Returns the number of rows."""
    import pyarrow.parquet as pq

    out = Path(out)
    IndexStore.open(index)  # a mistyped path is refused before the lock would make a folder there
    with run_lock(index, "index"):  # one snapshot: no part appears or goes between the two passes
        store = IndexStore.open(index)
        schema = export_schema(store.dim).with_metadata(_export_metadata(store, _summary(store)))
        name = store.model["name"]
        rows = 0
        with atomic_path(out) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for table in _live_parts(store, [*META_COLUMNS, "embedding"]):
                if len(table):
                    writer.write_table(_export_table(table, schema, name))
                    rows += len(table)
    return rows


def export_schema(dim: int) -> pa.Schema:
    import pyarrow as pa

    box = pa.struct([(k, pa.float64()) for k in ("xmin", "ymin", "xmax", "ymax")])
    fields = [
        ("id", pa.string()), ("geometry", pa.binary()), ("bbox", box), ("datetime", pa.timestamp("us", tz="UTC")),
        ("embedding", pa.list_(pa.float32(), dim)), ("source_model", pa.string()), ("kind", pa.string()),
        ("path", pa.string()), ("window", pa.string()), ("label", pa.string()), ("crs", pa.string()),
        ("footprint", pa.string()), ("source", pa.string()), ("bands", pa.string()), ("rsvlm_id", pa.int64()),
    ]  # fmt: skip
    return pa.schema(fields)


def _live_parts(store: IndexStore, columns: list[str]) -> Iterator[pa.Table]:
    import pyarrow as pa

    removed = store.removed()
    for table in store.read_parts(columns):
        yield table.filter(pa.array(store.live_ids(table, removed)))


def _export_table(table: pa.Table, schema: pa.Schema, model_name: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    window = [pc.cast(table.column(c), pa.string()) for c in ("col", "row", "width", "height")]
    columns = {name: table.column(name) for name in table.column_names}
    columns.update(
        id=table.column("key"), rsvlm_id=table.column("id"), window=pc.binary_join_element_wise(*window, ","),
        source_model=pa.array([model_name] * len(table), pa.string()),
    )  # fmt: skip
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def _summary(store: IndexStore) -> dict[str, Any]:
    """Geometry types, extent and time span of the live entries: file metadata, which precedes the rows."""
    import pyarrow.compute as pc
    import shapely

    types: set[str] = set()
    box = np.array([np.inf, np.inf, -np.inf, -np.inf])
    times: list[datetime] = []
    for table in _live_parts(store, ["id", "geometry", "bbox", "datetime"]):
        geoms = shapely.from_wkb(table.column("geometry").drop_null().to_numpy(zero_copy_only=False))
        types.update(str(g.geom_type) for g in geoms.tolist())
        bbox = table.column("bbox").combine_chunks()
        for i, key in enumerate(("xmin", "ymin", "xmax", "ymax")):
            edge = pc.min_max(pc.struct_field(bbox, key))["min" if i < 2 else "max"].as_py()
            if edge is not None:
                box[i] = min(box[i], edge) if i < 2 else max(box[i], edge)
        span = pc.min_max(table.column("datetime"))
        times += [t for t in (span["min"].as_py(), span["max"].as_py()) if t is not None]
    return {
        "types": sorted(types),
        "bbox": [float(v) for v in box] if np.isfinite(box).all() else None,
        "time": [min(times).isoformat(), max(times).isoformat()] if times else [None, None],
    }


def _export_metadata(store: IndexStore, summary: dict[str, Any]) -> dict[bytes, bytes]:
    model, sources = store.model, store.manifest.get("sources", [])
    column: dict[str, Any] = {"encoding": "WKB", "geometry_types": summary["types"], "covering": _COVERING}
    if summary["bbox"] is not None:
        column["bbox"] = summary["bbox"]
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}
    ours = {
        "format": FORMAT, "rsvlm": __version__, "model": model, "adapter": store.manifest.get("adapter"),
        "dim": store.dim, "normalised": True, "metric": "cosine", "index": store.folder.name, "sources": sources,
    }  # fmt: skip
    external = model["preprocess_id"] == "precomputed"
    emb = {  # Earth Index's ``emb`` layout (version 0.0.1), for readers that look there
        "version": "0.0.1",
        "model": {
            "id": model["name"],
            "name": model["name"],
            "version": model["weights_id"],
            "config": f"preprocess {model['preprocess_id']}; L2-normalised image embeddings",
            "source": "embeddings imported into rsvlm" if external else f"rsvlm model registry: {model['name']}",
        },
        "providers": [{"name": "rsvlm", "roles": ["processor"]}],
        "datetime": None,
        "start_datetime": summary["time"][0],
        "end_datetime": summary["time"][1],
        "datasets": [{"dataset_id": s, "dataset_source": s} for s in sources],
        "embedding_dim": store.dim,
        "embedding_quantization": "none",
    }
    return {b"geo": json.dumps(geo).encode(), META_KEY: json.dumps(ours).encode(), b"emb": json.dumps(emb).encode()}


# -- import: identity, rows, index ------------------------------------------------------------------------------------
def import_geoparquet(
    file: str | Path,
    index: str | Path,
    *,
    model: ContrastiveModel | None,
    embedding_column: str | None = None,
    id_column: str | None = None,
    time_column: str | None = None,
    name: str | None = None,
    part_rows: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BuildReport:
    """Add the rows of a GeoParquet embeddings file to ``index`` (created when missing) as ``external`` entries keyed
    ``<file name>#<id>``, then bring its vectors and metadata up to date, as ``build_index`` does.

    The embedding space: a file rsvlm exported names its model, and the index takes that identity (text queries
    work with that model; another ``model`` is refused). A foreign file's vectors are the caller's ``model``'s when
    given (an assertion: only the dimension can be checked), else ``external:<name>`` (``name``, else the file's
    ``emb`` model id, else the index's own external name, else the file's stem), searchable by vector only.
    Resumable: keys the index holds are skipped, so a cut import rerun finishes the job and a repeated one adds
    nothing. ``embed_seconds`` in the report is the time spent reading the file and writing parts (no model runs).
    """
    from rsvlm.index.build import PART_ROWS, BuildReport, finish

    start = time.perf_counter()
    file, index = Path(file), Path(index)
    part_rows = part_rows or PART_ROWS
    pf = open_parquet(file)
    layout = find_layout(pf, file, embedding_column, id_column, time_column)
    rows, dim = check_rows(pf, file, layout)
    report = BuildReport()
    with run_lock(index, "index"):
        identity, adapter, tuner = _identity(file, layout, model, name, dim, index)
        store = IndexStore.create(index, identity, adapter)
        store.clean_temporary()
        existing = store.keys()
        next_id = store.next_id()
        pending: list[Entry] = []
        vectors = np.zeros((0, dim), np.float32)
        done = 0
        stream_start = time.perf_counter()
        for batch in pf.iter_batches(part_rows, columns=layout.columns()):
            entries, matrix = batch_rows(batch, layout, file, dim, done)
            done += len(entries)
            fresh = []
            for i, entry in enumerate(entries):
                if entry.key not in existing:
                    existing.add(entry.key)
                    fresh.append(i)
            report.already += len(entries) - len(fresh)
            pending += [entries[i] for i in fresh]
            vectors = np.concatenate([vectors, matrix[fresh]])
            while len(pending) >= part_rows:
                next_id = _write(store, pending[:part_rows], vectors[:part_rows], next_id, report)
                pending, vectors = pending[part_rows:], vectors[part_rows:]
            if progress is not None:
                progress(done, rows)
        if pending:
            _write(store, pending, vectors, next_id, report)
        report.embed_seconds = time.perf_counter() - stream_start
        imports = dict(store.manifest.get("imports", {}))
        imports[file.name] = {"file": str(file.resolve()), "rows": rows, "dim": dim, "columns": layout.describe()}
        sources = sorted({*store.manifest.get("sources", []), str(file)})
        store.save_manifest(sources=sources, imports=imports)
        report.vectors = finish(store, tuner)
        report.count = int(report.vectors.get("count", 0))
    report.seconds = time.perf_counter() - start
    return report


def _write(store: IndexStore, entries: list[Entry], vectors: Any, first_id: int, report: BuildReport) -> int:
    store.write_part(entries, vectors, first_id)
    report.added += len(entries)
    report.parts += 1
    return first_id + len(entries)


def _identity(
    file: Path, layout: Layout, model: ContrastiveModel | None, name: str | None, dim: int, index: Path
) -> tuple[BaseModelId, dict[str, Any] | None, ContrastiveModel | None]:
    """The embedding space of the file's vectors: (model identity, adapter identity, model to tune the index with)."""
    from rsvlm.adapt.saved import BaseModelId
    from rsvlm.digests import json_digest

    given = BaseModelId.of_model(model) if model is not None else None
    if layout.ours is not None:
        try:
            named = BaseModelId(**layout.ours["model"])
        except (KeyError, TypeError):
            raise DataError(file, "has unreadable rsvlm:embeddings metadata", "export it again") from None
        if named.embed_dim != dim:
            raise DataError(file, f"says {named.embed_dim}-d embeddings, column {layout.embedding!r} holds {dim}-d",
                            "export it again")  # fmt: skip
        if given is not None and given != named:
            raise RsvlmError(
                f"{file}: its embeddings were made by {describe_model(asdict(named))}, not {given.describe()}; "
                "import it without --model (the file names its own)"
            )
        return named, layout.ours.get("adapter"), model
    if model is not None and given is not None:
        if given.embed_dim != dim:
            problem = f"column {layout.embedding!r} holds {dim}-d vectors, {model.name} makes {given.embed_dim}-d ones"
            raise DataError(file, problem, "give the model that made them, or none to search them by vector")
        return given, None, model
    named_by_file = ((layout.emb or {}).get("model") or {}).get("id")
    name = name or (str(named_by_file) if named_by_file else None)
    if name is None and (index / MANIFEST).is_file():  # more files of one space (Major TOM's parts): join it
        held = str(IndexStore.open(index).model["name"])
        name = held.removeprefix("external:") if held.startswith("external:") else None
    name = name or file.stem
    external = BaseModelId(f"external:{name}", json_digest(["external", name, dim]), "precomputed", dim)
    return external, None, None
