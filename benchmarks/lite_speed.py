"""Speed of the default model on this machine's CPUs (target: ≥ 50 images/s embedding throughput).

Measures, for the shipped lite model at its input size:
- embedding throughput (images/s) of decoded, preprocessed batches, at several batch sizes;
- end-to-end wall time of a zero-shot evaluation of 1,000 AID images (read, preprocess, embed, prompts,
  score) with a cold feature cache and again with the cache warm.

Usage: python benchmarks/lite_speed.py [--weights FOLDER] [--threads N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not (SHARED / "aid").is_dir():
        sys.exit(f"AID not found under {SHARED}: this benchmark needs ../shared/data")

    from rsvlm.data.raster import read_image
    from rsvlm.models.openclip import load_contrastive

    model = load_contrastive(None, args.weights)
    paths = sorted((SHARED / "aid").rglob("*.jpg"))[::10][:1000]
    pixels = torch.stack([model.preprocess(read_image(p)) for p in paths[:256]])
    print(f"model {model.name}, input {tuple(pixels.shape[1:])}, torch threads {torch.get_num_threads()}")
    print("| batch | images/s (forward only, preprocessed) |")
    print("|---|---|")
    for batch in (8, 32, 64):
        model.encode_images(pixels[:batch])  # warm-up
        start = time.perf_counter()
        for s in range(0, len(pixels), batch):
            model.encode_images(pixels[s : s + batch])
        print(f"| {batch} | {len(pixels) / (time.perf_counter() - start):.1f} |")

    tmp = Path(tempfile.mkdtemp())
    folder = tmp / "scenes"
    for p in paths:  # a 1,000-image scene set with AID's class folders
        (folder / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, folder / p.parent.name / p.name)
    from rsvlm.pipeline import embed_scene_dataset
    from rsvlm.tasks.zeroshot import evaluate_zeroshot

    print("\n| zero-shot eval of 1,000 AID images | wall s | top-1 |")
    print("|---|---|---|")
    for label in ("cold cache", "warm cache"):
        start = time.perf_counter()
        emb, _ = embed_scene_dataset(None, folder, model=model, cache_dir=tmp / "cache", show_progress=False)
        top1 = evaluate_zeroshot(emb)["top1"]
        print(f"| {label} | {time.perf_counter() - start:.1f} | {top1:.2f} |")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
