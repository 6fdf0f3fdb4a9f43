"""What the evaluation runner needs from a chat task; kept apart so load → prompt → predict → score →
aggregate stay separate steps.

A task turns a dataset sample into a prompt (worded for the model's family, as its protocol says),
and scores finished (sample, prediction) pairs. The runner owns model calls, resumable storage and
reports; the task owns meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rsvlm.data.sample import Sample


class ChatTask(Protocol):
    name: str
    """CLI name: ``caption``, ``vqa``, ``grounding``, ``counting``, ``chat-classify``."""
    protocol_id: str
    """Versioned protocol, e.g. ``vqa-rsvqa/1``; recorded in every run and report."""

    def protocol(self) -> dict[str, Any]:
        """The full protocol as data (prompts per family, normalisation, matching rules) for reports."""
        ...

    def accepts(self, sample: Sample) -> bool:
        """Whether the sample carries what this task needs (a question, captions, boxes …)."""
        ...

    def prompt(self, sample: Sample, family: str) -> str:
        """The human turn sent with the sample's image, worded for the model family."""
        ...

    def score(self, samples: Sequence[Sample], predictions: Sequence[str], box_format: str) -> dict[str, Any]:
        """Aggregate metrics over finished predictions (same order as samples)."""
        ...
