"""Near-duplicates between the test images rsvlm scores and the images its models trained on.

- RSICD test (the 1,027 AID-matched images) against the rest of AID (8,973 images): rsvlm-lite's and
  rsvlm-lite-chat's training pool. The test images were excluded from training by file content, which
  misses re-encoded, shifted or flipped copies of the same scene; this counts those.
- RSVQA LR and HR: the 10 images per set the instruction builder held out (seed 0, as
  ``rsvlm.build.instructions`` draws them) against the 40 it trained on.

Each test image counts at a threshold when its best training match reaches that smoothed-thumbnail
correlation and passes the detail check (``rsvlm.bench.near_duplicates``); the "no detail check" column shows what
correlation alone would flag. Timings are wall clock on this machine, with the thread count BLAS was given.

The issue's WHU-RS19 figure (about 630 of its 1,005 images are AID images) cannot be reproduced here:
../shared/data holds WHU-RS19's released embeddings, not its images.

Usage: OMP_NUM_THREADS=1 python benchmarks/near_duplicates.py [--data ../shared/data] [--examples 8]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.90, 0.95, 0.98)


def count_row(name: str, pool: str, n_test: int, found: list[tuple[int, int, float, float, int]], seconds: str) -> str:
    counts = " | ".join(f"{sum(f[2] >= t for f in found):,}" for t in THRESHOLDS)
    return f"| {name} | {pool} | {n_test:,} | {counts} | {seconds} |"


def make_copies(paths: list[Path]) -> tuple[list[Any], list[str]]:
    """Each image resized to 97 px, flipped/turned (cycling through all 8), re-encoded as JPEG quality 40."""
    from PIL import Image

    from rsvlm.bench.near_duplicates import TRANSFORMS

    names = {0: "identity", 1: "rot90", 2: "rot180", 3: "rot270"}
    copies, expected = [], []
    for k, path in enumerate(paths):
        img = Image.open(path).convert("RGB").resize((97, 97), Image.Resampling.BILINEAR)
        flip, turns = k % 8 >= 4, k % 4
        if flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        for _ in range(turns):
            img = img.transpose(Image.Transpose.ROTATE_90)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=40)
        copies.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).transpose(2, 0, 1))
        name = {0: "flip-h", 2: "flip-v"}.get(turns, f"flip-h+{names[turns]}") if flip else names[turns]
        assert name in TRANSFORMS
        expected.append(name)
    return copies, expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--examples", type=int, default=8, help="matched RSICD test images to list")
    args = parser.parse_args()
    if not (args.data / "aid").is_dir() or not (args.data / "rsicd").is_dir():
        sys.exit(f"AID/RSICD not found under {args.data}: this benchmark needs ../shared/data")

    from rsvlm.bench.near_duplicates import TRANSFORMS, match_thumbnails, thumbnails
    from rsvlm.data.registry import open_dataset

    aid = sorted((args.data / "aid").rglob("*.jpg"))
    rsicd = open_dataset(args.data / "rsicd", images=args.data / "aid", split="test")
    test_paths = sorted({r.image_path for r in rsicd.records if r.image_path is not None})
    held = set(test_paths)
    pool_paths = [p for p in aid if p not in held]
    print(f"BLAS threads (OMP_NUM_THREADS): {os.environ.get('OMP_NUM_THREADS', 'unset')}")

    start = time.perf_counter()
    aid_thumbs = thumbnails(aid)
    decode = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        thumbnails(aid, cache_dir=cache)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        cached = thumbnails(aid, cache_dir=cache)
        warm = time.perf_counter() - start
    assert (cached == aid_thumbs).all()
    print(
        f"thumbnails of {len(aid):,} AID JPEGs (150 px): {decode:.1f} s without cache, "
        f"{cold:.1f} s filling a cache, {warm:.1f} s from it"
    )

    tracemalloc.start()
    start = time.perf_counter()
    itself = match_thumbnails(aid_thumbs, aid_thumbs)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    twins = [f"{aid[t].name} ~ {aid[r].name} ({corr:.4f})" for t, r, corr, *_ in itself if t != r]
    print(
        f"matching {len(aid):,} x {len(aid):,} (AID against itself): {elapsed:.1f} s, peak {peak:.0f} MiB allocated; "
        f"{len(itself):,} matched, {len(itself) - len(twins):,} to themselves, the rest to an identical twin: "
        f"{', '.join(twins) or 'none'}"
    )

    index = {p: i for i, p in enumerate(aid)}
    test = aid_thumbs[[index[p] for p in test_paths]]
    pool = aid_thumbs[[index[p] for p in pool_paths]]
    timed: dict[str, float] = {}
    results = {}
    for label, kwargs in (
        ("default", {}),
        ("no detail check", {"detail_threshold": -1.0}),
        ("brute force", {"prefilter": False}),
    ):
        start = time.perf_counter()
        results[label] = match_thumbnails(pool, test, threshold=THRESHOLDS[0], **kwargs)
        timed[label] = time.perf_counter() - start
    assert [r[:2] for r in results["default"]] == [r[:2] for r in results["brute force"]]

    head = " | ".join(f"≥ {t:.2f}" for t in THRESHOLDS)
    print(f"\n| test set | training pool | test images | {head} | match time |")
    print("|---|---|---|" + "---|" * len(THRESHOLDS) + "---|")
    print(
        count_row(
            "RSICD test (AID-matched)",
            f"rest of AID ({len(pool_paths):,})",
            len(test_paths),
            results["default"],
            f"{timed['default']:.2f} s ({timed['brute force']:.2f} s brute force)",
        )
    )
    print(
        count_row(
            "… no detail check",
            f"rest of AID ({len(pool_paths):,})",
            len(test_paths),
            results["no detail check"],
            f"{timed['no detail check']:.2f} s",
        )
    )
    # Positive control: re-encoded, flipped/turned copies of the test images against all of AID (originals in).
    start = time.perf_counter()
    copies, turns = make_copies(test_paths)
    made = time.perf_counter() - start
    start = time.perf_counter()
    found = match_thumbnails(aid_thumbs, thumbnails(copies), threshold=THRESHOLDS[0])
    elapsed = time.perf_counter() - start
    right = sum(aid[r] == test_paths[t] and TRANSFORMS[g] == turns[t] for t, r, _, _, g in found)
    print(
        count_row(
            "copies of RSICD test†",
            f"all of AID ({len(aid):,})",
            len(copies),
            found,
            f"{elapsed:.2f} s ({right:,} with the right source and transform)",
        )
    )
    for name in ("lr", "hr"):
        folder = args.data / "rsvqa" / name / "images"
        images = sorted(p.name for p in folder.glob("*.png"))
        held_names = set(random.Random(f"0-rsvqa-{name}").sample(images, round(len(images) * 0.2)))
        start = time.perf_counter()
        vqa_test = thumbnails([folder / i for i in images if i in held_names])
        vqa_train = thumbnails([folder / i for i in images if i not in held_names])
        found = match_thumbnails(vqa_train, vqa_test, threshold=THRESHOLDS[0])
        elapsed = time.perf_counter() - start
        pool_label = f"its train images ({len(vqa_train)})"
        print(count_row(f"RSVQA-{name.upper()} held out", pool_label, len(vqa_test), found, f"{elapsed:.2f} s*"))
    print(
        f"\n† positive control: each test image resized to 97 px, one of the 8 flips/quarter turns, JPEG quality 40, "
        f"in memory (made in {made:.1f} s); the time includes their thumbnails.\n"
        "* RSVQA times include decoding the PNGs (256 px LR, 512 px HR)."
    )

    best = sorted(results["default"], key=lambda r: -r[2])[: args.examples]
    if best:
        print(f"\nBest-matched RSICD test images (of {len(results['default'])} at ≥ {THRESHOLDS[0]:.2f}):")
        print("| test image | training image | correlation | detail | transform |")
        print("|---|---|---|---|---|")
        for t, r, corr, fine, g in best:
            print(
                f"| {test_paths[t].relative_to(args.data)} | {pool_paths[r].relative_to(args.data)} | "
                f"{corr:.3f} | {fine:.3f} | {TRANSFORMS[g]} |"
            )


if __name__ == "__main__":
    main()
