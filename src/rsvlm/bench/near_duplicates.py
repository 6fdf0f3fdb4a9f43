"""Near-duplicate images: copies of training images inside a test set, found by content.

Copies are found by the pixel correlation of small grey thumbnails (checked on their fine detail too, which
scenes that merely share a layout do not share), invariant to resizing, re-encoding, brightness/contrast,
flips and 90° rotations. ``split_by_copies`` then gives the copy-free part, so a report can give both scores.
The declarations side of leakage (which datasets a model trained on) is ``rsvlm.bench.leakage``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from rsvlm.data.sample import RasterImage
from rsvlm.errors import ImageReadError, RsvlmError

ImageInput: TypeAlias = str | Path | npt.NDArray[Any] | RasterImage
"""A file path, an array of shape (bands, height, width) or (height, width), or a ``RasterImage``."""

TRANSFORMS = ("identity", "rot270", "rot180", "rot90", "flip-h", "flip-h+rot90", "flip-v", "flip-h+rot270")
"""How a test image derives from its training copy, indexed by the test-thumbnail variant that matched.

Variant g turns the test thumbnail g % 4 quarter turns counter-clockwise, after a horizontal flip when g >= 4;
its name is the inverse: the transform that turns the training image into the test image. Rotations are
counter-clockwise, as ``numpy.rot90`` and Pillow's ``Transpose.ROTATE_90``; "flip-h+rot90" is a left-right
flip followed by rot90; "flip-v" equals "flip-h+rot180"."""

SMOOTH_SIGMA = 1.0
"""Gaussian blur (thumbnail pixels) before the main correlation: area averaging alone aliases fine texture
differently at every source size, which took copies of low-contrast scenes (forest, meadow) down to 0.91."""

DETAIL_SIGMAS = (0.7, 2.0)
"""The band (difference of Gaussians) the detail check correlates: scenes that only share a layout (a straight
beach edge, a sea) correlate at 0.95-0.98 when smoothed, but their details do not (at most 0.64 over 1,000 AID
images against the other 9,000, while copies resized to 97 px, re-encoded at JPEG quality 40 and flipped or
turned keep at least 0.91; ``benchmarks/near_duplicates.py``)."""

_DRAFT = 8
"""JPEGs decode with DCT scaling (Pillow's draft mode) down to at least this many times the thumbnail size:
scaled decoding is not area averaging (at 2x it moved a low-contrast chip's correlation with its own array
thumbnail to 0.92), but at 8x the area averaging that follows removes the difference."""

THUMBNAIL_VERSION = 1
"""Bumped whenever raw thumbnails change, so cached ones are never mixed with new ones."""


@dataclass(frozen=True)
class Match:
    """A test image and the training image it copies."""

    test: str
    train: str
    correlation: float
    """Pearson correlation of the smoothed grey thumbnails after ``transform`` (1.0: same up to brightness and
    contrast)."""
    transform: str
    """One of ``TRANSFORMS``: test ≈ transform(train)."""
    detail: float
    """Correlation of their fine detail (``DETAIL_SIGMAS``), the check that rejects scenes sharing only a layout."""


def _grey(data: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """Luma of (bands, h, w) or (h, w) pixels, with JPEG's Y weights, so files and arrays give one thumbnail;
    the first three of more bands count as RGB (any fixed choice finds copies of the same raster)."""
    array = np.asarray(data, dtype=np.float32)
    if array.ndim == 2:
        return array
    if array.ndim != 3:
        raise RsvlmError(f"image array of shape {array.shape}: pass (bands, height, width) or (height, width)")
    if array.shape[0] > 16 and array.shape[2] <= 4:
        raise RsvlmError(
            f"image array of shape {array.shape} looks like (height, width, bands): pass (bands, height, width), "
            "e.g. array.transpose(2, 0, 1)"
        )
    if array.shape[0] >= 3:
        luma: npt.NDArray[np.float32] = 0.299 * array[0] + 0.587 * array[1] + 0.114 * array[2]
        return luma
    first: npt.NDArray[np.float32] = array[0]
    return first


def _thumbnail_array(data: npt.NDArray[Any], size: int) -> npt.NDArray[np.float32]:
    from PIL import Image

    grey = Image.fromarray(np.ascontiguousarray(_grey(data)), mode="F")
    return np.asarray(grey.resize((size, size), Image.Resampling.BOX), dtype=np.float32).reshape(-1)


def _thumbnail_file(path: Path, size: int) -> npt.NDArray[np.float32]:
    from PIL import Image

    if path.suffix.lower() not in (".jpg", ".jpeg"):
        from rsvlm.data.raster import read_image

        return _thumbnail_array(read_image(path).data, size)
    try:
        with Image.open(path) as img:
            img.draft("L", (_DRAFT * size, _DRAFT * size))
            grey = img.convert("L").resize((size, size), Image.Resampling.BOX)
    except FileNotFoundError:
        raise ImageReadError(path, "image not found", "check the path") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(path, f"cannot decode image: {exc}", "the file is corrupt or truncated") from None
    return np.asarray(grey, dtype=np.float32).reshape(-1)


def thumbnails(
    images: Iterable[ImageInput], *, size: int = 32, cache_dir: str | Path | None = None
) -> npt.NDArray[np.float32]:
    """(n, size²) grey area averages of each image squashed to a square: what ``match_thumbnails`` compares.

    ``cache_dir`` keeps file thumbnails by content hash, so a moved or renamed file still hits the cache
    (10,000 AID chips: 5.8 s to decode, 0.8 s from the cache).
    """
    if size < 16 or size % 8:
        raise RsvlmError(f"thumbnail size {size}: use a multiple of 8, at least 16 (default 32)")
    cache = None
    if cache_dir is not None:
        from rsvlm.features.cache import FeatureCache, file_hash

        cache = FeatureCache(Path(cache_dir), f"thumbnail-v{THUMBNAIL_VERSION}-{size}", size * size)
    rows: list[npt.NDArray[np.float32]] = []
    for image in images:
        if isinstance(image, str | Path):
            path = Path(image)
            key = file_hash(path) if cache is not None and path.is_file() else None
            row = cache.get(key) if cache is not None and key else None
            if row is None:
                row = _thumbnail_file(path, size)
                if cache is not None and key:
                    cache.put(key, row)
            rows.append(row)
        elif isinstance(image, RasterImage):
            rows.append(_thumbnail_array(image.data, size))
        else:
            rows.append(_thumbnail_array(np.asarray(image), size))
    return np.stack(rows) if rows else np.zeros((0, size * size), dtype=np.float32)


def _blur_matrix(size: int, sigma: float) -> npt.NDArray[np.float32]:
    """K with K @ X @ K.T = Gaussian blur of X, mirrored at the edges: symmetric, so it commutes with flips and
    quarter turns, and the blurred variants of a thumbnail are the variants of its blur."""
    radius = max(1, math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    matrix = np.zeros((size, size), dtype=np.float64)
    for i in range(size):
        for offset, weight in zip(range(-radius, radius + 1), taps, strict=True):
            j = i + offset
            while not 0 <= j < size:  # half-sample mirror: ... b a | a b c ... c b a | a b ...
                j = -j - 1 if j < 0 else 2 * size - j - 1
            matrix[i, j] += weight
    return matrix.astype(np.float32)


def _normalise(rows: npt.NDArray[np.float32], scale: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Zero mean, unit norm per row; rows flat next to their image's ``scale`` (largest grey value) become zero
    vectors, which match nothing: a blank tile is not a copy of another blank tile."""
    rows = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    flat = norms <= 1e-4 * scale[:, None] + 1e-12
    return np.where(flat, 0.0, rows / np.where(flat, 1.0, norms)).astype(np.float32)


def features(thumbs: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(smooth, detail): normalised rows whose dot products are the two correlations a ``Match`` reports."""
    n, d = thumbs.shape
    size = math.isqrt(d)
    square = thumbs.reshape(n, size, size).astype(np.float32)

    def blur(sigma: float) -> npt.NDArray[np.float32]:
        k = _blur_matrix(size, sigma)
        return np.asarray(k @ square @ k.T, dtype=np.float32)

    scale = np.abs(thumbs).max(axis=1) if n else np.zeros(0, dtype=np.float32)
    smooth = _normalise(blur(SMOOTH_SIGMA).reshape(n, d), scale)
    detail = _normalise((blur(DETAIL_SIGMAS[0]) - blur(DETAIL_SIGMAS[1])).reshape(n, d), scale)
    return smooth, detail


def _variants(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(n, d) → (n * 8, d): the flips and quarter turns of each square, in the order ``TRANSFORMS`` names."""
    n, d = rows.shape
    side = math.isqrt(d)
    square = rows.reshape(n, side, side)
    out = np.empty((n, 8, side, side), dtype=np.float32)
    for g in range(8):
        out[:, g] = np.rot90(square[:, :, ::-1] if g >= 4 else square, g % 4, axes=(1, 2))
    return out.reshape(n * 8, d)


def _bound_vectors(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Rows whose dot products bound those of ``rows`` from above, in 65 numbers instead of size².

    The first 64 are 8×8 block means, scaled so that their dot products equal those of the block-averaged rows;
    the last is the norm of what averaging drops. By Cauchy-Schwarz on that remainder,
    <a, b> <= coarse_a·coarse_b + rest_a·rest_b, which is exactly the dot product of these vectors.
    """
    n, d = rows.shape
    block = math.isqrt(d) // 8
    coarse = rows.reshape(n, 8, block, 8, block).mean(axis=(2, 4)).reshape(n, 64) * block
    rest = np.einsum("ij,ij->i", rows, rows) - np.einsum("ij,ij->i", coarse, coarse)
    return np.concatenate([coarse, np.sqrt(np.clip(rest, 0.0, None))[:, None]], axis=1).astype(np.float32)


def _rowdot(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], ia: npt.NDArray[Any], ib: npt.NDArray[Any]
) -> npt.NDArray[np.float32]:
    """a[ia] · b[ib] row by row, in slices that keep the gathered copies small."""
    step = 16384
    parts = [np.einsum("ij,ij->i", a[ia[s : s + step]], b[ib[s : s + step]]) for s in range(0, len(ia), step)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def match_thumbnails(
    train: npt.NDArray[np.float32],
    test: npt.NDArray[np.float32],
    *,
    threshold: float = 0.95,
    detail_threshold: float = 0.75,
    prefilter: bool = True,
    chunk_mb: float = 64,
) -> list[tuple[int, int, float, float, int]]:
    """(test index, train index, correlation, detail, variant) of each test thumbnail's best copy.

    A pair is a copy when its smoothed correlation reaches ``threshold`` and its detail correlation reaches
    ``detail_threshold``; the best copy has the highest correlation. Every variant of every test image meets
    every training image, ``chunk_mb`` of scores at a time. ``prefilter`` first scores 65-number summaries
    (``_bound_vectors``) and skips the pairs whose upper bound is below the threshold: the bound is exact, so
    the result is the brute-force one (up to float rounding) at about a tenth of the arithmetic.
    """
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise RsvlmError(f"thumbnail arrays of shapes {train.shape} and {test.shape}: make both with thumbnails()")
    if not 0.5 <= threshold <= 1.0:
        raise RsvlmError(f"threshold {threshold}: use a correlation in [0.5, 1] (default 0.95; lower matches anything)")
    if len(train) == 0 or len(test) == 0:
        return []
    train_smooth, train_detail = features(train)
    test_smooth, test_detail = features(test)
    train_bound = _bound_vectors(train_smooth)
    per_chunk = max(1, int(chunk_mb * 2**20) // (4 * 8 * len(train)))
    found: list[tuple[int, int, float, float, int]] = []
    for start in range(0, len(test), per_chunk):
        smooth = _variants(test_smooth[start : start + per_chunk])
        detail = _variants(test_detail[start : start + per_chunk])
        rows: npt.NDArray[Any] | None = None
        if prefilter:
            passed = _bound_vectors(smooth) @ train_bound.T >= threshold - 1e-4
            hit = np.flatnonzero(passed.any(axis=1))  # usually few rows: nonzero on those alone is much cheaper
            rows, cols = np.nonzero(passed[hit])
            rows = hit[rows]
            if len(rows) * 16 > passed.size:  # the bound prunes little here: dense products are cheaper
                rows = None
            del passed
        if rows is None:
            scores = smooth @ train_smooth.T
            rows, cols = np.nonzero(scores >= threshold)
            corr = scores[rows, cols]
            del scores
        else:
            corr = _rowdot(smooth, train_smooth, rows, cols)
        fine = _rowdot(detail, train_detail, rows, cols)
        keep = (corr >= threshold) & (fine >= detail_threshold)
        rows, cols, corr, fine = rows[keep], cols[keep], corr[keep], fine[keep]
        done: set[int] = set()
        for i in np.lexsort((-corr, rows // 8)):  # per test image, highest correlation first; ties keep identity
            image = start + int(rows[i]) // 8
            if image not in done:
                done.add(image)
                found.append((image, int(cols[i]), float(corr[i]), float(fine[i]), int(rows[i]) % 8))
    return sorted(found)


def _ids(images: Sequence[ImageInput], ids: Sequence[str] | None, what: str) -> list[str]:
    if ids is None:
        return [str(im) if isinstance(im, str | Path) else str(i) for i, im in enumerate(images)]
    if len(ids) != len(images):
        raise RsvlmError(f"{what}_ids has {len(ids)} entries for {len(images)} {what} images (pass one id per image)")
    return [str(i) for i in ids]


def find_near_duplicates(
    train_images: Sequence[ImageInput],
    test_images: Sequence[ImageInput],
    *,
    threshold: float = 0.95,
    detail_threshold: float = 0.75,
    train_ids: Sequence[str] | None = None,
    test_ids: Sequence[str] | None = None,
    size: int = 32,
    cache_dir: str | Path | None = None,
    prefilter: bool = True,
) -> list[Match]:
    """Test images that copy a training image: one ``Match`` (its best) per copied test image, in test order.

    Copies are found through resizing (to any size or aspect ratio), JPEG re-encoding, brightness and contrast
    changes, flips and quarter turns; through crops of a few pixels mostly, and not through larger crops or
    other rotations. Ids default to the path, or the position for arrays.
    """
    train_names = _ids(train_images, train_ids, "train")
    test_names = _ids(test_images, test_ids, "test")
    train = thumbnails(train_images, size=size, cache_dir=cache_dir)
    test = thumbnails(test_images, size=size, cache_dir=cache_dir)
    return [
        Match(test_names[t], train_names[r], round(corr, 6), TRANSFORMS[g], round(fine, 6))
        for t, r, corr, fine, g in match_thumbnails(
            train, test, threshold=threshold, detail_threshold=detail_threshold, prefilter=prefilter
        )
    ]


def split_by_copies(test_ids: Iterable[str], matches: Iterable[Match]) -> tuple[list[str], list[str]]:
    """(copy-free ids, copied ids), each in ``test_ids`` order: a report scores the whole set and the copy-free
    part, and a large gap between the two means copies inflate the full score."""
    copied = {m.test for m in matches}
    ids = list(test_ids)
    return [i for i in ids if i not in copied], [i for i in ids if i in copied]
