"""Sen1Floods11 (Bonafilia et al., CVPR Workshops 2020) hand-labelled chips as water / land scene patches.

Layout: ``S2/<chip>_S2Hand.tif`` (Sentinel-2 L1C, 13 bands int16, nodata 0) + ``Labels/<chip>_LabelHand.tif``
(-1 no data, 0 not water, 1 water); the release's ``S2Hand``/``LabelHand`` folder names work too.

Each 32-px window (320 m) is one sample: ``water`` when water pixels outnumber not-water pixels among the
labelled ones, else ``not-water`` (prompted as "land"); windows under 50 % labelled or under 50 % valid
imagery are dropped. 32 px, not 64: the shared chip has only 14 water windows of 64 px, too few to split
and still draw 16 shots.

Spatial split: a checkerboard of 128-px blocks (block row + column even: train, odd: test). Water lies mostly
in the chip's north-east, so halves would leave the test side a dozen water windows; the checkerboard puts
about a quarter water on both sides. Test windows tile their blocks without overlap; train windows step by
half a patch and stay ``gap`` (16 px, 160 m) inside their block, so no train window touches a test block.

Models see what scene maps feed them: ``sen1floods11`` renders the natural-colour composite (B4, B3, B2)
stretched between the 2nd/98th percentiles of the WHOLE chip (``rsvlm.data.bands``, the scene-map rule; never
per window); ``sen1floods11-ms`` hands over the 13 raw bands, for models with a 13-band spectral adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rsvlm.data.bands import BandStats, band_stats, data_mask, get_preset, rgb_composite
from rsvlm.data.dataset import Unmatched, find_images_dir
from rsvlm.data.formats.windowed import WindowedDataset, grid_positions
from rsvlm.data.raster import read_image
from rsvlm.data.sample import RasterImage, Sample
from rsvlm.errors import AnnotationError, DataError

S2_DIRS = ("S2", "S2Hand")
LABEL_DIRS = ("Labels", "LabelHand")
S2_SUFFIX = "_S2Hand.tif"
LABEL_SUFFIX = "_LabelHand.tif"
READABLE = {"not-water": "land"}
PRESET = "sentinel2-l1c"


def _chips(folder: Path, suffix: str) -> dict[str, Path]:
    return {p.name[: -len(suffix)]: p for p in sorted(folder.glob(f"*{suffix}")) if p.is_file()}


def window_label(labels: npt.NDArray[Any]) -> tuple[bool, float, float] | None:
    """(is water, majority share of labelled pixels, labelled share) of one label window; None: dropped."""
    water = int((labels == 1).sum())
    dry = int((labels == 0).sum())
    labelled = water + dry
    if labelled * 2 < labels.size:
        return None
    return water > dry, max(water, dry) / labelled, labelled / labels.size


class Sen1Floods11Dataset(WindowedDataset):
    format_name = "sen1floods11"
    description = "water / land patches of Sen1Floods11 hand-labelled chips (Sentinel-2 RGB composite)"
    default_class_names = READABLE

    def __init__(
        self,
        root: str | Path,
        *,
        images: str | Path | None = None,
        split: str | None = None,
        class_names: Mapping[str, str] | None = None,
        patch: int = 32,
        block: int = 128,
        gap: int = 16,
    ) -> None:
        if patch < 8 or block < patch + 2 * gap or gap < 0:
            raise DataError(
                root, f"patch {patch}, block {block}, gap {gap} px", "need patch >= 8, gap >= 0, block >= patch + 2 gap"
            )
        self.patch, self.block, self.gap = patch, block, gap
        self.stats: dict[Path, BandStats] = {}
        super().__init__(root, images=images, split=split, class_names=class_names)

    @classmethod
    def detect(cls, path: Path) -> bool:
        if not path.is_dir():
            return False
        s2, labels = find_images_dir(path, S2_DIRS), find_images_dir(path, LABEL_DIRS)
        if s2 is None or labels is None:
            return False
        return bool(set(_chips(s2, S2_SUFFIX)) & set(_chips(labels, LABEL_SUFFIX)))

    def _load(self) -> list[Sample]:
        s2_dir = self.images_dir or find_images_dir(self.root, S2_DIRS)
        label_dir = find_images_dir(self.root, LABEL_DIRS)
        if s2_dir is None or label_dir is None:
            raise DataError(self.root, "no S2/ and Labels/ folders", "point at the Sen1Floods11 folder")
        s2, labels = _chips(s2_dir, S2_SUFFIX), _chips(label_dir, LABEL_SUFFIX)
        for chip in sorted(set(s2) - set(labels)):
            self.unmatched.append(Unmatched(None, s2[chip].name, "Sentinel-2 chip without hand labels"))
        for chip in sorted(set(labels) - set(s2)):
            self.unmatched.append(Unmatched(None, labels[chip].name, "hand labels without a Sentinel-2 chip", 0))
        records: list[Sample] = []
        dropped = 0
        for chip in sorted(set(s2) & set(labels)):
            chip_records, chip_dropped = self._chip(chip, s2[chip], labels[chip])
            records.extend(chip_records)
            dropped += chip_dropped
        if dropped:
            self.notes.append(f"{dropped} windows dropped: under half labelled or under half valid imagery")
        self.notes.append(
            f"{self.patch}-px windows in a checkerboard of {self.block}-px blocks (even block row + column: train, "
            f"odd: test); train windows step {self._stride('train')} px, {self.gap} px inside their block"
        )
        return records

    def _stride(self, split: str) -> int:
        return self.patch if split == "test" else max(1, self.patch // 2)

    def _chip(self, chip: str, s2_path: Path, label_path: Path) -> tuple[list[Sample], int]:
        image = read_image(s2_path)
        if image.band_count != len(get_preset(PRESET).bands):
            raise DataError(
                s2_path, f"has {image.band_count} bands", "Sen1Floods11 S2Hand chips hold 13 Sentinel-2 bands"
            )
        labels = read_image(label_path)
        if labels.band_count != 1 or (labels.width, labels.height) != (image.width, image.height):
            raise AnnotationError(
                label_path,
                f"labels are {labels.band_count} band(s) of {labels.width}x{labels.height}, "
                f"the chip {image.width}x{image.height}",
            )
        values = labels.data[0]
        odd = sorted({int(v) for v in np.unique(values)} - {-1, 0, 1})
        if odd:
            raise AnnotationError(label_path, f"label value {odd[0]} is not -1 (no data), 0 (not water) or 1 (water)")
        self.stats[s2_path] = band_stats(image)
        valid = data_mask(image)
        p, records, dropped = self.patch, [], 0
        for split, row, col, bi, bj in self._windows(image.height, image.width):
            found = window_label(values[row : row + p, col : col + p])
            if found is None or valid[row : row + p, col : col + p].mean() < 0.5:
                dropped += 1
                continue
            water, share, labelled = found
            records.append(
                Sample(
                    id=f"{chip}/x{col:05d}y{row:05d}",
                    split=split,
                    image_path=s2_path,
                    label="water" if water else "not-water",
                    meta={
                        "chip": chip,
                        "window": [col, row, p, p],
                        "block": [bi, bj],
                        "majority_share": round(share, 4),
                        "labelled_share": round(labelled, 4),
                        "label_path": str(label_path),
                    },
                )
            )
        return records, dropped

    def _windows(self, height: int, width: int) -> list[tuple[str, int, int, int, int]]:
        """(split, row, col, block row, block column) of every window, block by block."""
        out: list[tuple[str, int, int, int, int]] = []
        for bi in range(-(-height // self.block)):
            for bj in range(-(-width // self.block)):
                split = "train" if (bi + bj) % 2 == 0 else "test"
                inset = self.gap if split == "train" else 0
                r0, c0 = bi * self.block, bj * self.block
                stride = self._stride(split)
                rows = grid_positions(height, self.patch, stride, r0 + inset, r0 + self.block - inset)
                cols = grid_positions(width, self.patch, stride, c0 + inset, c0 + self.block - inset)
                out.extend((split, r, c, bi, bj) for r in rows for c in cols)
        return out

    def _stats_of(self, record: Sample) -> BandStats:
        assert record.image_path is not None  # load_image checked
        stats = self.stats.get(record.image_path)
        if stats is None:
            raise DataError(record.image_path, f"sample {record.id} is not from this dataset's chips")
        return stats

    def render(self, record: Sample, crop: RasterImage) -> RasterImage:
        return rgb_composite(crop, get_preset(PRESET).rgb_index, self._stats_of(record))

    def render_id(self, record: Sample) -> str:
        rgb = get_preset(PRESET).rgb_index
        stats = self._stats_of(record)
        limits = ";".join(f"{stats.lo[i]:.6g}-{stats.hi[i]:.6g}" for i in rgb)
        return f"rgb {rgb} chip-wide stretch {limits}"


class Sen1Floods11BandsDataset(Sen1Floods11Dataset):
    """The same windows with the 13 raw Sentinel-2 bands, for models with a 13-band spectral adapter."""

    format_name = "sen1floods11-ms"
    description = "the sen1floods11 patches as 13 raw Sentinel-2 bands (for 13-band spectral-adapter models)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return False  # the RGB reader claims these folders; this one is asked for by name

    def render(self, record: Sample, crop: RasterImage) -> RasterImage:
        return crop

    def render_id(self, record: Sample) -> str:
        return "13 raw bands"
