"""Scene sets whose class is the file-name prefix in one flat folder (WHU-RS19 ``airport_01.jpg``,
``beach-01.jpg``; UCM ``agricultural00.tif``).
"""

from __future__ import annotations

import re
from pathlib import Path

from rsvlm.data.dataset import Dataset, Unmatched, image_files
from rsvlm.data.sample import Sample

_PREFIX = re.compile(r"^(?P<cls>.*?[A-Za-z])[\s_\-]*(?P<num>\d+)$")


def class_of(stem: str) -> str | None:
    """The class prefix of a file stem, lower-cased (``Beach-01`` → ``beach``); None if it has no number."""
    match = _PREFIX.match(stem)
    return match.group("cls").lower() if match else None


class ScenePrefixDataset(Dataset):
    format_name = "scene-prefix"
    description = "scene classification, class = file-name prefix in one folder (WHU-RS19, UCM flat)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        if not path.is_dir():
            return False
        files = image_files(path)
        classes = [class_of(p.stem) for p in files]
        named = [c for c in classes if c is not None]
        return 2 * len(named) > len(files) and len(set(named)) >= 2

    def _load(self) -> list[Sample]:
        records: list[Sample] = []
        for path in image_files(self.root):
            label = class_of(path.stem)
            if label is None:
                self.unmatched.append(Unmatched(None, path.name, "no class prefix followed by a number"))
                continue
            records.append(Sample(id=path.stem, image_path=path, label=label))
        return records
