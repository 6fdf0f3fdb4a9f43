from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rsvlm.data.raster import Window, inspect_raster, read_image, verify_raster
from rsvlm.errors import ImageReadError


def test_multiband_geotiff_keeps_dtype_bands_nodata_and_crs(fixtures: Path) -> None:
    image = read_image(fixtures / "rasters/s2_4band.tif")
    assert image.data.shape == (4, 48, 64)
    assert image.dtype == np.uint16
    assert image.bands == ("B02", "B03", "B04", "B08")
    assert image.nodata == 0
    assert image.valid_mask().sum() == 48 * 64 - 16
    assert image.geo is not None and image.geo.crs == "EPSG:32631"
    assert image.geo.transform == (10.0, 0.0, 500000.0, 0.0, -10.0, 4600000.0)
    assert image.geo.bounds == (500000.0, 4600000.0 - 480.0, 500000.0 + 640.0, 4600000.0)


def test_window_read_matches_full_read_and_shifts_the_transform(fixtures: Path) -> None:
    path = fixtures / "rasters/s2_4band.tif"
    full = read_image(path)
    part = read_image(path, window=Window(col=8, row=4, width=16, height=10), bands=[3, 1])
    assert part.bands == ("B04", "B02")
    np.testing.assert_array_equal(part.data, full.data[[2, 0], 4:14, 8:24])
    assert part.geo is not None and part.geo.transform is not None
    assert part.geo.pixel_to_map(0, 0) == (500000.0 + 80.0, 4600000.0 - 40.0)


def test_window_read_of_png_streams_through_rasterio(fixtures: Path) -> None:
    path = fixtures / "voc/tile_a.png"
    full = read_image(path)
    part = read_image(path, window=Window(5, 6, 7, 8))
    np.testing.assert_array_equal(part.data, full.data[:, 6:14, 5:12])
    assert part.geo is None


def test_float_raster_with_nan_nodata(fixtures: Path) -> None:
    image = read_image(fixtures / "rasters/float.tif")
    assert image.dtype == np.float32
    assert image.bands == ("b1", "b2")
    assert image.geo is None
    assert image.valid_mask().sum() == 20 * 30 - 1


def test_jpeg2000_with_geo(fixtures: Path) -> None:
    image = read_image(fixtures / "rasters/rgb.jp2")
    assert image.data.shape == (3, 32, 32)
    assert image.geo is not None and image.geo.crs == "EPSG:4326"
    assert image.geo.resolution == pytest.approx((0.001, 0.001))


def test_pillow_modes(fixtures: Path) -> None:
    gray16 = read_image(fixtures / "rasters/gray16.png")
    assert gray16.dtype == np.uint16 and gray16.bands == ("gray",)
    assert int(gray16.data.max()) > 255
    palette = read_image(fixtures / "rasters/palette.png")
    assert palette.bands == ("red", "green", "blue") and palette.data.shape == (3, 16, 16)
    jpeg = read_image(fixtures / "scene_folder/Airport/airport_1.jpg")
    assert jpeg.data.shape == (3, 24, 32) and jpeg.dtype == np.uint8


def test_inspect_reads_header_only(fixtures: Path) -> None:
    info = inspect_raster(fixtures / "rasters/huge_sparse.tif")
    assert (info.width, info.height, info.band_count, info.dtype) == (30_000, 30_000, 1, "uint8")
    assert info.geo is not None and info.geo.crs == "EPSG:32631"


def test_whole_read_of_huge_raster_is_refused_but_windows_work(fixtures: Path) -> None:
    path = fixtures / "rasters/huge_sparse.tif"
    with pytest.raises(ImageReadError, match="read it by windows"):
        read_image(path)
    tile = read_image(path, window=Window(0, 0, 300, 300))
    assert tile.data.shape == (1, 300, 300)
    assert int(tile.data[0, 0, 0]) == 7 and int(tile.data[0, 299, 299]) == 0


def test_decompression_bomb_is_refused_at_open(fixtures: Path) -> None:
    with pytest.raises(ImageReadError, match="decompression bomb") as err:
        inspect_raster(fixtures / "broken/bomb.png")
    assert "bomb.png" in str(err.value)


@pytest.mark.parametrize("name", ["corrupt.jpg", "not_a_tiff.tif"])
def test_corrupt_files_fail_at_open_naming_the_file(fixtures: Path, name: str) -> None:
    with pytest.raises(ImageReadError) as err:
        read_image(fixtures / "broken" / name)
    message = str(err.value)
    assert name in message and "\n" not in message


def test_truncated_jpeg_opens_but_fails_to_decode(fixtures: Path) -> None:
    path = fixtures / "broken/truncated.jpg"
    assert inspect_raster(path).width == 64  # the header is intact
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(path)
    with pytest.raises(ImageReadError, match="truncated"):
        verify_raster(path)


def test_missing_file_and_bad_requests(fixtures: Path, tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "absent.tif")
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "absent.jpg")
    with pytest.raises(ImageReadError, match="band index 5"):
        read_image(fixtures / "rasters/s2_4band.tif", bands=[5])
    with pytest.raises(ImageReadError, match="extends past"):
        read_image(fixtures / "rasters/s2_4band.tif", window=Window(60, 0, 10, 10))
    with pytest.raises(ValueError, match="invalid window"):
        Window(0, 0, 0, 5)


def test_real_landsat7_six_bands(shared_data: Path) -> None:
    image = read_image(shared_data / "landsat7/L7_ETMs.tif")
    assert image.data.shape == (6, 352, 349)
    assert image.dtype == np.uint8
    assert image.geo is not None and image.geo.crs == "EPSG:31985"
    assert image.geo.resolution == pytest.approx((28.5, 28.5))


def test_real_neon_geotiff_matches_its_png(shared_data: Path) -> None:
    tif = read_image(shared_data / "neon_trees/OSBS_029.tif")
    png = read_image(shared_data / "neon_trees/OSBS_029.png")
    assert tif.bands == ("red", "green", "blue") and tif.data.shape == png.data.shape == (3, 400, 400)
    assert tif.geo is not None and tif.geo.resolution == pytest.approx((0.1, 0.1))
    np.testing.assert_array_equal(tif.data, png.data)
