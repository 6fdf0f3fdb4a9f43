"""Counts over a whole scene: a ridge head fitted on NEON tiles, mapped over the held-out OSBS_029 image.

The scene path (``count_scene``: windows read through ``Scene``) must give, tile for tile, what the head predicts
from the same tiles cut by ``count_tiles``, and its grid and GeoJSON must lie on the image's own georeference.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.warp import transform as warp_transform

from rsvlm.adapt.regression import CountTile, RegressionHead, count_tiles, embed_rasters
from rsvlm.data.bands import identity_stats, rgb_composite
from rsvlm.data.raster import Window
from rsvlm.data.sample import RasterImage
from rsvlm.errors import RsvlmError
from rsvlm.geo.counting import CountMap, count_scene
from rsvlm.geo.source import Scene, open_scene

pytestmark = pytest.mark.shared

TILE = 100
TEST = "OSBS_029"


@pytest.fixture(scope="module")
def neon(shared_data: Path) -> Path:
    return shared_data / "neon_trees"


@pytest.fixture(scope="module")
def model() -> Any:
    from rsvlm.models.openclip import load_contrastive

    return load_contrastive(None, None, download=False)


@pytest.fixture(scope="module")
def head(model: Any, neon: Path) -> RegressionHead:
    train = count_tiles(neon, TILE, regions=["SOAP_061"])
    assert len(train) == 16
    return RegressionHead.for_model(model, target="trees").fit(
        embed_rasters(model, [t.image for t in train]), [t.count for t in train]
    )


@pytest.fixture(scope="module")
def scene(neon: Path) -> Iterator[Scene]:
    with open_scene(neon / f"{TEST}.tif") as s:
        yield s


@pytest.fixture(scope="module")
def counts(scene: Scene, model: Any, head: RegressionHead) -> CountMap:
    return count_scene(scene, model, head, TILE)


@pytest.fixture(scope="module")
def truth_tiles(neon: Path) -> list[CountTile]:
    return count_tiles(neon, TILE, regions=[TEST])


def test_count_grid_lies_on_the_scene(counts: CountMap, scene: Scene) -> None:
    assert (scene.width, scene.height, scene.crs) == (400, 400, "EPSG:32617")
    a, b, c, d, e, f = scene.transform
    assert counts.transform == (a * TILE, b * TILE, c, d * TILE, e * TILE, f)
    assert counts.transform[0] == pytest.approx(10.0) and counts.transform[4] == pytest.approx(-10.0)
    assert counts.crs == scene.crs and counts.tile == TILE and counts.target == "trees"
    assert counts.counts.shape == (4, 4) and counts.counts.dtype == np.float32
    assert np.isfinite(counts.counts).all() and (counts.counts >= 0).all()
    assert counts.total == pytest.approx(float(counts.counts.sum()))


def test_scene_path_matches_the_tile_path(
    counts: CountMap, scene: Scene, model: Any, head: RegressionHead, truth_tiles: list[CountTile]
) -> None:
    assert len(truth_tiles) == 16 and sum(t.count for t in truth_tiles) == 61
    images: list[RasterImage] = []
    for t in truth_tiles:
        x, y, w, h = t.window
        assert (w, h) == (TILE, TILE) and x % TILE == 0 and y % TILE == 0
        read, _ = scene.read(Window(x, y, w, h))
        np.testing.assert_array_equal(read.data, t.image.data)  # both paths see the same pixels
        assert t.image.nodata == scene.nodata == 255
        # The file declares nodata 255, which the scene path honours (pixels with a 255 go black);
        # the tile goes through the same 8-bit composite before the model sees it.
        images.append(rgb_composite(t.image, scene.rgb, identity_stats(3)))
    expected = head.predict(embed_rasters(model, images))
    got = np.array([counts.counts[t.window[1] // TILE, t.window[0] // TILE] for t in truth_tiles])
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_tiles_under_min_valid_are_left_empty(
    scene: Scene, model: Any, head: RegressionHead, neon: Path, counts: CountMap
) -> None:
    with rasterio.open(neon / f"{TEST}.tif") as src:
        nodata = (src.read() == 255).all(axis=0)  # a hole: nodata (255) in every band, read independently
    share = nodata.reshape(4, TILE, 4, TILE).mean(axis=(1, 3))
    strict = count_scene(scene, model, head, TILE, min_valid=0.99, batch_size=5)
    assert 0 < (share > 0.01).sum() < 16  # some tiles hold more than 1 % nodata, some do not
    np.testing.assert_array_equal(np.isnan(strict.counts), share > 0.01)
    kept = ~np.isnan(strict.counts)
    np.testing.assert_allclose(strict.counts[kept], counts.counts[kept], atol=1e-4)  # batching changes nothing
    assert strict.total == pytest.approx(float(strict.counts[kept].sum()))


class OtherModel:
    name = "other"
    embed_dim = 512
    preprocess_id = "resize160-bilinear-scale-1to1"
    weights_id = ""
    logit_scale = 100.0
    in_bands = None

    def preprocess(self, image: RasterImage) -> torch.Tensor:
        raise AssertionError("never reached")

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        raise AssertionError("never reached")

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        raise AssertionError("never reached")


def test_a_head_refuses_another_models_embeddings(scene: Scene, head: RegressionHead) -> None:
    with pytest.raises(RsvlmError, match="fitted on rsvlm-lite embeddings"):
        count_scene(scene, OtherModel(), head, TILE)


def test_geojson_polygons_are_the_cells_corners_in_wgs84(counts: CountMap, scene: Scene) -> None:
    a, _, c, _, e, f = scene.transform
    geo = counts.to_geojson(wgs84=True)
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == 16
    for i, feature in enumerate(geo["features"]):
        row, col = feature["properties"]["row"], feature["properties"]["col"]
        assert (row, col) == divmod(i, 4) and feature["id"] == i
        assert feature["properties"]["trees"] == pytest.approx(float(counts.counts[row, col]), abs=1e-3)
        # corners from the scene's transform, in scene pixels: tile col*100 .. (col+1)*100
        px = [(col, row), (col + 1, row), (col + 1, row + 1), (col, row + 1), (col, row)]
        xs = [c + a * TILE * x for x, _ in px]
        ys = [f + e * TILE * y for _, y in px]
        lon, lat = warp_transform(scene.crs, "EPSG:4326", xs, ys)
        ring = np.asarray(feature["geometry"]["coordinates"][0])
        assert feature["geometry"]["type"] == "Polygon" and ring.shape == (5, 2)
        np.testing.assert_allclose(ring[:, 0], lon, atol=1e-9)
        np.testing.assert_allclose(ring[:, 1], lat, atol=1e-9)
        assert -82.5 < ring[0, 0] < -81.5 and 29.5 < ring[0, 1] < 29.8  # Florida (OSBS)

    projected = counts.to_geojson(wgs84=False)["features"][5]  # row 1, col 1
    ring = np.asarray(projected["geometry"]["coordinates"][0])
    np.testing.assert_allclose(ring[0], [c + a * TILE, f + e * TILE])
    np.testing.assert_allclose(ring[2], [c + 2 * a * TILE, f + 2 * e * TILE])


def test_geojson_leaves_out_empty_tiles(counts: CountMap) -> None:
    holes = counts.counts.copy()
    holes[0, 0] = holes[2, 3] = np.nan
    features = replace(counts, counts=holes).to_geojson()["features"]
    assert len(features) == 14
    assert (0, 0) not in {(g["properties"]["row"], g["properties"]["col"]) for g in features}
    no_crs = replace(counts, crs=None).to_geojson(wgs84=True)["features"][0]["geometry"]["coordinates"][0]
    assert no_crs[0] == [counts.transform[2], counts.transform[5]]  # nothing to reproject from: map units
