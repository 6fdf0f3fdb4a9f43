"""RSICD/UCM/Sydney captions in the "precomp" text split used by most RS retrieval papers (AMFMN, GaLR).

Per split, ``<split>_filename.txt`` names images and ``<split>_caps.txt`` holds captions. Two alignments
occur in the wild, both in RSICD's own release: one line per image with k captions per image in
consecutive lines (train), or one caption per line with the image name repeated (test). The reader
infers which from the line counts and refuses anything else.
"""

from __future__ import annotations

from pathlib import Path

from rsvlm.data.dataset import Dataset, Unmatched, find_images_dir, index_images, read_lines
from rsvlm.data.sample import Sample
from rsvlm.errors import AnnotationError, DataError

_SPLITS = ("train", "val", "test")


def _pair(names: list[str], caps: list[str], names_path: Path, caps_path: Path) -> list[tuple[str, list[str]]]:
    """Group captions by image name, preserving first-seen order."""
    grouped: dict[str, list[str]] = {}
    if len(caps) == len(names):
        for name, cap in zip(names, caps, strict=True):
            grouped.setdefault(name, []).append(cap)
    elif names and len(caps) % len(names) == 0:
        k = len(caps) // len(names)
        if len(set(names)) != len(names):
            raise AnnotationError(names_path, "repeats image names but has fewer lines than the captions file")
        for i, name in enumerate(names):
            grouped[name] = caps[i * k : (i + 1) * k]
    else:
        raise AnnotationError(
            caps_path,
            f"{len(caps)} captions cannot be aligned with the {len(names)} names in {names_path.name}",
            "expect one caption per name line, or the same number of captions for every name",
        )
    return list(grouped.items())


class RsicdPrecompDataset(Dataset):
    format_name = "rsicd-precomp"
    description = "image captions, precomp txt split: <split>_filename.txt + <split>_caps.txt (RSICD, UCM, Sydney)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_dir() and any((path / f"{s}_caps.txt").is_file() for s in _SPLITS)

    def _load(self) -> list[Sample]:
        images_dir = self.images_dir or find_images_dir(self.root, ("images", "imgs"))
        if images_dir is None:
            raise DataError(self.root, "no images folder next to the captions", "pass --images DIR")
        index, duplicates = index_images(images_dir)
        if duplicates:
            self.notes.append(f"{len(duplicates)} image names occur twice under {images_dir}; the first is used")
        records: list[Sample] = []
        for split in _SPLITS:
            caps_path = self.root / f"{split}_caps.txt"
            names_path = self.root / f"{split}_filename.txt"
            if not caps_path.is_file():
                continue
            names = [n.strip() for n in read_lines(names_path)]
            caps = [c.strip() for c in read_lines(caps_path)]
            if any(not n for n in names):
                raise AnnotationError(names_path, f"line {names.index('') + 1} is empty")
            for name, captions in _pair(names, caps, names_path, caps_path):
                path = index.get(name)
                if path is None:
                    self.unmatched.append(Unmatched(split, name, "image not found", len(captions)))
                    continue
                records.append(Sample(id=Path(name).stem, split=split, image_path=path, captions=tuple(captions)))
        return records
