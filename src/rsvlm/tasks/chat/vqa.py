"""Visual question answering under the RSVQA protocol: accuracy per question type, overall and average.

Chat models answer in sentences, so each question type has its own matching rule (see the protocol):
yes/no questions are decided by the first yes/no word, closed-set questions by the first choice named,
counts by the first number (also scored by RSVQA count bins and MAE), areas by value or by RSVQA area
bin. Overall accuracy weights every question alike; average accuracy weights every type alike, so the
50-question rural/urban type counts as much as the 2,000 comparison questions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsvlm.data.sample import Sample
from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.counting import bin_index, count_metrics, parse_count
from rsvlm.tasks.chat.normalize import contains_phrase, first_number, normalize_answer
from rsvlm.tasks.chat.protocols import ProtocolTask, TaskProtocol

DEFAULT_PROTOCOL = "vqa-rsvqa/1"

_NUM = r"(\d+(?:\.\d+)?)"
_BETWEEN = re.compile(rf"between {_NUM}\s*m2 and {_NUM}\s*m2")
_MORE = re.compile(rf"(?:more than|over|greater than|above|larger than) {_NUM}\s*m2")


@dataclass(frozen=True)
class Judgement:
    """One answer judged under one rule."""

    correct: bool
    parsed: bool
    """Whether the rule could read the answer at all (a yes/no word, a choice, a number)."""
    value: float | None = None
    target: float | None = None
    binned: bool | None = None
    """Count/area rules: whether prediction and truth fall into the same RSVQA bin."""


@dataclass(frozen=True)
class Area:
    """An area answer: a value in m², or only a bin when the answer names one (``between 10m2 and 100m2``)."""

    value: float | None
    bin: int | None


def parse_area(normalised: str, edges: Sequence[float]) -> Area:
    """Area (or area bin) stated by a normalised answer; ``Area(None, None)`` when it states none."""
    match = _BETWEEN.search(normalised)
    if match:
        return Area(None, bin_index(float(match.group(2)), edges))
    match = _MORE.search(normalised)
    if match:
        low = float(match.group(1))
        return Area(None, bin_index(low, edges) + (1 if low in edges else 0))
    value = first_number(normalised)
    if value is None:
        value = parse_count(normalised)  # "no commercial area" means 0 m2
    return Area(value, bin_index(value, edges) if value is not None else None)


def canonical_type(question_type: str | None, protocol: TaskProtocol) -> str:
    """The protocol's name of a question type (``comparison`` → ``comp``); ``other`` when absent."""
    if not question_type:
        return "other"
    key = question_type.strip().lower()
    return protocol.matching.type_aliases.get(key, key)


def judge(prediction: str, truth: str, question_type: str, protocol: TaskProtocol) -> Judgement:
    """Judge one answer by the rule the protocol gives its (canonical) question type."""
    m, rules = protocol.matching, protocol.normalisation
    rule = m.question_types.get(question_type, m.default_rule)
    pred, gold = normalize_answer(prediction, rules), normalize_answer(truth, rules)
    if rule == "exact":
        return Judgement(pred == gold, bool(pred))
    if rule == "yes-no":
        said = next((rules.yes_no[w] for w in pred.split() if w in rules.yes_no), None)
        expected = rules.yes_no.get(gold, gold)
        return Judgement(said == expected, said is not None)
    if rule == "closed-set":
        choices = [normalize_answer(c, rules) for c in m.choices[question_type]]
        found = [(pos, -len(c), c) for c in choices if (pos := contains_phrase(pred, c)) is not None]
        said = min(found)[2] if found else None
        return Judgement(said == gold, said is not None)
    if rule == "number":
        value, target = parse_count(pred), parse_count(gold)
        if target is None:
            raise RsvlmError(f"count answer {truth!r} is not a number; check the question type or the annotation")
        binned = None if value is None else bin_index(value, m.count_bins) == bin_index(target, m.count_bins)
        return Judgement(value == target, value is not None, value, target, binned)
    if rule == "area":
        said_area, gold_area = parse_area(pred, m.area_bins_m2), parse_area(gold, m.area_bins_m2)
        if gold_area.bin is None:
            raise RsvlmError(f"area answer {truth!r} names no area; check the question type or the annotation")
        parsed = said_area.bin is not None
        binned = parsed and said_area.bin == gold_area.bin
        exact = binned if gold_area.value is None else said_area.value == gold_area.value
        return Judgement(exact, parsed, said_area.value, gold_area.value, binned)
    raise RsvlmError(f"protocol {protocol.id}: rule {rule!r} does not apply to VQA answers; use another rule")


def vqa_metrics(
    predictions: Sequence[str], truths: Sequence[str], question_types: Sequence[str], protocol: TaskProtocol
) -> dict[str, Any]:
    """Per-type accuracy (plus bins/MAE for counts and areas), overall and average accuracy, in the
    protocol's scale (percent). ``question_types`` must already be canonical (see ``canonical_type``)."""
    if not len(predictions) == len(truths) == len(question_types):
        raise ValueError("predictions, truths and question types differ in length")
    scale = protocol.matching.scale
    by_type: dict[str, list[Judgement]] = {}
    for p, t, q in zip(predictions, truths, question_types, strict=True):
        by_type.setdefault(q, []).append(judge(p, t, q, protocol))
    per_type: dict[str, dict[str, Any]] = {}
    for q in sorted(by_type):
        js = by_type[q]
        entry: dict[str, Any] = {
            "n": len(js),
            "accuracy": scale * sum(j.correct for j in js) / len(js),
            "unparseable": sum(not j.parsed for j in js),
        }
        rule = protocol.matching.question_types.get(q, protocol.matching.default_rule)
        if rule == "number":
            counts = count_metrics(
                [j.value for j in js], [j.target or 0.0 for j in js], protocol.matching.count_bins, scale
            )
            entry.update({k: counts[k] for k in ("binned", "mae", "rmse", "mae_unparseable_as_0")})
        elif rule == "area":
            entry["binned"] = scale * sum(bool(j.binned) for j in js) / len(js)
        per_type[q] = entry
    n = len(predictions)
    correct = sum(j.correct for js in by_type.values() for j in js)
    return {
        "n": n,
        "overall": scale * correct / n if n else None,
        "average": sum(e["accuracy"] for e in per_type.values()) / len(per_type) if per_type else None,
        "per_type": per_type,
    }


def majority_answers(samples: Iterable[Sample], protocol: TaskProtocol) -> dict[str, str]:
    """Most frequent normalised ground-truth answer per question type (ties: alphabetically first), the
    floor any model must beat."""
    counts: dict[str, Counter[str]] = {}
    for s in samples:
        if s.answer is None:
            continue
        q = canonical_type(s.question_type, protocol)
        counts.setdefault(q, Counter())[normalize_answer(s.answer, protocol.normalisation)] += 1
    return _most_frequent(counts)


def _most_frequent(counts: dict[str, Counter[str]]) -> dict[str, str]:
    """Per key, the most frequent answer; ties go to the alphabetically first, so baselines are stable."""
    return {q: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for q, c in sorted(counts.items())}


_PRESENCE_FORMS = (re.compile(r"^is there (?:an? )?(.*)$"), re.compile(r"^is (?:an? )?(.*) present$"))


def question_key(question: str) -> str:
    """One key for RSVQA's phrasings of the same question ("is there a road" = "is a road present in the
    image"), so a question prior pools them."""
    q = re.sub(r"\s+", " ", question.lower().rstrip(" ?").replace(" in the image", "")).strip()
    for form in _PRESENCE_FORMS:
        if m := form.match(q):
            return m.group(1)
    return q


def question_prior_answers(samples: Iterable[Sample], protocol: TaskProtocol) -> dict[str, str]:
    """Most frequent normalised answer per question (``question_key``; ties: alphabetically first).

    A blind baseline stronger than ``majority_answers``: it learns from the training questions alone
    what RSVQA's generator tends to answer ("is there a circular road" is nearly always "no"), so the gap
    between a model and this prior is what the model gets from the image."""
    counts: dict[str, Counter[str]] = {}
    for s in samples:
        if s.answer is None or not s.question:
            continue
        counts.setdefault(question_key(s.question), Counter())[normalize_answer(s.answer, protocol.normalisation)] += 1
    return _most_frequent(counts)


class VqaTask(ProtocolTask):
    """Free-text VQA on samples with ``question``, ``answer`` and ``question_type``."""

    name = "vqa"

    def __init__(self, protocol: str | Path = DEFAULT_PROTOCOL) -> None:
        super().__init__(protocol)

    def accepts(self, sample: Sample) -> bool:
        return bool(sample.question) and sample.answer is not None

    def prompt(self, sample: Sample, family: str) -> str:
        if not sample.question:
            raise RsvlmError(f"sample {sample.id} has no question; the vqa task needs one")
        return self._protocol.prompt(family, question=sample.question.strip())

    def score(self, samples: Sequence[Sample], predictions: Sequence[str], box_format: str) -> dict[str, Any]:
        self.check_finished(samples, predictions)
        truths = []
        for s in samples:
            if s.answer is None:
                raise RsvlmError(f"sample {s.id} has no answer; the vqa task scores answered questions only")
            truths.append(s.answer)
        types = [canonical_type(s.question_type, self._protocol) for s in samples]
        return vqa_metrics(predictions, truths, types, self._protocol)
