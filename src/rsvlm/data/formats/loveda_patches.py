"""LoveDA (Wang et al., NeurIPS 2021 Datasets; 0.3 m, China) segmentation tiles as labelled scene patches.

Layout: ``images/<k>.png`` + ``masks/<k>.png`` (or LoveDA's own ``images_png``/``masks_png``), masks holding
class indexes 0 no-data, 1 background, 2 building, 3 road, 4 water, 5 barren, 6 forest, 7 agriculture.

Each square window (64 px by default, 19 m) is one sample labelled by the majority class of its mask pixels,
no-data ignored (ties go to the lower class index); windows under 50 % labelled, or where no-data outnumbers
every class, are dropped. ``meta`` keeps the window, the majority's share of the labelled pixels and the
labelled share.

Split by TILE so train and test never share a pixel: tiles sorted by name, every third one starting with the
second is ``test`` (the shared three-tile sample: tiles 0 and 2 train, tile 1 test, the only tile with every
kept class). Test windows tile without overlap (each pixel scored once); train windows step by half a patch,
which gives the pool few-shot draws come from four times the candidates. A class with fewer than
``min_train`` (16, the protocol's largest shot count) train windows is dropped with a note: a 16-shot draw
could not include it. LoveDA's "background" (land none of the other classes covers: verges, embankments,
yards, fallow strips) is named "other land" in prompts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rsvlm.data.dataset import Unmatched, find_images_dir, image_files
from rsvlm.data.formats.windowed import WindowedDataset, grid_positions
from rsvlm.data.raster import inspect_raster, read_image
from rsvlm.data.sample import Sample
from rsvlm.errors import AnnotationError, DataError

CLASSES = ("no-data", "background", "building", "road", "water", "barren", "forest", "agriculture")
"""LoveDA's class names by mask index."""
READABLE = {"background": "other land", "barren": "barren land", "agriculture": "agricultural land"}
"""Prompt names where LoveDA's own word would mislead a text encoder (the rest read as they are)."""
IMAGE_DIRS = ("images", "images_png")
MASK_DIRS = ("masks", "masks_png")


def _pairs(root: Path) -> tuple[Path, Path] | None:
    images, masks = find_images_dir(root, IMAGE_DIRS), find_images_dir(root, MASK_DIRS)
    return (images, masks) if images is not None and masks is not None else None


def window_label(mask: npt.NDArray[Any]) -> tuple[int, float, float] | None:
    """(class index, majority share of labelled pixels, labelled share) of one mask window; None: dropped."""
    counts = np.bincount(mask.ravel(), minlength=len(CLASSES))[: len(CLASSES)]
    labelled = int(counts[1:].sum())
    if labelled * 2 < mask.size:
        return None
    best = int(np.argmax(counts[1:])) + 1
    if counts[0] >= counts[best]:
        return None
    return best, float(counts[best]) / labelled, labelled / mask.size


def pick_test_tiles(stems: Sequence[str]) -> set[str]:
    """Every third tile, starting with the second, in name order (numeric names sort as numbers)."""
    ordered = sorted(stems, key=lambda s: (0, int(s), s) if s.isdigit() else (1, 0, s))
    return {s for i, s in enumerate(ordered) if i % 3 == 1}


class LoveDAPatchesDataset(WindowedDataset):
    format_name = "loveda-patches"
    description = "scene patches of LoveDA segmentation tiles, labelled by majority mask class, split by tile"
    default_class_names = READABLE

    def __init__(
        self,
        root: str | Path,
        *,
        images: str | Path | None = None,
        split: str | None = None,
        class_names: Mapping[str, str] | None = None,
        patch: int = 64,
        test_tiles: Sequence[str] | None = None,
        min_train: int = 16,
    ) -> None:
        if patch < 8:
            raise DataError(root, f"patch side {patch} px is too small", "use at least 8 px")
        self.patch = patch
        self.test_tiles = None if test_tiles is None else {str(t) for t in test_tiles}
        self.min_train = min_train
        super().__init__(root, images=images, split=split, class_names=class_names)

    @classmethod
    def detect(cls, path: Path) -> bool:
        """An images folder and a masks folder of PNG pairs whose first mask is single-band with indexes 0-7."""
        found = _pairs(path) if path.is_dir() else None
        if found is None:
            return False
        images = {p.stem for p in image_files(found[0])}
        masks = [p for p in image_files(found[1]) if p.stem in images]
        if not masks:
            return False
        try:
            mask = read_image(masks[0])
        except DataError:
            return False
        return mask.band_count == 1 and mask.data.dtype == np.uint8 and int(mask.data.max()) < len(CLASSES)

    def _load(self) -> list[Sample]:
        found = _pairs(self.root)
        if found is None:
            raise DataError(self.root, "no images/ and masks/ folders", "point at the LoveDA folder")
        images_dir = self.images_dir or found[0]
        images = {p.stem: p for p in image_files(images_dir)}
        masks = {p.stem: p for p in image_files(found[1])}
        for stem in sorted(set(images) - set(masks)):
            self.unmatched.append(Unmatched(None, images[stem].name, "image without a mask"))
        for stem in sorted(set(masks) - set(images)):
            self.unmatched.append(Unmatched(None, masks[stem].name, "mask without an image", 0))
        tiles = sorted(set(images) & set(masks))
        test = self.test_tiles if self.test_tiles is not None else pick_test_tiles(tiles)
        unknown = sorted(test - set(tiles))
        if unknown:
            raise DataError(self.root, f"test tile(s) {', '.join(unknown)} not found", f"tiles: {', '.join(tiles)}")
        records: list[Sample] = []
        dropped = 0
        for stem in tiles:
            split = "test" if stem in test else "train"
            tile_records, tile_dropped = self._tile(images[stem], masks[stem], stem, split)
            records.extend(tile_records)
            dropped += tile_dropped
        if dropped:
            self.notes.append(f"{dropped} windows dropped: under half labelled, or no-data their largest part")
        self.notes.append(
            f"{self.patch}-px windows; test tiles {', '.join(sorted(test)) or '(none)'}, train tiles "
            f"{', '.join(t for t in tiles if t not in test) or '(none)'}; train windows step {self._stride('train')} px"
        )
        return self._drop_small_classes(records)

    def _stride(self, split: str) -> int:
        return self.patch if split == "test" else max(1, self.patch // 2)

    def _tile(self, image: Path, mask_path: Path, stem: str, split: str) -> tuple[list[Sample], int]:
        info = inspect_raster(image)
        mask = read_image(mask_path)
        if mask.band_count != 1:
            raise AnnotationError(mask_path, f"mask has {mask.band_count} bands", "LoveDA masks hold one class band")
        if (mask.width, mask.height) != (info.width, info.height):
            raise AnnotationError(
                mask_path, f"mask is {mask.width}x{mask.height}, its image {info.width}x{info.height}"
            )
        values = mask.data[0]
        if values.size and int(values.max()) >= len(CLASSES):
            raise AnnotationError(mask_path, f"mask value {int(values.max())} is not a LoveDA class index 0-7")
        stride, p = self._stride(split), self.patch
        records: list[Sample] = []
        dropped = 0
        for row in grid_positions(info.height, p, stride):
            for col in grid_positions(info.width, p, stride):
                found = window_label(values[row : row + p, col : col + p])
                if found is None:
                    dropped += 1
                    continue
                index, share, labelled = found
                records.append(
                    Sample(
                        id=f"{stem}/x{col:05d}y{row:05d}",
                        split=split,
                        image_path=image,
                        label=CLASSES[index],
                        meta={
                            "tile": stem,
                            "window": [col, row, p, p],
                            "majority_share": round(share, 4),
                            "labelled_share": round(labelled, 4),
                            "mask_path": str(mask_path),
                        },
                    )
                )
        return records, dropped

    def _drop_small_classes(self, records: list[Sample]) -> list[Sample]:
        train = Counter(r.label for r in records if r.split == "train")
        test = Counter(r.label for r in records if r.split == "test")
        small = sorted({str(r.label) for r in records if train[r.label] < self.min_train})
        if not small:
            return records
        described = ", ".join(f"{c} ({train[c]} train, {test[c]} test)" for c in small)
        self.notes.append(f"classes dropped, fewer than {self.min_train} train windows: {described}")
        return [r for r in records if r.label not in small]
