"""Does the map step stay in bounded memory and linear time as scenes grow? (issue 7 acceptance)

Builds synthetic georeferenced GeoTIFFs of 5,000², 10,000² and 20,000² pixels (3-band uint8, tiled and
deflate-compressed; a mosaic of real AID scenes when ../shared/data/aid exists, so the model sees real
textures, else a seeded procedural pattern), then runs the zero-shot land-cover map step of
``rsvlm demo`` (``rsvlm.geo.maps.score_scene`` with the default model, 10 classes) on each, every size in
its own process so that peak RSS (``ru_maxrss``) belongs to that size alone.

    python benchmarks/geo_scaling.py                  # 5k, 10k, 20k; rasters cached in runs/geo-scaling
    python benchmarks/geo_scaling.py --sizes 2000,4000 --json

Linear time means constant seconds per megapixel; the table prints both and the ratio to the smallest.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CLASSES = ("forest", "farmland", "residential area", "industrial area", "river", "sea", "beach", "wetland",
           "bare land", "meadow")  # fmt: skip


def build_raster(path: Path, size: int, seed: int = 0) -> Path:
    """A ``size``² 3-band uint8 GeoTIFF in UTM 32N at 1 m, written block row by block row."""
    import rasterio
    from affine import Affine
    from PIL import Image

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    chips = sorted((SHARED / "aid").glob("*/*.jpg")) if (SHARED / "aid").is_dir() else []
    chip = 150
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8", "crs": "EPSG:32632",
        "transform": Affine(1.0, 0, 500000.0, 0, -1.0, 5000000.0), "tiled": True, "blockxsize": 512,
        "blockysize": 512, "compress": "deflate",
    }  # fmt: skip
    tmp = path.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for row in range(0, size, chip):
            h = min(chip, size - row)
            strip = np.empty((3, h, size), dtype=np.uint8)
            for col in range(0, size, chip):
                w = min(chip, size - col)
                if chips:
                    with Image.open(chips[int(rng.integers(len(chips)))]) as im:
                        block = np.asarray(im.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
                else:
                    base = rng.integers(0, 256, size=(3, 1, 1))
                    block = np.clip(base + rng.normal(0, 25, size=(3, chip, chip)), 0, 255).astype(np.uint8)
                strip[:, :, col : col + w] = block[:, :h, :w]
            dst.write(strip, window=rasterio.windows.Window(0, row, size, h))
    tmp.rename(path)
    return path


def run_one(path: Path, tile: int, stride: int, batch: int) -> dict[str, Any]:
    """The map step on one raster, in this process; prints nothing, returns timings and peak RSS."""
    from rsvlm.geo.analyse import MAP_TEMPLATES
    from rsvlm.geo.maps import MapSettings, score_scene, text_embeddings
    from rsvlm.geo.source import open_scene
    from rsvlm.models.openclip import load_contrastive

    model = load_contrastive(None, None, download=False)
    texts = text_embeddings(model, CLASSES, MAP_TEMPLATES)
    scene = open_scene(path)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    scores = score_scene(scene, model, texts, CLASSES, MapSettings(tile=tile, stride=stride, batch_size=batch))
    seconds = time.perf_counter() - start
    return {
        "size": scene.width,
        "megapixels": scene.width * scene.height / 1e6,
        "tiles": scores.tiles_scored + scores.tiles_skipped,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_after_model_mb": rss_before,
        "file_mb": path.stat().st_size / 1e6,
        "cells": list(scores.similarity.shape[1:]),
    }


def markdown(rows: list[dict[str, Any]], tile: int, stride: int) -> str:
    base = rows[0]["seconds"] / rows[0]["megapixels"]
    lines = [
        f"Map step (rsvlm-lite, {len(CLASSES)} classes, tile {tile} px, stride {stride} px), one process per size, "
        f"{os.cpu_count()} CPUs",
        "",
        "| scene | Mpx | file MB | tiles | seconds | tiles/s | s per Mpx | vs smallest | peak RSS MB "
        "| RSS before map MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per = r["seconds"] / r["megapixels"]
        lines.append(
            f"| {r['size']:,}² | {r['megapixels']:.0f} | {r['file_mb']:.0f} | {r['tiles']:,} | {r['seconds']:.1f} | "
            f"{r['tiles'] / r['seconds']:.1f} | {per:.3f} | {per / base:.2f}× | {r['peak_rss_mb']:.0f} | "
            f"{r['rss_after_model_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5000,10000,20000", help="Comma-separated scene sides in pixels.")
    parser.add_argument("--tile", type=int, default=160)
    parser.add_argument("--stride", type=int, default=160)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "geo-scaling")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.tile, args.stride, args.batch)))
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        t = time.perf_counter()
        path = build_raster(args.out / f"synthetic_{size}.tif", size)
        print(f"raster {path.name}: ready in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
        cmd = [sys.executable, __file__, "--one", str(path), "--tile", str(args.tile), "--stride", str(args.stride),
               "--batch", str(args.batch)]  # fmt: skip
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{size}²: {rows[-1]['seconds']:.1f} s, peak RSS {rows[-1]['peak_rss_mb']:.0f} MB", file=sys.stderr)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(json.dumps(rows, indent=2) if args.json else markdown(rows, args.tile, args.stride))


if __name__ == "__main__":
    main()
