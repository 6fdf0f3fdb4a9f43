"""Counts over a whole scene from a regression head: one predicted count per tile, as a map and as GeoJSON.

The head (``rsvlm.adapt.regression.RegressionHead``) was fitted on tiles of a fixed size in pixels, so
the scene is cut into non-overlapping tiles of that size; each tile's prediction is a density that
sums to the scene's total. Tiles with too little data are left empty rather than predicted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.data.sample import Affine6
from rsvlm.geo.executor import map_ordered
from rsvlm.geo.maps import model_input, scene_stats
from rsvlm.geo.tiling import DEFAULT_MAX_TILES, Tile, plan_tiles

if TYPE_CHECKING:
    from rsvlm.adapt.regression import RegressionHead
    from rsvlm.data.bands import BandStats
    from rsvlm.geo.source import Scene
    from rsvlm.models.protocols import ContrastiveModel


@dataclass
class CountMap:
    counts: npt.NDArray[np.float32]
    """(rows, cols) predicted count per tile; NaN where the tile was skipped."""
    transform: Affine6
    """Transform of the count grid (one cell per tile)."""
    crs: str | None
    tile: int
    target: str

    @property
    def total(self) -> float:
        return float(np.nansum(self.counts))

    def to_geojson(self, *, wgs84: bool = True) -> dict[str, Any]:
        """One polygon per counted tile with its prediction; WGS84 lon/lat unless ``wgs84`` is False."""
        a, b, c, d, e, f = self.transform
        features = []
        geoms = []
        for r, col in zip(*np.nonzero(~np.isnan(self.counts)), strict=True):
            corners = [(col, r), (col + 1, r), (col + 1, r + 1), (col, r + 1), (col, r)]
            ring = [[a * x + b * y + c, d * x + e * y + f] for x, y in corners]
            geoms.append({"type": "Polygon", "coordinates": [ring]})
            features.append({"row": int(r), "col": int(col), self.target: round(float(self.counts[r, col]), 3)})
        if wgs84 and self.crs is not None and geoms:
            from rasterio.warp import transform_geom

            geoms = list(transform_geom(self.crs, "EPSG:4326", geoms))
        return {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "id": i, "geometry": dict(g), "properties": p}
                for i, (g, p) in enumerate(zip(geoms, features, strict=True))
            ],
        }


@dataclass
class _TileCounter:
    scene: Scene
    model: ContrastiveModel
    head: RegressionHead
    stats: BandStats
    min_valid: float

    def __call__(self, tiles: list[Tile]) -> list[tuple[Tile, float | None]]:
        import torch

        kept, pixels = [], []
        for tile in tiles:
            image, valid = self.scene.read(tile.window)
            if valid.mean() >= self.min_valid:
                kept.append(tile)
                pixels.append(model_input(self.model, image, self.scene.rgb, self.stats))
        values: dict[int, float] = {}
        if pixels:
            features = self.model.encode_images(torch.stack(pixels)).cpu().numpy()
            for tile, value in zip(kept, self.head.predict(features), strict=True):
                values[tile.index] = float(value)
        return [(t, values.get(t.index)) for t in tiles]


def count_scene(
    scene: Scene,
    model: ContrastiveModel,
    head: RegressionHead,
    tile: int,
    *,
    batch_size: int = 32,
    min_valid: float = 0.9,
    scheduler: str | None = None,
    max_tiles: int | None = DEFAULT_MAX_TILES,
) -> CountMap:
    """Predicted counts on a grid of non-overlapping ``tile``-pixel tiles (the size the head was fitted on)."""
    head.check_model(model)
    grid = plan_tiles(scene.path, scene.width, scene.height, scene.band_count, tile, tile, max_tiles)
    counts = np.full((grid.rows, grid.cols), np.nan, dtype=np.float32)
    counter = _TileCounter(scene, model, head, scene_stats(scene), min_valid)
    for results in map_ordered(counter, grid.batches(batch_size), scheduler):
        for t, value in results:
            if value is not None:
                counts[t.grid_row, t.grid_col] = value
    return CountMap(counts, grid.cell_transform(scene.transform), scene.crs, tile, head.target)
