from __future__ import annotations

import numpy as np
import pytest

from rsvlm.data.sample import Boxes, GeoInfo, RasterImage, Sample


def test_raster_image_checks_shape_and_band_names() -> None:
    with pytest.raises(ValueError, match="bands, height, width"):
        RasterImage(np.zeros((4, 4), dtype=np.uint8), ("gray",))
    with pytest.raises(ValueError, match="2 band names for 3 bands"):
        RasterImage(np.zeros((3, 4, 4), dtype=np.uint8), ("a", "b"))


def test_valid_mask_respects_nodata_and_nan() -> None:
    data = np.ones((2, 3, 3), dtype=np.uint16)
    data[1, 0, 0] = 0
    assert RasterImage(data, ("a", "b"), nodata=0).valid_mask().sum() == 8
    floats = np.ones((1, 2, 2), dtype=np.float32)
    floats[0, 1, 1] = np.nan
    assert RasterImage(floats, ("x",)).valid_mask().tolist() == [[True, True], [True, False]]
    assert RasterImage(floats, ("x",), nodata=float("nan")).valid_mask().sum() == 3


def test_to_hwc_is_channels_last() -> None:
    image = RasterImage(np.arange(24, dtype=np.uint8).reshape(2, 3, 4), ("a", "b"))
    assert image.to_hwc().shape == (3, 4, 2)
    assert image.to_hwc()[1, 2, 1] == image.data[1, 1, 2]
    assert (image.height, image.width, image.band_count) == (3, 4, 2)


def test_boxes_validate_pixel_xyxy() -> None:
    boxes = Boxes(np.array([[0, 0, 10, 5]], dtype=np.float64), ("tree",))
    assert len(boxes) == 1
    with pytest.raises(ValueError, match="x1 <= x2"):
        Boxes(np.array([[10, 0, 0, 5]], dtype=np.float64), ("tree",))
    with pytest.raises(ValueError, match="labels"):
        Boxes(np.zeros((2, 4)), ("tree",))
    with pytest.raises(ValueError, match="angles"):
        Boxes(np.zeros((1, 4)), ("tree",), angles=np.zeros(2))
    assert len(Boxes.empty()) == 0


def test_pixel_to_map_uses_the_affine_transform() -> None:
    geo = GeoInfo(crs="EPSG:32631", transform=(10.0, 0.0, 500000.0, 0.0, -10.0, 4600000.0))
    assert geo.pixel_to_map(0, 0) == (500000.0, 4600000.0)
    assert geo.pixel_to_map(3, 2) == (500030.0, 4599980.0)
    with pytest.raises(ValueError, match="no affine transform"):
        GeoInfo().pixel_to_map(0, 0)


def test_with_image_prefers_file_georeference() -> None:
    file_geo = GeoInfo(crs="EPSG:4326")
    sample = Sample(id="x", geo=GeoInfo(crs=None))
    image = RasterImage(np.zeros((1, 2, 2), dtype=np.uint8), ("gray",), geo=file_geo)
    assert sample.with_image(image).geo == file_geo
    plain = RasterImage(np.zeros((1, 2, 2), dtype=np.uint8), ("gray",))
    assert sample.with_image(plain).geo == GeoInfo(crs=None)
