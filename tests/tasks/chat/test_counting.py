from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rsvlm.data.sample import Boxes, Sample
from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.counting import CountingTask, bin_index, bin_labels, count_metrics, parse_count, plural


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("There are 12 trees", 12.0),
        ("twelve", 12.0),
        ("about 30", 30.0),
        ("Approximately 1,234 trees.", 1234.0),
        ("There are twenty-one cars.", 21.0),
        ("There are no trees in the image.", 0.0),
        ("None.", 0.0),
        ("many", None),
        ("I cannot tell.", None),
    ],
)
def test_parse_count(text: str, expected: float | None) -> None:
    assert parse_count(text) == expected


def test_bins_follow_rsvqa() -> None:
    edges = (0, 10, 100, 1000)
    assert [bin_index(v, edges) for v in (0, 1, 10, 11, 100, 101, 1000, 1001)] == [0, 1, 1, 2, 2, 3, 3, 4]
    assert bin_labels(edges) == ["0", "1-10", "11-100", "101-1000", ">1000"]


def test_count_metrics_by_hand() -> None:
    # targets 10, 4, 7, 0; predictions 12 (err 2), 4 (exact), unparseable, 1 (err 1)
    m = count_metrics([12.0, 4.0, None, 1.0], [10.0, 4.0, 7.0, 0.0], bins=(0, 10, 100, 1000))
    assert m["n"] == 4
    assert m["unparseable"] == 1
    assert m["exact"] == 25.0
    assert m["mae"] == pytest.approx(1.0)  # (2 + 0 + 1) / 3
    assert m["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert m["mae_unparseable_as_0"] == pytest.approx((2 + 0 + 7 + 1) / 4)
    # bins: 12 vs 10 differ (11-100 vs 1-10); 4 vs 4 same; None wrong; 1 vs 0 differ
    assert m["binned"] == 25.0


def _boxes(n: int, label: str = "Tree") -> Boxes:
    xyxy = np.tile(np.array([[0.0, 0.0, 5.0, 5.0]]), (n, 1))
    return Boxes(xyxy, (label,) * n)


def test_counting_task_targets_and_prompts() -> None:
    task = CountingTask()
    trees = Sample(id="a", boxes=_boxes(3))
    assert task.accepts(trees)
    assert task.target(trees) == 3.0
    assert task.prompt(trees, "default") == "How many trees are there in this image? Answer with a number."
    numeric = Sample(id="b", answer="7")
    assert task.target(numeric) == 7.0
    assert task.prompt(numeric, "qwen2-vl") == "How many objects are there in this image? Answer with a single number."
    assert not task.accepts(Sample(id="c", question="How many roads?", answer="2"))  # VQA questions go to vqa
    assert not task.accepts(Sample(id="d"))
    assert CountingTask(object_name="buildings").prompt(trees, "default").startswith("How many buildings")
    assert plural("Storage tank") == "storage tanks" and plural("Ferry") == "ferries" and plural("bus") == "bus"


def test_counting_task_score_and_errors() -> None:
    task = CountingTask()
    samples = [Sample(id="a", boxes=_boxes(3)), Sample(id="b", boxes=_boxes(0)), Sample(id="c", answer="12")]
    m = task.score(samples, ["three", "There are no trees.", "maybe a dozen or so"], "pixel")
    assert (m["exact"], m["mae"], m["unparseable"]) == (100.0, 0.0, 0)
    with pytest.raises(RsvlmError, match="2 predictions for 3 samples"):
        task.score(samples, ["1", "2"], "pixel")
    with pytest.raises(RsvlmError, match="protocol vqa-rsvqa/1 is for the vqa task"):
        CountingTask(protocol="vqa-rsvqa/1")


@pytest.mark.shared
def test_neon_tree_counts(shared_data: Path) -> None:
    from rsvlm.data.registry import open_dataset

    samples = sorted(open_dataset(shared_data / "neon_trees").records, key=lambda s: s.id)
    task = CountingTask(object_name="trees")
    assert [task.target(s) for s in samples] == [279.0, 61.0, 37.0]
    # predictions as a chat model might word them: errors 79, 1, unparseable
    m = task.score(samples, ["About two hundred trees.", "There are 60 trees.", "Lots of trees."], "pixel")
    assert m["unparseable"] == 1
    assert m["mae"] == pytest.approx(40.0)
    assert m["rmse"] == pytest.approx(math.sqrt((79**2 + 1) / 2))
    assert m["mae_unparseable_as_0"] == pytest.approx((79 + 1 + 37) / 3)
    assert m["exact"] == 0.0
    assert m["binned"] == pytest.approx(200 / 3)  # 200 & 279 both 101-1000; 60 & 61 both 11-100
