"""Image captions in the Karpathy-style JSON (``dataset_rsicd.json``, UCM-captions, Sydney-captions).

``{"images": [{"filename": …, "split": "train|val|test", "sentences": [{"raw": …}, …]}, …]}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rsvlm.data.dataset import Dataset, Unmatched, find_images_dir, index_images, read_json
from rsvlm.data.sample import Sample
from rsvlm.errors import AnnotationError, DataError


def _json_file(path: Path) -> Path | None:
    if path.is_file() and path.suffix == ".json":
        return path
    if path.is_dir():
        found = sorted(p for p in path.glob("dataset_*.json") if p.is_file())
        return found[0] if found else None
    return None


def _peek_is_karpathy(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(4096)
    return b'"images"' in head and (b'"sentences"' in head or b'"filename"' in head)


class CaptionJsonDataset(Dataset):
    format_name = "caption-json"
    description = "image captions, Karpathy-style dataset_*.json (RSICD, UCM-captions, Sydney-captions)"

    @classmethod
    def detect(cls, path: Path) -> bool:
        json_path = _json_file(path)
        return json_path is not None and _peek_is_karpathy(json_path)

    def _load(self) -> list[Sample]:
        json_path = _json_file(self.root)
        if json_path is None:
            raise DataError(self.root, "no dataset_*.json caption file", "name the JSON file itself")
        data = read_json(json_path)
        entries = data.get("images") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise AnnotationError(json_path, 'expected an object with an "images" list')
        base = json_path.parent
        images_dir = self.images_dir or find_images_dir(base, ("images", "imgs", "RSICD_images")) or base
        index, _ = index_images(images_dir)
        records: list[Sample] = []
        for i, entry in enumerate(entries):
            name, split, sentences = self._parse(json_path, i, entry)
            for j, text in enumerate(sentences):
                if not text:  # an empty sentence is no caption: reported, not counted
                    self.unmatched.append(Unmatched(split, f"images[{i}].sentences[{j}] ({name})", "blank caption", 0))
            captions = tuple(text for text in sentences if text)
            path = index.get(name)
            if path is None:
                self.unmatched.append(Unmatched(split, name, "image not found", len(captions)))
                continue
            if sentences and not captions:
                self.unmatched.append(Unmatched(split, name, "every caption of the image is blank", 0))
                continue
            records.append(Sample(id=Path(name).stem, split=split, image_path=path, captions=captions))
        return records

    @staticmethod
    def _parse(json_path: Path, i: int, entry: Any) -> tuple[str, str | None, tuple[str, ...]]:
        """File name, split and stripped sentence texts (blank ones included, for reporting) of one entry."""
        if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
            raise AnnotationError(json_path, f'images[{i}] has no "filename" string')
        sentences = entry.get("sentences", [])
        if not isinstance(sentences, list):
            raise AnnotationError(json_path, f"images[{i}].sentences is not a list")
        captions: list[str] = []
        for s in sentences:
            raw = s.get("raw") if isinstance(s, dict) else None
            blank = raw is None or (isinstance(raw, str) and not raw.strip())
            if blank and isinstance(s, dict) and isinstance(s.get("tokens"), list):
                raw = " ".join(map(str, s["tokens"]))
            if not isinstance(raw, str):
                raise AnnotationError(json_path, f'images[{i}] has a sentence without "raw" text or "tokens"')
            captions.append(raw.strip())
        split = entry.get("split")
        return entry["filename"], str(split) if split is not None else None, tuple(captions)
