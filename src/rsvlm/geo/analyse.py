"""One scene in, maps and highlighted tiles out: what ``rsvlm map`` and ``rsvlm demo`` do for each scene.

All texts (land-cover classes and free-text queries) are scored in one pass over the tiles, so asking
for more heatmaps costs text embeddings, not another pass over the pixels. Files written per scene:

- ``landcover.tif`` (class index, colour table) and ``landcover_probabilities.tif`` (one band per class);
- ``query_<text>.tif``: cosine similarity of each cell to the query (raw, comparable across scenes);
- PNG overlays of each on the scene's composite, and ``composite.png``;
- ``summary.json``: classes, shares, tiles, settings, the picked tiles and the files.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rsvlm.data.raster import Window
from rsvlm.data.sample import RasterImage
from rsvlm.errors import RsvlmError
from rsvlm.geo.bands import BandStats, rgb_composite
from rsvlm.geo.maps import DEFAULT_LOGIT_SCALE, MapSettings, SceneScores, scene_stats, score_scene, text_embeddings
from rsvlm.geo.outputs import (
    CLASS_NODATA,
    classes_rgb,
    overlay,
    ramp,
    write_class_map,
    write_float_map,
    write_png,
)
from rsvlm.geo.source import Scene
from rsvlm.models.protocols import ContrastiveModel

LANDCOVER_CLASSES = (
    "forest",
    "farmland",
    "residential area",
    "industrial area",
    "river",
    "sea",
    "beach",
    "wetland",
    "bare land",
    "meadow",
)
"""Default zero-shot classes: broad land cover, named as the RS caption sets name them."""

CLASS_PRESETS: dict[str, tuple[str, ...]] = {
    "landcover": LANDCOVER_CLASSES,
    "aid": (
        "airport", "bare land", "baseball field", "beach", "bridge", "center", "church", "commercial area",
        "dense residential area", "desert", "farmland", "forest", "industrial area", "meadow",
        "medium residential area", "mountain", "park", "parking lot", "playground", "pond", "port",
        "railway station", "resort", "river", "school", "sparse residential area", "square", "stadium",
        "storage tanks", "viaduct",
    ),  # the 30 AID scene classes (Xia et al., 2017), readable names
    "water-land": ("open water", "wetland", "vegetation", "built-up area", "bare ground"),
}  # fmt: skip


def class_list(spec: str) -> list[str]:
    """A preset name (``landcover``, ``aid``, ``water-land``) or comma-separated class names."""
    if spec in CLASS_PRESETS:
        return list(CLASS_PRESETS[spec])
    names = [c.strip() for c in spec.split(",") if c.strip()]
    if len(names) < 2:
        raise RsvlmError(
            f"classes {spec!r}: give a preset ({', '.join(CLASS_PRESETS)}) or at least two comma-separated names"
        )
    return names


MAP_TEMPLATES = (
    "a satellite photo of a {}.",
    "an aerial photo of a {}.",
    "a remote sensing image of a {}.",
    "an overhead image showing a {}.",
    "a satellite image of the {}.",
)


@dataclass
class PickedTile:
    """A tile worth showing: the most typical tile of a class, or the best match of a query."""

    reason: str
    window: Window
    score: float
    image: RasterImage = field(repr=False)
    """The tile's 8-bit RGB composite (what a chat model is shown)."""
    caption: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "window": asdict(self.window), "score": self.score, "caption": self.caption}


@dataclass
class SceneAnalysis:
    scene: Scene
    classes: list[str]
    queries: list[str]
    scores: SceneScores
    settings: MapSettings
    class_share: dict[str, float]
    picks: list[PickedTile]
    files: dict[str, Path]
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {
            "scene": self.scene.describe(),
            "crs": self.scene.crs,
            "size": [self.scene.width, self.scene.height],
            "settings": asdict(self.settings),
            "tiles_scored": self.scores.tiles_scored,
            "tiles_skipped": self.scores.tiles_skipped,
            "classes": self.classes,
            "class_share": self.class_share,
            "queries": self.queries,
            "picks": [p.to_dict() for p in self.picks],
            "files": {k: str(v) for k, v in self.files.items()},
            "seconds": round(self.seconds, 2),
        }


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "query"


def analyse_scene(
    scene: Scene,
    model: ContrastiveModel,
    out: Path,
    *,
    classes: Sequence[str] = LANDCOVER_CLASSES,
    queries: Sequence[str] = (),
    settings: MapSettings | None = None,
    templates: Sequence[str] = MAP_TEMPLATES,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    picks_per_class: int = 3,
) -> SceneAnalysis:
    """Land-cover and query maps of ``scene`` written under ``out``, plus the tiles worth a caption."""
    start = time.perf_counter()
    settings = settings or MapSettings()
    texts = [*classes, *queries]
    embeddings = text_embeddings(model, texts, templates)
    overview = scene.overview(1024)  # read once: stretch limits and the overlays' base
    stats = scene_stats(scene, overview=overview)
    scores = score_scene(scene, model, embeddings, texts, settings, stats=stats, scheduler=scheduler, progress=progress)
    k = len(classes)
    land = SceneScores(
        list(classes), scores.similarity[:k], scores.transform, scores.crs, scores.tiles_scored, scores.tiles_skipped
    )
    logit_scale = float(getattr(model, "logit_scale", DEFAULT_LOGIT_SCALE))
    probs = land.probabilities(logit_scale)
    class_map = land.class_map()
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["landcover.tif"] = write_class_map(out / "landcover.tif", class_map, scores.transform, scores.crs, classes)
    files["landcover_probabilities.tif"] = write_float_map(
        out / "landcover_probabilities.tif", probs, scores.transform, scores.crs, classes
    )
    base = rgb_composite(overview, scene.rgb, stats).to_hwc()
    cell = settings.stride * overview.width / scene.width
    files["composite.png"] = write_png(out / "composite.png", base)
    files["landcover.png"] = write_png(
        out / "landcover.png", overlay(base, classes_rgb(class_map), cell, mask=land.valid)
    )
    for j, query in enumerate(queries):
        sim = scores.similarity[k + j]
        name = f"query_{slug(query)}"
        files[f"{name}.tif"] = write_float_map(out / f"{name}.tif", sim, scores.transform, scores.crs, [query])
        files[f"{name}.png"] = write_png(
            out / f"{name}.png", overlay(base, ramp(sim), cell, alpha=0.6, mask=land.valid)
        )
    valid = class_map != CLASS_NODATA
    total = max(int(valid.sum()), 1)
    share = {c: float((class_map == i).sum()) / total for i, c in enumerate(classes)}
    picks = _pick_tiles(scene, stats, settings, classes, share, probs, queries, scores.similarity[k:], picks_per_class)
    analysis = SceneAnalysis(
        scene, list(classes), list(queries), scores, settings, share, picks, files, time.perf_counter() - start
    )
    return analysis


def write_summary(analysis: SceneAnalysis, out: Path) -> Path:
    path = out / "summary.json"
    path.write_text(json.dumps(analysis.summary(), indent=2), encoding="utf-8")
    return path


def _pick_tiles(
    scene: Scene,
    stats: BandStats,
    settings: MapSettings,
    classes: Sequence[str],
    share: dict[str, float],
    probs: npt.NDArray[np.float32],
    queries: Sequence[str],
    query_sims: npt.NDArray[np.float32],
    per_class: int,
) -> list[PickedTile]:
    """The most confident cell of the most common classes, and the best cell of each query, as tiles."""
    picks: list[PickedTile] = []
    top = sorted((c for c in classes if share[c] > 0), key=lambda c: -share[c])[:per_class]
    for name in top:
        i = list(classes).index(name)
        picks.append(_tile_at(scene, stats, settings, probs[i], f"most typical '{name}' tile"))
    for query, sim in zip(queries, query_sims, strict=True):
        picks.append(_tile_at(scene, stats, settings, sim, f"best match for '{query}'"))
    return picks


def _tile_at(
    scene: Scene, stats: BandStats, settings: MapSettings, grid: npt.NDArray[np.float32], reason: str
) -> PickedTile:
    filled = np.where(np.isnan(grid), -np.inf, grid)
    r, c = np.unravel_index(int(np.argmax(filled)), grid.shape)
    half = (settings.tile - settings.stride) // 2
    col = int(np.clip(c * settings.stride - half, 0, max(scene.width - settings.tile, 0)))
    row = int(np.clip(r * settings.stride - half, 0, max(scene.height - settings.tile, 0)))
    window = Window(col, row, min(settings.tile, scene.width), min(settings.tile, scene.height))
    image, _ = scene.read(window)
    return PickedTile(reason, window, float(grid[r, c]), rgb_composite(image, scene.rgb, stats))
