"""Scene classification sets stored as one folder per class (AID, UCM, RESISC45, EuroSAT, PatternNet).

``root/<Class>/<image>`` or, with splits, ``root/<split>/<Class>/<image>`` where the split folders are
named train/val/test.
"""

from __future__ import annotations

from pathlib import Path

from rsvlm.data.dataset import Dataset, image_files
from rsvlm.data.sample import Sample

SPLIT_NAMES = frozenset({"train", "val", "valid", "validation", "test"})


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


class SceneFolderDataset(Dataset):
    format_name = "scene-folder"
    description = "scene classification, one folder per class (AID, UCM, RESISC45, EuroSAT …)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        if not path.is_dir():
            return False
        subdirs = _class_dirs(path)
        if subdirs and all(d.name.lower() in SPLIT_NAMES for d in subdirs):
            subdirs = [c for d in subdirs for c in _class_dirs(d)]
        with_images = [d for d in subdirs if image_files(d)]
        return len(with_images) >= 2

    def _load(self) -> list[Sample]:
        top = _class_dirs(self.root)
        layout: list[tuple[str | None, Path]]
        if top and all(d.name.lower() in SPLIT_NAMES for d in top):
            layout = [(d.name.lower(), c) for d in top for c in _class_dirs(d)]
        else:
            layout = [(None, c) for c in top]
        records: list[Sample] = []
        for split, class_dir in layout:
            files = image_files(class_dir)
            if not files:
                self.notes.append(f"folder {class_dir.name!r} holds no images and is not a class")
                continue
            for path in files:
                records.append(
                    Sample(id=f"{class_dir.name}/{path.stem}", split=split, image_path=path, label=class_dir.name)
                )
        return records
