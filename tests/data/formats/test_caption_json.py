from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsvlm.data.formats.caption_json import CaptionJsonDataset
from rsvlm.data.registry import detect_format
from rsvlm.errors import AnnotationError


def test_karpathy_json(fixtures: Path) -> None:
    root = fixtures / "caption_json"
    assert detect_format(root) == "caption-json"
    assert detect_format(root / "dataset_rsicd.json") == "caption-json"
    ds = CaptionJsonDataset(root)
    by_id = {r.id: r for r in ds.records}
    assert by_id["airport_1"].split == "train" and len(by_id["airport_1"].captions) == 5
    assert by_id["river_2"].captions == ("a river runs through",)  # rebuilt from tokens
    assert [(u.split, u.name, u.annotations) for u in ds.unmatched] == [("val", "00042.jpg", 5)]


def test_malformed_entries(tmp_path: Path) -> None:
    path = tmp_path / "dataset_x.json"
    path.write_text(json.dumps({"images": [{"sentences": []}]}))
    with pytest.raises(AnnotationError, match=r'images\[0\] has no "filename"'):
        CaptionJsonDataset(path)
    path.write_text(json.dumps({"images": [{"filename": "a.jpg", "sentences": [{"x": 1}]}]}))
    with pytest.raises(AnnotationError, match="without"):
        CaptionJsonDataset(path)
