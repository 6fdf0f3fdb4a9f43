"""Conversation data in the LLaVA / GeoChat instruction JSON.

``[{"id": …, "image": "relative/path.jpg", "conversations": [{"from": "human", "value": "<image>\\n…"},
{"from": "gpt", "value": "…"}, …]}, …]``. GeoChat prefixes a task tag such as ``[grounding]`` or
``[refer]`` to the first question; it becomes the sample's ``question_type``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rsvlm.data.dataset import Dataset, Unmatched, inside, leaves_folder, read_json
from rsvlm.data.sample import Sample, Turn
from rsvlm.errors import AnnotationError

_TAG = re.compile(r"^\s*\[(?P<tag>[a-z_ ]+)\]", re.IGNORECASE)
_ROLES = {"human": "human", "user": "human", "gpt": "gpt", "assistant": "gpt"}


def _peek(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(4096).lstrip()
    return head.startswith(b"[") and b'"conversations"' in head


def _meta(entry: dict[str, Any]) -> dict[str, Any]:
    """The extra images of a multi-image record and the ``task`` tag rsvlm's instruction builder writes."""
    meta: dict[str, Any] = {}
    if isinstance(entry.get("image"), list):
        meta["images"] = entry["image"]
    if isinstance(entry.get("task"), str):
        meta["task"] = entry["task"]
    return meta


def _strip_image_token(text: str) -> str:
    return text.replace("<image>", "").strip()


class LlavaDataset(Dataset):
    format_name = "llava"
    description = "instruction conversations, LLaVA / GeoChat JSON"

    @classmethod
    def detect(cls, path: Path) -> bool:
        if path.is_file():
            return path.suffix == ".json" and _peek(path)
        return path.is_dir() and any(_peek(p) for p in sorted(path.glob("*.json"))[:5] if p.is_file())

    def _json_files(self) -> list[Path]:
        if self.root.is_file():
            return [self.root]
        return [p for p in sorted(self.root.glob("*.json")) if p.is_file() and _peek(p)]

    def _load(self) -> list[Sample]:
        records: list[Sample] = []
        for json_path in self._json_files():
            data = read_json(json_path)
            if not isinstance(data, list):
                raise AnnotationError(json_path, "expected a JSON list of conversations")
            base = self.images_dir or json_path.parent
            split = json_path.stem if not self.root.is_file() else None
            outside: list[str] = []
            for i, entry in enumerate(data):
                sample = self._parse(json_path, i, entry, base, split, outside)
                if sample is not None:
                    records.append(sample)
            if outside:
                self.notes.append(
                    f"{json_path.name}: {len(outside)} image paths lead outside {base} (absolute or '..'), "
                    f"e.g. {outside[0]}; they are read as written: check that you trust this file"
                )
        return records

    def _image_path(self, name: str, base: Path, outside: list[str]) -> Path | None:
        """Where an image path of the JSON points; None when it leaves the ``--images`` folder.

        With ``--images`` every path must stay under that folder. Without it, paths are relative to the
        JSON file and may lead out of its folder (``rsvlm data instructions`` refers to the source images
        that way): those are read, and counted in ``outside`` for a note.
        """
        if not leaves_folder(name):
            return inside(base, name)
        if self.images_dir is not None:
            return None
        outside.append(name)
        return base / name

    def _parse(
        self, json_path: Path, i: int, entry: Any, base: Path, split: str | None, outside: list[str]
    ) -> Sample | None:
        if not isinstance(entry, dict) or not isinstance(entry.get("conversations"), list):
            raise AnnotationError(json_path, f'record {i} has no "conversations" list')
        turns: list[Turn] = []
        for t in entry["conversations"]:
            role = _ROLES.get(str(t.get("from", "")).lower()) if isinstance(t, dict) else None
            if role is None or not isinstance(t.get("value"), str):
                raise AnnotationError(json_path, f'record {i} has a turn without "from" human/gpt and a "value"')
            turns.append(Turn(role, t["value"]))
        sample_id = str(entry.get("id", i))
        image = entry.get("image")
        names = image if isinstance(image, list) else [] if image is None else [image]
        if not all(isinstance(n, str) and n for n in names):
            raise AnnotationError(json_path, f'record {i} has an "image" that is not a path or a list of paths')
        paths = [self._image_path(n, base, outside) for n in names]
        if None in paths:  # every image of a multi-image record must stay under the --images folder
            escaping = names[paths.index(None)]
            self.unmatched.append(Unmatched(split, escaping, "image path outside the --images folder", len(turns)))
            return None
        path = paths[0] if paths else None  # multi-image records: keep the first, record the rest in meta
        if path is not None and not path.is_file():
            self.unmatched.append(Unmatched(split, names[0], "image not found", len(turns)))
            return None
        first_q = next((t.text for t in turns if t.role == "human"), None)
        first_a = next((t.text for t in turns if t.role == "gpt"), None)
        question = _strip_image_token(first_q) if first_q is not None else None
        tag = _TAG.match(question) if question else None
        return Sample(
            id=sample_id,
            split=split,
            image_path=path,
            question=question,
            answer=first_a,
            question_type=tag.group("tag").strip().lower() if tag else None,
            conversation=tuple(turns),
            meta=_meta(entry),
        )
