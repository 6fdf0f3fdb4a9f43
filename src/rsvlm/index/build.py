"""Building and growing an index: entries embedded chunk by chunk (in this process or on Dask), each chunk written
as one part, then the FAISS index brought up to date with the parts.

Resumable: entries whose key is already in a part are skipped, so a build killed at any point and run again
finishes the job without duplicates. Memory holds the chunks in flight (``map_ordered``'s window), never the
archive. The embedding loop is the same as ``rsvlm.pipeline.embed_cached``'s (two threads read and preprocess the
next batch while the model encodes), so indexing runs at the speed of plain embedding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.errors import RsvlmError
from rsvlm.fileio import atomic_write, atomic_write_json, digest_text, run_lock
from rsvlm.index.items import Entry, FileLoader, Loader
from rsvlm.index.sources import Batch, SourceOptions, iter_batches
from rsvlm.index.store import IndexStore

if TYPE_CHECKING:
    from rsvlm.adapt.saved import Adapter
    from rsvlm.index.vectors import VectorIndex
    from rsvlm.models.protocols import ContrastiveModel

PART_ROWS = 2048
"""Entries per part: large enough that parquet's per-file cost is noise, small enough that a kill loses little."""
VECTORS = "vectors.faiss"
VECTORS_STATE = "vectors.json"
OVERVIEWS = "overviews"

TUNING_TEXTS = (
    "forest", "farmland", "residential area", "industrial area", "river", "sea", "beach", "wetland", "bare land",
    "meadow", "airport", "harbour with ships", "parking lot", "stadium", "bridge", "desert", "mountain", "lake",
    "flooded field", "road", "storage tanks", "railway station", "golf course", "snow",
)  # fmt: skip
TUNING_TEMPLATES = ("a satellite image of {}.", "an aerial photo of {}.", "{}", "a photo of {} seen from above.")
"""Text queries the approximate index is tuned on at build time (every text in every template: enough queries that
the recall bound the tuning uses is tight) (with a sample of its own images): a search is
mostly text, and text embeddings sit apart from image embeddings (the modality gap), so tuning on images alone
would overstate recall."""


@dataclass
class BuildReport:
    added: int = 0
    already: int = 0
    """Entries skipped because the index holds them already (a resumed build, a repeated ``add``)."""
    nodata: int = 0
    """Scene tiles left out for too little valid data."""
    parts: int = 0
    scenes: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    count: int = 0
    vectors: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ChunkEmbedder:
    """One chunk of entries → (kept positions, embeddings); picklable, so Dask can ship it to workers."""

    model: ContrastiveModel
    batch_size: int = 32

    def __call__(self, chunk: tuple[Loader, list[Entry]]) -> tuple[list[Entry], npt.NDArray[np.float32], int]:
        """The entries that had data, their embeddings in the same order, and how many were left out."""
        import torch

        from rsvlm.pipeline import check_finite_embeddings, prefetched

        loader, entries = chunk
        spans = [range(s, min(s + self.batch_size, len(entries))) for s in range(0, len(entries), self.batch_size)]

        def prepare(span: range) -> tuple[list[int], Any]:
            kept, pixels = [], []
            for i in span:
                image = loader.load(entries[i], self.model)
                if image is not None:
                    kept.append(i)
                    pixels.append(self.model.preprocess(image))
            return kept, torch.stack(pixels) if pixels else None

        kept_all: list[int] = []
        parts: list[npt.NDArray[np.float32]] = []
        for kept, pixels in prefetched(prepare, spans):
            if pixels is None:
                continue
            vectors = self.model.encode_images(pixels).cpu().numpy().astype(np.float32)
            check_finite_embeddings(self.model, vectors, [entries[i].key for i in kept])
            kept_all.extend(kept)
            parts.append(vectors)
        dim = int(self.model.embed_dim)
        vectors = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
        return [entries[i] for i in kept_all], vectors, len(entries) - len(kept_all)


def adapter_identity(adapter: Adapter, folder: Path) -> dict[str, Any]:
    """What the manifest records of an adapter: its folder, method and a digest of its weights and config."""
    from rsvlm.adapt.saved import CONFIG_FILE, WEIGHTS_FILE
    from rsvlm.digests import files_digest

    return {
        "folder": str(folder.resolve()),
        "method": adapter.method.name,
        "classes": list(adapter.classes),
        "digest": files_digest([folder / WEIGHTS_FILE, folder / CONFIG_FILE])[:16],
    }


def build_index(
    out: str | Path,
    paths: list[Path],
    model: ContrastiveModel,
    *,
    adapter: Adapter | None = None,
    adapter_folder: Path | None = None,
    options: SourceOptions | None = None,
    scheduler: str | None = None,
    batch_size: int = 32,
    part_rows: int = PART_ROWS,
    progress: Callable[[int], None] | None = None,
) -> BuildReport:
    """Add every entry of ``paths`` not yet in the index at ``out`` (created when missing), then update its vectors.

    ``model`` is the base model; with an ``adapter`` (from ``adapter_folder``) images are embedded by its image model
    and the manifest records it, so queries with another adapter are refused.
    """
    from rsvlm.adapt.saved import BaseModelId
    from rsvlm.geo.executor import map_ordered

    start = time.perf_counter()
    options = options or SourceOptions()
    identity = adapter_identity(adapter, adapter_folder) if adapter is not None and adapter_folder else None
    image_model = adapter.image_model(model) if adapter is not None else model
    report = BuildReport()
    out = Path(out)
    with run_lock(out, "index"):
        store = IndexStore.create(out, BaseModelId.of_model(model), identity)
        store.clean_temporary()
        existing = store.keys()
        next_id = store.next_id()
        scenes: dict[str, Any] = dict(store.manifest.get("scenes", {}))

        def chunks() -> Iterator[tuple[Loader, list[Entry]]]:
            files: list[Entry] = []  # whole files named one by one are gathered, so they are embedded in batches
            for batch in iter_batches(paths, options, part_rows):
                if batch.scene is not None:
                    scenes[batch.scene.path] = _save_overview(out, batch)
                    report.scenes += 1
                fresh = [e for e in batch.entries if e.key not in existing]
                report.already += len(batch.entries) - len(fresh)
                existing.update(e.key for e in fresh)
                if isinstance(batch.loader, FileLoader):
                    files.extend(fresh)
                    while len(files) >= part_rows:
                        yield FileLoader(), files[:part_rows]
                        files = files[part_rows:]
                elif fresh:
                    yield batch.loader, fresh
            if files:
                yield FileLoader(), files

        embedder = ChunkEmbedder(image_model, batch_size)
        embed_start = time.perf_counter()
        for entries, vectors, skipped in map_ordered(embedder, chunks(), scheduler):
            report.nodata += skipped
            if entries:
                store.write_part(entries, vectors, next_id)
                next_id += len(entries)
                report.added += len(entries)
                report.parts += 1
            if progress is not None:
                progress(report.added + report.nodata)  # entries done; the total is unknown (sources are read lazily)
        report.embed_seconds = time.perf_counter() - embed_start
        sources = sorted({*store.manifest.get("sources", []), *(str(p) for p in paths)})
        store.save_manifest(scenes=scenes, sources=sources)
        report.vectors = finish(store, model)
        report.count = int(report.vectors.get("count", 0))
    report.seconds = time.perf_counter() - start
    return report


def _save_overview(out: Path, batch: Batch) -> dict[str, Any]:
    from rsvlm.geo.outputs import png_bytes

    info = batch.scene
    assert info is not None
    name = f"{digest_text(info.path, 16)}.png"
    atomic_write(out / OVERVIEWS / name, png_bytes(np.ascontiguousarray(info.overview)))
    return {"width": info.width, "height": info.height, "crs": info.crs, "bounds": info.bounds, "overview": name}


def finish(store: IndexStore, model: ContrastiveModel | None) -> dict[str, Any]:
    """After entries came or went: vectors brought up to date, ``metadata.parquet`` rewritten, counts in the
    manifest (written last, so a reader sees the old state or the new one). Returns the vectors' state."""
    state = sync_vectors(store, model)
    store.write_metadata()
    store.save_manifest(count=int(state["count"]), vectors=state)
    return state


def vector_state(store: IndexStore) -> dict[str, Any]:
    """What the saved FAISS index covers: the parts it holds and the tombstones it has dropped."""
    import json

    path = store.folder / VECTORS_STATE
    if not path.is_file() or not (store.folder / VECTORS).is_file():
        return {}
    try:
        state: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return state


def sync_vectors(store: IndexStore, model: ContrastiveModel | None, *, rebuild: bool = False) -> dict[str, Any]:
    """Bring ``vectors.faiss`` up to date with the parts: add new parts, drop removed ids, or build it anew when
    missing, stale in kind (the index grew past ``EXACT_MAX``) or asked to. Returns the state written."""

    index, state, changed = _current_vectors(store, model, rebuild)
    if changed:
        index.save(store.folder / VECTORS)
        atomic_write_json(store.folder / VECTORS_STATE, state)
    return state


def load_vectors(store: IndexStore) -> VectorIndex:
    """The index's vectors for searching: the saved FAISS index, brought up to date in memory if a build was cut
    short since (the saved file is left alone: readers do not write)."""
    index, _, _ = _current_vectors(store, None, False)
    return index


def _current_vectors(
    store: IndexStore, model: ContrastiveModel | None, rebuild: bool
) -> tuple[VectorIndex, dict[str, Any], bool]:
    from rsvlm.index.vectors import EXACT_MAX, VectorIndex

    parts = [p.name for p in store.parts()]
    removed = store.removed()
    count = sum(int(store.live_ids(t, removed).sum()) for t in store.read_parts(["id"]))
    state = {} if rebuild else vector_state(store)
    want_flat = count < EXACT_MAX
    index = VectorIndex.load(store.folder / VECTORS) if state and (state.get("kind") == "flat") == want_flat else None
    if index is not None and not index.rebuild_advised:  # its lists still fit its size: update it in place
        new_parts = [store.folder / "parts" / n for n in parts if n not in set(state.get("parts", []))]
        changed = bool(new_parts) or int(state.get("removed", 0)) != len(removed)
        for ids, vectors in store.iter_vectors(parts=new_parts):
            index.add(ids, vectors)
        if int(state.get("removed", 0)) != len(removed):
            index.remove(removed)
    else:
        queries = _tuning_queries(store, model) if not want_flat else None
        index = VectorIndex.build(store.iter_vectors, count, store.dim, tuning_queries=queries)
        changed = True
    state = {
        "kind": index.kind,
        "count": len(index),
        "parts": parts,
        "removed": len(removed),
        "tuning": index.tuning.to_dict() if index.tuning is not None else None,
    }
    return index, state, changed


def _tuning_queries(store: IndexStore, model: ContrastiveModel | None, images: int = 256) -> Any:
    """Text embeddings of ``TUNING_TEXTS`` (when the model is at hand) and a seeded sample of stored images."""
    from rsvlm.pipeline import embed_texts

    rng = np.random.default_rng(0)
    sample: list[npt.NDArray[np.float32]] = []
    for _, vectors in store.iter_vectors():
        take = rng.random(len(vectors)) < 0.02
        sample.append(vectors[take])
    stored = np.concatenate(sample) if sample else np.zeros((0, store.dim), np.float32)
    stored = stored[rng.permutation(len(stored))[:images]]
    if model is None:
        return stored
    texts = embed_texts(model, [template.format(t) for template in TUNING_TEMPLATES for t in TUNING_TEXTS])
    if texts.shape[1] != store.dim:
        raise RsvlmError(f"{model.name} embeds texts in {texts.shape[1]}-d, the index holds {store.dim}-d vectors")
    return np.concatenate([texts, stored]).astype(np.float32)
