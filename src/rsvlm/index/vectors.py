"""The vector half of archive search: a FAISS index of L2-normalised embeddings, scored by inner product (cosine).

Every choice was measured by ``benchmarks/index_search.py`` (``benchmarks/results/index_search.md``: 2 shared CPUs,
1M 512-d vectors clustered like rsvlm-lite's AID embeddings, queried with real RSICD caption and AID embeddings):

- ``flat`` (exact) below ``EXACT_MAX``: a single text query over 50k vectors takes 4.6 ms p50 / 8.5 ms p95, over
  100k 8.4 / 9.1 ms, 1M 84 / 94 ms; past ~50k exact search crowds the 10 ms budget.
- ``ivf-flat`` from there: √N inverted lists of full float32 vectors (1,024 at 1M), ``nprobe`` tuned at build
  (14): recall@10 0.974 for unseen text queries, 0.997 for images, 1.5 ms p50 / 2.2 ms p95, 31 s to build.
  2,048 lists: 1.1 ms but 58 s to build; 512: 21 s and 2.3 / 5.1 ms. HNSW (M 32, efConstruction 40) took 119 s
  and reached only 0.79 text recall at efSearch 256 on the same 1M, and cannot remove vectors; IVF-SQ8 needs a
  quarter of the 1.9 GiB but its 8-bit scores cap recall near 0.96-0.97 and make ``vectors()`` lossy.
- One OpenMP thread per query: splitting a query over the lists of 2 threads gained 0.5 ms at p50 and cost
  36 ms at p95 (threads wait on a busy machine). FAISS releases the GIL, so a server answers concurrent queries
  from its own threads; a batch of ``_PARALLEL_MIN`` or more queries uses every core.
- Filters (``allowed``): up to ``SUBSET_RECONSTRUCT_MAX`` ids, copy those vectors out and take dot products
  (1.0 ms for 4k ids at 1M, where a selector scan takes 3.5 ms); up to ``EXACT_FILTER_MAX``, a selector over
  every list (exact, 17 ms p50 / 18 ms p95 for 50k of 1M); above, the selector with ``nprobe`` scaled by how
  much the filter removes (3 ms and recall 0.998 for 200k of 1M, where exact took 58 / 87 ms).

Equal scores (duplicate images) may come back in any order. Concurrent ``search`` calls are safe; ``add``,
``remove`` and ``save`` need the caller's exclusive access.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rsvlm.errors import DataError, RsvlmError
from rsvlm.index.tuning import K as _K
from rsvlm.index.tuning import tune_nprobe
from rsvlm.index.vector_file import REBUILD, read_faiss, write_faiss

Ids = npt.NDArray[np.int64]
Vectors = npt.NDArray[np.float32]
Chunks = Callable[[], Iterator[tuple[Ids, Vectors]]]

EXACT_MAX = 50_000
"""Below this many vectors ``build`` makes an exact (flat) index (see the module docstring for why)."""
TARGET_RECALL = 0.95
"""Recall@10 of the approximate index against exact search that build-time tuning must reach."""
FLAT, APPROX_KIND = "flat", "ivf-flat"
KINDS = (FLAT, APPROX_KIND)
SUBSET_RECONSTRUCT_MAX = 4_096
"""Filters up to this many ids: copy their vectors out and take dot products (no full scan at all)."""
EXACT_FILTER_MAX = 50_000
"""Filters up to this many ids are searched exactly (every inverted list, id selector)."""
TUNING_QUERIES = 500
"""Tuning queries drawn from the stored vectors when the caller gives none."""

_LISTS_PER_SQRT = 1  # nlist ≈ √N (a power of two): 1,024 lists at 1M vectors
_TRAIN_PER_LIST = 64  # k-means points per list; FAISS asks for at least 39
_KMEANS_ITER = 10
_MIN_APPROX = 2_000
_NORM_TOLERANCE = 1e-3
_PARALLEL_MIN = 8  # queries in one call before FAISS gets more than one thread
_BITMAP_MAX_ID = 2**27  # ids below this filter through a bitmap (≤ 16 MiB); others through a hash set
_BLOCK = 1 << 16


@dataclass
class TuningReport:
    """How the approximate index was tuned; stored in the index manifest so a search result can be trusted."""

    kind: str
    params: dict[str, int | float | str]
    recall_at_10: float
    queries: int
    seconds: float
    """Time the tuning measurement took (searching the tuning queries at each candidate ``nprobe``)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> TuningReport:
        return cls(**{**value, "params": dict(value["params"])})


@functools.cache
def _faiss() -> Any:
    """FAISS, imported on first use (the CLI imports this module at startup; its stubs are partial, hence Any)."""
    import faiss

    return faiss


@functools.cache
def _max_threads() -> int:
    return max(1, int(_faiss().omp_get_max_threads()))  # read once, before any call lowers this thread's count


def _set_threads(n_queries: int) -> None:
    """OpenMP threads for this thread's next FAISS call (libgomp keeps the count per calling thread)."""
    _faiss().omp_set_num_threads(_max_threads() if n_queries >= _PARALLEL_MIN else 1)


def nlist_for(count: int) -> int:
    """Inverted lists for ``count`` vectors: a power of two near √N, with enough k-means points per list."""
    target = max(1.0, _LISTS_PER_SQRT * math.sqrt(max(count, 1)))
    nlist: int = 2 ** round(math.log2(target))
    while nlist > 1 and nlist * _TRAIN_PER_LIST > count:
        nlist //= 2
    return nlist


class VectorIndex:
    """Embeddings by int64 id; ``search`` returns the best inner products, optionally among ``allowed`` ids only."""

    def __init__(self, index: Any, kind: str, dim: int, ids: Ids, tuning: TuningReport | None = None) -> None:
        self.index = index
        self.kind = kind
        self.dim = dim
        self.tuning = tuning
        self._ids = ids  # sorted: membership, filters and duplicate checks without asking FAISS

    def __len__(self) -> int:
        return int(self._ids.size)

    def __repr__(self) -> str:
        return f"VectorIndex({self.kind!r}, dim={self.dim}, vectors={len(self):,})"

    @property
    def nprobe(self) -> int | None:
        return int(self.index.nprobe) if self.kind == APPROX_KIND else None

    @property
    def rebuild_advised(self) -> bool:
        """True when the count has drifted past what the index was built for (flat grown past ``EXACT_MAX``,
        or inverted lists 2x too few or too many: √N lists), so a rebuild would be faster or more accurate."""
        if self.kind == FLAT:
            return len(self) >= EXACT_MAX
        ideal, nlist = nlist_for(len(self)), int(self.index.nlist)
        return len(self) < EXACT_MAX // 2 or ideal >= 2 * nlist or 2 * ideal <= nlist

    @classmethod
    def build(
        cls,
        chunks: Chunks,
        count: int,
        dim: int,
        *,
        kind: str | None = None,
        tuning_queries: Vectors | None = None,
        target_recall: float = TARGET_RECALL,
        seed: int = 0,
    ) -> VectorIndex:
        """An index of the ``count`` vectors ``chunks()`` yields (called once for flat, twice for approximate:
        a seeded training sample, then everything), so memory is the index plus one chunk, never a second copy.

        ``kind`` None: flat below ``EXACT_MAX`` vectors, else ``ivf-flat``, whose ``nprobe`` is then tuned to
        reach ``target_recall`` on ``tuning_queries`` (default: ``TUNING_QUERIES`` stored vectors, each left out of
        its own results). Give text embeddings too: text needs more lists than images (see ``_tune``).
        """
        faiss = _faiss()
        kind = kind or (FLAT if count < EXACT_MAX else APPROX_KIND)
        if kind not in KINDS:
            raise RsvlmError(f"vector index kind {kind!r} is unknown (choose one of {', '.join(KINDS)})")
        if kind == FLAT:
            flat = cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), FLAT, dim, np.zeros(0, np.int64))
            flat._add_all(chunks, count, None)
            return flat
        if count < _MIN_APPROX:
            raise RsvlmError(f"an {kind} index needs at least {_MIN_APPROX:,} vectors, got {count:,} (use kind flat)")
        rng = np.random.default_rng(seed)
        nlist = nlist_for(count)
        positions = np.sort(rng.choice(count, min(count, nlist * _TRAIN_PER_LIST), replace=False))
        train = _rows_at(chunks, positions, count, dim)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed, index.cp.niter, index.cp.spherical = seed, _KMEANS_ITER, True
        index.train(train)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by id
        if tuning_queries is None or len(tuning_queries) == 0:
            queries = train[rng.choice(len(train), min(len(train), TUNING_QUERIES), replace=False)]
        else:
            queries = _as_queries(tuning_queries, dim, "tuning queries")
        del train
        approx = cls(index, APPROX_KIND, dim, np.zeros(0, np.int64))
        exact = approx._add_all(chunks, count, queries)
        approx.tuning = approx._tune(queries, exact, target_recall, positions.size)
        return approx

    def _add_all(self, chunks: Chunks, count: int, queries: Vectors | None) -> tuple[Vectors, Ids]:
        """Add every chunk; with ``queries``, also their exact top k+1, computed chunk by chunk on the way."""
        faiss = _faiss()
        have_queries = queries is not None and len(queries) > 0
        heap = faiss.ResultHeap(len(queries), _K + 1, keep_max=True) if queries is not None and have_queries else None
        parts: list[Ids] = []
        for raw_ids, raw_vectors in chunks():
            ids, vectors = self._check_batch(raw_ids, raw_vectors)
            self.index.add_with_ids(vectors, ids)
            parts.append(ids)
            if heap is None or queries is None:
                continue
            for start in range(0, len(ids), _BLOCK):
                block = vectors[start : start + _BLOCK]
                scores, rows = faiss.knn(queries, block, min(_K + 1, len(block)), metric=faiss.METRIC_INNER_PRODUCT)
                heap.add_result(scores, ids[start:][rows])
        self._ids = np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        repeated = self._ids[1:][self._ids[1:] == self._ids[:-1]]
        if repeated.size:
            raise RsvlmError(f"vector ids must be unique, but {int(repeated[0])} came more than once")
        if len(self) != count:
            raise RsvlmError(f"expected {count:,} vectors, read {len(self):,} (did the store change during the build?)")
        if heap is None:
            return np.zeros((0, _K + 1), np.float32), np.zeros((0, _K + 1), np.int64)
        heap.finalize()
        return np.asarray(heap.D, np.float32), np.asarray(heap.I, np.int64)

    def _tune(self, queries: Vectors, exact: tuple[Vectors, Ids], target: float, trained: int) -> TuningReport:
        """Set ``nprobe`` to the smallest value that reaches ``target`` (``rsvlm.index.tuning``) and report it."""
        start = time.perf_counter()
        nlist = int(self.index.nlist)

        def search(queries: Vectors, nprobe: int) -> Ids:
            return self._search_index(queries, _K + 1, nprobe=nprobe)[1]

        nprobe, stats = tune_nprobe(search, queries, exact, nlist, target)
        self.index.nprobe = nprobe
        params: dict[str, int | float | str] = {
            "nlist": nlist, "nprobe": nprobe, "train_vectors": trained, "kmeans_iterations": _KMEANS_ITER,
            "vectors_at_build": len(self), "target_recall": target,
        }  # fmt: skip
        for name, (mean, bound, count) in stats.items():
            params[f"recall_{name}_queries"] = round(mean, 4)
            params[f"recall_{name}_lower_95"] = round(bound, 4)
            params[f"{name}_queries"] = count
        worst = min(mean for mean, _, _ in stats.values())
        return TuningReport(APPROX_KIND, params, worst, len(queries), time.perf_counter() - start)

    def _check_batch(self, ids: Any, vectors: Any) -> tuple[Ids, Vectors]:
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(ids), self.dim):
            raise RsvlmError(f"expected {len(ids):,} vectors of dimension {self.dim}, got shape {vectors.shape}")
        norms = np.einsum("ij,ij->i", vectors, vectors) if len(vectors) else np.ones(0, np.float32)
        bad = ~(np.abs(norms - 1) <= 2 * _NORM_TOLERANCE)  # NaN fails too
        if bad.any():
            raise RsvlmError(
                f"vector {int(ids[bad][0])} has length {math.sqrt(max(float(norms[bad][0]), 0)):.4g}, not 1 "
                "(store L2-normalised embeddings)"
            )
        return ids, vectors

    def add(self, ids: Ids, vectors: Vectors) -> None:
        """Add vectors under new, unique ids (``rsvlm index add``); the inverted lists stay as trained."""
        ids, vectors = self._check_batch(ids, vectors)
        merged = np.sort(np.concatenate([self._ids, ids]))
        repeated = merged[1:][merged[1:] == merged[:-1]]
        if repeated.size:
            raise RsvlmError(f"vector id {int(repeated[0])} is already in the index or given twice (remove it first)")
        self.index.add_with_ids(vectors, ids)
        self._ids = merged

    def remove(self, ids: Ids) -> int:
        """Remove these ids; returns how many were present (absent ids are ignored)."""
        faiss = _faiss()
        present = self._present(ids)
        if present.size == 0:
            return 0
        # The hash-table direct map of IVF removes by an id array; IDMap2 checks every id, so wants a hash set.
        selector = faiss.IDSelectorArray(present) if self.kind == APPROX_KIND else faiss.IDSelectorBatch(present)
        removed = int(self.index.remove_ids(selector))
        if removed != present.size:
            raise RsvlmError(f"FAISS removed {removed:,} of {present.size:,} vectors; {REBUILD}")
        self._ids = np.setdiff1d(self._ids, present, assume_unique=True)
        return removed

    def vectors(self, ids: Ids) -> Vectors:
        """(n, D) stored vectors, in the order of ``ids`` (exact copies: the index keeps full float32)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        missing = ids[~self._stored(ids)]
        if missing.size:
            raise RsvlmError(f"{missing.size:,} ids are not in the vector index, e.g. {int(missing[0])}")
        if ids.size == 0:
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self.index.reconstruct_batch(ids), np.float32)

    def search(self, queries: Vectors, k: int, allowed: Ids | None = None) -> tuple[Vectors, Ids]:
        """(Q, k) inner products and ids, best first, padded with -inf / -1; ``allowed``: only these ids."""
        queries = _as_queries(queries, self.dim, "queries")
        if k < 1:
            raise RsvlmError(f"k must be at least 1, got {k}")
        if allowed is None:
            return self._search_index(queries, k)
        present = self._present(allowed)
        if present.size <= SUBSET_RECONSTRUCT_MAX:
            return self._search_subset(queries, k, present)
        if self.kind == FLAT or present.size <= EXACT_FILTER_MAX:
            return self._search_index(queries, k, nprobe=self._nlist(), allowed=present)
        return self._search_index(queries, k, nprobe=self._filtered_nprobe(present.size), allowed=present)

    def _nlist(self) -> int | None:
        return int(self.index.nlist) if self.kind == APPROX_KIND else None

    def _filtered_nprobe(self, allowed: int) -> int:
        """``nprobe`` scaled by how much a filter removes, so about as many allowed vectors are scanned."""
        return min(int(self.index.nlist), math.ceil(int(self.index.nprobe) * len(self) / max(allowed, 1)))

    def _search_index(
        self, queries: Vectors, k: int, *, nprobe: int | None = None, allowed: Ids | None = None
    ) -> tuple[Vectors, Ids]:
        faiss = _faiss()
        keep: Any = None
        selector: Any = None
        if allowed is not None:
            selector, keep = _selector(allowed)
        if self.kind == APPROX_KIND:
            params: Any = faiss.SearchParametersIVF(nprobe=nprobe or int(self.index.nprobe))
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        _set_threads(len(queries))
        scores, ids = self.index.search(queries, k, params=params)
        del keep  # the bitmap FAISS read through a raw pointer
        scores[ids < 0] = -np.inf
        return scores, ids

    def _search_subset(self, queries: Vectors, k: int, present: Ids) -> tuple[Vectors, Ids]:
        """Exact search over a few stored vectors: copy them out, dot products, top k. FAISS's own kernel, on
        this call's OpenMP threads: numpy's threaded BLAS took 8 ms for 1,000 vectors on a busy 2-CPU machine."""
        faiss = _faiss()
        if present.size == 0:
            return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        stored = np.asarray(self.index.reconstruct_batch(present), np.float32)  # present: no membership check
        _set_threads(len(queries))
        scores, rows = faiss.knn(queries, stored, k, metric=faiss.METRIC_INNER_PRODUCT)
        ids = np.where(rows >= 0, present[rows.clip(min=0)], -1)
        scores[ids < 0] = -np.inf
        return scores, ids

    def _stored(self, ids: Ids) -> npt.NDArray[np.bool_]:
        if self._ids.size == 0:
            return np.zeros(ids.shape, bool)
        return np.asarray(self._ids[np.searchsorted(self._ids, ids).clip(max=self._ids.size - 1)] == ids)

    def _present(self, ids: Any) -> Ids:
        """The unique ids of ``ids`` that are stored, sorted."""
        wanted = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        present: Ids = wanted[self._stored(wanted)]
        return present

    def save(self, path: Path) -> None:
        """Write atomically, with a checked trailer (``rsvlm.index.vector_file``)."""
        meta = {"format": "rsvlm-vectors", "version": 1, "kind": self.kind, "dim": self.dim, "count": len(self)}
        meta["tuning"] = self.tuning.to_dict() if self.tuning is not None else None
        write_faiss(Path(path), self.index, meta)

    @classmethod
    def load(cls, path: Path, *, verify: bool = True) -> VectorIndex:
        """Read an index ``save`` wrote; ``verify`` checks the CRC of the FAISS bytes (≈0.5 s a GB) first."""
        faiss = _faiss()
        path = Path(path)
        index, meta = read_faiss(path, verify=verify)
        kind = meta.get("kind")
        if kind == APPROX_KIND and isinstance(index, faiss.IndexIVFFlat):
            if index.direct_map.type != faiss.DirectMap.Hashtable:
                index.set_direct_map_type(faiss.DirectMap.Hashtable)
            invlists = index.invlists
            lists = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)) for i in range(index.nlist)]
            ids = np.sort(np.concatenate([np.array(x, np.int64) for x in lists])) if lists else np.zeros(0, np.int64)
        elif kind == FLAT and isinstance(index, faiss.IndexIDMap2):
            ids = np.sort(faiss.vector_to_array(index.id_map).astype(np.int64))
        else:
            raise DataError(path, f"vector index kind {kind!r} does not match its FAISS index", REBUILD)
        if index.d != meta.get("dim") or ids.size != meta.get("count"):
            raise DataError(path, "vector index does not match its metadata (dimension or count)", REBUILD)
        tuning = TuningReport.from_dict(meta["tuning"]) if meta.get("tuning") else None
        return cls(index, kind, int(index.d), ids, tuning)


def _as_queries(queries: Any, dim: int, what: str) -> Vectors:
    array = np.ascontiguousarray(queries, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise RsvlmError(f"{what} must have dimension {dim} (the index's model), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise RsvlmError(f"{what} hold NaN or infinite values (check the model's weights and the input)")
    return array


def _rows_at(chunks: Chunks, positions: Ids, count: int, dim: int) -> Vectors:
    """The vectors at sorted row ``positions`` of one pass over ``chunks()`` (a training sample)."""
    out = np.empty((len(positions), dim), np.float32)
    seen = taken = 0
    for _, vectors in chunks():
        n = len(vectors)
        end = np.searchsorted(positions, seen + n)
        out[taken:end] = np.asarray(vectors, np.float32)[positions[taken:end] - seen]
        taken, seen = int(end), seen + n
    if seen != count:
        raise RsvlmError(f"expected {count:,} vectors, read {seen:,} (did the store change during the build?)")
    return out


def _selector(allowed: Ids) -> tuple[Any, Any]:
    """A FAISS id selector for sorted unique ids, and the array it points into (keep it alive while searching)."""
    faiss = _faiss()
    if allowed[0] >= 0 and allowed[-1] < _BITMAP_MAX_ID:
        bits = np.zeros(int(allowed[-1]) + 1, bool)
        bits[allowed] = True
        bitmap = np.packbits(bits, bitorder="little")
        return faiss.IDSelectorBitmap(bitmap.size, faiss.swig_ptr(bitmap)), bitmap
    return faiss.IDSelectorBatch(allowed), None
