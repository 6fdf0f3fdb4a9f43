"""Load on the real ``rsvlm serve``: concurrent clients doing classify and search, then the same while scenes map.

Starts the server exactly as a user does (``rsvlm serve --index …`` on 127.0.0.1, a free port), then runs two
phases of ``--seconds`` each with ``--clients`` concurrent asyncio/httpx clients, every client sending its next
request as soon as the last one answered (closed loop):

- mix: 40 % classify (a real AID image, five labels), 40 % text search, 10 % search by image, 10 % health;
- phase "idle": nothing else runs; phase "scene job": scene jobs keep the job worker busy the whole time (one is
  always queued behind the running one), so the model is shared between the requests and the tile batches.

Reports requests/s, p50/p95/max latency per endpoint, and the 5xx count (must be 0), as a markdown table saved to
``benchmarks/results/serve_load.md``. Loopback only; bounded by ``--clients`` and ``--seconds``.
Without ``--index`` it builds one from real data: 10 AID images per class (300) from ../shared/data, or the
package's sample photos when that folder is absent.

Usage: OMP_NUM_THREADS=1 python benchmarks/serve_load.py [--index DIR] [--clients 20] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serve.conftest import free_port, rsvlm_command  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
LABELS = "airport,beach,farmland,forest,dense residential area"
QUERIES = [
    "an airport with runways", "a sandy beach", "green farmland", "a dense forest", "a river crossing a city",
    "a parking lot full of cars", "a stadium", "a port with ships", "a bridge over water", "a desert",
]  # fmt: skip
MIX = [("classify", 0.4), ("search", 0.4), ("search/image", 0.1), ("health", 0.1)]


@dataclass
class Sample:
    endpoint: str
    status: int
    seconds: float


def images() -> tuple[list[Path], str]:
    aid = SHARED / "aid"
    if aid.is_dir():
        chosen = [p for folder in sorted(aid.iterdir()) if folder.is_dir() for p in sorted(folder.glob("*.jpg"))[:10]]
        return chosen, f"AID, 10 images per class ({len(chosen)} images, 150 px JPEG)"
    from rsvlm import samples

    photos = samples.photos()
    return photos, f"rsvlm sample photos ({len(photos)} images)"


def build_index(paths: list[Path], out: Path) -> None:
    command = [sys.executable, "-m", "rsvlm", "index", "build", *map(str, paths), "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, text=True)


def scene() -> tuple[Path, str]:
    landsat = SHARED / "landsat7" / "L7_ETMs.tif"
    if landsat.is_file():
        return landsat, "Landsat-7 L7_ETMs.tif (349x352 px, 6 bands, 441 tiles per job)"
    from rsvlm import samples

    return samples.path("coast"), "rsvlm sample coast.tif (128x128 px, 4 bands)"


def start(index: Path, data: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [*rsvlm_command(), "serve", "--index", str(index), "--port", str(port), "--data-dir", str(data),
               "--chat", "none", "--max-jobs", "4"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"rsvlm serve exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit("rsvlm serve did not start within 180 s")


async def client_loop(
    http: httpx.AsyncClient, seed: int, deadline: float, payloads: list[bytes], out: list[Sample]
) -> None:
    rng = random.Random(seed)
    names, weights = zip(*MIX, strict=True)
    while time.monotonic() < deadline:
        endpoint = rng.choices(names, weights)[0]
        start = time.perf_counter()
        try:
            if endpoint == "classify":
                image = rng.choice(payloads)
                response = await http.post("/api/classify", files={"image": ("x.jpg", image)}, data={"labels": LABELS})
            elif endpoint == "search":
                response = await http.post("/api/search", json={"text": rng.choice(QUERIES), "k": 20})
            elif endpoint == "search/image":
                image = rng.choice(payloads)
                response = await http.post("/api/search/image", files={"image": ("x.jpg", image)}, data={"k": "20"})
            else:
                response = await http.get("/api/health")
            status = response.status_code
        except httpx.HTTPError:
            status = 0  # no answer at all: counted with the failures
        out.append(Sample(endpoint, status, time.perf_counter() - start))


async def load(url: str, clients: int, seconds: float, payloads: list[bytes], keep_busy: Path | None) -> list[Sample]:
    samples: list[Sample] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:
        tasks = [asyncio.create_task(client_loop(http, seed, deadline, payloads, samples)) for seed in range(clients)]
        async with httpx.AsyncClient(base_url=url, timeout=120) as jobs:  # its own connection, never queued
            if keep_busy is not None:
                tasks.append(asyncio.create_task(feed_jobs(jobs, keep_busy, deadline)))
            await asyncio.gather(*tasks)
    return samples


async def feed_jobs(http: httpx.AsyncClient, raster: Path, deadline: float) -> None:
    """Keep one job queued behind the running one until the phase ends."""
    data = raster.read_bytes()
    while time.monotonic() < deadline:
        counts = (await http.get("/api/health")).json()["jobs"]
        if counts["queued"] < 1:
            response = await http.post("/api/jobs", files={"raster": (raster.name, data)})
            response.raise_for_status()
        await asyncio.sleep(0.5)


def table(phase: str, samples: list[Sample], seconds: float) -> list[str]:
    by: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by[s.endpoint].append(s)
    rows = []
    for endpoint in [*(n for n, _ in MIX), "all"]:
        group = samples if endpoint == "all" else by.get(endpoint, [])
        if not group:
            continue
        latency = np.array([s.seconds for s in group]) * 1000
        errors = sum(s.status >= 500 or s.status == 0 for s in group)
        other = sum(400 <= s.status < 500 for s in group)
        rows.append(
            f"| {phase} | {endpoint} | {len(group)} | {len(group) / seconds:.1f} | {np.percentile(latency, 50):.0f} | "
            f"{np.percentile(latency, 95):.0f} | {latency.max():.0f} | {errors} | {other} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, help="An index from `rsvlm index build` (default: build one).")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve_load.md")
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 1 <= args.seconds <= 600:
        raise SystemExit("--clients 1..64 and --seconds 1..600 (the load is bounded on purpose)")
    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    paths, image_source = images()
    index = args.index
    if index is None:
        index = work / "index"
        start_build = time.perf_counter()
        build_index(paths, index)
        print(f"built the index from {image_source} in {time.perf_counter() - start_build:.0f} s", file=sys.stderr)
    raster, raster_source = scene()
    payloads = [p.read_bytes() for p in paths[:: max(1, len(paths) // 50)]]
    process, url = start(index, work / "data", work / "server.log")
    try:
        health = httpx.get(f"{url}/api/health").json()
        results = {}
        for phase, busy in (("idle", None), ("scene job", raster)):
            results[phase] = asyncio.run(load(url, args.clients, args.seconds, payloads, busy))
            print(f"{phase}: {len(results[phase])} requests", file=sys.stderr)
        jobs = httpx.get(f"{url}/api/jobs").json()["jobs"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        shutil.rmtree(work, ignore_errors=True)  # the built index, uploads and job outputs
    done = [j for j in jobs if j["status"] == "done"]
    failed = [j for j in jobs if j["status"] == "failed"]
    tiles = sum(j["progress"]["done"] for j in jobs)
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    lines = [
        "# rsvlm serve under load",
        "",
        f"`python benchmarks/serve_load.py --clients {args.clients} --seconds {args.seconds:g}` — the real server "
        f"process on 127.0.0.1, {args.clients} concurrent closed-loop clients (asyncio + httpx) for "
        f"{args.seconds:g} s per phase; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"OMP_NUM_THREADS={threads} (server and client share the machine).",
        "",
        f"- Model: {health['model']}; index: {health['index']['count']} entries"
        f"{f' ({image_source})' if args.index is None else f' ({args.index.name})'}; uploads: {len(payloads)} "
        f"images of {image_source}.",
        "- Mix: 40 % classify (5 labels), 40 % text search (k=20), 10 % search by image, 10 % health.",
        f'- Phase "scene job": scene jobs ran the whole phase ({raster_source}): {len(done)} finished, '
        f"{tiles} tiles mapped in {args.seconds:g} s{f', {len(failed)} FAILED' if failed else ''}.",
        "- 5xx counts transport failures too (no answer); 4xx are refusals (there should be none).",
        "",
        "| phase | endpoint | requests | req/s | p50 ms | p95 ms | max ms | 5xx | 4xx |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase, samples in results.items():
        lines += table(phase, samples, args.seconds)
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    bad = sum(s.status >= 500 or s.status == 0 for samples in results.values() for s in samples)
    if bad:
        raise SystemExit(f"{bad} requests failed with 5xx or no answer")


if __name__ == "__main__":
    main()
