"""Indexing throughput against plain embedding, and peak memory against archive size.

Each run is a fresh subprocess (so peak RSS is its own): ``plain`` embeds N AID images with
``rsvlm.pipeline.embed_images`` (the loop every eval uses, no cache); ``index`` runs ``build_index`` on the same files
(read, embed, write GeoParquet parts, FAISS, metadata), in this process (``sync``) or on Dask's local threads.
Target (issue 21): indexing ≥ 0.9x plain embedding throughput; memory bounded whatever the archive size.

Each (size, mode) runs ``--repeats`` times, interleaved, and the fastest run counts (the machine is shared; the
slower runs measure the neighbours).

    python benchmarks/index_build.py [--sizes 1000 4000] [--threads 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _files(n: int) -> list[Path]:
    """N AID images spread over the 30 classes (every k-th file of the sorted list)."""
    files = sorted((SHARED / "aid").rglob("*.jpg"))
    step = max(1, len(files) // n)
    return files[::step][:n]


def worker(mode: str, n: int, scheduler: str | None) -> None:
    from rsvlm.models.openclip import load_contrastive

    model = load_contrastive("rsvlm-lite", None)
    files = _files(n)
    start = time.perf_counter()
    if mode == "plain":
        from rsvlm.pipeline import embed_images

        embed_images(model, files, use_cache=False)
    else:
        from rsvlm.index.build import build_index

        with tempfile.TemporaryDirectory(prefix="rsvlm-index-bench-") as tmp:
            build_index(Path(tmp) / "index", files, model, scheduler=scheduler)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "n": n, "scheduler": scheduler, "seconds": seconds, "peak_mb": peak}))


def run(mode: str, n: int, scheduler: str | None, threads: int) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, __file__, "--worker", mode, "--n", str(n)]
    if scheduler:
        command += ["--scheduler", scheduler]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker")
    parser.add_argument("--n", type=int)
    parser.add_argument("--scheduler")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "index_build.md")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.n, args.scheduler)
        return
    rows = []
    for n in args.sizes:
        runs: dict[str, list[dict[str, float]]] = {"plain": [], "sync": [], "threads": []}
        for _ in range(args.repeats):
            runs["plain"].append(run("plain", n, None, args.threads))
            runs["sync"].append(run("index", n, None, args.threads))
        runs["threads"].append(run("index", n, "threads", args.threads))
        best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
        rows += [(n, name, best["plain"], best[name]) for name in ("sync", "threads")]
    lines = [
        f"# Indexing throughput vs plain embedding (rsvlm-lite, AID 150-px JPEGs, {args.threads} torch threads)",
        "",
        "| images | scheduler | plain img/s | index img/s | ratio | plain peak MB | index peak MB |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for n, name, plain, index in rows:
        p, i = n / plain["seconds"], n / index["seconds"]
        lines.append(
            f"| {n:,} | {name} | {p:.1f} | {i:.1f} | {i / p:.2f} | {plain['peak_mb']:.0f} | {index['peak_mb']:.0f} |"
        )
    lines += ["", "Target: ratio ≥ 0.90. Reproduce: `python benchmarks/index_build.py`."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
