"""The contract every dataset reader follows, and the helpers they share.

A reader parses annotations eagerly (they are small) into ``Sample`` records without pixels, and loads
pixels only when a sample is indexed. Whatever it cannot pair (a caption whose image is missing, a box
file without its image) goes into ``unmatched`` instead of being dropped silently.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rsvlm.data.names import class_name_map
from rsvlm.data.raster import is_image_file, read_image
from rsvlm.data.sample import RasterImage, Sample
from rsvlm.errors import AnnotationError, DataError
from rsvlm.fileio import read_text


@dataclass(frozen=True)
class Unmatched:
    """Something named by the annotations that could not be paired with its counterpart."""

    split: str | None
    name: str
    reason: str
    annotations: int = 1
    """How many annotation items (captions, questions, boxes) hang on this missing thing."""


class Dataset(ABC):
    """Base class of all readers; subclasses set ``format_name`` and implement ``_load`` and ``detect``."""

    format_name: ClassVar[str]
    description: ClassVar[str]
    default_class_names: ClassVar[Mapping[str, str]] = {}
    """Prompt names a reader knows better than ``readable(label)`` (LoveDA's "background" is "other land");
    the user's ``class_names`` win over them."""

    def __init__(
        self,
        root: str | Path,
        *,
        images: str | Path | None = None,
        split: str | None = None,
        class_names: Mapping[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise DataError(self.root, "not found", "check the path")
        self.images_dir = Path(images) if images is not None else None
        if self.images_dir is not None and not self.images_dir.is_dir():
            raise DataError(self.images_dir, "images folder not found", "pass the folder that holds the images")
        self.unmatched: list[Unmatched] = []
        self.notes: list[str] = []
        records = self._load()
        self.all_splits = sorted({r.split for r in records if r.split is not None})
        if split is not None:
            if split not in self.all_splits:
                raise DataError(
                    self.root,
                    f"no split {split!r}",
                    f"choose one of {', '.join(self.all_splits) or '(none)'}",
                )
            records = [r for r in records if r.split == split]
            self.unmatched = [u for u in self.unmatched if u.split == split]
        self.records: list[Sample] = records
        labels = sorted({r.label for r in records if r.label is not None})
        names = {**self.default_class_names, **(class_names or {})}
        self.class_names: dict[str, str] = class_name_map(labels, names, where=self.root)

    @classmethod
    @abstractmethod
    def detect(cls, path: Path) -> bool:
        """Cheap check (file names, a peek at JSON keys) whether ``path`` looks like this format."""

    @abstractmethod
    def _load(self) -> list[Sample]:
        """Parse the annotations into pixel-free samples and fill ``self.unmatched``."""

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample:
        record = self.records[index]
        if record.image_path is None:
            return record
        return record.with_image(self.load_image(record))

    def load_image(self, record: Sample) -> RasterImage:
        """The pixels of one record (a reader whose samples are windows of larger images crops here)."""
        if record.image_path is None:
            raise DataError(self.root, f"sample {record.id} has no image")
        return read_image(record.image_path)

    def content_key(self, record: Sample) -> str:
        """A feature-cache key for one record's pixels: the file's bytes (and the window, for windowed readers)."""
        from rsvlm.features.cache import file_hash

        if record.image_path is None:
            raise DataError(self.root, f"sample {record.id} has no image")
        return file_hash(record.image_path)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    @property
    def classes(self) -> list[str]:
        return list(self.class_names)


def index_images(root: Path) -> tuple[dict[str, Path], list[str]]:
    """Map every image file name under ``root`` (recursively) to its path; also list duplicate names."""
    found: dict[str, Path] = {}
    duplicates: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not is_image_file(path):
                continue
            if name in found:
                duplicates.append(name)
                continue
            found[name] = path
    return found, duplicates


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def leaves_folder(relative: str) -> bool:
    """Whether a path written in an annotation is absolute, empty or climbs out with ``..``.

    The check is on the text, not the resolved file, so an annotation cannot make a reader open files
    outside the dataset while a user's own symlinks inside it still work.
    """
    if not relative or Path(relative).is_absolute():
        return True
    normal = os.path.normpath(relative)
    return normal in (os.curdir, os.pardir) or normal.startswith(os.pardir + os.sep)


def inside(base: Path, relative: str) -> Path | None:
    """``base / relative`` when the annotation's path stays under ``base``, else None."""
    return None if leaves_folder(relative) else base / os.path.normpath(relative)


def read_json(path: Path) -> Any:
    """Parse a JSON annotation file; a truncated or malformed file gives a one-line error."""
    try:
        with path.open("rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise AnnotationError(path, "file not found", "check the path") from None
    except IsADirectoryError:
        raise AnnotationError(path, "is a directory, expected a JSON file", "name the JSON file itself") from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            path,
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            "the file is truncated or corrupt; restore it from the original release",
        ) from None
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, f"not UTF-8 text ({exc.reason})", "is this really a JSON file?") from None


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold one object (configs, specs)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(path, "expected a JSON object")
    return data


def read_lines(path: Path, what: str = "annotation text file") -> list[str]:
    """The lines of a UTF-8 annotation file; missing, a directory or not UTF-8 gives a one-line error."""
    try:
        return read_text(path, what).splitlines()
    except DataError as exc:
        fix = exc.fix or (None if exc.path.exists() else "check the path")
        raise AnnotationError(exc.path, exc.problem, fix) from None


def find_images_dir(root: Path, candidates: tuple[str, ...]) -> Path | None:
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    return None
