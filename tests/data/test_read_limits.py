"""Whole-image reads are bounded by the memory they need (bands x pixels x bytes per sample), not by pixels alone.

The attack: a sparse, compressed TIFF of a few KB declaring 19,999 x 19,999 px and 200 bands. Its pixel count is
under the 400 Mpx limit, so before the fix ``read_image`` asked numpy for 74.5 GiB (a MemoryError, or the machine
swapping). Now it is refused from the header with one line naming the file, the size and what to do instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

from rsvlm.data import raster
from rsvlm.data.raster import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Window, read_image, verify_raster
from rsvlm.errors import ImageReadError


def _tiff(path: Path, width: int, height: int, bands: int, dtype: str, data: np.ndarray | None = None) -> Path:
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": bands,
        "dtype": dtype,
        "transform": Affine(1.0, 0.0, 500.0, 0.0, -1.0, 500.0),
        "tiled": True,
        "blockxsize": 512 if width >= 512 else 16,
        "blockysize": 512 if height >= 512 else 16,
        "compress": "deflate",
        "sparse_ok": True,
    }
    with rasterio.open(path, "w", **profile) as dst:
        if data is not None:
            dst.write(data)
    return path


def test_many_band_sparse_tiff_is_refused_by_its_bytes(tmp_path: Path) -> None:
    path = _tiff(tmp_path / "bands200.tif", 19_999, 19_999, 200, "uint8")
    assert path.stat().st_size < 200_000 and DEFAULT_MAX_PIXELS >= 19_999 * 19_999  # small file, pixels allowed
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert info.value.path == path and message.startswith(str(path))
    for fragment in ("19999x19999 px x 200 bands of uint8", "needs 74.5 GiB", "over the 2.0 GiB limit", "window"):
        assert fragment in message, (fragment, message)
    assert "\n" not in message
    window = read_image(path, window=Window(100, 200, 64, 32))  # a window of it still reads
    assert window.data.shape == (200, 32, 64) and not window.data.any()


def test_max_bytes_counts_bands_and_bytes_per_sample(tmp_path: Path) -> None:
    data = np.arange(200 * 50 * 40, dtype=np.uint16).reshape(200, 50, 40)
    path = _tiff(tmp_path / "u16.tif", 40, 50, 200, "uint16", data)
    need = 200 * 50 * 40 * 2
    with pytest.raises(ImageReadError, match=r"40x50 px x 200 bands of uint16 at once needs 0\.8 MiB"):
        read_image(path, max_bytes=need - 1)
    np.testing.assert_array_equal(read_image(path, max_bytes=need).data, data)
    half = read_image(path, bands=list(range(1, 101)), max_bytes=need - 1)  # half the bands: half the bytes
    np.testing.assert_array_equal(half.data, data[:100])
    assert DEFAULT_MAX_BYTES == 2 * 1024**3


def test_pillow_reads_are_bounded_too(tmp_path: Path) -> None:
    path = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((100, 120, 3), dtype=np.uint8)).save(path)
    with pytest.raises(ImageReadError, match=r"120x100 px x 3 bands of uint8 at once needs"):
        read_image(path, max_bytes=120 * 100 * 3 - 1)
    assert read_image(path, max_bytes=120 * 100 * 3).data.shape == (3, 100, 120)


def test_verify_reads_a_wide_many_band_file_in_strips_within_the_byte_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = np.arange(64 * 30 * 40, dtype=np.uint16).reshape(64, 30, 40) % 997
    path = _tiff(tmp_path / "wide.tif", 40, 30, 64, "uint16", data)
    row_bytes = 40 * 64 * 2
    monkeypatch.setattr(raster, "STRIP_BYTES", 4 * row_bytes)  # four rows a strip
    seen: list[Window] = []
    real = raster.read_image

    def spy(path: Path, **kwargs: object) -> object:
        window = kwargs.get("window")
        assert isinstance(window, Window)
        seen.append(window)
        return real(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(raster, "read_image", spy)
    verify_raster(path)
    assert [w.height for w in seen] == [4] * 7 + [2]  # 30 rows: seven strips of 4, then 2
    assert [w.row for w in seen] == list(range(0, 30, 4))
