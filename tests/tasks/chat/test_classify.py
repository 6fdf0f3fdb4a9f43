from __future__ import annotations

from pathlib import Path

import pytest

from rsvlm.data.sample import Sample
from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.classify import ClassifyTask, classification_metrics

CLASSES = ["dense residential", "residential", "parking lot", "forest", "sea or lake", "city centre|downtown"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Dense residential.", "dense residential"),
        ("A dense residential area next to a forest", "dense residential"),  # first mentioned wins
        ("residential, maybe dense residential", "residential"),
        ("Parking lots", "parking lot"),  # plural
        ("It shows woods.", "forest"),  # protocol synonym
        ("a lake", "sea or lake"),  # synonym onto the readable name "sea or lake"
        ("Downtown.", "city centre"),  # a|b alias
        ("An airport.", None),  # no class named: wrong
    ],
)
def test_first_mentioned_class(answer: str, expected: str | None) -> None:
    task = ClassifyTask(CLASSES)
    index = task.matcher.match(answer)
    assert (task.matcher.names[index] if index is not None else None) == expected


def test_synonym_never_overrides_a_real_class() -> None:
    task = ClassifyTask(["lake", "sea or lake"])  # "lake" is a class itself here
    assert task.matcher.match("a lake") == 0


def test_labels_resolve_in_any_spelling() -> None:
    task = ClassifyTask(CLASSES)
    assert task.matcher.label_index("DenseResidential") == 0
    assert task.matcher.label_index("parking_lot") == 2
    assert task.matcher.label_index("downtown") == 5
    with pytest.raises(RsvlmError, match="label 'airport' is not among"):
        task.matcher.label_index("airport")


def test_score_by_hand() -> None:
    task = ClassifyTask(CLASSES)
    samples = [
        Sample(id="1", label="forest"),
        Sample(id="2", label="forest"),
        Sample(id="3", label="parking lot"),
        Sample(id="4", label="residential"),
    ]
    m = task.score(samples, ["forest", "I don't know", "a parking lot", "dense residential"], "pixel")
    assert m["n"] == 4 and m["none"] == 1
    assert m["accuracy"] == 50.0
    assert m["per_class"]["forest"] == 50.0
    assert m["per_class"]["parking lot"] == 100.0
    assert m["per_class"]["residential"] == 0.0
    assert m["per_class"]["sea or lake"] is None
    assert m["mean_per_class"] == pytest.approx(50.0)
    assert classification_metrics([None], [0], ["a"]) == {
        "n": 1,
        "accuracy": 0.0,
        "mean_per_class": 0.0,
        "none": 1,
        "per_class": {"a": 0.0},
    }


def test_prompt_lists_readable_names_and_protocol_records_them() -> None:
    task = ClassifyTask(CLASSES)
    prompt = task.prompt(Sample(id="x", label="forest"), "default")
    assert "dense residential, residential, parking lot, forest, sea or lake, city centre?" in prompt
    assert task.protocol()["classes"] == CLASSES


def test_bad_class_lists() -> None:
    with pytest.raises(RsvlmError, match="no class names"):
        ClassifyTask([])
    with pytest.raises(RsvlmError, match="belongs to two classes"):
        ClassifyTask(["forest", "woods|forest"])


@pytest.mark.shared
def test_aid_classes(shared_data: Path) -> None:
    from rsvlm.data.registry import open_dataset

    aid = open_dataset(shared_data / "aid")
    names = list(aid.class_names.values())
    assert len(names) == 30
    task = ClassifyTask(names)
    samples = [aid.records[0], aid.records[-1]]
    assert all(task.accepts(s) for s in samples)
    answers = [f"This is a {aid.class_names[s.label or '']} scene." for s in samples]
    assert task.score(samples, answers, "pixel")["accuracy"] == 100.0
