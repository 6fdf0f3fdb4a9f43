"""Conversation data in the LLaVA / GeoChat instruction JSON.

``[{"id": …, "image": "relative/path.jpg", "conversations": [{"from": "human", "value": "<image>\\n…"},
{"from": "gpt", "value": "…"}, …]}, …]``. GeoChat prefixes a task tag such as ``[grounding]`` or
``[refer]`` to the first question; it becomes the sample's ``question_type``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rsvlm.data.dataset import Dataset, Unmatched, read_json
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
        return path.is_dir() and any(_peek(p) for p in sorted(path.glob("*.json"))[:5])

    def _json_files(self) -> list[Path]:
        if self.root.is_file():
            return [self.root]
        return [p for p in sorted(self.root.glob("*.json")) if _peek(p)]

    def _load(self) -> list[Sample]:
        records: list[Sample] = []
        for json_path in self._json_files():
            data = read_json(json_path)
            if not isinstance(data, list):
                raise AnnotationError(json_path, "expected a JSON list of conversations")
            base = self.images_dir or json_path.parent
            split = json_path.stem if not self.root.is_file() else None
            for i, entry in enumerate(data):
                sample = self._parse(json_path, i, entry, base, split)
                if sample is not None:
                    records.append(sample)
        return records

    def _parse(self, json_path: Path, i: int, entry: Any, base: Path, split: str | None) -> Sample | None:
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
        if isinstance(image, list):  # multi-image records: keep the first, record the rest
            image = image[0] if image else None
        path = None
        if image is not None:
            path = base / str(image)
            if not path.is_file():
                self.unmatched.append(Unmatched(split, str(image), "image not found", len(turns)))
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
