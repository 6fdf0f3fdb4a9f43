"""How much of RSVQA yes/no accuracy the held-out images allow, with and without looking at the image.

Issue 6 asks the chat model for +15 points over the majority answer per type on RSVQA presence and
comparison. The shared RSVQA subsets have 50 images per resolution (40 for training after the image-level
split), so this script measures what simpler models reach on the *same* split and questions:

- ``majority``: the most frequent training answer per question type (the issue's baseline);
- ``question prior``: for each question (``rsvlm.tasks.chat.vqa.question_key``: "is there a X" = "is a X
  present"), its most frequent answer on the training images, else the type majority. It never sees an image;
- ``question MLP``: a small classifier on the question's rsvlm-lite text embedding only (blind);
- ``image+question MLP (S px)``: the same with the frozen rsvlm-lite image tower's pooled feature map at
  S px, fused by elementwise product as in the RSVQA paper's baseline (Lobry et al. 2020). S = 160 is what
  the chat model sees; the native size (256 LR, 512 HR) shows what resolution adds.

MLPs train on all yes/no questions (presence + comparison) of the 40 training images, 5 seeds, and are
scored per type on the held-out images (mean ± sd). Usage (after ``rsvlm data instructions``):
  python benchmarks/rsvqa_probe.py [--instructions runs/instructions] [--data ../shared/data] [--seeds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("RSVLM_SHARED_DATA", ROOT.parent / "shared" / "data"))
TYPES = ("presence", "comp")


def load(data: Path, res: str, heldout: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from rsvlm.data.registry import open_dataset

    dataset = open_dataset(data / "rsvqa" / res)
    rows: list[dict[str, Any]] = [
        {"q": s.question, "a": s.answer.strip().lower(), "type": s.question_type, "image": Path(s.image_path)}
        for s in dataset.records
        if s.image_path is not None and s.question and s.answer and s.question_type in TYPES
    ]
    train = [r for r in rows if r["image"].name not in heldout]
    test = [r for r in rows if r["image"].name in heldout]
    return train, test


def accuracy(pred: list[str], rows: list[dict[str, Any]], kind: str) -> float:
    pairs = [(p, r["a"]) for p, r in zip(pred, rows, strict=True) if r["type"] == kind]
    hits: int = sum(1 for p, a in pairs if p == a)
    return 100.0 * hits / len(pairs)


def lookup_baselines(train: list[dict[str, Any]], test: list[dict[str, Any]]) -> dict[str, list[str]]:
    from rsvlm.tasks.chat.vqa import question_key

    majority = {t: Counter(r["a"] for r in train if r["type"] == t).most_common(1)[0][0] for t in TYPES}
    prior: dict[str, Counter[str]] = defaultdict(Counter)
    for r in train:
        prior[question_key(r["q"])][r["a"]] += 1
    return {
        "majority": [majority[r["type"]] for r in test],
        "question prior": [
            prior[k].most_common(1)[0][0] if (k := question_key(r["q"])) in prior else majority[r["type"]] for r in test
        ],
    }


def grid_at(paths: list[Path], size: int) -> Any:
    import torch

    from rsvlm.data.raster import read_image
    from rsvlm.models.chat.lite_vision import LiteVision
    from rsvlm.models.lite import to_lite_pixels

    vision = LiteVision("rsvlm-lite")
    feats = []
    with torch.inference_mode():
        for p in paths:
            grid = vision(to_lite_pixels(read_image(p), size, "rsvlm-lite").unsqueeze(0))[0]
            feats.append(torch.cat([grid.mean(0), grid.amax(0)]))
    return torch.stack(feats)


def fit_mlp(q: Any, img: Any | None, y: Any, seed: int, steps: int = 400) -> Any:
    """Full-batch AdamW on (table, rows) pairs: the ~1,000 distinct questions and 50 images go through
    their layers once per step, not once per question, so a fit takes seconds on a CPU."""
    import torch

    torch.manual_seed(seed)
    hidden = 256
    q_net = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(q[0].shape[1], hidden), torch.nn.Tanh())
    i_net = (
        torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(img[0].shape[1], hidden), torch.nn.Tanh())
        if img is not None
        else None
    )
    head = torch.nn.Sequential(
        torch.nn.Dropout(0.2), torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2)
    )
    modules = [q_net, head, *([i_net] if i_net is not None else [])]
    opt = torch.optim.AdamW([p for m in modules for p in m.parameters()], lr=3e-3, weight_decay=1e-2)

    def forward(qs: Any, ims: Any | None) -> Any:
        h = q_net(qs[0])[qs[1]]
        if i_net is not None and ims is not None:
            h = h * i_net(ims[0])[ims[1]]
        return head(h)

    for m in modules:
        m.train()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(forward(q, img), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def predict(qs: Any, ims: Any | None) -> Any:
        for m in modules:
            m.eval()
        with torch.no_grad():
            return forward(qs, ims).argmax(1)

    return predict


def probe(data: Path, instructions: Path, res: str, seeds: int) -> dict[str, dict[str, tuple[float, float]]]:
    import torch

    from rsvlm.models.lite import load_lite, packaged_weights

    heldout = set((instructions / "heldout" / f"rsvqa-{res}.txt").read_text(encoding="utf-8").split())
    train, test = load(data, res, heldout)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for name, pred in lookup_baselines(train, test).items():
        results[name] = {t: (accuracy(pred, test, t), 0.0) for t in TYPES}
    lite = load_lite(packaged_weights("rsvlm-lite"))
    texts = sorted({r["q"] for r in train + test})
    text_table = lite.encode_texts(texts)
    text_row = {t: i for i, t in enumerate(texts)}
    labels = {"no": 0, "yes": 1}
    q_tr = (text_table, torch.tensor([text_row[r["q"]] for r in train]))
    q_te = (text_table, torch.tensor([text_row[r["q"]] for r in test]))
    y = torch.tensor([labels[r["a"]] for r in train])
    images = sorted({r["image"] for r in train + test})
    native = 256 if res == "lr" else 512
    variants: dict[str, Any] = {"question MLP": None}
    for size in (160, native):
        feats = grid_at(images, size)
        feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
        row = {p: i for i, p in enumerate(images)}
        variants[f"image+question MLP ({size} px)"] = (
            (feats, torch.tensor([row[r["image"]] for r in train])),
            (feats, torch.tensor([row[r["image"]] for r in test])),
        )
    for name, pair in variants.items():
        scores: dict[str, list[float]] = {t: [] for t in TYPES}
        for seed in range(seeds):
            predict = fit_mlp(q_tr, pair[0] if pair else None, y, seed)
            out = predict(q_te, pair[1] if pair else None)
            pred = ["yes" if int(v) else "no" for v in out]
            for t in TYPES:
                scores[t].append(accuracy(pred, test, t))
        results[name] = {t: (statistics.fmean(v), statistics.pstdev(v)) for t, v in scores.items()}
    n_train = float(len({r["image"] for r in train}))
    results["_counts"] = {t: (float(sum(r["type"] == t for r in test)), n_train) for t in TYPES}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instructions", default=str(ROOT / "runs" / "instructions"))
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    for res in ("lr", "hr"):
        r = probe(Path(args.data), Path(args.instructions), res, args.seeds)
        counts = r.pop("_counts")
        print(
            f"\nRSVQA {res.upper()}: held-out questions presence {counts['presence'][0]:.0f}, "
            f"comparison {counts['comp'][0]:.0f}; {counts['presence'][1]:.0f} training images"
        )
        print("| method | presence | comparison |\n|---|---|---|")
        for name, per in r.items():
            cells = [f"{m:.2f}" + (f" ± {s:.2f}" if s else "") for m, s in (per[t] for t in TYPES)]
            print(f"| {name} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
