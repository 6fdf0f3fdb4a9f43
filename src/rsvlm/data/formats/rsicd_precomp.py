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


Lines = list[tuple[int, str]]
"""Caption lines of one image: (line number in the captions file, stripped text)."""


def _pair(names: list[str], caps: list[str], names_path: Path, caps_path: Path) -> list[tuple[str, Lines]]:
    """Group caption lines by image name, preserving first-seen order; blank lines keep their place."""
    if not any(caps):
        raise AnnotationError(
            caps_path,
            f"holds no captions, but {names_path.name} names {len(names)} images",
            "restore the captions file from the original release",
        )
    if not names:
        raise AnnotationError(
            names_path, f"names no images, but {caps_path.name} holds {len(caps)} caption lines", "restore it"
        )
    grouped: dict[str, Lines] = {}
    numbered = list(enumerate(caps, start=1))
    if len(caps) == len(names):
        for name, line in zip(names, numbered, strict=True):
            grouped.setdefault(name, []).append(line)
    elif len(caps) > len(names) and len(caps) % len(names) == 0:
        k = len(caps) // len(names)
        if len(set(names)) != len(names):
            raise AnnotationError(
                names_path,
                f"repeats image names, so needs one line per caption, but has {len(names)} lines "
                f"for the {len(caps)} lines of {caps_path.name}",
                "is one of the files truncated?",
            )
        for i, name in enumerate(names):
            grouped[name] = numbered[i * k : (i + 1) * k]
    elif len(caps) < len(names):
        raise AnnotationError(
            caps_path,
            f"has only {len(caps)} caption lines for the {len(names)} names in {names_path.name}",
            "expect one caption per name line, or the same number of captions for every name; is it truncated?",
        )
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
            names = [n.strip() for n in read_lines(names_path, "image-name file")]
            caps = [c.strip() for c in read_lines(caps_path, "captions file")]
            if any(not n for n in names):
                raise AnnotationError(names_path, f"line {names.index('') + 1} is empty")
            for name, lines in _pair(names, caps, names_path, caps_path):
                sample = self._sample(split, name, lines, index, caps_path)
                if sample is not None:
                    records.append(sample)
        return records

    def _sample(self, split: str, name: str, lines: Lines, index: dict[str, Path], caps_path: Path) -> Sample | None:
        """One image's sample; blank caption lines are reported, not counted as captions."""
        for number, text in lines:
            if not text:
                self.unmatched.append(Unmatched(split, f"{caps_path.name} line {number}", "blank caption line", 0))
        captions = tuple(text for _, text in lines if text)
        path = index.get(name)
        if path is None:
            self.unmatched.append(Unmatched(split, name, "image not found", len(captions)))
            return None
        if not captions:
            self.unmatched.append(Unmatched(split, name, "every caption line of the image is blank", 0))
            return None
        return Sample(id=Path(name).stem, split=split, image_path=path, captions=captions)
