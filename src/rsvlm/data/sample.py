"""One typed sample for every task, so readers, tasks and models agree on field names and units.

Conventions, fixed here once:
- image pixels are ``(bands, height, width)`` in the file's own dtype (uint8, uint16, float32 …), never
  rescaled on read: normalisation belongs to a model's preprocessing, not to the reader;
- boxes are in PIXEL coordinates of the full image, ``x1, y1, x2, y2`` (x to the right, y down), with an
  optional rotation angle in degrees; normalised coordinates exist only at the model boundary;
- geo metadata follows GDAL/rasterio: an affine transform from pixel (col, row) to map (x, y).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Affine6 = tuple[float, float, float, float, float, float]
"""Affine coefficients ``(a, b, c, d, e, f)``: ``x = a*col + b*row + c``, ``y = d*col + e*row + f``."""


@dataclass(frozen=True)
class GeoInfo:
    """Where an image lies on the Earth, when the source says so."""

    crs: str | None = None
    transform: Affine6 | None = None
    resolution: tuple[float, float] | None = None
    """Ground sampling distance (x, y) in CRS units (usually metres) per pixel."""
    bounds: tuple[float, float, float, float] | None = None
    """(left, bottom, right, top) in CRS units."""

    def pixel_to_map(self, col: float, row: float) -> tuple[float, float]:
        """Map coordinates of a pixel position (corner convention: (0, 0) is the top-left corner)."""
        if self.transform is None:
            raise ValueError("this image has no affine transform, so pixels have no map position")
        a, b, c, d, e, f = self.transform
        return a * col + b * row + c, d * col + e * row + f


@dataclass(frozen=True)
class RasterImage:
    """Pixels plus what is needed to interpret them."""

    data: npt.NDArray[Any]
    """Array of shape (bands, height, width)."""
    bands: tuple[str, ...]
    nodata: float | None = None
    geo: GeoInfo | None = None

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise ValueError(f"image data must be (bands, height, width), got shape {self.data.shape}")
        if len(self.bands) != self.data.shape[0]:
            raise ValueError(f"{len(self.bands)} band names for {self.data.shape[0]} bands")

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype

    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def width(self) -> int:
        return int(self.data.shape[2])

    @property
    def band_count(self) -> int:
        return int(self.data.shape[0])

    def valid_mask(self) -> npt.NDArray[np.bool_]:
        """True where a pixel has data in every band (nodata-aware; NaN counts as nodata for floats)."""
        mask = np.ones(self.data.shape[1:], dtype=bool)
        if self.nodata is not None:
            if np.isnan(self.nodata):
                mask &= ~np.isnan(self.data).any(axis=0)
            else:
                mask &= ~(self.data == self.nodata).any(axis=0)
        elif np.issubdtype(self.data.dtype, np.floating):
            mask &= ~np.isnan(self.data).any(axis=0)
        return mask

    def to_hwc(self) -> npt.NDArray[Any]:
        """Channels-last view, the layout Pillow and most plotting code expect."""
        return np.moveaxis(self.data, 0, -1)


@dataclass(frozen=True)
class Boxes:
    """Axis-aligned (optionally rotated) boxes in pixel coordinates."""

    xyxy: npt.NDArray[np.float64]
    """Array of shape (n, 4): x1, y1, x2, y2 in pixels of the full image."""
    labels: tuple[str, ...]
    angles: npt.NDArray[np.float64] | None = None
    """Rotation in degrees about the box centre, counter-clockwise; None for axis-aligned boxes."""

    def __post_init__(self) -> None:
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"boxes must have shape (n, 4), got {self.xyxy.shape}")
        if len(self.labels) != len(self.xyxy):
            raise ValueError(f"{len(self.labels)} labels for {len(self.xyxy)} boxes")
        if self.angles is not None and self.angles.shape != (len(self.xyxy),):
            raise ValueError(f"angles must have shape ({len(self.xyxy)},), got {self.angles.shape}")
        if len(self.xyxy) and bool(np.any(self.xyxy[:, 2:] < self.xyxy[:, :2])):
            raise ValueError("boxes must satisfy x1 <= x2 and y1 <= y2")

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> Boxes:
        return cls(np.zeros((0, 4), dtype=np.float64), ())


@dataclass(frozen=True)
class Turn:
    """One message of a conversation; ``role`` is ``"human"`` or ``"gpt"`` as in LLaVA's JSON."""

    role: str
    text: str


@dataclass(frozen=True)
class Sample:
    """Everything one task needs about one example; fields a dataset does not have stay empty.

    Readers build samples with ``image=None`` (cheap metadata); ``Dataset[i]`` returns the same sample
    with its pixels loaded.
    """

    id: str
    split: str | None = None
    image_path: Path | None = None
    image: RasterImage | None = None
    label: str | None = None
    labels: tuple[str, ...] = ()
    captions: tuple[str, ...] = ()
    question: str | None = None
    answer: str | None = None
    question_type: str | None = None
    boxes: Boxes | None = None
    mask: npt.NDArray[Any] | None = None
    conversation: tuple[Turn, ...] = ()
    geo: GeoInfo | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def with_image(self, image: RasterImage) -> Sample:
        """The same sample with pixels; geo metadata from the file wins over what the annotation said."""
        return replace(self, image=image, geo=image.geo or self.geo)
