"""Training-data leakage: which results are on data a model was trained on, and which test images are copies.

Two complementary checks, because either alone misses cases:

- declarations (``training_data``, ``seen_in_training``): each model's training sets, splits and held-out
  parts, as its model card, recipe or paper states them, plus known image overlaps between datasets
  (RSICD's class-named images are AID's; about 630 of WHU-RS19's images are AID's). A result on a declared
  set, or on a set that shares images with one, is flagged "seen". What a paper does not state stays
  "not declared" rather than being guessed "clean".
- content (``find_near_duplicates``): copies of training images inside a test set, found by the pixel
  correlation of small grey thumbnails (checked on their fine detail too, which scenes that merely share a
  layout do not share), invariant to resizing, re-encoding, brightness/contrast, flips and 90° rotations.
  ``split_by_copies`` then gives the copy-free part, so a report can give both scores.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from rsvlm.data.sample import RasterImage
from rsvlm.errors import ImageReadError, RsvlmError

# --------------------------------------------------------------------------------------------------------------
# Declarations
# --------------------------------------------------------------------------------------------------------------

Status = Literal["seen", "test-split-excluded", "not declared", "clean"]


@dataclass(frozen=True)
class Part:
    """One dataset (or some splits of it) a model was trained on."""

    dataset: str
    """Canonical dataset name (``canonical_dataset``)."""
    splits: tuple[str, ...] | None = None
    """The splits trained on; None: all of the dataset."""
    how: str = ""
    """What of it was used (captions, class names as prompts …), for the flag's reason."""
    splits_declared: bool = True
    """False when the source names the dataset but not which splits were trained on."""


@dataclass(frozen=True)
class HeldOut:
    """A split removed from a model's training, so a result on it is on images the model did not see."""

    dataset: str
    split: str
    how: str


@dataclass(frozen=True)
class TrainingData:
    """What one model was trained on, as its documentation declares it."""

    parts: tuple[Part, ...]
    excluded: str = ""
    """What was deliberately held out, in words ("" when nothing was)."""
    source: str = ""
    """Where these facts come from (model card, recipe, paper)."""
    held_out: tuple[HeldOut, ...] = ()
    undisclosed: str = ""
    """Training images that are not enumerated anywhere (web crawls): overlap with any benchmark is unknown."""
    notes: str = ""

    @property
    def datasets(self) -> frozenset[str]:
        return frozenset(p.dataset for p in self.parts)


@dataclass(frozen=True)
class Flag:
    """Whether a result is on data the model saw, and why; ``status`` is one of ``Status``."""

    status: Status
    reason: str

    @property
    def label(self) -> str:
        """The words a report prints next to a score."""
        return "seen in training" if self.status == "seen" else self.status


@dataclass(frozen=True)
class Overlap:
    """Two datasets that share images (so training on one is training on part of the other)."""

    a: str
    b: str
    note: str


_ALIASES = {
    "whurs19": "whu-rs19",
    "whu-rs-19": "whu-rs19",
    "ucmerced": "ucm",
    "uc-merced": "ucm",
    "uc-merced-land-use": "ucm",
    "ucm-caption": "ucm-captions",
    "neon": "neon-trees",
    "imagenet": "imagenet-1k",
    "rsvqa-low-resolution": "rsvqa-lr",
    "rsvqa-high-resolution": "rsvqa-hr",
}


KNOWN_DATASETS = frozenset(
    {
        "aid",
        "rsicd",
        "rsitmd",
        "ucm",
        "ucm-captions",
        "sydney-captions",
        "whu-rs19",
        "rsvqa-lr",
        "rsvqa-hr",
        "neon-trees",
        "eurosat",
        "resisc45",
        "patternnet",
        "optimal-31",
        "rs5m",
        "skyscript",
        "million-aid",
        "imagenet-1k",
    }
)
"""Dataset names ``canonical_dataset`` recognises inside a path (``golden/whurs19/…`` → ``whu-rs19``)."""


def _key(name: str) -> str:
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    return _ALIASES.get(key, key)


def canonical_dataset(name: str | Path) -> str:
    """One spelling per dataset: ``"WHU_RS19"`` and ``"WHURS19"`` are ``whu-rs19``; a path such as
    ``rsvqa/lr`` or ``golden/whurs19/results/…`` (as benchmark suites give them) names the dataset it holds."""
    keys = [_key(p) for p in re.split(r"[/\\]+", str(name)) if p.strip()]
    for a, b in reversed(list(pairwise(keys))):  # the deepest match: /data/aid/tiles/eurosat is eurosat
        if f"{a}-{b}" in KNOWN_DATASETS:
            return f"{a}-{b}"
    return next((k for k in reversed(keys) if k in KNOWN_DATASETS), keys[-1] if keys else "")


OVERLAPS: tuple[Overlap, ...] = (
    Overlap(
        "rsicd",
        "aid",
        "RSICD's class-named images are AID images: all 10,000 of AID's, 8,973 in RSICD's train split and "
        "1,027 in its test split (../shared/data/README.md)",
    ),
    Overlap(
        "whu-rs19",
        "aid",
        "about 630 of WHU-RS19's 1,005 images are AID images (pixel correlation >= 0.95 after resizing; issue 8)",
    ),
    Overlap(
        "whu-rs19",
        "rsicd",
        "about 630 of WHU-RS19's 1,005 images are AID images, and all of AID's images are RSICD images",
    ),
    Overlap("ucm-captions", "ucm", "UCM-captions captions the 2,100 UC Merced land-use images"),
)
"""Known image overlaps between datasets (either direction)."""

_CLIP_INIT = "the CLIP weights it starts from were trained on web image-text pairs that are not published"
_RSICD_TEST = HeldOut(
    "rsicd", "test", "its 1,027 AID-matched images were removed by file content from every training source"
)
_LITE_PARTS = (
    Part("rsicd", ("train",), "captions of its AID-matched images, 95 % for training and 5 % for validation"),
    Part("aid", None, "class names as prompt captions, on every AID image but the 1,027 RSICD test images"),
    Part("imagenet-1k", None, "pretraining of the EfficientNet-Lite0 image tower"),
)
_LITE_EXCLUDED = "the 1,027 RSICD test images (AID images), removed by file content from every training source"
_DEMO_SPLIT = "rsvlm's split of the 50-image demo subset by image, seed 0 (heldout/{}.txt); not RSVQA's official split"


def _remoteclip() -> TrainingData:
    unknown_split = "RET-3 retrieval captions"
    return TrainingData(
        parts=(
            Part("rsicd", how=unknown_split, splits_declared=False),
            Part("rsitmd", how=unknown_split, splits_declared=False),
            Part("ucm-captions", how=unknown_split, splits_declared=False),
            Part("remoteclip-det-10", how="detection sets (DOTA, DIOR and others) converted to captions"),
            Part("remoteclip-seg-4", how="segmentation sets converted to boxes, then to captions"),
        ),
        source="Liu et al., RemoteCLIP, TGRS 2024 (RET-3, DET-10, SEG-4 and UAV imagery; continual pretraining)",
        undisclosed=_CLIP_INIT,
    )


def _georsclip() -> TrainingData:
    return TrainingData(
        parts=(Part("rs5m", how="RS5M image-text pairs"),),
        source="Zhang et al., RS5M and GeoRSCLIP, TGRS 2024",
        undisclosed=(
            "RS5M's images were filtered from public web image-text datasets (LAION2B-en, COYO-700M …), and "
            + _CLIP_INIT
        ),
    )


def _skyclip() -> TrainingData:
    return TrainingData(
        parts=(Part("skyscript", how="SkyScript pairs (Google Earth Engine images, OpenStreetMap-tag captions)"),),
        source="Wang et al., SkyScript, AAAI 2024",
        undisclosed=_CLIP_INIT,
    )


def _openai() -> TrainingData:
    return TrainingData(
        parts=(),
        source="Radford et al., CLIP, ICML 2021",
        undisclosed="WIT, 400 M image-text pairs collected from the web, is not published",
    )


TRAINING_DATA: dict[str, TrainingData] = {
    "rsvlm-lite": TrainingData(
        parts=_LITE_PARTS,
        excluded=_LITE_EXCLUDED,
        source="rsvlm/models/weights/rsvlm-lite/MODEL_CARD.md; configs/rsvlm-lite.yaml",
        held_out=(_RSICD_TEST,),
        notes="the MiniLM text tower was pretrained on sentence pairs (text only)",
    ),
    "rsvlm-lite-chat": TrainingData(
        parts=(
            Part("rsicd", ("train",), "captioning conversations"),
            Part("aid", None, "scene-classification conversations"),
            Part("rsvqa-lr", ("train",), "VQA on 40 of the 50 demo images; " + _DEMO_SPLIT.format("rsvqa-lr")),
            Part("rsvqa-hr", ("train",), "VQA on 40 of the 50 demo images; " + _DEMO_SPLIT.format("rsvqa-hr")),
            Part("neon-trees", ("train",), "counting and grounding on SOAP_061 and the YELL crop"),
            *(Part(p.dataset, p.splits, f"through its rsvlm-lite image tower: {p.how}") for p in _LITE_PARTS),
        ),
        excluded=(
            f"{_LITE_EXCLUDED}; 20 % of the RSVQA LR and HR demo images (by image, seed 0: "
            "heldout/rsvqa-*.txt; their place in RSVQA's official splits is unknown); the NEON tile OSBS_029"
        ),
        source=(
            "rsvlm/models/weights/rsvlm-lite-chat/MODEL_CARD.md; configs/instructions-rs.yaml; "
            "configs/rsvlm-lite-chat.yaml"
        ),
        held_out=(
            _RSICD_TEST,
            HeldOut("rsvqa-lr", "test", "its 10 images were held out: " + _DEMO_SPLIT.format("rsvqa-lr")),
            HeldOut("rsvqa-hr", "test", "its 10 images were held out: " + _DEMO_SPLIT.format("rsvqa-hr")),
            HeldOut("neon-trees", "test", "the tile OSBS_029, a separate region, was held out"),
        ),
        notes="the Gemma-3-270M language model is text-only; its undisclosed web-text pretraining saw no images",
    ),
    **{f"openai-{a}": _openai() for a in ("rn50", "vit-b-32", "vit-l-14")},
    **{f"remoteclip-{a}": _remoteclip() for a in ("rn50", "vit-b-32", "vit-l-14")},
    **{f"georsclip-{a}": _georsclip() for a in ("vit-b-32", "vit-h-14")},
    **{f"skyclip-{a}": _skyclip() for a in ("vit-b-32", "vit-l-14")},
}
"""Declared training data of the models rsvlm ships or registers; other names are "not declared"."""

_SPLIT_WORDS = frozenset({"train", "val", "test", "trainval"})


def _from_spec_file(path: str) -> TrainingData | None:
    """A JSON model spec's ``trained_on`` (``"RSICD-train"``, ``"AID"``), for custom models."""
    from rsvlm.models.registry import get_spec

    spec = get_spec(path)
    if not spec.trained_on:
        return None
    parts = []
    for entry in spec.trained_on:
        name, _, split = canonical_dataset(entry).rpartition("-")
        if name and split in _SPLIT_WORDS:
            parts.append(Part(name, (split,), "declared in the model spec"))
        else:
            parts.append(Part(canonical_dataset(entry), None, "declared in the model spec"))
    return TrainingData(
        parts=tuple(parts),
        source=path,
        undisclosed="any pretraining of the weights it starts from is not declared in the spec file",
    )


def training_data(model: str) -> TrainingData | None:
    """The declared training data of a registered model name or a JSON model-spec file; None if undeclared."""
    if model.endswith(".json"):
        return _from_spec_file(model)
    return TRAINING_DATA.get(model)


def _overlap(a: str, b: str) -> Overlap | None:
    return next((o for o in OVERLAPS if {o.a, o.b} == {a, b}), None)


def _part_words(part: Part) -> str:
    where = f"{part.dataset} {'/'.join(part.splits)}" if part.splits else part.dataset
    return f"{where} ({part.how})" if part.how else where


def seen_in_training(model: str, dataset: str | Path, split: str | None = None) -> Flag:
    """Flag a result of ``model`` on ``dataset`` (``split`` None: the whole dataset) from declarations only.

    Order: a held-out split is "test-split-excluded"; training on the dataset, or on one sharing images with
    it, is "seen"; undisclosed training images or undeclared splits are "not declared"; else "clean".
    """
    data = training_data(model)
    name = canonical_dataset(dataset)
    what = f"{name} {split}" if split else name
    if data is None:
        return Flag("not declared", f"no training data is declared for {model} (rsvlm.bench.leakage.TRAINING_DATA)")
    held = next((h for h in data.held_out if (h.dataset, h.split) == (name, split)), None)
    if held is not None:
        return Flag("test-split-excluded", f"{model} did not train on {what}: {held.how}")
    unknown: list[str] = []
    other_split: list[str] = []
    for part in data.parts:
        if part.dataset != name:
            continue
        if not part.splits_declared and split is not None:
            unknown.append(f"{model} trained on {name}, but which splits is not declared ({part.how})")
        elif part.splits is None or split is None or split in part.splits:
            return Flag("seen", f"{model} trained on {_part_words(part)}")
        else:
            other_split.append(f"{model} trained on {name} {'/'.join(part.splits)} only, not on {split}")
    for part in data.parts:
        overlap = _overlap(part.dataset, name)
        if overlap is not None and part.dataset != name:
            return Flag("seen", f"{model} trained on {_part_words(part)}; {overlap.note}")
    if data.undisclosed:
        known = f" ({'; '.join(unknown + other_split)})" if unknown or other_split else ""
        return Flag("not declared", f"whether {model} saw {what} is unknown: {data.undisclosed}{known}")
    if unknown:
        return Flag("not declared", "; ".join(unknown))
    if other_split:
        return Flag("test-split-excluded", "; ".join(other_split) + " (by split, not checked by content)")
    trained = ", ".join(dict.fromkeys(_part_words(Part(p.dataset, p.splits)) for p in data.parts)) or "nothing"
    return Flag("clean", f"none of {model}'s declared training data ({trained}) is or overlaps {name}")


# --------------------------------------------------------------------------------------------------------------
# Near-duplicate images
# --------------------------------------------------------------------------------------------------------------

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
