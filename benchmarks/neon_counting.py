"""NEON tree counting per tile: a ridge head on frozen rsvlm-lite embeddings, the mean count, and the chat model.

Counts are the tree-crown boxes whose centre lies in a tile (``rsvlm.adapt.regression.count_tiles``). Each of the
three NEON images is one region; training tiles overlap by half (stride tile/2), test tiles do not (stride tile;
the last row/column is flush with the image edge, so on the 1249x1035 YELL crop it overlaps its neighbour).

- Protocol A, the chat model's split: train on SOAP_061 + YELL tiles, test on OSBS_029 (the region the
  instruction data held out, ``configs/instructions-rs.yaml``).
- Protocol B: leave one region out over the three images (B's OSBS fold is protocol A), plus all folds pooled.

Methods, all scored on the same test tiles: the mean count of the training tiles (the box-free baseline);
``RegressionHead`` on rsvlm-lite embeddings (identity and log1p targets; ridge penalty by cross-validation over
spatial blocks of 2 x 2 tiles, or efficient leave-one-out with ``--cv loo``); and ``rsvlm-lite-chat`` answering
the counting/1 prompt, only on OSBS_029 (it was trained on tiles of the other two images).

Usage (the chat model needs its converted Gemma, e.g. RSVLM_CACHE_DIR=runs/rsvlm-cache):
  python benchmarks/neon_counting.py [--data ../shared/data] [--model rsvlm-lite] [--tiles 200,100]
      [--cv blocks|loo] [--no-chat] [--chat-model rsvlm-lite-chat] [--no-cache] [--out runs/bench-neon-counting]
      [--json OUT] [--markdown OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("RSVLM_SHARED_DATA", ROOT.parent / "shared" / "data"))
CHAT_HELDOUT = "OSBS_029"
"""The NEON region the shipped chat model's instruction data held out (protocol A's test region)."""
TRANSFORMS = ("none", "log1p")


def site(region: str) -> str:
    """NEON site code of a region id (``2019_YELL_2_…_crop`` → ``YELL``), for short table rows."""
    match = re.search(r"(?<![A-Z])[A-Z]{4}(?![A-Z])", region)
    return match.group(0) if match else region


def block_groups(tiles: list[Any], tile: int) -> list[str]:
    """Spatial block (2 x 2 tiles) of each tile: cross-validation holds out blocks, so half-overlapping
    neighbours cannot vouch for each other when the ridge penalty is chosen."""
    return [f"{t.region}:{t.window[0] // (2 * tile)}:{t.window[1] // (2 * tile)}" for t in tiles]


def chat_counts(chat: Any, tiles: list[Any]) -> list[float | None]:
    """The chat model's parsed answers to the counting/1 prompt, one per tile (None: no number in the answer)."""
    from rsvlm.data.sample import Sample
    from rsvlm.models.chat.protocol import ChatRequest, GenerationConfig
    from rsvlm.tasks.chat.counting import parse_count
    from rsvlm.tasks.chat.registry import make_task

    task = make_task("counting", object_name="trees")
    requests = [
        ChatRequest.ask(t.image, task.prompt(Sample(id=f"{t.region}_{t.window[0]}_{t.window[1]}"), chat.family))
        for t in tiles
    ]
    answers = chat.generate(requests, GenerationConfig(max_new_tokens=8, batch_size=8))
    return [parse_count(a) for a in answers]


def run_tile_size(model: Any, chat: Any, data: Path, tile: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every leave-one-region-out fold at one tile size."""
    from rsvlm.adapt.regression import RegressionHead, count_tiles, embed_rasters, regression_metrics
    from rsvlm.data.registry import open_dataset
    from rsvlm.tasks.chat.counting import count_metrics

    dataset = open_dataset(data / "neon_trees")
    regions = sorted(r.id for r in dataset.records if r.boxes is not None)
    train = {r: count_tiles(dataset, tile, tile // 2, regions=[r]) for r in regions}
    test = {r: count_tiles(dataset, tile, tile, regions=[r]) for r in regions}

    def embed(tiles: list[Any]) -> Any:
        return embed_rasters(model, [t.image for t in tiles], use_cache=not args.no_cache)

    t0 = time.time()
    train_x = {r: embed(train[r]) for r in regions}
    test_x = {r: embed(test[r]) for r in regions}
    n_tiles = sum(len(v) for v in (*train.values(), *test.values()))
    print(f"tile {tile}: embedded {n_tiles} tiles in {time.time() - t0:.0f}s", file=sys.stderr)
    folds = []
    for held in regions:
        fit_tiles = [t for r in regions if r != held for t in train[r]]
        x = np.concatenate([train_x[r] for r in regions if r != held])
        y = np.array([t.count for t in fit_tiles], dtype=np.float64)
        target = np.array([t.count for t in test[held]], dtype=np.float64)
        groups = block_groups(fit_tiles, tile) if args.cv == "blocks" else None
        fold: dict[str, Any] = {
            "tile": tile,
            "held_out": held,
            "train_regions": [r for r in regions if r != held],
            "n_train": len(y),
            "n_test": len(target),
            "test_counts": target.tolist(),
            "methods": {},
        }
        mean = float(y.mean())
        fold["methods"]["mean count"] = {"value": mean, **regression_metrics(np.full(len(target), mean), target)}
        for transform in TRANSFORMS:
            head = RegressionHead.for_model(model, target="trees", transform=transform).fit(x, y, groups)
            pred = head.predict(test_x[held])
            fold["methods"][f"ridge {transform}"] = {
                "alpha": head.alpha,
                "cv": head.cv,
                "predictions": pred.round(3).tolist(),
                **regression_metrics(pred, target),
            }
        if chat is not None and held == CHAT_HELDOUT:
            parsed = chat_counts(chat, test[held])
            fold["methods"]["chat"] = {
                "model": chat.name,
                "predictions": parsed,
                **count_metrics(parsed, target.tolist()),
            }
        folds.append(fold)
    return folds


def pooled(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """All folds of one tile size scored together (each test tile once)."""
    from rsvlm.adapt.regression import regression_metrics

    target = np.concatenate([f["test_counts"] for f in folds])
    out: dict[str, Any] = {"n_test": len(target), "methods": {}}
    for name in ("mean count", *(f"ridge {t}" for t in TRANSFORMS)):
        pred = np.concatenate(
            [f["methods"][name].get("predictions") or [f["methods"][name]["value"]] * f["n_test"] for f in folds]
        )
        out["methods"][name] = regression_metrics(pred, target)
    return out


def _cell(m: dict[str, Any] | None) -> str:
    if m is None:
        return "—"
    if m.get("mae") is None:
        return "no number"
    note = f" ({m['unparseable']} unparseable)" if m.get("unparseable") else ""
    return f"{m['mae']:.2f} / {m['rmse']:.2f}{note}"


def markdown(results: dict[str, Any]) -> str:
    chat_name = results.get("chat_model") or "chat"
    lines = [
        f"NEON tree counting per tile, MAE / RMSE in trees (features: {results['model']}; ridge penalty CV: "
        f"{results['cv']})",
        "",
        f"| protocol | test region | tile px | n train | n test | mean test count | mean count | ridge | ridge log1p "
        f"| {chat_name} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tile, block in results["tiles"].items():
        folds = block["folds"]
        order = sorted(folds, key=lambda f: f["held_out"] != CHAT_HELDOUT)
        for f in order:
            protocol = "A" if f["held_out"] == CHAT_HELDOUT else "B"
            m = f["methods"]
            chat = m.get("chat")
            chat_cell = _cell(chat) if chat else ("—" if results.get("chat_model") is None else "seen in training")
            label = "A (= B fold)" if protocol == "A" else "B"
            lines.append(
                f"| {label} | {site(f['held_out'])} | {tile} | {f['n_train']} | {f['n_test']} | "
                f"{np.mean(f['test_counts']):.2f} | {_cell(m['mean count'])} | {_cell(m['ridge none'])} | "
                f"{_cell(m['ridge log1p'])} | {chat_cell} |"
            )
        p = block["pooled"]
        lines.append(
            f"| B pooled | all 3 | {tile} | — | {p['n_test']} | — | {_cell(p['methods']['mean count'])} | "
            f"{_cell(p['methods']['ridge none'])} | {_cell(p['methods']['ridge log1p'])} | — |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--model", default="rsvlm-lite", help="contrastive model whose embeddings the head uses")
    parser.add_argument("--tiles", default="200,100", help="tile sizes in pixels, comma-separated")
    parser.add_argument("--cv", choices=("blocks", "loo"), default="blocks", help="how the ridge penalty is chosen")
    parser.add_argument("--no-chat", action="store_true", help="skip the chat model (it loads Gemma: slow)")
    parser.add_argument("--chat-model", default="rsvlm-lite-chat")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-neon-counting")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    if not (args.data / "neon_trees").is_dir():
        sys.exit(f"{args.data / 'neon_trees'}: not found; this benchmark needs the shared NEON data (--data)")
    tile_sizes = [int(t) for t in args.tiles.split(",") if t.strip()]

    from rsvlm.models.openclip import load_contrastive

    started = time.time()
    model = load_contrastive(args.model)
    chat = None
    if not args.no_chat:
        from rsvlm.models.chat.registry import load_chat

        chat = load_chat(args.chat_model)
    results: dict[str, Any] = {
        "model": model.name,
        "chat_model": None if chat is None else chat.name,
        "cv": "spatial blocks of 2x2 tiles (group k-fold)" if args.cv == "blocks" else "leave-one-out",
        "tiles": {},
    }
    for tile in tile_sizes:
        folds = run_tile_size(model, chat, args.data, tile, args)
        results["tiles"][str(tile)] = {"folds": folds, "pooled": pooled(folds)}
    results["seconds"] = round(time.time() - started, 1)
    table = markdown(results)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    for path, text in (
        (args.out / "results.json", json.dumps(results, indent=2) + "\n"),
        (args.out / "results.md", table + "\n"),
        (args.json, json.dumps(results, indent=2) + "\n"),
        (args.markdown, table + "\n"),
    ):
        if path is not None:
            path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
