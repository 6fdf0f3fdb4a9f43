"""The tree-count section of ``rsvlm demo``: a count head fitted on the other NEON images maps trees over the
held-out one, compared with its hand-drawn crowns and with the chat model's answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsvlm.fileio import atomic_write_json
from rsvlm.geo.report import esc, figure, file_links, table
from rsvlm.geo.source import Scene, open_scene

if TYPE_CHECKING:
    from rsvlm.models.chat.protocol import ChatModel
    from rsvlm.models.protocols import ContrastiveModel

Log = Callable[[str], None]

TREE_TILE = 100
"""NEON tiles for counting: 100 px (10 m at 0.1 m) — 16 held-out tiles in OSBS_029 instead of 4 at 200 px."""
TREE_TEST = "OSBS_029"
"""The held-out NEON region, as in the chat model's instruction data (never seen in training)."""
NEON_SOURCE = (
    "NEON Airborne Observation Platform RGB orthophoto, 10 cm (deepforest test data), with hand-drawn crown "
    "boxes; NEON data are CC0 1.0 (NEON, operated by Battelle, funded by the U.S. National Science Foundation)"
)


@dataclass
class TreeResult:
    scene: Scene
    tiles: list[dict[str, Any]]
    metrics: dict[str, dict[str, float]]
    train_tiles: int
    train_mean: float
    files: dict[str, Path]
    overlay: Any


def count_trees(neon: Path, model: ContrastiveModel, chat: ChatModel | None, out: Path, log: Log) -> TreeResult:
    """Fit a count head on the other NEON images, map counts over the held-out one, compare with its crowns."""
    from rsvlm.adapt.regression import RegressionHead, count_tiles, embed_rasters, regression_metrics
    from rsvlm.data.registry import open_dataset
    from rsvlm.geo.boxes import SceneBoxes
    from rsvlm.geo.counting import count_scene
    from rsvlm.geo.geojson import write_geojson
    from rsvlm.geo.outputs import overlay, ramp, write_float_map, write_png

    dataset = open_dataset(neon)
    train_regions = [r.id for r in dataset.records if r.boxes is not None and r.id != TREE_TEST]
    train = count_tiles(dataset, TREE_TILE, TREE_TILE // 2, regions=train_regions)
    log(f"tree counts: fitting a ridge head on {len(train)} tiles of {', '.join(train_regions)}")
    head = RegressionHead.for_model(model, target="trees").fit(
        embed_rasters(model, [t.image for t in train]), [t.count for t in train]
    )
    scene = open_scene(neon / f"{TREE_TEST}.tif")
    counts = count_scene(scene, model, head, TREE_TILE)
    record = next(r for r in dataset.records if r.id == TREE_TEST)
    assert record.boxes is not None
    truth = count_tiles(dataset, TREE_TILE, regions=[TREE_TEST])
    rows: list[dict[str, Any]] = []
    chat_answers: list[float | None] = [None] * len(truth)
    if chat is not None:
        chat_answers = _chat_counts(chat, [t.image for t in truth])
    train_mean = float(np.mean([t.count for t in train]))
    for t, answer in zip(truth, chat_answers, strict=True):
        x, y, _, _ = t.window
        rows.append(
            {
                "col": x,
                "row": y,
                "true": t.count,
                "head": float(counts.counts[y // TREE_TILE, x // TREE_TILE]),
                "chat": answer,
            }
        )
    truth_counts = [r["true"] for r in rows]
    metrics = {
        "regression head": regression_metrics([r["head"] for r in rows], truth_counts),
        f"mean count of training tiles ({train_mean:.2f})": regression_metrics([train_mean] * len(rows), truth_counts),
    }
    if chat is not None:
        metrics[f"{chat.name} (answer parsed)"] = regression_metrics(
            [r["chat"] if r["chat"] is not None else 0.0 for r in rows], truth_counts
        )
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "tree_counts.tif": write_float_map(
            out / "tree_counts.tif", counts.counts, counts.transform, counts.crs, ["predicted trees per tile"]
        ),
    }
    files["tree_counts.geojson"] = write_geojson(out / "tree_counts.geojson", counts.to_geojson(wgs84=True))
    boxes = SceneBoxes(record.boxes.xyxy.astype(np.float64), np.ones(len(record.boxes)), ("tree",) * len(record.boxes))
    assert scene.crs is not None
    files["annotated_crowns.geojson"] = write_geojson(
        out / "annotated_crowns.geojson", boxes.to_geojson(scene.transform, scene.crs, wgs84=True)
    )
    image, _ = scene.read(_whole(scene))
    base = np.ascontiguousarray(np.moveaxis(image.data[:3], 0, -1))
    shaded = overlay(base, ramp(counts.counts, 0.0, float(np.nanmax(counts.counts)) or 1.0), TREE_TILE, alpha=0.35)
    _draw_boxes(shaded, record.boxes.xyxy)
    files["tree_counts.png"] = write_png(out / "tree_counts.png", shaded)
    atomic_write_json(out / "tree_counts.json", {"tiles": rows, "metrics": metrics, "train_tiles": len(train)})
    return TreeResult(scene, rows, metrics, len(train), train_mean, files, shaded)


def _whole(scene: Scene) -> Any:
    from rsvlm.data.raster import Window

    return Window(0, 0, scene.width, scene.height)


def _draw_boxes(rgb: Any, xyxy: Any) -> None:
    """Annotated crowns as 1-pixel white outlines (in place)."""
    h, w = rgb.shape[:2]
    for x1, y1, x2, y2 in np.asarray(xyxy, dtype=np.float64):
        c1, c2 = int(max(0, min(w - 1, x1))), int(max(0, min(w - 1, x2)))
        r1, r2 = int(max(0, min(h - 1, y1))), int(max(0, min(h - 1, y2)))
        rgb[r1, c1 : c2 + 1] = 255
        rgb[r2, c1 : c2 + 1] = 255
        rgb[r1 : r2 + 1, c1] = 255
        rgb[r1 : r2 + 1, c2] = 255


def _chat_counts(chat: ChatModel, images: list[Any]) -> list[float | None]:
    from rsvlm.data.sample import Sample
    from rsvlm.models.chat.protocol import ChatRequest, GenerationConfig
    from rsvlm.tasks.chat.counting import parse_count
    from rsvlm.tasks.chat.registry import make_task

    task = make_task("counting", object_name="tree")
    requests = [ChatRequest.ask(im, task.prompt(Sample(id=str(i)), chat.family)) for i, im in enumerate(images)]
    return [parse_count(a) for a in chat.generate(requests, GenerationConfig(max_new_tokens=8))]


def tree_section(t: TreeResult, root: Path) -> str:
    metric_rows = [[name, f"{m['mae']:.2f}", f"{m['rmse']:.2f}", f"{m['bias']:+.2f}"] for name, m in t.metrics.items()]
    tile_rows = [
        [f"({r['col']}, {r['row']})", r["true"], f"{r['head']:.1f}", "—" if r["chat"] is None else f"{r['chat']:g}"]
        for r in t.tiles
    ]
    total_true = sum(r["true"] for r in t.tiles)
    total_head = sum(r["head"] for r in t.tiles)
    return (
        f"<p>Tree crowns counted per {TREE_TILE} px tile ({TREE_TILE * 0.1:g} m at 0.1 m) of the NEON image "
        f"{TREE_TEST}, which no model saw in training (source: {esc(NEON_SOURCE)}). "
        "The regression head is a ridge regression on rsvlm-lite "
        f"embeddings, fitted here on {t.train_tiles} tiles of the other NEON images (mean {t.train_mean:.2f} trees "
        f"per tile). Totals: annotated {total_true}, regression head {total_head:.1f}.</p>"
        + figure(t.overlay, "Predicted trees per tile (shading) and the annotated crowns (white boxes).")
        + table(["method", "MAE", "RMSE", "bias"], metric_rows)
        + table(["tile (col, row)", "annotated", "regression head", "chat answer"], tile_rows)
        + "<p class='muted'>16 tiles of one 40 m × 40 m image: a demonstration, not a benchmark "
        "(<code>benchmarks/neon_counting.py</code> has the full protocol).</p>"
        + f"<h3>Files</h3>{file_links(t.files, root)}"
    )
