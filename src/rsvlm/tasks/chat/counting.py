"""Counting: read a count from free text and compare it with the annotated number of objects.

A refusal or a vague answer ("many trees") is not a number; it is reported as unparseable instead of
being dropped, and ``mae_unparseable_as_0`` scores it as 0 so that not answering cannot improve the MAE.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rsvlm.data.sample import Sample
from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.normalize import first_number, normalize_answer
from rsvlm.tasks.chat.protocols import Normalisation, ProtocolTask

DEFAULT_PROTOCOL = "counting/1"

_COUNT_RULES = Normalisation(lowercase=True, strip_punctuation=True, number_words=True)
_ZERO = re.compile(r"\b(?:none|nothing|no|zero|not any)\b")


def parse_count(text: str, rules: Normalisation = _COUNT_RULES) -> float | None:
    """The count an answer states: its first number (digits or words), else 0 for "none"/"no …", else None.

    ``"There are 12 trees"`` → 12, ``"twelve"`` → 12, ``"about 30"`` → 30, ``"1,234"`` → 1234,
    ``"There are no trees"`` → 0, ``"many"`` → None.
    """
    normalised = normalize_answer(text, rules)
    value = first_number(normalised)
    if value is not None:
        return value
    return 0.0 if _ZERO.search(normalised) else None


def bin_index(value: float, edges: Sequence[float]) -> int:
    """Index of the bin holding ``value``, bins given by right-inclusive upper edges (the last is open)."""
    for i, edge in enumerate(edges):
        if value <= edge:
            return i
    return len(edges)


def bin_labels(edges: Sequence[float], integer: bool = True) -> list[str]:
    """Readable bin names: ``(0, 10, 100)`` → ``0``, ``1-10``, ``11-100``, ``>100`` for integer counts."""

    def fmt(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x)

    labels: list[str] = []
    for i, edge in enumerate(edges):
        if i == 0:
            labels.append(f"<={fmt(edge)}" if edge != 0 else "0")
        elif integer:
            low = edges[i - 1] + 1
            labels.append(fmt(edge) if low == edge else f"{fmt(low)}-{fmt(edge)}")
        else:
            labels.append(f"({fmt(edges[i - 1])}, {fmt(edge)}]")
    if edges:
        labels.append(f">{fmt(edges[-1])}")
    return labels


def count_metrics(
    predicted: Sequence[float | None], targets: Sequence[float], bins: Sequence[float] = (), scale: float = 100.0
) -> dict[str, Any]:
    """Exact and binned accuracy (over all), MAE and RMSE (over parseable), unparseable count.

    Accuracies are multiplied by ``scale`` (percent by default); errors stay in objects.
    """
    if len(predicted) != len(targets):
        raise ValueError(f"{len(predicted)} predictions for {len(targets)} targets")
    n = len(targets)
    parsed = [(p, t) for p, t in zip(predicted, targets, strict=True) if p is not None]
    errors = [abs(p - t) for p, t in parsed]
    out: dict[str, Any] = {
        "n": n,
        "unparseable": n - len(parsed),
        "exact": scale * sum(p == t for p, t in parsed) / n if n else None,
        "mae": sum(errors) / len(errors) if errors else None,
        "rmse": math.sqrt(sum(e * e for e in errors) / len(errors)) if errors else None,
        "mae_unparseable_as_0": (
            sum(abs((p if p is not None else 0.0) - t) for p, t in zip(predicted, targets, strict=True)) / n
            if n
            else None
        ),
    }
    if bins:
        out["binned"] = scale * sum(bin_index(p, bins) == bin_index(t, bins) for p, t in parsed) / n if n else None
    return out


def plural(name: str) -> str:
    """A rough English plural for prompts (``Tree`` → ``trees``, ``storage tank`` kept if already plural)."""
    word = name.strip().lower()
    if word.endswith("s"):
        return word
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    if re.search(r"(ch|sh|x|z)$", word):
        return word + "es"
    return word + "s"


class CountingTask(ProtocolTask):
    """How many objects: target is ``len(sample.boxes)``, or ``sample.answer`` when that is a number."""

    name = "counting"

    def __init__(self, object_name: str | None = None, protocol: str | Path = DEFAULT_PROTOCOL) -> None:
        super().__init__(protocol)
        self.object_name = object_name
        """Plural noun used in prompts; None: from the sample's box labels (one label) or ``objects``."""

    def protocol(self) -> dict[str, Any]:
        return {**self._protocol.as_dict(), "object_name": self.object_name}

    def target(self, sample: Sample) -> float | None:
        """The true count, or None when the sample has none."""
        if sample.answer is not None:
            return parse_count(sample.answer, self._protocol.normalisation)
        return float(len(sample.boxes)) if sample.boxes is not None else None

    def accepts(self, sample: Sample) -> bool:
        """Samples with a count and no question of their own (RSVQA count questions belong to ``vqa``)."""
        return sample.question is None and self.target(sample) is not None

    def _object(self, sample: Sample) -> str:
        if self.object_name:
            return self.object_name
        labels = set(sample.boxes.labels) if sample.boxes is not None else set()
        return plural(labels.pop()) if len(labels) == 1 else "objects"

    def prompt(self, sample: Sample, family: str) -> str:
        return self._protocol.prompt(family, object=self._object(sample))

    def score(self, samples: Sequence[Sample], predictions: Sequence[str], box_format: str) -> dict[str, Any]:
        self.check_finished(samples, predictions)
        targets: list[float] = []
        for s in samples:
            t = self.target(s)
            if t is None:
                raise RsvlmError(f"sample {s.id} has no count (no boxes and no numeric answer); it cannot be scored")
            targets.append(t)
        parsed = [parse_count(p, self._protocol.normalisation) for p in predictions]
        m = self._protocol.matching
        return count_metrics(parsed, targets, m.count_bins, m.scale)
