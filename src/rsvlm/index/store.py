"""An index folder on disk: append-only GeoParquet parts (metadata and embeddings), tombstones, and a manifest.

    INDEX/index.json          format, model (and adapter) identity, scenes, counts — written last, atomically
    INDEX/parts/NNNNNNNN.parquet   rows of entries with their embeddings; each part written whole or not at all
    INDEX/removed.npy         ids removed since their part was written
    INDEX/vectors.faiss, vectors.json   the FAISS index derived from the parts (rebuilt when stale)
    INDEX/metadata.parquet    every live entry without embeddings, one GeoParquet file for geopandas / QGIS

Parts are the truth: a build killed with ``kill -9`` leaves whole parts only (atomic rename), so the next run reads
their keys, skips what is there and goes on — no duplicates, nothing lost. Each part is itself GeoParquet (WGS84
footprints as WKB with a bbox covering column) in the community's embedding layout (id, geometry, embedding, datetime).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.errors import DataError, RsvlmError
from rsvlm.fileio import atomic_write, atomic_write_json
from rsvlm.index.items import Entry
from rsvlm.version import __version__

if TYPE_CHECKING:
    import pyarrow as pa

    from rsvlm.adapt.saved import BaseModelId

FORMAT = "rsvlm-index/1"
MANIFEST = "index.json"
PARTS = "parts"
REMOVED = "removed.npy"
METADATA = "metadata.parquet"
META_COLUMNS = (
    "id", "key", "path", "kind", "source", "col", "row", "width", "height", "crs", "footprint", "geometry", "bbox",
    "datetime", "bands", "label",
)  # fmt: skip
"""Every column of a part but the embedding."""


def geo_metadata() -> dict[str, Any]:
    """GeoParquet 1.1 file metadata: ``geometry`` is WKB (footprint polygons; points for imported chip centres, so the
    types are left open) in OGC:CRS84 (the default, so no ``crs`` member), with the
    ``bbox`` struct column as its covering so readers can filter without decoding geometries."""
    bbox = {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}
    return {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": [], "covering": {"bbox": bbox}}},
    }


def part_schema(dim: int) -> pa.Schema:
    import pyarrow as pa

    bbox = pa.struct([(k, pa.float64()) for k in ("xmin", "ymin", "xmax", "ymax")])
    fields = [
        ("id", pa.int64()), ("key", pa.string()), ("path", pa.string()), ("kind", pa.string()),
        ("source", pa.string()), ("col", pa.int32()), ("row", pa.int32()), ("width", pa.int32()),
        ("height", pa.int32()), ("crs", pa.string()), ("footprint", pa.string()), ("geometry", pa.binary()),
        ("bbox", bbox), ("datetime", pa.timestamp("us", tz="UTC")), ("bands", pa.string()), ("label", pa.string()),
        ("embedding", pa.list_(pa.float32(), dim)),
    ]  # fmt: skip
    return pa.schema(fields, metadata={b"geo": json.dumps(geo_metadata()).encode()})


def entry_columns(entries: Sequence[Entry]) -> dict[str, list[Any]]:
    """Column lists of entries (no ids, no embeddings), in ``part_schema`` order."""
    import shapely

    geoms = [shapely.from_wkb(e.geometry) if e.geometry is not None else None for e in entries]
    boxes = [None if g is None else dict(zip(("xmin", "ymin", "xmax", "ymax"), g.bounds, strict=True)) for g in geoms]
    win = [e.window for e in entries]
    return {
        "key": [e.key for e in entries],
        "path": [e.path for e in entries],
        "kind": [e.kind for e in entries],
        "source": [e.source for e in entries],
        "col": [w.col if w else None for w in win],
        "row": [w.row if w else None for w in win],
        "width": [w.width if w else None for w in win],
        "height": [w.height if w else None for w in win],
        "crs": [e.crs for e in entries],
        "footprint": [e.footprint for e in entries],
        "geometry": [e.geometry for e in entries],
        "bbox": boxes,
        "datetime": [e.datetime for e in entries],
        "bands": [",".join(e.bands) if e.bands else None for e in entries],
        "label": [e.label for e in entries],
    }


class IndexStore:
    """One index folder. Writers hold ``rsvlm.fileio.run_lock`` on it; readers need no lock (they see whole files)."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest

    # -- opening ---------------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | Path, model: BaseModelId, adapter: dict[str, Any] | None = None) -> IndexStore:
        """A new, empty index for ``model``; an existing index there is opened instead if built by the same model."""
        folder = Path(folder)
        if (folder / MANIFEST).exists():
            store = cls.open(folder)
            store.check_model(model, adapter)
            return store
        if folder.exists() and any(p.name != ".lock" for p in folder.iterdir()):
            raise DataError(folder, "exists and is not an rsvlm index", "choose a new --out folder, or an index")
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "rsvlm": __version__,
            "model": asdict(model),
            "adapter": adapter,
            "scenes": {},
            "sources": [],
        }
        atomic_write_json(folder / MANIFEST, manifest)
        (folder / PARTS).mkdir(exist_ok=True)
        return cls(folder, manifest)

    @classmethod
    def open(cls, folder: str | Path) -> IndexStore:
        folder = Path(folder)
        path = folder / MANIFEST
        if not path.is_file():
            raise DataError(folder, "is not an rsvlm index (no index.json)", "build one with `rsvlm index build`")
        try:
            manifest = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(path, f"cannot read the index manifest ({exc})", "rebuild the index") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise DataError(path, f"index format {found!r} is not {FORMAT}", "rebuild it with this rsvlm version")
        return cls(folder, manifest)

    def clean_temporary(self) -> None:
        """Temporary files of a killed writer (``.NAME.tmp``): never read, removed by the next writer."""
        for tmp in [*self.folder.glob(".*.tmp"), *(self.folder / PARTS).glob(".*.tmp")]:
            tmp.unlink(missing_ok=True)

    # -- identity --------------------------------------------------------------------------------------------------
    @property
    def model(self) -> dict[str, Any]:
        model: dict[str, Any] = self.manifest["model"]
        return model

    @property
    def dim(self) -> int:
        return int(self.model["embed_dim"])

    def check_model(self, model: BaseModelId, adapter: dict[str, Any] | None) -> None:
        """Refuse another model, other weights or another adapter: their embeddings live in another space."""
        mine = self.model
        if asdict(model) != mine:
            raise RsvlmError(
                f"{self.folder}: index was built with {describe_model(mine)}, not {describe_model(asdict(model))}; "
                f"use --model {mine['name']} (and its --weights), or build a new index"
            )
        theirs = self.manifest.get("adapter")
        if (theirs or {}).get("digest") != (adapter or {}).get("digest"):
            built = f"adapter {theirs['folder']} ({theirs['method']})" if theirs else "no adapter"
            given = f"adapter {adapter['folder']}" if adapter else "no adapter"
            raise RsvlmError(
                f"{self.folder}: index was built with {built}, not {given}; "
                "use the index's adapter (rsvlm index info shows it), or build a new index"
            )

    # -- parts -----------------------------------------------------------------------------------------------------
    def parts(self) -> list[Path]:
        return sorted((self.folder / PARTS).glob("[0-9]*.parquet"))

    def read_parts(self, columns: Sequence[str], parts: Sequence[Path] | None = None) -> Iterator[pa.Table]:
        import pyarrow.parquet as pq

        for part in self.parts() if parts is None else parts:
            try:
                yield pq.read_table(part, columns=list(columns))
            except (OSError, ValueError) as exc:
                raise DataError(part, f"cannot read this index part ({exc})", "delete it and rerun the build") from None

    def removed(self) -> npt.NDArray[np.int64]:
        path = self.folder / REMOVED
        if not path.is_file():
            return np.zeros(0, np.int64)
        ids: npt.NDArray[np.int64] = np.load(path, allow_pickle=False).astype(np.int64)
        return ids

    def live_ids(self, table: pa.Table, removed: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        ids = table.column("id").to_numpy()
        keep: npt.NDArray[np.bool_] = ~np.isin(ids, removed) if len(removed) else np.ones(len(ids), bool)
        return keep

    def keys(self) -> set[str]:
        """Keys of the live entries: what a resumed build or ``index add`` skips."""
        removed = self.removed()
        keys: set[str] = set()
        for table in self.read_parts(["id", "key"]):
            keep = self.live_ids(table, removed)
            keys.update(k for k, live in zip(table.column("key").to_pylist(), keep, strict=True) if live)
        return keys

    def next_id(self) -> int:
        import pyarrow.compute as pc

        top = -1
        for table in self.read_parts(["id"]):
            if len(table):
                top = max(top, int(pc.max(table.column("id")).as_py()))
        removed = self.removed()
        return max(top, int(removed.max()) if len(removed) else -1) + 1  # ids are never reused

    def write_part(self, entries: Sequence[Entry], vectors: npt.NDArray[np.float32], first_id: int) -> Path:
        """One part holding ``entries`` with ids ``first_id…``; the file appears whole or not at all."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if len(entries) != len(vectors) or vectors.shape[1:] != (self.dim,):
            raise RsvlmError(f"{len(entries)} entries for {vectors.shape} embeddings (expected {self.dim}-d)")
        columns: dict[str, Any] = {"id": list(range(first_id, first_id + len(entries)))}
        columns.update(entry_columns(entries))
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        schema = part_schema(self.dim)
        arrays = [pa.array(columns[f.name], type=f.type) for f in schema if f.name != "embedding"]
        arrays.append(pa.FixedSizeListArray.from_arrays(flat, self.dim))
        table = pa.Table.from_arrays(arrays, schema=schema)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        path = self.folder / PARTS / f"{first_id:010d}.parquet"
        atomic_write(path, buffer.getvalue())
        return path

    def iter_vectors(
        self, chunk_rows: int = 65536, parts: Sequence[Path] | None = None
    ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        """(ids, vectors) of the live entries, part by part: memory holds one part at a time."""
        removed = self.removed()
        for table in self.read_parts(["id", "embedding"], parts):
            keep = self.live_ids(table, removed)
            ids = table.column("id").to_numpy()[keep]
            flat = table.column("embedding").combine_chunks().flatten().to_numpy()
            vectors = flat.reshape(len(table), self.dim)[keep].astype(np.float32, copy=False)
            for s in range(0, len(ids), chunk_rows):
                yield ids[s : s + chunk_rows], vectors[s : s + chunk_rows]

    def metadata(self, columns: Sequence[str] = META_COLUMNS) -> pa.Table:
        """Every live entry's metadata as one table (no embeddings), ordered by id."""
        import pyarrow as pa

        removed = self.removed()
        tables = [t.filter(pa.array(self.live_ids(t, removed))) for t in self.read_parts(["id", *columns[1:]])]
        if not tables:
            return part_schema(self.dim).empty_table().select(list(columns))
        return pa.concat_tables(tables).sort_by("id").select(list(columns))

    # -- removal ---------------------------------------------------------------------------------------------------
    def remove(self, ids: npt.NDArray[np.int64]) -> int:
        """Tombstone ``ids`` (kept for good, so the vector index can always drop them); a part whose rows are all
        removed is deleted. Returns how many of ``ids`` were live."""
        before = self.removed()
        fresh = np.setdiff1d(ids.astype(np.int64), before)
        removed = np.union1d(before, fresh)
        buffer = io.BytesIO()
        np.save(buffer, removed, allow_pickle=False)
        atomic_write(self.folder / REMOVED, buffer.getvalue())
        for part in self.parts():
            part_ids = next(self.read_parts(["id"], [part])).column("id").to_numpy()
            if len(part_ids) and np.isin(part_ids, removed).all():
                part.unlink()
        return len(fresh)

    # -- manifest --------------------------------------------------------------------------------------------------
    def save_manifest(self, **updates: Any) -> None:
        self.manifest.update(updates)
        self.manifest["rsvlm"] = __version__
        atomic_write_json(self.folder / MANIFEST, self.manifest)

    def write_metadata(self) -> Path:
        """``metadata.parquet``: all live entries without embeddings, GeoParquet for geopandas and QGIS."""
        import pyarrow.parquet as pq

        table = self.metadata()
        table = table.replace_schema_metadata({b"geo": json.dumps(geo_metadata()).encode()})
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        path = self.folder / METADATA
        atomic_write(path, buffer.getvalue())
        return path


def describe_model(model: dict[str, Any]) -> str:
    return f"{model['name']} (weights {str(model['weights_id'])[:12]}, {model['embed_dim']}-d)"
