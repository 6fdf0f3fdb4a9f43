from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rsvlm.data.formats.rsvqa import RsvqaDataset
from rsvlm.data.registry import detect_format
from rsvlm.errors import AnnotationError


def test_fixture(fixtures: Path) -> None:
    root = fixtures / "rsvqa"
    assert detect_format(root) == "rsvqa"
    ds = RsvqaDataset(root)
    # 3 images x 4 questions; image 2 has no file (4 questions), one question is inactive
    assert len(ds) == 7
    assert [(u.name, u.annotations) for u in ds.unmatched] == [("image 2", 4)]
    assert any("1 inactive" in n for n in ds.notes)
    count = next(r for r in ds.records if r.question_type == "count" and r.meta["image_id"] == 1)
    assert count.answer == "4" and count.question == "How many buildings are there?"
    assert count.geo is not None and count.geo.transform == (10.0, 0.0, 472560.0, 0.0, -10.0, 6750000.0)
    sample = ds[0]
    assert sample.image is not None and sample.image.data.shape == (3, 32, 32)


def test_truncated_questions_file(fixtures: Path) -> None:
    with pytest.raises(AnnotationError, match=r"LR_questions\.json: malformed JSON at line 1"):
        RsvqaDataset(fixtures / "broken/rsvqa_truncated")


@pytest.mark.parametrize(
    ("folder", "questions", "types"),
    [
        ("lr", 5005, {"comp": 1993, "presence": 1491, "count": 1471, "rural_urban": 50}),
        ("hr", 5001, {"comp": 1642, "count": 1319, "presence": 1314, "area": 726}),
    ],
)
def test_real_rsvqa(shared_data: Path, folder: str, questions: int, types: dict[str, int]) -> None:
    ds = RsvqaDataset(shared_data / "rsvqa" / folder)
    assert len(ds) == questions
    assert len({r.image_path for r in ds.records}) == 50
    assert Counter(r.question_type for r in ds.records) == types
    assert ds.unmatched == []
    assert all(r.answer for r in ds.records)
