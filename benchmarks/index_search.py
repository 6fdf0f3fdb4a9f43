"""Vector search for ``rsvlm search``: latency, recall@10 and memory of FAISS index kinds at archive scale.

Real embeddings cannot be had for a million images here, so the archive is synthetic but shaped like real ones:
rsvlm-lite embeds a seeded 100 images per class of AID (3,000 "centres") and each synthetic vector is a centre plus
an offset drawn from that centre's class spread (a random mix of 4 real within-class deviations, scaled by
``--spread``) plus a little isotropic noise (``--iso`` times the real per-dimension within-class spread),
renormalised. Queries are real: RSICD test captions embedded as text (text → image is the real use, across the
modality gap) and 20 held-out AID images per class. The index is tuned as ``rsvlm index build`` tunes it: 300
other captions plus 200 stored vectors. Recall@10 is against exact (flat) search over the same vectors.

Latency: single queries, one after another, after 20 warm-up queries, through ``VectorIndex.search`` for the
kinds rsvlm builds (raw FAISS for HNSW and IVF-SQ8). Memory: the FAISS file size (what ``load`` reads into RAM).

Usage: OMP_NUM_THREADS=2 python benchmarks/index_search.py [--n 1000000] [--no-hnsw]   (--n 100000: quick run)
Writes benchmarks/results/index_search.md (the printed tables). About 15 min on 2 CPUs at 1M, 2 min at 100k.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
Array = npt.NDArray[Any]
K = 10
CHUNK = 1 << 16
lines: list[str] = []
FLAT_NOTE = "\nAt 500,000 vectors and more, 100 queries (each takes about 0.1 s)."
APPROX_NOTE = (
    "\n† IVF-SQ8 re-codes the lists of the default ivf-flat (no second k-means or assignment), so its buil"
    "d time leaves those out. HNSW: FAISS IndexHNSWFlat, efConstruction 40 (the FAISS default)."
)


def _faiss() -> Any:
    import faiss

    return faiss


def say(text: str = "") -> None:
    print(text, flush=True)
    lines.append(text)


def real_embeddings(data: Path, cache: Path, per_class: int = 100, held_out: int = 20) -> dict[str, Array]:
    """rsvlm-lite embeddings of a seeded AID sample (centres + held-out query images) and of RSICD test captions."""
    path = cache / f"real-lite-aid{per_class}+{held_out}.npz"
    if path.is_file():
        return dict(np.load(path))
    import rsvlm

    rng = random.Random(0)
    centres: list[Path] = []
    queries: list[Path] = []
    labels: list[int] = []
    for c, folder in enumerate(sorted(p for p in (data / "aid").iterdir() if p.is_dir())):
        files = sorted(folder.glob("*.jpg"))
        pick = rng.sample(files, per_class + held_out)
        centres += pick[:per_class]
        queries += pick[per_class:]
        labels += [c] * per_class
    captions = sorted({t.strip() for t in (data / "rsicd" / "test_caps.txt").read_text().splitlines() if t.strip()})
    model = rsvlm.load_model()
    start = time.perf_counter()
    out = {
        "centres": model.embed_images(centres, batch_size=64),
        "labels": np.array(labels),
        "images": model.embed_images(queries, batch_size=64),
        "texts": model.embed_texts(captions),
    }
    took = time.perf_counter() - start
    print(f"embedded {len(centres) + len(queries):,} images, {len(captions):,} captions: {took:.0f} s")
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, centres=out["centres"], labels=out["labels"], images=out["images"], texts=out["texts"])
    return out


def synthesize(real: dict[str, Array], n: int, path: Path, spread: float, iso: float, seed: int = 0) -> Array:
    """``n`` synthetic vectors (float32 memmap at ``path``, made once): see the module docstring."""
    x, y = real["centres"].astype(np.float32), real["labels"]
    if path.is_file() and path.stat().st_size == n * x.shape[1] * 4:
        return np.memmap(path, np.float32, "r", shape=(n, x.shape[1]))
    means = np.stack([x[y == c].mean(0) for c in range(int(y.max()) + 1)])
    dev = x - means[y]
    sigma = float(np.sqrt((dev**2).sum(1).mean() / x.shape[1]))
    order = np.argsort(y, kind="stable")
    counts = np.bincount(y)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.memmap(path, np.float32, "w+", shape=(n, x.shape[1]))
    rng = np.random.default_rng(seed)
    for s in range(0, n, CHUNK):
        m = min(CHUNK, n - s)
        a = rng.integers(0, len(x), m)
        c = y[a]
        v = x[a].copy()
        for _ in range(4):
            j = order[starts[c] + (rng.random(m) * counts[c]).astype(np.int64)]
            v += (spread / 2) * rng.standard_normal((m, 1), dtype=np.float32) * dev[j]
        v += iso * sigma * rng.standard_normal(v.shape, dtype=np.float32)
        out[s : s + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    out.flush()
    return np.memmap(path, np.float32, "r", shape=(n, x.shape[1]))


def chunks_of(x: Array, n: int | None = None) -> Callable[[], Iterator[tuple[Array, Array]]]:
    """Re-readable chunks of the first ``n`` rows (ids = row numbers), as the index store yields them."""
    total = len(x) if n is None else n

    def chunks() -> Iterator[tuple[Array, Array]]:
        for s in range(0, total, CHUNK):
            e = min(total, s + CHUNK)
            yield np.arange(s, e, dtype=np.int64), np.ascontiguousarray(x[s:e])

    return chunks


def exact_top(x: Array, queries: Array, k: int = K) -> Array:
    faiss = _faiss()

    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for ids, block in chunks_of(x)():
        scores, rows = faiss.knn(queries, block, k, metric=faiss.METRIC_INNER_PRODUCT)
        heap.add_result(scores, ids[rows])
    heap.finalize()
    return np.asarray(heap.I)


def latencies(search: Callable[[Array], object], queries: Array, warmup: int = 20) -> tuple[float, float]:
    """p50, p95 in ms of single queries, one after another."""
    for q in queries[:warmup]:
        search(q[None])
    times = []
    for q in queries:
        start = time.perf_counter()
        search(q[None])
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def file_size(index: Any, cache: Path) -> int:
    faiss = _faiss()

    path = cache / "size.faiss"
    faiss.write_index(index, str(path))
    size = path.stat().st_size
    path.unlink()
    return size


def row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def recall_split(found: Array, truth: Array, n_text: int) -> str:
    from rsvlm.index.tuning import recall_at

    return f"{recall_at(found[:n_text], truth[:n_text]):.3f} / {recall_at(found[n_text:], truth[n_text:]):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors in the archive")
    parser.add_argument("--queries", type=int, default=500, help="text queries and image queries, each")
    parser.add_argument("--spread", type=float, default=0.5, help="offset scale, relative to the class spread")
    parser.add_argument("--iso", type=float, default=0.2, help="isotropic noise, relative to the class spread")
    parser.add_argument("--nlists", default="0.5,1,2", help="IVF grid: lists per √N (rounded to a power of two)")
    parser.add_argument("--no-hnsw", action="store_true", help="skip HNSW (about 5 min to build at 1M on 2 CPUs)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/rsvlm-index-bench"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "index_search.md")
    args = parser.parse_args()
    if not (args.data / "aid").is_dir() or not (args.data / "rsicd").is_dir():
        sys.exit(f"AID/RSICD not found under {args.data}: this benchmark needs ../shared/data")
    faiss = _faiss()

    from rsvlm.index import vectors as vx
    from rsvlm.index.vectors import VectorIndex

    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    threads = faiss.omp_get_max_threads()
    real = real_embeddings(args.data, args.cache)
    n, dim = args.n, real["centres"].shape[1]
    start = time.perf_counter()
    x = synthesize(real, n, args.cache / f"synthetic-{n}-{args.spread}-{args.iso}.f32", args.spread, args.iso)
    made = time.perf_counter() - start
    rng = np.random.default_rng(0)
    texts = real["texts"][rng.permutation(len(real["texts"]))]
    images = real["images"][rng.permutation(len(real["images"]))]
    nq = args.queries
    queries = np.ascontiguousarray(np.concatenate([texts[:nq], images[:nq]]), np.float32)
    tuning = np.concatenate([texts[nq : nq + 300], x[np.sort(rng.choice(n, 200, replace=False))]]).astype(np.float32)
    start = time.perf_counter()
    truth = exact_top(x, queries)
    truth_s = time.perf_counter() - start
    sample = x[rng.choice(n, 2000, replace=False)]
    nn = np.sort(sample @ np.asarray(x[: min(n, 200_000)]).T, axis=1)[:, -2]
    t2i = np.sort(queries[:nq] @ np.asarray(x[: min(n, 200_000)]).T, axis=1)[:, -1]
    say(f"# Vector index: {n:,} vectors × {dim}-d, {threads} OpenMP threads, faiss {faiss.__version__}\n")
    say(
        f"Synthetic archive (made in {made:.0f} s): {len(real['centres']):,} rsvlm-lite AID embeddings as centres, "
        f"offset = {args.spread} × (mix of 4 real within-class deviations) + {args.iso} × within-class σ isotropic, "
        f"renormalised. Median cosine to the nearest other vector {np.median(nn):.3f} (real AID sample: 0.811 among "
        f"3,000); text query to its best image {np.median(t2i):.3f} (modality gap). Queries: {nq} RSICD test captions "
        f"(text) + {nq} held-out AID images; recall@10 text / image vs exact top-10 ({truth_s:.0f} s to compute). "
        f"Tuning queries: 300 other captions + 200 stored vectors (leave-one-out)."
    )

    # Exact search: how far can flat go?
    say("\n## Exact (flat) search, single text queries\n")
    say(row("vectors", "p50 ms", "p95 ms", "file"))
    say(row("---:", "---:", "---:", "---:"))
    for size in sorted({s for s in (10_000, 50_000, 100_000, 200_000, n) if s <= n}):
        flat = VectorIndex.build(chunks_of(x, size), size, dim, kind="flat")
        p50, p95 = latencies(partial(flat.search, k=K), queries[: nq if size < 500_000 else 100])
        say(row(f"{size:,}", f"{p50:.1f}", f"{p95:.1f}", mb(file_size(flat.index, args.cache))))
        del flat
    say(FLAT_NOTE)

    # IVF-Flat, as rsvlm builds it, for several list counts; the nprobe grid on the same lists.
    say("\n## Approximate kinds (recall@10 text / image; latency over text + image queries)\n")
    say(row("kind", "params", "build s", "file", "recall@10", "p50 ms", "p95 ms", "note"))
    say(row("---", "---", "---:", "---:", "---", "---:", "---:", "---"))
    chosen: VectorIndex | None = None
    for per_sqrt in (float(v) for v in args.nlists.split(",")):
        with patched(vx, "_LISTS_PER_SQRT", per_sqrt):
            start = time.perf_counter()
            ivf = VectorIndex.build(chunks_of(x), n, dim, tuning_queries=tuning, kind="ivf-flat")
            built = time.perf_counter() - start
        t = ivf.tuning
        assert t is not None
        nlist, tuned = int(t.params["nlist"]), int(t.params["nprobe"])
        size = file_size(ivf.index, args.cache)
        for nprobe in sorted(
            {max(1, tuned // 4), max(1, tuned // 2), tuned, 2 * tuned, 4 * tuned} & set(range(1, nlist + 1))
        ):
            found = ivf._search_index(queries, K, nprobe=nprobe)[1]
            p50, p95 = latencies(partial(ivf._search_index, k=K, nprobe=nprobe), queries)
            note = f"tuned (tuning recall {t.recall_at_10:.3f}, {t.seconds:.1f} s)" if nprobe == tuned else ""
            say(row("ivf-flat", f"nlist {nlist}, nprobe {nprobe}", f"{built:.0f}" if nprobe == tuned else "",
                    mb(size), recall_split(found, truth, nq), f"{p50:.2f}", f"{p95:.2f}", note))  # fmt: skip
        if chosen is None or per_sqrt == vx._LISTS_PER_SQRT:
            chosen = ivf  # rsvlm's default list count, else the first of the grid
        del ivf
    assert chosen is not None
    sq8_rows(chosen, queries, truth, nq, args.cache)
    if not args.no_hnsw:
        hnsw_rows(x, queries, truth, nq, args.cache)
    say(APPROX_NOTE)

    nprobe = int(chosen.nprobe or 1)
    say(f"\n## Threads and concurrency (ivf-flat, nlist {int(chosen.index.nlist)}, nprobe {nprobe})\n")
    say(row("setting", "p50 ms", "p95 ms", "queries/s"))
    say(row("---", "---:", "---:", "---:"))
    for label, omp, pmode in (
        ("1 thread per query (default)", 1, 0),
        (f"{threads} threads, split over lists", threads, 1),
    ):
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        chosen.index.parallel_mode = pmode
        faiss.omp_set_num_threads(omp)
        start = time.perf_counter()
        p50, p95 = latencies(partial(chosen.index.search, k=K, params=params), queries)
        say(row(label, f"{p50:.2f}", f"{p95:.2f}", f"{len(queries) / (time.perf_counter() - start):.0f}"))
    chosen.index.parallel_mode = 0
    for workers in (2, 4):
        qps = concurrent_qps(chosen, queries, workers)
        say(row(f"{workers} server threads, 1 OpenMP thread each", "", "", f"{qps:.0f}"))

    filter_rows(chosen, queries[:200], n)
    start = time.perf_counter()
    path = args.cache / "vectors.faiss"
    chosen.save(path)
    saved = time.perf_counter() - start
    timed = {}
    for verify in (True, False):
        start = time.perf_counter()
        VectorIndex.load(path, verify=verify)
        timed[verify] = time.perf_counter() - start
    say(
        f"\nSave {saved:.1f} s, load {timed[True]:.1f} s with the checksum ({timed[False]:.1f} s without), "
        f"{mb(path.stat().st_size)} file. Whole run {time.perf_counter() - began:.0f} s; load average "
        f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (other work on the machine "
        "inflates p95 and concurrent throughput)."
    )
    path.unlink()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {args.out}")


@contextlib.contextmanager
def patched(module: Any, name: str, value: object) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def sq8_rows(ivf: Any, queries: Array, truth: Array, nq: int, cache: Path) -> None:
    """IVF-SQ8 on the same lists: each vector re-coded in 1 byte a dimension (no second k-means or assignment)."""
    faiss = _faiss()

    index = ivf.index
    start = time.perf_counter()
    sq = faiss.IndexIVFScalarQuantizer(
        faiss.clone_index(index.quantizer), index.d, index.nlist, faiss.ScalarQuantizer.QT_8bit,
        faiss.METRIC_INNER_PRODUCT, False,
    )  # fmt: skip
    sample = np.concatenate([list_vectors(index, l_)[1] for l_ in range(0, index.nlist, max(1, index.nlist // 64))])
    sq.sq.train(sample)
    sq.is_trained = True
    for l_ in range(index.nlist):
        ids, vecs = list_vectors(index, l_)
        lists = np.full(len(ids), l_, np.int64)  # named: FAISS reads it through a raw pointer
        if len(ids):
            sq.add_core(len(ids), faiss.swig_ptr(vecs), faiss.swig_ptr(ids), faiss.swig_ptr(lists))
    built = time.perf_counter() - start
    size = file_size(sq, cache)
    for nprobe in (ivf.nprobe, 2 * ivf.nprobe):
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        found = sq.search(queries, K, params=params)[1]
        p50, p95 = latencies(partial(sq.search, k=K, params=params), queries)
        say(
            row(
                "ivf-sq8",
                f"nlist {index.nlist}, nprobe {nprobe}",
                f"{built:.0f}†",
                mb(size),
                recall_split(found, truth, nq),
                f"{p50:.2f}",
                f"{p95:.2f}",
                "scores and vectors() approximate",
            )
        )


def list_vectors(index: Any, list_no: int) -> tuple[Array, Array]:
    faiss = _faiss()

    inv = index.invlists
    size = inv.list_size(list_no)
    ids = np.array(faiss.rev_swig_ptr(inv.get_ids(list_no), size), np.int64)
    codes = faiss.rev_swig_ptr(inv.get_codes(list_no), size * index.code_size)
    return ids, np.frombuffer(bytes(codes), np.float32).reshape(size, index.d).copy()


def hnsw_rows(x: Array, queries: Array, truth: Array, nq: int, cache: Path) -> None:
    faiss = _faiss()

    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 40
    for _, block in chunks_of(x)():
        hnsw.add(block)
    built = time.perf_counter() - start
    size = file_size(hnsw, cache)
    for ef in (16, 32, 64, 128, 256):
        params = faiss.SearchParametersHNSW(efSearch=ef)
        found = hnsw.search(queries, K, params=params)[1]
        p50, p95 = latencies(partial(hnsw.search, k=K, params=params), queries)
        say(
            row(
                "hnsw",
                f"M 32, efC 40, efSearch {ef}",
                f"{built:.0f}" if ef == 16 else "",
                mb(size),
                recall_split(found, truth, nq),
                f"{p50:.2f}",
                f"{p95:.2f}",
                "no removal" if ef == 16 else "",
            )
        )


def concurrent_qps(index: Any, queries: Array, workers: int) -> float:
    """Queries per second when ``workers`` threads each send single queries (FAISS releases the GIL)."""
    parts = np.array_split(queries, workers)

    def work(part: Array) -> None:
        for q in part:
            index.search(q[None], K)

    pool = [threading.Thread(target=work, args=(p,)) for p in parts]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return len(queries) / (time.perf_counter() - start)


def filter_rows(index: Any, queries: Array, n: int) -> None:
    """Filtered search (random allowed subsets): exact by copying vectors out, exact by a selector over every list,
    and approximate by a selector with nprobe scaled up by how much the filter removes."""
    from rsvlm.index.tuning import recall_at

    say(f"\n## Filters (`allowed`), {len(queries)} text queries, random subsets of the {n:,} ids\n")
    say(
        row(
            "allowed",
            "copy + dot p50 / p95 ms",
            "selector, all lists p50 / p95 ms",
            "selector, scaled nprobe p50 / p95 ms",
            "scaled nprobe",
            "its recall@10",
        )
    )
    say(row("---:", "---:", "---:", "---:", "---:", "---:"))
    rng = np.random.default_rng(1)
    for size in (100, 1_000, 4_000, 10_000, 50_000, 200_000):
        if size > n // 2:
            continue
        allowed = np.sort(rng.choice(n, size, replace=False)).astype(np.int64)
        exact = (
            index._search_subset(queries, K, allowed)[1]
            if size <= 50_000
            else index._search_index(queries, K, nprobe=int(index.index.nlist), allowed=allowed)[1]
        )
        copy = latencies(partial(index._search_subset, k=K, present=allowed), queries[:50]) if size <= 50_000 else None
        full = latencies(
            partial(index._search_index, k=K, nprobe=int(index.index.nlist), allowed=allowed), queries[:50]
        )
        scaled = index._filtered_nprobe(size)
        found = index._search_index(queries, K, nprobe=scaled, allowed=allowed)[1]
        approx = latencies(partial(index._search_index, k=K, nprobe=scaled, allowed=allowed), queries)
        say(row(f"{size:,}", f"{copy[0]:.2f} / {copy[1]:.2f}" if copy else "–", f"{full[0]:.2f} / {full[1]:.2f}",
                f"{approx[0]:.2f} / {approx[1]:.2f}", scaled, f"{recall_at(found, exact):.3f}"))  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
