"""Similarity maps over whole scenes: the tiling and averaging arithmetic, skipped tiles, probabilities, stretch
limits, what the model is fed, and the default model on a real Sentinel-2 window.

The arithmetic tests use a scripted stand-in model whose embedding of a tile is determined by the tile's mean
brightness, so the map an exact overlapping-tile average must give can be computed independently, by brute force
over the tiles, from the pixels written to the GeoTIFF.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
import torch
from affine import Affine

from rsvlm.data.bands import band_stats, identity_stats
from rsvlm.data.raster import Window
from rsvlm.data.sample import RasterImage
from rsvlm.geo.maps import MapSettings, SceneScores, model_input, scene_stats, score_scene, text_embeddings
from rsvlm.geo.source import open_scene
from rsvlm.models.protocols import ContrastiveModel
from tests.geo.test_outputs import write_s2_window

UTM = "EPSG:32633"
TRANSFORM = (2.0, 0.0, 500000.0, 0.0, -2.0, 4000000.0)
TEXTS = ["dark", "bright", "between"]
TEXT_EMB = np.array([[1.0, 0.0], [0.0, 1.0], [math.sqrt(0.5), math.sqrt(0.5)]], dtype=np.float32)


class BrightnessModel:
    """Stand-in contrastive model: a tile of mean brightness m (0..255) embeds as (cos θ, sin θ), θ = m/255 · π/2."""

    name = "brightness"
    embed_dim = 2
    preprocess_id = "identity"
    weights_id = ""
    logit_scale = 100.0

    def __init__(self, in_bands: int | None = None) -> None:
        self.in_bands = in_bands
        self.seen: list[RasterImage] = []

    def preprocess(self, image: RasterImage) -> torch.Tensor:
        self.seen.append(image)
        return torch.from_numpy(image.data.astype(np.float32))

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        theta = pixels.mean(dim=(1, 2, 3)) / 255.0 * (math.pi / 2)
        return torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        raise AssertionError("the map arithmetic tests pass text embeddings in")


def write_tif(path: Path, data: npt.NDArray[Any], nodata: float | None = None) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=str(data.dtype),
        crs=UTM,
        transform=Affine(*TRANSFORM),
        nodata=nodata,
    ) as dst:
        dst.write(data)
    return path


def expected_map(
    data: npt.NDArray[np.uint8], tile: int, stride: int, nodata: int | None, min_valid: float
) -> tuple[npt.NDArray[np.float64], int]:
    """Brute force: every tile's similarities, spread over the cells it covers and averaged; and the skip count.

    Pixels past the scene's edge, and nodata pixels, count as 0 in the tile's mean and as invalid.
    """
    _, h, w = data.shape
    rows, cols = math.ceil(h / stride), math.ceil(w / stride)
    total = np.zeros((len(TEXTS), rows, cols))
    count = np.zeros((rows, cols))
    skipped = 0
    tile_rows = max(1, math.ceil((h - tile) / stride) + 1)
    tile_cols = max(1, math.ceil((w - tile) / stride) + 1)
    for tr in range(tile_rows):
        for tc in range(tile_cols):
            y, x = tr * stride, tc * stride
            pixels = np.zeros((3, tile, tile))
            valid = np.zeros((tile, tile), dtype=bool)
            inside = data[:3, y : y + tile, x : x + tile].astype(np.float64)
            pixels[:, : inside.shape[1], : inside.shape[2]] = inside
            valid[: inside.shape[1], : inside.shape[2]] = True
            if nodata is not None:
                valid &= ~(pixels == nodata).any(axis=0)
            if valid.mean() < min_valid:
                skipped += 1
                continue
            pixels[:, ~valid] = 0
            theta = pixels.mean() / 255.0 * (math.pi / 2)
            sims = TEXT_EMB.astype(np.float64) @ np.array([math.cos(theta), math.sin(theta)])
            k = tile // stride
            total[:, y // stride : y // stride + k, x // stride : x // stride + k] += sims[:, None, None]
            count[y // stride : y // stride + k, x // stride : x // stride + k] += 1
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan), skipped


def _score(path: Path, settings: MapSettings, model: Any = None) -> SceneScores:
    with open_scene(path) as scene:
        return score_scene(scene, model or BrightnessModel(), TEXT_EMB, TEXTS, settings)


# --- averaging arithmetic ------------------------------------------------------------------------------------


def test_half_dark_half_bright_cells_average_the_tiles_over_them(tmp_path: Path) -> None:
    data = np.full((3, 32, 64), 51, dtype=np.uint8)  # 0.2 of full brightness on the left
    data[:, :, 32:] = 204  # 0.8 on the right
    scores = _score(write_tif(tmp_path / "halves.tif", data), MapSettings(tile=16, stride=8))
    assert scores.similarity.shape == (3, 4, 8)
    assert (scores.tiles_scored, scores.tiles_skipped) == (3 * 7, 0)
    dark, mixed, bright = (v / 255 * math.pi / 2 for v in (51.0, 127.5, 204.0))
    sim = scores.similarity[0]  # the "dark" text: cos θ of each tile
    for row in range(4):  # every row alike: brightness changes across columns only
        assert sim[row, 0] == pytest.approx(math.cos(dark), abs=1e-6)  # one all-dark tile
        assert sim[row, 2] == pytest.approx(math.cos(dark), abs=1e-6)  # two all-dark tiles
        assert sim[row, 3] == pytest.approx((math.cos(dark) + math.cos(mixed)) / 2, abs=1e-6)
        assert sim[row, 4] == pytest.approx((math.cos(mixed) + math.cos(bright)) / 2, abs=1e-6)
        assert sim[row, 7] == pytest.approx(math.cos(bright), abs=1e-6)  # only the last tile column
    assert scores.similarity[1, 0, 3] == pytest.approx((math.sin(dark) + math.sin(mixed)) / 2, abs=1e-6)
    # "between" (45°) wins where a mixed tile pulls the average towards it
    np.testing.assert_array_equal(scores.class_map()[0], [0, 0, 0, 2, 2, 1, 1, 1])


@pytest.mark.parametrize(("tile", "stride"), [(16, 8), (24, 8), (16, 16), (32, 8)])
def test_map_equals_brute_force_average_with_ragged_edges(tmp_path: Path, tile: int, stride: int) -> None:
    rng = np.random.default_rng(tile * 100 + stride)
    blocks = rng.integers(0, 256, size=(3, 6, 8), dtype=np.uint8)
    data = np.repeat(np.repeat(blocks, 9, axis=1), 9, axis=2)[:, :50, :67]  # 50 x 67: no multiple of any stride
    settings = MapSettings(tile=tile, stride=stride, min_valid=0.3)
    scores = _score(write_tif(tmp_path / "blocks.tif", data), settings)
    expected, skipped = expected_map(data, tile, stride, None, 0.3)
    assert scores.tiles_skipped == skipped
    np.testing.assert_allclose(scores.similarity, expected, atol=1e-6)
    assert scores.transform == (2.0 * stride, 0.0, 500000.0, 0.0, -2.0 * stride, 4000000.0)
    assert scores.crs == UTM and scores.texts == TEXTS


def test_tiles_under_min_valid_are_skipped_and_their_cells_stay_empty(tmp_path: Path) -> None:
    data = np.full((3, 48, 64), 180, dtype=np.uint8)
    data[:, 16:48, 0:24] = 0  # nodata block, bottom-left
    data[:, 0:8, 40:64] = 90
    path = write_tif(tmp_path / "hole.tif", data, nodata=0)
    scores = _score(path, MapSettings(tile=16, stride=8, min_valid=0.5))
    expected, skipped = expected_map(data, 16, 8, 0, 0.5)
    assert skipped > 0 and scores.tiles_skipped == skipped
    assert scores.tiles_scored + scores.tiles_skipped == 5 * 7
    np.testing.assert_allclose(scores.similarity, expected, atol=1e-6)
    assert not scores.valid[3:, :2].any() and scores.valid[:, 3:].all()  # cells inside the block are empty
    # cell (3, 2) (cols 16-23) is covered by data only through tiles starting at col 16, exactly half valid:
    # "under min_valid" is strict, so they are kept
    assert scores.valid[3, 2]
    np.testing.assert_array_equal(scores.valid, ~np.isnan(expected[0]))

    strict = _score(path, MapSettings(tile=16, stride=8, min_valid=1.0))
    assert strict.tiles_skipped > scores.tiles_skipped  # partly covered tiles go too


def test_probabilities_are_a_softmax_per_valid_cell(tmp_path: Path) -> None:
    data = np.full((3, 40, 40), 200, dtype=np.uint8)
    data[:, 0:20, 0:20] = 0
    data[:, 20:, 20:] = 60
    scores = _score(write_tif(tmp_path / "p.tif", data, nodata=0), MapSettings(tile=16, stride=8))
    valid = scores.valid
    assert valid.any() and not valid.all()
    for scale in (1.0, 18.0, 100.0):
        probs = scores.probabilities(scale)
        assert probs.dtype == np.float32 and probs.shape == scores.similarity.shape
        np.testing.assert_allclose(probs[:, valid].sum(axis=0), 1.0, atol=1e-6)
        assert np.isnan(probs[:, ~valid]).all()
        logits = scores.similarity[:, valid].astype(np.float64) * scale
        softmax = np.exp(logits) / np.exp(logits).sum(axis=0)
        np.testing.assert_allclose(probs[:, valid], softmax, atol=1e-5)
    classes = scores.class_map()
    np.testing.assert_array_equal(classes[valid], np.argmax(scores.similarity[:, valid], axis=0))
    assert (classes[~valid] == 255).all() and (scores.class_map(nodata=7)[~valid] == 7).all()


def test_progress_reports_every_batch(tmp_path: Path) -> None:
    data = np.full((3, 32, 32), 100, dtype=np.uint8)
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))

    with open_scene(write_tif(tmp_path / "p.tif", data)) as scene:
        score_scene(scene, BrightnessModel(), TEXT_EMB, TEXTS, MapSettings(16, 8, batch_size=4), progress=progress)
    assert calls == [(4, 9), (8, 9), (9, 9)]


# --- stretch limits and model input --------------------------------------------------------------------------


def test_scene_stats_identity_for_photos_percentiles_otherwise(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    photo = rng.integers(30, 200, size=(3, 40, 50), dtype=np.uint8)
    with open_scene(write_tif(tmp_path / "photo.tif", photo)) as scene:
        assert scene.preset is None
        assert scene_stats(scene) == identity_stats(3)

    six = rng.integers(30, 200, size=(6, 40, 50), dtype=np.uint8)  # 8-bit, but a Landsat 7 stack
    wide = rng.integers(100, 5000, size=(4, 40, 50)).astype(np.uint16)  # 16-bit, no preset
    for name, data in (("l7.tif", six), ("u16.tif", wide)):
        with open_scene(write_tif(tmp_path / name, data)) as scene:
            stats = scene_stats(scene)
            assert stats == band_stats(scene.overview(1024))
            lo, hi = np.percentile(data.reshape(data.shape[0], -1).astype(np.float64), [2, 98], axis=1)
            np.testing.assert_allclose(stats.lo, lo)
            np.testing.assert_allclose(stats.hi, hi)
    with open_scene(tmp_path / "l7.tif") as scene:
        assert scene.preset is not None and scene.preset.name == "landsat7"


def test_model_input_passes_n_bands_only_to_a_matching_spectral_model() -> None:
    rng = np.random.default_rng(2)
    image = RasterImage(rng.integers(0, 1000, size=(4, 8, 8)).astype(np.uint16), ("b1", "b2", "b3", "b4"))
    stats = band_stats(image)

    spectral = BrightnessModel(in_bands=4)
    out = model_input(spectral, image, (2, 1, 0), stats)
    assert len(spectral.seen) == 1 and spectral.seen[0] is image and out.shape == (4, 8, 8)  # all bands, untouched

    for model in (BrightnessModel(in_bands=6), BrightnessModel()):
        out = model_input(model, image, (2, 1, 0), stats)
        (seen,) = model.seen
        assert seen.bands == ("red", "green", "blue") and seen.dtype == np.uint8 and out.shape == (3, 8, 8)
        red = np.rint(np.clip((image.data[2] - stats.lo[2]) / (stats.hi[2] - stats.lo[2]), 0, 1) * 255)
        np.testing.assert_allclose(seen.data[0], red, atol=1)  # band 2 stretched with the scene's limits is red


def test_stand_in_satisfies_the_protocol() -> None:
    assert isinstance(BrightnessModel(), ContrastiveModel)


# --- the default model on a real Sentinel-2 window -----------------------------------------------------------


@pytest.fixture(scope="module")
def lite() -> Any:
    from rsvlm.models.openclip import load_contrastive

    return load_contrastive(None, None, download=False)


@pytest.fixture(scope="module")
def s2_window(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_s2_window(tmp_path_factory.mktemp("s2") / "s2_256.tif", Window(800, 800, 256, 256))


def test_text_embeddings_are_normalised_template_averages(lite: Any) -> None:
    emb = text_embeddings(lite, ["forest", "river"], ["a satellite photo of a {}.", "an aerial photo of a {}."])
    assert emb.shape == (2, lite.embed_dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    one = text_embeddings(lite, ["forest"], ["a satellite photo of a {}."])[0]
    direct = lite.encode_texts(["a satellite photo of a forest."])[0].numpy()
    np.testing.assert_allclose(one, direct / np.linalg.norm(direct), atol=1e-5)


def test_default_model_on_sentinel2_is_finite_and_scheduler_independent(lite: Any, s2_window: Path) -> None:
    texts = ["forest", "river", "residential area"]
    emb = text_embeddings(lite, texts, ["a satellite photo of a {}."])
    settings = MapSettings(tile=64, stride=32, batch_size=16)
    with open_scene(s2_window) as scene:
        assert scene.band_count == 13 and scene.preset is not None and scene.preset.name == "sentinel2-l1c"
        plain = score_scene(scene, lite, emb, texts, settings)
        threaded = score_scene(scene, lite, emb, texts, settings, scheduler="threads")
    assert (plain.tiles_scored, plain.tiles_skipped) == (49, 0)
    assert plain.similarity.shape == (3, 8, 8) and plain.valid.all()
    assert np.isfinite(plain.similarity).all() and (np.abs(plain.similarity) <= 1.0).all()
    assert plain.similarity.std() > 0  # the tiles differ, so their similarities do
    np.testing.assert_allclose(threaded.similarity, plain.similarity, atol=1e-6)
    assert threaded.tiles_scored == plain.tiles_scored
