"""Fit time and accuracy of the tower-tuning adaptation methods (CoOp, CoCoOp, LoRA) on real data.

A k-shot draw from AID (``--shots`` images per class from each of its 30 classes, seeded) is the support set,
``--test`` other images per class score it. Features come from the model (default rsvlm-lite) through the
feature cache, so a second run only re-times the fits. Every method is fitted through ``fit_adapter`` (as
``rsvlm adapt fit`` does) and timed on ``--threads`` CPU threads; ``lora-image`` re-embeds the test images
with its tuned image tower. Target (issue 20): CoOp with rsvlm-lite, 16 shots of 30 classes, ≤ 5 min on 2 CPUs.

With ``--dataset loveda`` the support set is LoveDA 64-px windows from the train tiles and the test set windows
of the test tile (out of domain for rsvlm-lite: room for adaptation to show).

Usage: python benchmarks/adapt_tower_speed.py [--dataset aid|loveda] [--methods zero-shot coop lora:epochs=20 ...]
       [--shots 16] [--test 20] [--seed 1] [--threads 2] [--model rsvlm-lite] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RSVLM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["zero-shot", "coop", "lora"], metavar="METHOD[:K=V,...]")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--test", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="rsvlm-lite")
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--dataset", choices=("aid", "loveda"), default="aid")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "rsvlm" / "features")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = _aid(args) if args.dataset == "aid" else _loveda(args)
    train, y_train, test, y_test, classes, readable_names, load, key = split

    from rsvlm.adapt.method import Support, parse_option_values
    from rsvlm.adapt.methods import get_method
    from rsvlm.adapt.saved import BaseModelId, fit_adapter
    from rsvlm.adapt.support import model_class_set, pixel_loader
    from rsvlm.models.openclip import load_contrastive
    from rsvlm.pipeline import embed_cached
    from rsvlm.tasks.templates import load_templates

    model = load_contrastive(args.model)
    templates = load_templates()
    start = time.perf_counter()
    f_train = embed_cached(model, train, load, key, cache_dir=args.cache)
    f_test = embed_cached(model, test, load, key, cache_dir=args.cache)
    class_set = model_class_set(model, readable_names, templates)
    print(f"{model.name} on {args.dataset}: {len(train)} support ({args.shots} per class, {len(classes)} classes) / "
          f"{len(test)} test images embedded in {time.perf_counter() - start:.1f} s; {args.threads} threads; "
          f"seed {args.seed}", flush=True)  # fmt: skip
    support = Support(
        f_train, y_train, class_set, model.logit_scale, model=model,
        pixels=pixel_loader(model, train, load), templates=templates,
    )  # fmt: skip
    base = BaseModelId.of_model(model)
    print("\n| method | options | fit wall s | fit CPU s / threads | test top-1 % | support top-1 % |")
    print("|---|---|---|---|---|---|")
    for spec in args.methods:
        name, _, pairs = spec.partition(":")
        method = get_method(name)
        given = parse_option_values([p for p in pairs.split(",") if p])
        cpu = time.process_time()
        adapter = fit_adapter(method, support, classes, base, options=given, seed=args.seed)
        cpu = (time.process_time() - cpu) / args.threads
        image_model = adapter.image_model(model)
        test_feats = f_test if image_model is model else embed_cached(image_model, test, load, key, use_cache=False)
        train_feats = f_train if image_model is model else embed_cached(image_model, train, load, key, use_cache=False)
        acc = 100 * float((adapter.logits(test_feats).argmax(1) == y_test).mean())
        fit_acc = 100 * float((adapter.logits(train_feats).argmax(1) == y_train).mean())
        shown = ", ".join(f"{k}={v}" for k, v in given.items()) or "defaults"
        print(f"| {name} | {shown} | {adapter.seconds:.1f} | {cpu:.1f} | {acc:.1f} | {fit_acc:.1f} |", flush=True)


Split = tuple[
    list[Any], np.ndarray, list[Any], np.ndarray, list[str], list[str], Callable[[Any], Any], Callable[[Any], str]
]


def _aid(args: argparse.Namespace) -> Split:
    """``--shots`` support and ``--test`` test images per AID class, disjoint, drawn with ``--seed``."""
    from rsvlm.data.names import readable
    from rsvlm.data.raster import read_image
    from rsvlm.features.cache import file_hash

    aid = args.data / "aid"
    if not aid.is_dir():
        sys.exit(f"AID not found under {args.data}: this benchmark needs ../shared/data (or --data DIR)")
    classes = sorted(p.name for p in aid.iterdir() if p.is_dir())
    rng = np.random.default_rng(args.seed)
    train: list[Path] = []
    test: list[Path] = []
    for folder in classes:
        files = sorted((aid / folder).glob("*.jpg"))
        picked = rng.choice(len(files), args.shots + args.test, replace=False)
        train += [files[i] for i in picked[: args.shots]]
        test += [files[i] for i in picked[args.shots :]]
    y_train = np.repeat(np.arange(len(classes)), args.shots).astype(np.int64)
    y_test = np.repeat(np.arange(len(classes)), args.test).astype(np.int64)
    return train, y_train, test, y_test, classes, [readable(c) for c in classes], read_image, file_hash


def _loveda(args: argparse.Namespace) -> Split:
    """LoveDA 64-px windows (out of domain for rsvlm-lite): shots from the train tiles, ``--test`` per class
    from the test tile (all of a smaller class)."""
    from rsvlm.adapt.support import draw_shots
    from rsvlm.data.registry import open_dataset

    root = args.data / "segmentation" / "loveda"
    if not root.is_dir():
        sys.exit(f"LoveDA not found under {args.data}: this benchmark needs ../shared/data (or --data DIR)")
    train_set = open_dataset(root, format="loveda-patches", split="train")
    test_set = open_dataset(root, format="loveda-patches", split="test")
    classes = train_set.classes
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[str(r.label)] for r in train_set.records], np.int64)
    picked = draw_shots(labels, args.shots, args.seed, classes)
    rng = np.random.default_rng(args.seed)
    test: list[Any] = []
    for c in classes:
        pool = [r for r in test_set.records if r.label == c]
        test += [pool[i] for i in sorted(rng.choice(len(pool), min(args.test, len(pool)), replace=False))]
    y_test = np.array([index[str(r.label)] for r in test], np.int64)
    names = [train_set.class_names[c] for c in classes]
    train = [train_set.records[i] for i in picked]
    return train, labels[picked], test, y_test, classes, names, train_set.load_image, train_set.content_key


if __name__ == "__main__":
    main()
