"""One scene in, maps and highlighted tiles out: what ``rsvlm map`` and ``rsvlm demo`` do for each scene.

All texts (land-cover classes and free-text queries) are scored in one pass over the tiles, so asking
for more heatmaps costs text embeddings, not another pass over the pixels. Files written per scene:

- ``landcover.tif`` (class index, colour table) and ``landcover_probabilities.tif`` (one band per class);
- ``query_<text>.tif``: cosine similarity of each cell to the query (raw, comparable across scenes);
- PNG overlays of each on the scene's composite, and ``composite.png``;
- ``summary.json``: classes, shares, tiles, settings, the picked tiles and the files.

With a few-shot ``Adapter`` (fitted on labelled tiles, ``rsvlm.geo.labels``) the land-cover classes are the
adapter's and their probabilities the softmax of its logits; queries are still scored from text, and
``summary.json`` names the adapter (method, shots, classes, base model).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.data.bands import BandStats, data_mask, rgb_composite
from rsvlm.data.raster import Window
from rsvlm.data.sample import RasterImage
from rsvlm.errors import DataError, RsvlmError
from rsvlm.fileio import atomic_write_json, unique_slugs
from rsvlm.geo.domain import domain_notes
from rsvlm.geo.maps import MapSettings, SceneScores, scene_stats, score_scene, text_embeddings
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

if TYPE_CHECKING:
    from rsvlm.adapt.saved import Adapter

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
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise RsvlmError(f"classes {spec!r}: {', '.join(repeated)} given more than once (name each class once)")
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
    notes: list[str] = field(default_factory=list)
    """Why the maps may mislead: bands the model never learnt from, band files that disagree …"""
    adapter: dict[str, Any] | None = None
    """The few-shot adapter the land-cover map comes from (``adapter_summary``); None for zero-shot prompts."""

    def summary(self) -> dict[str, Any]:
        out = {
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
            "notes": self.notes,
        }
        if self.adapter is not None:
            out["adapter"] = self.adapter
        return out


def adapter_summary(adapter: Adapter) -> dict[str, Any]:
    """What a map made with ``adapter`` says about it: method, shots, classes, seed, options, base model."""
    config = adapter.config()
    keep = ("method", "paper", "shots", "seed", "classes", "class_names", "options", "templates", "trained_on")
    return {**{k: config[k] for k in keep}, "base": adapter.base.describe()}


OVERVIEW_SIDE = 1024
"""Longer side of the decimated whole-scene read behind stretch limits, overlays and the checks below."""


def query_stems(queries: Sequence[str]) -> list[str]:
    """File names (without suffix) of the query maps, distinct even for texts that slug alike.

    Unicode letters are kept (``森林`` → ``query_森林``); texts that would share a name get a short digest, and a
    query given twice is refused (its maps would overwrite each other).
    """
    return [f"query_{s}" for s in unique_slugs(queries, fallback="query")]


def scene_overview(scene: Scene) -> RasterImage:
    """The decimated whole-scene read, refusing a scene that holds no valid pixel (all nodata or NaN)."""
    overview = scene.overview(OVERVIEW_SIDE)
    check_has_data(scene, overview)
    return overview


def check_has_data(scene: Scene, overview: RasterImage) -> None:
    """A one-line error when no pixel of the scene's overview holds data: its maps would all be empty."""
    if data_mask(overview).any():
        return
    holes = [] if scene.nodata is None or np.isnan(scene.nodata) else [f"nodata ({scene.nodata:g})"]
    if np.issubdtype(np.dtype(scene.dtype), np.floating):
        holes.append("NaN")
    raise DataError(
        scene.path,
        f"holds no valid pixels: every pixel of the {scene.width}x{scene.height} px scene is {' or '.join(holes)}",
        "check the file, and the nodata value it declares",
    )


def analyse_scene(
    scene: Scene,
    model: ContrastiveModel,
    out: Path,
    *,
    classes: Sequence[str] | None = None,
    queries: Sequence[str] = (),
    settings: MapSettings | None = None,
    templates: Sequence[str] = MAP_TEMPLATES,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    picks_per_class: int = 3,
    overview: RasterImage | None = None,
    adapter: Adapter | None = None,
) -> SceneAnalysis:
    """Land-cover and query maps of ``scene`` written under ``out``, plus the tiles worth a caption.

    ``classes``: zero-shot class names (default ``LANDCOVER_CLASSES``); with an ``adapter`` the classes are
    the adapter's (its readable names) and the map comes from its logits; ``classes`` may then only repeat them.
    A scene with no valid pixel, or whose every tile is skipped, is refused: its maps would be empty and its
    class shares all zero. ``overview``: the caller's ``scene_overview(scene)``, so it is not read twice.
    """
    start = time.perf_counter()
    settings = settings or MapSettings()
    stems = query_stems(queries)
    classes = _map_classes(classes, adapter, model)
    texts = [*classes, *queries]
    if overview is None:
        overview = scene_overview(scene)  # read once: checks, stretch limits and the overlays' base
    else:
        check_has_data(scene, overview)
    model_name = str(getattr(model, "name", "the model"))
    notes = [*scene.notes, *domain_notes(scene, overview, model_name, model.in_bands)]
    stats = scene_stats(scene, overview=overview)
    if adapter is None:
        embeddings = text_embeddings(model, texts, templates)
        image_model, logit_scale = model, float(model.logit_scale)
    else:  # the classes come from the adapter's head, the queries still from text
        embeddings = (
            text_embeddings(model, queries, templates) if queries else np.zeros((0, model.embed_dim), np.float32)
        )
        image_model, logit_scale = adapter.image_model(model), 1.0
    scores = score_scene(
        scene, image_model, embeddings, texts, settings,
        stats=stats, scheduler=scheduler, progress=progress, adapter=adapter,
    )  # fmt: skip
    if scores.tiles_scored == 0:
        raise DataError(
            scene.path,
            f"no tile has {settings.min_valid:.0%} valid pixels: all {scores.tiles_skipped} tiles of "
            f"{settings.tile} px were skipped as nodata or NaN",
            "check the nodata value, or pass a smaller --tile",
        )
    k = len(classes)
    land = SceneScores(
        list(classes), scores.similarity[:k], scores.transform, scores.crs, scores.tiles_scored, scores.tiles_skipped
    )
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
    for j, (query, name) in enumerate(zip(queries, stems, strict=True)):
        sim = scores.similarity[k + j]
        files[f"{name}.tif"] = write_float_map(out / f"{name}.tif", sim, scores.transform, scores.crs, [query])
        files[f"{name}.png"] = write_png(
            out / f"{name}.png", overlay(base, ramp(sim), cell, alpha=0.6, mask=land.valid)
        )
    valid = class_map != CLASS_NODATA
    total = max(int(valid.sum()), 1)
    share = {c: float((class_map == i).sum()) / total for i, c in enumerate(classes)}
    picks = _pick_tiles(scene, stats, settings, classes, share, probs, queries, scores.similarity[k:], picks_per_class)
    seconds = time.perf_counter() - start
    return SceneAnalysis(
        scene, list(classes), list(queries), scores, settings, share, picks, files, seconds, notes,
        adapter=None if adapter is None else adapter_summary(adapter),
    )  # fmt: skip


def _map_classes(classes: Sequence[str] | None, adapter: Adapter | None, model: ContrastiveModel) -> list[str]:
    """The land-cover classes: the given names, the default set, or the adapter's (which no list overrides); an
    adapter fitted on another model is refused (its features mean nothing in this model's space)."""
    from rsvlm.adapt.saved import FIT_HINT, BaseModelId

    if adapter is None:
        return list(LANDCOVER_CLASSES if classes is None else classes)
    names = list(adapter.class_set.names)
    if adapter.base != BaseModelId.of_model(model):
        raise RsvlmError(
            f"the adapter was trained on {adapter.base.describe()}, not on {BaseModelId.of_model(model).describe()}; "
            f"map with that model, or {FIT_HINT}"
        )
    if classes is not None and list(classes) not in (names, list(adapter.classes)):
        raise RsvlmError(
            f"the adapter maps its own classes ({', '.join(names)}); drop the class list, or fit an adapter "
            "for those classes"
        )
    return names


def write_summary(analysis: SceneAnalysis, out: Path) -> Path:
    path = out / "summary.json"
    atomic_write_json(path, analysis.summary(), ensure_ascii=False)
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
