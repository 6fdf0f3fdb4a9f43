"""rsvlm's overhead when embedding images, against the bare open_clip backbone (target: ≤ 10 %).

Both paths embed the same image files with the same ViT-B/32 weights (random, since no released weights
can be fetched here; the speed of a forward pass does not depend on the values) at batch size 32:
- bare: Pillow open → open_clip's eval transform → ``model.encode_image`` → L2-normalise;
- rsvlm: ``rsvlm.pipeline.embed_images`` (rsvlm's reader, preprocessing, batching, normalisation),
  once with the feature cache off and once with a warm cache.
Images: the first N AID images in ../shared/data/aid (or the seeded fixtures when it is absent).

Usage: python benchmarks/embed_overhead.py [--n 256] [--repeats 2] [--arch ViT-B-32]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def image_paths(n: int) -> tuple[list[Path], str]:
    aid = ROOT.parent / "shared" / "data" / "aid"
    if aid.is_dir():
        paths = sorted(aid.rglob("*.jpg"))
        step = max(1, len(paths) // n)
        return paths[::step][:n], f"AID ({n} images, 150x150 JPEG, every {step}th)"
    from tests.fixtures.make_fixtures import build

    root = build(Path(tempfile.mkdtemp()))
    paths = sorted(root.rglob("*.jpg"))
    return (paths * (n // len(paths) + 1))[:n], f"seeded fixtures ({n} reads)"


def bare(model: torch.nn.Module, transform: object, paths: list[Path], batch: int) -> np.ndarray:
    from PIL import Image

    out = []
    with torch.inference_mode():
        for s in range(0, len(paths), batch):
            pixels = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths[s : s + batch]])  # type: ignore[operator]
            out.append(torch.nn.functional.normalize(model.encode_image(pixels), dim=-1).numpy())  # type: ignore[operator]
    return np.concatenate(out)


def best_rate(fn: object, n: int, repeats: int) -> tuple[float, object]:
    best, result = 0.0, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()  # type: ignore[operator]
        best = max(best, n / (time.perf_counter() - start))
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--arch", default="ViT-B-32")
    args = parser.parse_args()

    import open_clip
    from safetensors.torch import save_file

    from rsvlm.models.openclip import load_contrastive
    from rsvlm.models.registry import get_spec
    from rsvlm.pipeline import embed_images

    paths, what = image_paths(args.n)
    torch.manual_seed(0)
    model, _, transform = open_clip.create_model_and_transforms(args.arch, pretrained=None)
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        ours = load_contrastive(get_spec(f"remoteclip-{args.arch.lower()}"), weights)
        cache = Path(tmp) / "cache"
        bare_rate, ref = best_rate(lambda: bare(model, transform, paths, args.batch), len(paths), args.repeats)
        cold_rate, got = best_rate(
            lambda: embed_images(ours, paths, batch_size=args.batch, use_cache=False), len(paths), args.repeats
        )
        embed_images(ours, paths, batch_size=args.batch, cache_dir=cache)
        warm_rate, _ = best_rate(
            lambda: embed_images(ours, paths, batch_size=args.batch, cache_dir=cache), len(paths), args.repeats
        )
    diff = float(np.abs(np.asarray(ref) - np.asarray(got)).max())
    print(
        f"images: {what}; model {args.arch} (random weights), batch {args.batch}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print("| path | images/s | relative to bare |")
    print("|---|---|---|")
    print(f"| bare open_clip (PIL + transform + encode_image) | {bare_rate:.1f} | 1.00 |")
    print(f"| rsvlm embed_images, cache off | {cold_rate:.1f} | {cold_rate / bare_rate:.2f} |")
    print(f"| rsvlm embed_images, warm cache | {warm_rate:.1f} | {warm_rate / bare_rate:.2f} |")
    print(
        f"rsvlm overhead (cache off): {100 * (bare_rate / cold_rate - 1):+.1f} % (target ≤ 10 %); "
        f"max |embedding difference| {diff:.2e}"
    )


if __name__ == "__main__":
    main()
