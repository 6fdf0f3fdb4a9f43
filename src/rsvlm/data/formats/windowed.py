"""Shared base of readers whose samples are pixel windows of larger files (patches of segmentation tiles,
of a flood chip): records keep ``image_path`` = the big file and ``meta["window"] = [col, row, width, height]``.

``load_image`` crops the window from a decoded copy of the file kept for a few files at a time (every window
of a tile is read once, not once per window), and ``render`` can turn the crop into what models take (an RGB
composite). ``content_key`` hashes the file's bytes, the window and the rendering's identity, so two windows
of one file, or one window rendered two ways, never share a feature-cache entry.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from rsvlm.data.dataset import Dataset
from rsvlm.data.raster import Window, read_image, window_geo
from rsvlm.data.sample import RasterImage, Sample
from rsvlm.errors import DataError

KEEP_DECODED = 4
"""Decoded source files kept in memory (a LoveDA tile is 3 MiB, a Sen1Floods11 chip 6.5 MiB)."""


def window_of(record: Sample) -> Window:
    """The pixel window a windowed record stands for."""
    value = record.meta.get("window")
    if not isinstance(value, list | tuple) or len(value) != 4:
        raise DataError(record.image_path or Path(record.id), f"sample {record.id} has no pixel window in its meta")
    col, row, width, height = (int(v) for v in value)
    return Window(col, row, width, height)


def grid_positions(size: int, patch: int, stride: int, start: int = 0, stop: int | None = None) -> list[int]:
    """Offsets of windows of side ``patch`` every ``stride`` pixels that fit inside ``[start, stop)``."""
    stop = size if stop is None else min(stop, size)
    return list(range(start, stop - patch + 1, stride))


class WindowedDataset(Dataset):
    """A reader whose records are windows of larger source files (see the module docstring)."""

    def __init__(self, root: str | Path, **kwargs: Any) -> None:
        self._lock = threading.Lock()
        self._decoded: OrderedDict[Path, RasterImage] = OrderedDict()
        self._hashes: dict[Path, str] = {}
        super().__init__(root, **kwargs)

    def render(self, record: Sample, crop: RasterImage) -> RasterImage:
        """What models see of a cropped window; the default is the crop itself."""
        return crop

    def render_id(self, record: Sample) -> str:
        """Identity of ``render`` for feature-cache keys (a stretch's limits, a band choice); '' for none."""
        return ""

    def source(self, path: Path) -> RasterImage:
        """The whole decoded source file, from the small in-memory store when it was read recently."""
        with self._lock:
            found = self._decoded.get(path)
            if found is not None:
                self._decoded.move_to_end(path)
                return found
        image = read_image(path)
        with self._lock:
            self._decoded[path] = image
            while len(self._decoded) > KEEP_DECODED:
                self._decoded.popitem(last=False)
        return image

    def load_image(self, record: Sample) -> RasterImage:
        if record.image_path is None:
            raise DataError(self.root, f"sample {record.id} has no image")
        window = window_of(record)
        full = self.source(record.image_path)
        if window.col + window.width > full.width or window.row + window.height > full.height:
            raise DataError(
                record.image_path,
                f"window {window} of sample {record.id} extends past the {full.width}x{full.height} image",
                "the file changed since the dataset was opened; open it again",
            )
        data = np.ascontiguousarray(
            full.data[:, window.row : window.row + window.height, window.col : window.col + window.width]
        )
        geo = None
        if full.geo is not None and full.geo.transform is not None:
            geo = window_geo(full.geo.crs, full.geo.transform, window.col, window.row, window.width, window.height)
        crop = RasterImage(data, full.bands, nodata=full.nodata, geo=geo)
        return self.render(record, crop)

    def content_key(self, record: Sample) -> str:
        from rsvlm.features.cache import file_hash

        if record.image_path is None:
            raise DataError(self.root, f"sample {record.id} has no image")
        path = record.image_path
        with self._lock:
            digest = self._hashes.get(path)
        if digest is None:
            digest = file_hash(path)
            with self._lock:
                self._hashes[path] = digest
        w = window_of(record)
        raw = f"{digest}|window {w.col},{w.row},{w.width},{w.height}|{self.render_id(record)}"
        return hashlib.blake2b(raw.encode(), digest_size=20).hexdigest()
