from __future__ import annotations

import random
from pathlib import Path

import pytest

from rsvlm.data.sample import Sample
from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.protocols import load_protocol
from rsvlm.tasks.chat.vqa import (
    VqaTask,
    canonical_type,
    judge,
    majority_answers,
    parse_area,
    question_key,
    question_prior_answers,
    vqa_metrics,
)

P = load_protocol("vqa-rsvqa/1")


@pytest.mark.parametrize(
    ("prediction", "truth", "qtype", "correct", "parsed"),
    [
        ("Yes, there is.", "yes", "presence", True, True),
        ("Yeah", "yes", "presence", True, True),
        ("There is no road.", "no", "presence", True, True),
        ("No.", "yes", "comp", False, True),
        ("I am not sure", "no", "comp", False, False),  # a hedge is no answer
        ("Maybe", "yes", "presence", False, False),
        ("urban area", "urban", "rural_urban", True, True),
        ("It is rural, not urban.", "rural", "rural_urban", True, True),  # first choice named wins
        ("A city.", "urban", "rural_urban", True, True),
        ("desert", "rural", "rural_urban", False, False),
        ("twelve", "12", "count", True, True),
        ("There are 12 buildings.", "12", "count", True, True),
        ("none", "0", "count", True, True),
        ("many", "3", "count", False, False),
        ("10623 square meters", "10623m2", "area", True, True),
        ("0 m2", "0m2", "area", True, True),
        ("between 10m2 and 100m2", "between 10m2 and 100m2", "area", True, True),
        ("About 50 m²", "between 10m2 and 100m2", "area", True, True),  # bin answers match by bin
        ("500m2", "between 10m2 and 100m2", "area", False, True),
        ("a large area", "0m2", "area", False, False),
        ("Forest", "forest", "other", True, True),  # unlisted type: exact after normalisation
    ],
)
def test_judge(prediction: str, truth: str, qtype: str, correct: bool, parsed: bool) -> None:
    j = judge(prediction, truth, qtype, P)
    assert (j.correct, j.parsed) == (correct, parsed)


def test_count_and_area_bins() -> None:
    j = judge("about 8", "12", "count", P)
    assert (j.correct, j.binned, j.value, j.target) == (False, False, 8.0, 12.0)  # 1-10 vs 11-100
    j = judge("15", "12", "count", P)
    assert (j.correct, j.binned) == (False, True)
    j = judge("more than 1000 m2", "10623m2", "area", P)
    assert (j.correct, j.binned) == (False, True)  # a bin answer cannot be exact for a raw area
    edges = P.matching.area_bins_m2
    assert parse_area("between 0m2 and 10m2", edges).bin == 1
    assert parse_area("more than 1000m2", edges).bin == 4
    assert parse_area("10m2", edges).bin == 1 and parse_area("11m2", edges).bin == 2


def test_type_aliases() -> None:
    assert canonical_type("comparison", P) == "comp"
    assert canonical_type("Rural/Urban", P) == "rural_urban"
    assert canonical_type(None, P) == "other"


def test_vqa_metrics_by_hand() -> None:
    preds = ["yes", "no", "no", "rural", "3", "5", "lots"]
    truth = ["yes", "yes", "no", "urban", "3", "1", "20"]
    types = ["presence", "presence", "comp", "rural_urban", "count", "count", "count"]
    m = vqa_metrics(preds, truth, types, P)
    assert m["n"] == 7
    assert m["per_type"]["presence"] == {"n": 2, "accuracy": 50.0, "unparseable": 0}
    assert m["per_type"]["comp"]["accuracy"] == 100.0
    assert m["per_type"]["rural_urban"]["accuracy"] == 0.0
    count = m["per_type"]["count"]
    assert count["accuracy"] == pytest.approx(100 / 3)
    assert count["unparseable"] == 1
    assert count["binned"] == pytest.approx(200 / 3)  # 3 & 3 same bin, 5 & 1 same bin (1-10), lots wrong
    assert count["mae"] == pytest.approx(2.0)  # (0 + 4) / 2
    assert count["mae_unparseable_as_0"] == pytest.approx((0 + 4 + 20) / 3)
    assert m["overall"] == pytest.approx(100 * 3 / 7)
    assert m["average"] == pytest.approx((50 + 100 + 0 + 100 / 3) / 4)


def test_task_prompt_and_errors() -> None:
    task = VqaTask()
    s = Sample(id="q1", question="Is a road present? ", answer="yes", question_type="presence")
    assert task.accepts(s) and not task.accepts(Sample(id="q2", question="Why?"))
    assert task.prompt(s, "llava") == "Is a road present?\nAnswer the question using a single word or phrase."
    with pytest.raises(RsvlmError, match="count answer 'many' is not a number"):
        task.score([Sample(id="q", question="How many?", answer="many", question_type="count")], ["2"], "pixel")
    with pytest.raises(RsvlmError, match="1 predictions for 2 samples"):
        task.score([s, s], ["yes"], "pixel")


def _split_by_image(samples: list[Sample], seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    images = sorted({s.meta["image_id"] for s in samples})
    random.Random(seed).shuffle(images)
    first = set(images[: len(images) // 2])
    return [s for s in samples if s.meta["image_id"] in first], [s for s in samples if s.meta["image_id"] not in first]


@pytest.mark.shared
def test_rsvqa_lr_majority_baseline(shared_data: Path) -> None:
    from rsvlm.data.registry import open_dataset

    samples = open_dataset(shared_data / "rsvqa" / "lr").records
    assert len(samples) == 5005
    task = VqaTask()
    majority = majority_answers(samples, P)
    assert majority == {"comp": "no", "count": "0", "presence": "yes", "rural_urban": "rural"}
    m = task.score(samples, [majority[canonical_type(s.question_type, P)] for s in samples], "pixel")
    per = m["per_type"]
    assert per["comp"]["accuracy"] == pytest.approx(100 * 1330 / 1993)
    assert per["presence"]["accuracy"] == pytest.approx(100 * 1093 / 1491)
    assert per["rural_urban"]["accuracy"] == pytest.approx(100 * 28 / 50)
    assert per["count"]["accuracy"] == pytest.approx(100 * 379 / 1471)
    assert per["count"]["binned"] == pytest.approx(100 * 379 / 1471)  # bin "0" holds only 0
    assert per["count"]["mae"] == pytest.approx(254.622, abs=1e-3)
    assert m["overall"] == pytest.approx(100 * (1330 + 1093 + 28 + 379) / 5005)
    assert m["average"] == pytest.approx(55.4512, abs=1e-4)

    # held out: majority from half of the images (seed 0), scored on the other half
    first, second = _split_by_image(samples)
    held = majority_answers(first, P)
    m2 = task.score(second, [held[canonical_type(s.question_type, P)] for s in second], "pixel")
    assert m2["n"] == len(second)
    assert m2["overall"] <= m["overall"] + 5  # no better than in-sample by more than chance


@pytest.mark.parametrize(
    ("question", "key"),
    [
        ("Is there a water area?", "water area"),
        ("Is a water area present?", "water area"),
        ("Is a water area present in the image?", "water area"),
        ("Is there an  industrial building ?", "industrial building"),
        ("Are there more buildings than roads?", "are there more buildings than roads"),
    ],
)
def test_question_key_pools_rsvqa_phrasings(question: str, key: str) -> None:
    assert question_key(question) == key


@pytest.mark.shared
def test_rsvqa_lr_question_prior_beats_type_majority_held_out(shared_data: Path) -> None:
    from rsvlm.data.registry import open_dataset

    samples = open_dataset(shared_data / "rsvqa" / "lr").records
    first, second = _split_by_image(samples)
    task = VqaTask()
    majority = majority_answers(first, P)
    prior = question_prior_answers(first, P)
    assert prior["circular road"] == "no"  # RSVQA's generator: shapes of roads are never circular
    assert len(prior) < len({s.question for s in first})  # phrasings were pooled

    def answer(s: Sample) -> str:
        return prior.get(question_key(s.question or ""), majority[canonical_type(s.question_type, P)])

    by_type = task.score(second, [majority[canonical_type(s.question_type, P)] for s in second], "pixel")
    by_question = task.score(second, [answer(s) for s in second], "pixel")
    for kind in ("presence", "comp"):  # the prior knows which questions are rarely "yes", without any image
        assert by_question["per_type"][kind]["accuracy"] > by_type["per_type"][kind]["accuracy"] + 5


@pytest.mark.shared
def test_rsvqa_hr_area_answers(shared_data: Path) -> None:
    from rsvlm.data.registry import open_dataset

    samples = [s for s in open_dataset(shared_data / "rsvqa" / "hr").records if s.question_type == "area"]
    assert len(samples) == 726
    task = VqaTask()
    # answering every area question with its own truth, reworded, scores 100 exactly and by bin
    reworded = [f"The area is {s.answer.replace('m2', '')} square meters." for s in samples if s.answer]
    m = task.score(samples, reworded, "pixel")
    assert m["per_type"]["area"]["accuracy"] == 100.0
    assert m["per_type"]["area"]["binned"] == 100.0
