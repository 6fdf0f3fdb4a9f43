"""Scene classification by a chat model: closed-set matching of a free-text answer to the class list.

The class named first in the answer wins ("a dense residential area next to a park" → dense
residential); at the same position the longer name wins (``parking lot`` over ``parking``). A class
may list aliases as ``name|alias`` (as in zero-shot templates), and the protocol's synonyms act as extra
aliases of the class they name. An answer naming no class is wrong and counted as ``none``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rsvlm.data.names import readable
from rsvlm.data.sample import Sample
from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.normalize import contains_phrase, normalize_answer
from rsvlm.tasks.chat.protocols import Normalisation, ProtocolTask

DEFAULT_PROTOCOL = "chat-classify/1"


class ClassMatcher:
    """Maps answers and labels to class indices under a protocol's normalisation and synonyms."""

    def __init__(self, class_names: Sequence[str], rules: Normalisation) -> None:
        if not class_names:
            raise RsvlmError("no class names given; pass the dataset's classes to the chat-classify task")
        self.rules = Normalisation(
            lowercase=rules.lowercase,
            strip_punctuation=rules.strip_punctuation,
            strip_articles=rules.strip_articles,
            number_words=rules.number_words,
            units=rules.units,
        )  # synonyms become aliases below instead of rewriting the answer
        self.names = [(n.split("|")[0].strip() or n) for n in class_names]
        self.aliases: list[list[str]] = []
        for name in class_names:
            forms = [a.strip() for a in name.split("|") if a.strip()] or [name]
            self.aliases.append(sorted({self._norm(f) for f in forms}, key=len, reverse=True))
        owner = {alias: i for i, group in enumerate(self.aliases) for alias in group}
        duplicated = sorted(a for a in owner if sum(a in g for g in self.aliases) > 1)
        if duplicated:
            raise RsvlmError(f"class alias {duplicated[0]!r} belongs to two classes; give each class its own names")
        for source, target in rules.synonyms.items():
            src, dst = self._norm(source), self._norm(target)
            if dst in owner and src not in owner:
                self.aliases[owner[dst]].append(src)

    def _norm(self, text: str) -> str:
        return normalize_answer(text, self.rules)

    def match(self, answer: str) -> int | None:
        """Index of the class the answer names first, or None."""
        text = self._norm(answer)
        best: tuple[int, int, int] | None = None
        for i, group in enumerate(self.aliases):
            for alias in group:
                pos = contains_phrase(text, alias)
                if pos is not None and (best is None or (pos, -len(alias)) < (best[0], best[1])):
                    best = (pos, -len(alias), i)
        return best[2] if best else None

    def label_index(self, label: str) -> int:
        """Index of a ground-truth label (``DenseResidential``, ``dense residential`` or an alias)."""
        for form in (label, readable(label)):
            norm = self._norm(form)
            for i, group in enumerate(self.aliases):
                if norm in group:
                    return i
        raise RsvlmError(f"label {label!r} is not among the task's classes; pass the dataset's class names")


class ClassifyTask(ProtocolTask):
    """Samples with a ``label``; the candidate classes come from the dataset (readable names)."""

    name = "chat-classify"

    def __init__(self, class_names: Sequence[str], protocol: str | Path = DEFAULT_PROTOCOL) -> None:
        super().__init__(protocol)
        self.matcher = ClassMatcher(class_names, self._protocol.normalisation)
        self.class_names = list(class_names)

    def protocol(self) -> dict[str, Any]:
        return {**self._protocol.as_dict(), "classes": self.class_names}

    def accepts(self, sample: Sample) -> bool:
        return sample.label is not None

    def prompt(self, sample: Sample, family: str) -> str:
        return self._protocol.prompt(family, classes=", ".join(self.matcher.names))

    def score(self, samples: Sequence[Sample], predictions: Sequence[str], box_format: str) -> dict[str, Any]:
        self.check_finished(samples, predictions)
        truth = []
        for s in samples:
            if s.label is None:
                raise RsvlmError(f"sample {s.id} has no label; chat-classify scores labelled samples only")
            truth.append(self.matcher.label_index(s.label))
        said = [self.matcher.match(p) for p in predictions]
        return classification_metrics(said, truth, self.matcher.names, self._protocol.matching.scale)


def classification_metrics(
    predicted: Sequence[int | None], truth: Sequence[int], class_names: Sequence[str], scale: float = 100.0
) -> dict[str, Any]:
    """Accuracy, per-class accuracy (recall), mean per-class accuracy and the answers naming no class."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} labels")
    n = len(truth)
    per_class: dict[str, float | None] = {}
    for i, name in enumerate(class_names):
        hits = [p == t for p, t in zip(predicted, truth, strict=True) if t == i]
        per_class[name] = scale * sum(hits) / len(hits) if hits else None
    present = [v for v in per_class.values() if v is not None]
    return {
        "n": n,
        "accuracy": scale * sum(p == t for p, t in zip(predicted, truth, strict=True)) / n if n else None,
        "mean_per_class": sum(present) / len(present) if present else None,
        "none": sum(p is None for p in predicted),
        "per_class": per_class,
    }
