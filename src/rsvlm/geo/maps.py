"""Maps from text over whole scenes: class probabilities, a land-cover map, free-text similarity heatmaps.

Every tile of the scene is embedded once by a contrastive model; a tile's similarity to each text is
spread over the map cells it covers, and overlapping tiles are averaged. The map therefore has one
cell per ``stride`` scene pixels, with the scene's CRS and a transform scaled by ``stride``, so it lies
exactly on the input in any GIS. Tiles with less than ``min_valid`` data (scene edges, nodata) are
skipped and their cells stay empty (NaN), never filled with a guess. A few-shot adapter (``rsvlm.adapt``) can
replace the text prompts for the classes: its logits per tile are spread and averaged the same way.

Memory: the only scene-sized arrays are the map grids (one float per cell and text); pixels are read
one batch of tiles at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.data.bands import BandStats, band_stats, identity_stats, rgb_composite
from rsvlm.data.sample import Affine6, RasterImage
from rsvlm.errors import RsvlmError
from rsvlm.geo.executor import map_ordered
from rsvlm.geo.source import Scene
from rsvlm.geo.tiling import DEFAULT_MAX_TILES, Tile, plan_tiles
from rsvlm.models.protocols import ContrastiveModel

if TYPE_CHECKING:
    from rsvlm.adapt.saved import Adapter


@dataclass(frozen=True)
class MapSettings:
    tile: int = 160
    """Tile side in scene pixels; each tile is resized to the model's input (160 px for rsvlm-lite)."""
    stride: int = 80
    """Tile step and map cell size in scene pixels; must divide ``tile``."""
    batch_size: int = 32
    min_valid: float = 0.5
    """Tiles with a smaller fraction of valid pixels are skipped."""
    max_tiles: int | None = DEFAULT_MAX_TILES
    """A scene planning more tiles (or map cells) is refused before any work; ``None``: no limit."""


@dataclass
class SceneScores:
    """Cosine similarity of every map cell to every text (or, first, an adapter's class logits), averaged over
    the tiles that cover the cell."""

    texts: list[str]
    similarity: npt.NDArray[np.float32]
    """(texts, rows, cols); NaN where no valid tile covers the cell."""
    transform: Affine6
    crs: str | None
    tiles_scored: int
    tiles_skipped: int

    @property
    def valid(self) -> npt.NDArray[np.bool_]:
        valid: npt.NDArray[np.bool_] = ~np.isnan(self.similarity[0])
        return valid

    def probabilities(self, logit_scale: float) -> npt.NDArray[np.float32]:
        """Softmax over the texts (the classes), as zero-shot classification does per image."""
        logits = self.similarity * logit_scale
        # max over the classes with empty cells as -inf: nanmax would warn "All-NaN slice" for every empty cell
        logits = logits - np.max(np.where(np.isnan(logits), -np.inf, logits), axis=0, keepdims=True)
        exp = np.exp(logits)
        probs: npt.NDArray[np.float32] = (exp / exp.sum(axis=0, keepdims=True)).astype(np.float32)
        return probs

    def class_map(self, nodata: int = 255) -> npt.NDArray[np.uint8]:
        """Index of the most similar text per cell (``nodata`` where the cell is empty)."""
        filled = np.where(np.isnan(self.similarity), -np.inf, self.similarity)
        out: npt.NDArray[np.uint8] = np.argmax(filled, axis=0).astype(np.uint8)
        out[~self.valid] = nodata
        return out


def scene_stats(scene: Scene, max_side: int = 1024, overview: RasterImage | None = None) -> BandStats:
    """Stretch limits for the whole scene; 8-bit photographs (no sensor preset) are used as they are.

    Pass ``overview`` when the caller already read one, so the scene is not decoded twice.
    """
    if scene.preset is None and scene.dtype == "uint8":
        return identity_stats(scene.band_count)
    return band_stats(overview if overview is not None else scene.overview(max_side))


def model_image(
    model: ContrastiveModel, image: RasterImage, rgb: tuple[int, int, int], stats: BandStats
) -> RasterImage:
    """What the model's ``preprocess`` takes: N bands for a spectral-adapter model, else the RGB composite."""
    if model.in_bands == image.band_count:
        return image
    return rgb_composite(image, rgb, stats)


def model_input(model: ContrastiveModel, image: RasterImage, rgb: tuple[int, int, int], stats: BandStats) -> Any:
    """The preprocessed pixels of one tile, as every map and every label tile feeds them to the model."""
    return model.preprocess(model_image(model, image, rgb, stats))


@dataclass
class _TileScorer:
    """One batch of tiles → similarity rows; a picklable object so Dask can ship it to workers.

    With an ``adapter``, each row starts with the adapter's class logits of the tile, then its similarity to
    ``texts`` (the queries, still scored from text).
    """

    scene: Scene
    model: ContrastiveModel
    stats: BandStats
    texts: npt.NDArray[np.float32]
    min_valid: float
    adapter: Adapter | None = None

    def __call__(self, tiles: list[Tile]) -> list[tuple[Tile, npt.NDArray[np.float32] | None]]:
        import torch

        pixels: list[Any] = []
        kept: list[Tile] = []
        for tile in tiles:
            image, valid = self.scene.read(tile.window)
            if valid.mean() < self.min_valid:
                continue
            pixels.append(model_input(self.model, image, self.scene.rgb, self.stats))
            kept.append(tile)
        sims: dict[int, npt.NDArray[np.float32]] = {}
        if pixels:
            emb = self.model.encode_images(torch.stack(pixels)).cpu().numpy().astype(np.float32)
            rows = emb @ self.texts.T
            if self.adapter is not None:
                rows = np.concatenate([self.adapter.logits(emb), rows], axis=1)
            for tile, row in zip(kept, rows, strict=True):
                sims[tile.index] = row
        return [(t, sims.get(t.index)) for t in tiles]


def score_scene(
    scene: Scene,
    model: ContrastiveModel,
    text_embeddings: npt.NDArray[np.float32],
    texts: Sequence[str],
    settings: MapSettings | None = None,
    *,
    stats: BandStats | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    adapter: Adapter | None = None,
) -> SceneScores:
    """Similarity maps of ``texts`` (already embedded, L2-normalised rows) over the whole scene.

    With an ``adapter`` (embedding tiles with ``model``, which must be ``adapter.image_model(base)``), the first
    ``len(adapter.classes)`` maps are its class logits averaged over overlapping tiles, ``texts`` names those
    classes and then the queries, and ``text_embeddings`` holds the queries only.
    """
    extra = 0 if adapter is None else len(adapter.classes)
    if len(texts) != extra + len(text_embeddings):
        raise RsvlmError(f"{len(texts)} map names for {extra} adapter classes and {len(text_embeddings)} texts")
    settings = settings or MapSettings()
    grid = plan_tiles(
        scene.path, scene.width, scene.height, scene.band_count, settings.tile, settings.stride, settings.max_tiles
    )
    rows, cols = grid.cell_shape
    total = np.zeros((len(texts), rows, cols), dtype=np.float64)
    count = np.zeros((rows, cols), dtype=np.int32)
    scorer = _TileScorer(
        scene, model, stats or scene_stats(scene), text_embeddings.astype(np.float32), settings.min_valid, adapter
    )
    done = scored = 0
    for results in map_ordered(scorer, grid.batches(settings.batch_size), scheduler):
        for tile, sim in results:
            done += 1
            if sim is None:
                continue
            scored += 1
            r, c = grid.cell_slices(tile)
            total[:, r, c] += sim[:, None, None]
            count[r, c] += 1
        if progress is not None:
            progress(done, len(grid))
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)
    return SceneScores(list(texts), similarity, grid.cell_transform(scene.transform), scene.crs, scored, done - scored)


def text_embeddings(model: ContrastiveModel, texts: Sequence[str], templates: Sequence[str]) -> npt.NDArray[np.float32]:
    """One normalised embedding per text: the average over prompt templates (``a satellite image of {}``)."""
    from rsvlm.pipeline import class_text_embeddings
    from rsvlm.tasks.embeddings import average_normalised

    per_template = class_text_embeddings(model, list(texts), list(templates))
    return average_normalised(list(per_template.values())).astype(np.float32)
