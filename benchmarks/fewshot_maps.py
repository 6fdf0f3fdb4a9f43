"""Scene maps adapted from a few labelled points (GeoJSON) against zero-shot maps, scored on held-out map cells.

Everything goes through the code a user runs: the points are written as GeoJSON files, read back by
``rsvlm.geo.labels.read_labels`` (reprojection, tile under each point), embedded and fitted by
``rsvlm.geo.fewshot.fit_scene_adapter``, and the maps come from ``rsvlm.geo.analyse.analyse_scene`` (the same
GeoTIFF class maps ``rsvlm demo --labels`` writes). Only the model's ``encode_images`` is memoised by each tile's
pixels, so the many maps of one scene do not re-encode the same tiles (same numbers, less time).

(a) Sen1Floods11 chip Spain_7370579 (Sentinel-2 L1C, 13 bands, 512 x 512 px at ~10 m, EPSG:4326; hand labels
    -1 no data / 0 not water / 1 water). Tiles 32 px (~320 m) every 16 px; a map cell is 16 x 16 px and its
    truth is the majority of its labelled pixels. Classes ``water`` and ``land``. Per seed, K points per class
    are drawn uniformly from the pixels the hand labels give that class (a user clicking on water and on land)
    and written as a WGS84 GeoJSON; the cells under any training tile are left out of the score, so every
    method, zero-shot included, is scored on the same held-out cells. Metric: water IoU over held-out cells.
    Zero-shot baselines: the same two class names (``water``, ``land``), and the ``water-land`` class preset
    (open water, wetland, vegetation, built-up area, bare ground; a cell is water when ``open water`` wins).
(b) LoveDA, 3 tiles 1024 x 1024 px RGB at 0.3 m, with masks (1 background, 2 building, 3 road, 4 water,
    5 barren, 6 forest, 7 agriculture; 0 no data). The PNGs carry no georeference: each is written as a GeoTIFF
    in EPSG:32650 (UTM 50N, a stated, arbitrary placement: 0.3 m pixels, tile k's corner at E 500000 + 2000 k,
    N 3400000) and the points as GeoJSON with a legacy ``crs`` member naming EPSG:32650. Tiles 256 px (77 m)
    every 64 px; cells of 64 px, truth the majority of the cell's labelled pixels. Leave one tile out: K points
    per class drawn from the pooled pixels of the two other tiles, the map of the third scored (pixel accuracy
    over cells, mIoU over the classes present in its truth). Zero-shot: the same class names as prompts.

Seeds 1, 2, 3 (the point draws and the methods' own seeds); mean ± std over seeds. ``--placement uniform``: a point
on any pixel of its class; ``majority``: only where the class also covers half the tile-sized window around it (a
click in the middle of a tile-sized patch). Usage:

    python benchmarks/fewshot_maps.py [DATA_DIR] [--shots 5 20] [--methods prototype,tip-adapter-f,...]
        [--placement uniform majority] [--out TABLES.md] [--examples DIR]

DATA_DIR defaults to $RSVLM_SHARED_DATA or ../shared/data. ``--out`` writes the tables alone (the narrative of
``benchmarks/results/fewshot_maps.md`` is written by hand around them); ``--examples`` writes the seed-1 GeoJSON
of the largest K there (``benchmarks/results/fewshot_maps_labels/``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("RSVLM_SHARED_DATA", ROOT.parent / "shared" / "data"))
FLOOD = "flood/sen1floods11"
CHIP = "Spain_7370579"
LOVEDA = "segmentation/loveda"
LOVEDA_CLASSES = {1: "background", 2: "building", 3: "road", 4: "water", 5: "barren", 6: "forest", 7: "agriculture"}
LOVEDA_CRS = "EPSG:32650"
DEFAULT_METHODS = ("prototype", "linear-probe", "tip-adapter", "tip-adapter-f", "clip-adapter")
SEEDS = (1, 2, 3)


class MemoModel:
    """The base model with ``encode_images`` memoised per tile (by its preprocessed pixels); all else delegated, so
    it has the base's identity (an adapter fitted through it applies to the base, and back)."""

    def __init__(self, base: Any) -> None:
        self._base = base
        self._memo: dict[bytes, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    def encode_images(self, pixels: Any) -> Any:
        import torch

        keys = [hashlib.blake2b(p.numpy().tobytes(), digest_size=16).digest() for p in pixels]
        todo = [i for i, k in enumerate(keys) if k not in self._memo]
        if todo:
            out = self._base.encode_images(pixels[todo])
            for i, row in zip(todo, out, strict=True):
                self._memo[keys[i]] = row
        return torch.stack([self._memo[k] for k in keys])


# -- points as GeoJSON -----------------------------------------------------------------------------------------
def draw_points(
    truth: np.ndarray, values: dict[int, str], k: int, rng: np.random.Generator
) -> list[tuple[float, float, str]]:
    """K pixel centres per class value, uniformly among the pixels the truth gives that class."""
    points = []
    for value, name in values.items():
        rows, cols = np.nonzero(truth == value)
        if len(rows) == 0:
            continue
        pick = rng.choice(len(rows), size=min(k, len(rows)), replace=False)
        points += [(cols[i] + 0.5, rows[i] + 0.5, name) for i in pick]
    return points


def majority_only(truth: np.ndarray, tile: int, ignore: int) -> np.ndarray:
    """The truth where a pixel's class covers at least half of the tile-sized window centred on it (clipped to the
    image), else ``ignore``: where a user labelling the middle of a tile-sized patch of a class would click."""
    h, w = truth.shape
    rows, cols = np.arange(h) - tile // 2, np.arange(w) - tile // 2
    r0, r1 = np.clip(rows, 0, h), np.clip(rows + tile, 0, h)
    c0, c1 = np.clip(cols, 0, w), np.clip(cols + tile, 0, w)
    area = (r1 - r0)[:, None] * (c1 - c0)[None, :]
    out = np.full_like(truth, ignore)
    for value in np.unique(truth):
        if value == ignore:
            continue
        mask = truth == value
        table = np.pad(mask.astype(np.int64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)  # summed-area table
        inside = table[r1][:, c1] - table[r0][:, c1] - table[r1][:, c0] + table[r0][:, c0]
        out[mask & (inside * 2 >= area)] = value
    return out


def write_points(
    path: Path, points: Sequence[tuple[float, float, str]], transform: Any, crs_member: str | None
) -> Path:
    features = []
    for col, row, name in points:
        x, y = transform @ (col, row)
        geometry = {"type": "Point", "coordinates": [round(x, 8), round(y, 8)]}
        features.append({"type": "Feature", "properties": {"class": name}, "geometry": geometry})
    data: dict[str, Any] = {"type": "FeatureCollection"}
    if crs_member is not None:
        data["crs"] = {"type": "name", "properties": {"name": crs_member}}
    data["features"] = features
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


# -- map cells ---------------------------------------------------------------------------------------------------
def cell_truth(labels: np.ndarray, stride: int, shape: tuple[int, int], ignore: int) -> np.ndarray:
    """The majority label of each cell's labelled pixels (``ignore`` where a cell has none)."""
    out = np.full(shape, ignore, dtype=np.int64)
    for r in range(shape[0]):
        for c in range(shape[1]):
            block = labels[r * stride : (r + 1) * stride, c * stride : (c + 1) * stride].ravel()
            block = block[block != ignore]
            if block.size:
                values, counts = np.unique(block, return_counts=True)
                out[r, c] = values[np.argmax(counts)]
    return out


def covered_cells(labels: Any, stride: int, shape: tuple[int, int]) -> np.ndarray:
    """Cells any training tile covers: left out of the score."""
    mask = np.zeros(shape, dtype=bool)
    for t in labels.tiles:
        w = t.window
        mask[w.row // stride : -(-(w.row + w.height) // stride), w.col // stride : -(-(w.col + w.width) // stride)] = (
            True
        )
    return mask


def class_map(
    scene: Any, model: Any, settings: Any, overview: Any, work: Path, **kwargs: Any
) -> tuple[np.ndarray, list[str]]:
    from rsvlm.geo.analyse import analyse_scene

    analysis = analyse_scene(scene, model, work, settings=settings, overview=overview, picks_per_class=0, **kwargs)
    return analysis.scores.class_map().astype(np.int64), analysis.classes


def mean_std(values: Sequence[float]) -> str:
    if not values:
        return "—"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


# -- (a) Sen1Floods11 ------------------------------------------------------------------------------------------
def flood(
    data: Path, model: Any, methods: Sequence[str], shots: Sequence[int], examples: Path | None, work: Path,
    placement: str,
) -> dict[str, Any]:  # fmt: skip
    import rasterio
    from affine import Affine

    from rsvlm.geo.analyse import CLASS_PRESETS, scene_overview
    from rsvlm.geo.fewshot import LabelledScene, fit_scene_adapter
    from rsvlm.geo.labels import read_labels
    from rsvlm.geo.maps import MapSettings, scene_stats
    from rsvlm.geo.source import open_scene

    folder = data / FLOOD
    s2, hand = folder / "S2" / f"{CHIP}_S2Hand.tif", folder / "Labels" / f"{CHIP}_LabelHand.tif"
    with rasterio.open(hand) as src:
        truth = src.read(1).astype(np.int64)
    scene = open_scene(s2)
    settings = MapSettings(tile=32, stride=16)
    overview = scene_overview(scene)
    stats = scene_stats(scene, overview=overview)
    shape = (-(-scene.height // settings.stride), -(-scene.width // settings.stride))
    cells = cell_truth(truth, settings.stride, shape, ignore=-1)
    water = cells == 1

    def iou(predicted_water: np.ndarray, keep: np.ndarray) -> float:
        keep = keep & (cells != -1)
        inter = (predicted_water & water & keep).sum()
        union = ((predicted_water | water) & keep).sum()
        return float(inter / union) if union else float("nan")

    zs_two, names_two = class_map(scene, model, settings, overview, work / "zs2", classes=["water", "land"])
    zs_preset, names_preset = class_map(
        scene, model, settings, overview, work / "zs5", classes=list(CLASS_PRESETS["water-land"])
    )
    baselines = {
        "zero-shot (water, land)": zs_two == names_two.index("water"),
        "zero-shot (water-land preset)": zs_preset == names_preset.index("open water"),
    }
    rows: dict[str, dict[int, list[float]]] = {name: {k: [] for k in shots} for name in [*baselines, *methods]}
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    for k in shots:
        for seed in SEEDS:
            drawable = truth if placement == "uniform" else majority_only(truth, settings.tile, -1)
            points = draw_points(drawable, {1: "water", 0: "land"}, k, np.random.default_rng(seed))
            path = write_points(work / f"flood_k{k}_s{seed}.geojson", points, Affine(*scene.transform), None)
            if examples is not None and k == max(shots) and seed == SEEDS[0] and placement == "uniform":
                write_points(
                    examples / f"sen1floods11_{CHIP}_water_land_{k}pts.geojson", points, Affine(*scene.transform), None
                )
            labels = read_labels(path, scene, settings.tile, stride=settings.stride, seed=seed)
            keep = ~covered_cells(labels, settings.stride, shape)
            for name, predicted in baselines.items():
                rows[name][k].append(iou(predicted, keep))
            part = LabelledScene(scene, labels, stats)
            for method in methods:
                adapter = fit_scene_adapter([part], model, method=method, seed=seed)
                seconds[method].append(adapter.seconds)  # the method's fit alone (the tiles are embedded once)
                adapted, names = class_map(
                    scene, model, settings, overview, work / f"{method}_{k}_{seed}", adapter=adapter
                )
                rows[method][k].append(iou(adapted == names.index("water"), keep))
            print(f"  flood K={k} seed={seed}: {labels.describe()}", file=sys.stderr, flush=True)
    return {"rows": rows, "seconds": seconds, "water_cells": int(water.sum()), "cells": int((cells != -1).sum())}


# -- (b) LoveDA ------------------------------------------------------------------------------------------------
def loveda_scenes(data: Path, work: Path) -> list[tuple[Path, np.ndarray, Any]]:
    """Each LoveDA tile as a GeoTIFF at its stated placement in EPSG:32650, with its mask and transform."""
    import rasterio
    from affine import Affine
    from PIL import Image

    out = []
    for k in range(3):
        rgb = np.asarray(Image.open(data / LOVEDA / "images" / f"{k}.png").convert("RGB"))
        mask = np.asarray(Image.open(data / LOVEDA / "masks" / f"{k}.png")).astype(np.int64)
        transform = Affine(0.3, 0.0, 500000.0 + 2000.0 * k, 0.0, -0.3, 3400000.0)
        path = work / f"loveda_{k}.tif"
        profile = {"driver": "GTiff", "width": rgb.shape[1], "height": rgb.shape[0], "count": 3, "dtype": "uint8",
                   "crs": LOVEDA_CRS, "transform": transform}  # fmt: skip
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.moveaxis(rgb, -1, 0))
        out.append((path, mask, transform))
    return out


def loveda(
    data: Path, model: Any, methods: Sequence[str], shots: Sequence[int], examples: Path | None, work: Path,
    placement: str,
) -> dict[str, Any]:  # fmt: skip
    from rsvlm.geo.analyse import scene_overview
    from rsvlm.geo.fewshot import LabelledScene, fit_scene_adapter
    from rsvlm.geo.labels import read_labels
    from rsvlm.geo.maps import MapSettings, scene_stats
    from rsvlm.geo.source import open_scene

    settings = MapSettings(tile=256, stride=64)
    tiles = loveda_scenes(data, work)
    scenes = [open_scene(p) for p, _, _ in tiles]
    overviews = [scene_overview(s) for s in scenes]
    stats = [scene_stats(s, overview=o) for s, o in zip(scenes, overviews, strict=True)]
    shape = (1024 // settings.stride, 1024 // settings.stride)
    truths = [cell_truth(m, settings.stride, shape, ignore=0) for _, m, _ in tiles]
    names = list(LOVEDA_CLASSES.values())

    def score(predicted_names: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
        keep = truth != 0
        t = np.array([LOVEDA_CLASSES.get(int(v), "") for v in truth.ravel()]).reshape(truth.shape)
        acc = float((predicted_names[keep] == t[keep]).mean())
        ious = []
        for name in sorted(set(t[keep].tolist())):
            inter = ((predicted_names == name) & (t == name) & keep).sum()
            union = (((predicted_names == name) | (t == name)) & keep).sum()
            ious.append(inter / union)
        return acc, float(np.mean(ious))

    rows: dict[str, dict[int, list[tuple[int, float, float]]]] = {
        n: {k: [] for k in shots} for n in ["zero-shot", *methods]
    }
    for test in range(3):
        zs, zs_names = class_map(scenes[test], model, settings, overviews[test], work / f"lzs{test}", classes=names)
        zs_pred = np.array([*zs_names, ""])[np.where(zs == 255, len(zs_names), zs)]
        train = [i for i in range(3) if i != test]
        for k in shots:
            for seed in SEEDS:
                rows["zero-shot"][k].append((test, *score(zs_pred, truths[test])))
                masks = [tiles[i][1] if placement == "uniform" else majority_only(tiles[i][1], 256, 0) for i in train]
                pooled = np.concatenate(masks, axis=1)  # side by side: one draw over both tiles
                points = draw_points(pooled, LOVEDA_CLASSES, k, np.random.default_rng(seed))
                parts = []
                for j, i in enumerate(train):
                    own = [(c - 1024 * j, r, n) for c, r, n in points if 1024 * j <= c < 1024 * (j + 1)]
                    path = write_points(work / f"loveda_t{test}_{i}_k{k}_s{seed}.geojson", own, tiles[i][2], LOVEDA_CRS)
                    if (
                        examples is not None
                        and test == 2
                        and k == max(shots)
                        and seed == SEEDS[0]
                        and placement == "uniform"
                    ):
                        write_points(examples / f"loveda_tile{i}_{k}pts.geojson", own, tiles[i][2], LOVEDA_CRS)
                    labels = read_labels(
                        path, scenes[i], settings.tile, stride=settings.stride, seed=seed, min_classes=1
                    )
                    parts.append(LabelledScene(scenes[i], labels, stats[i]))
                for method in methods:
                    adapter = fit_scene_adapter(parts, model, method=method, seed=seed)
                    adapted, adapted_names = class_map(
                        scenes[test],
                        model,
                        settings,
                        overviews[test],
                        work / f"l{method}_{test}_{k}_{seed}",
                        adapter=adapter,
                    )
                    pred = np.array([*adapted_names, ""])[np.where(adapted == 255, len(adapted_names), adapted)]
                    rows[method][k].append((test, *score(pred, truths[test])))
                print(f"  loveda test={test} K={k} seed={seed} done", file=sys.stderr, flush=True)
    return {"rows": rows}


# -- tables ----------------------------------------------------------------------------------------------------
def flood_table(result: dict[str, Any], shots: Sequence[int]) -> str:
    rows = result["rows"]
    head = "| map | " + " | ".join(f"water IoU, K={k}" for k in shots) + " | fit (s) |"
    lines = [head, "|---|" + "---:|" * (len(shots) + 1)]
    for name, by_k in rows.items():
        fit = result["seconds"].get(name)
        timing = f"{np.mean(fit):.2f}" if fit else "—"
        lines.append(f"| {name} | " + " | ".join(mean_std(by_k[k]) for k in shots) + f" | {timing} |")
    return "\n".join(lines)


def loveda_table(result: dict[str, Any], k: int) -> str:
    """Per held-out tile: pixel accuracy and mIoU over cells (mean ± std over seeds), then their mean over tiles."""
    rows = result["rows"]
    head = "| map | " + " | ".join(f"tile {t}: acc | tile {t}: mIoU" for t in range(3)) + " | mean acc | mean mIoU |"
    lines = [head, "|---|" + "---:|" * 8]
    for name, by_k in rows.items():
        cells = []
        for t in range(3):
            runs = [(a, m) for test, a, m in by_k[k] if test == t]
            cells += [mean_std([a for a, _ in runs]), mean_std([m for _, m in runs])]
        cells += [f"{np.mean([a for _, a, _ in by_k[k]]):.3f}", f"{np.mean([m for _, _, m in by_k[k]]):.3f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--only", choices=["flood", "loveda"], default=None)
    parser.add_argument(
        "--placement", nargs="+", choices=["uniform", "majority"], default=["uniform"],
        help="Where points fall: uniformly on the class's pixels, or only where the class covers half the tile.",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="Markdown file for the tables.")
    parser.add_argument("--examples", type=Path, default=None, help="Folder for the seed-1 example GeoJSON files.")
    args = parser.parse_args()
    if not (args.data / FLOOD).is_dir() or not (args.data / LOVEDA).is_dir():
        print(
            f"no Sen1Floods11 / LoveDA data under {args.data} (give DATA_DIR, or set RSVLM_SHARED_DATA)",
            file=sys.stderr,
        )
        return 2
    from rsvlm.models.openclip import load_contrastive

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    model = MemoModel(load_contrastive(None, None, download=False))
    if args.examples is not None:
        args.examples.mkdir(parents=True, exist_ok=True)
    command = (
        f"python benchmarks/fewshot_maps.py --shots {' '.join(map(str, args.shots))} --methods {','.join(methods)} "
        f"--placement {' '.join(args.placement)}"
    )
    parts = [f"Model: {model.name} (weights {model.weights_id[:12]}); seeds {', '.join(map(str, SEEDS))}; "
             f"K = labelled points per class. `{command}`."]  # fmt: skip
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for placement in args.placement:
            where = f"points {placement}" if placement == "uniform" else "points where the class holds half the tile"
            if args.only in (None, "flood"):
                result = flood(args.data, model, methods, args.shots, args.examples, work, placement)
                parts += [f"## Sen1Floods11 {CHIP}, {where}: water IoU on held-out map cells "
                          f"({result['water_cells']} of {result['cells']} labelled cells are water)",
                          flood_table(result, args.shots)]  # fmt: skip
                print(parts[-1], flush=True)
            if args.only in (None, "loveda"):
                result = loveda(args.data, model, methods, args.shots, args.examples, work, placement)
                for k in args.shots:
                    parts += [f"## LoveDA, K={k}, {where}: leave one tile out, 3 seeds per held-out tile, "
                              "cells of 64 px (19 m)", loveda_table(result, k)]  # fmt: skip
                    print(parts[-1], flush=True)
    parts.append(f"Total {time.perf_counter() - start:.0f} s.")
    if args.out is not None:
        args.out.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
