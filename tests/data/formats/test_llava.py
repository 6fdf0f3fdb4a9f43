from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsvlm.data.formats.llava import LlavaDataset
from rsvlm.data.registry import detect_format
from rsvlm.errors import AnnotationError


def test_conversations(fixtures: Path) -> None:
    path = fixtures / "llava/instruct.json"
    assert detect_format(path) == "llava"
    ds = LlavaDataset(path)
    by_id = {r.id: r for r in ds.records}
    assert set(by_id) == {"a-1", "a-2", "text-only"}
    first = by_id["a-1"]
    assert first.question_type == "grounding"
    assert first.question == "[grounding] Where are the planes?"
    assert first.answer == "{<10><20><30><40>|45}"
    assert [t.role for t in first.conversation] == ["human", "gpt", "human", "gpt"]
    assert by_id["text-only"].image_path is None
    assert [(u.name, u.annotations) for u in ds.unmatched] == [("imgs/missing.jpg", 2)]


def test_bad_records(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"id": 1, "conversations": [{"from": "robot", "value": "hi"}]}]))
    with pytest.raises(AnnotationError, match="record 0"):
        LlavaDataset(path)
    path.write_text(json.dumps({"conversations": []}))
    with pytest.raises(AnnotationError, match="expected a JSON list"):
        LlavaDataset(path)
