"""Name-keyed table of chat tasks for the CLI; each factory imports its task only when called, so listing
tasks or showing ``--help`` stays fast."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.data.dataset import Dataset
    from rsvlm.tasks.chat.base import ChatTask


def _caption(protocol: str | Path | None = None) -> ChatTask:
    from rsvlm.tasks.chat.captioning import DEFAULT_PROTOCOL, CaptionTask

    return CaptionTask(protocol or DEFAULT_PROTOCOL)


def _vqa(protocol: str | Path | None = None) -> ChatTask:
    from rsvlm.tasks.chat.vqa import DEFAULT_PROTOCOL, VqaTask

    return VqaTask(protocol or DEFAULT_PROTOCOL)


def _grounding(protocol: str | Path | None = None) -> ChatTask:
    from rsvlm.tasks.chat.grounding import DEFAULT_PROTOCOL, GroundingTask

    return GroundingTask(protocol or DEFAULT_PROTOCOL)


def _counting(protocol: str | Path | None = None, object_name: str | None = None) -> ChatTask:
    from rsvlm.tasks.chat.counting import DEFAULT_PROTOCOL, CountingTask

    return CountingTask(object_name, protocol or DEFAULT_PROTOCOL)


def _classify(protocol: str | Path | None = None, class_names: Sequence[str] | None = None) -> ChatTask:
    from rsvlm.tasks.chat.classify import DEFAULT_PROTOCOL, ClassifyTask

    if not class_names:
        raise RsvlmError("the chat-classify task needs the dataset's class names (a scene-classification dataset)")
    return ClassifyTask(class_names, protocol or DEFAULT_PROTOCOL)


TASKS: dict[str, Callable[..., ChatTask]] = {
    "caption": _caption,
    "vqa": _vqa,
    "grounding": _grounding,
    "counting": _counting,
    "chat-classify": _classify,
}
"""CLI name → factory. Every factory takes ``protocol`` (id or YAML path; None = the task's default);
``counting`` also takes ``object_name``, ``chat-classify`` requires ``class_names``."""


def make_task(name: str, dataset: Dataset | None = None, **options: Any) -> ChatTask:
    """The task called ``name``; for ``chat-classify`` the class names default to the dataset's readable
    class names (``dataset.class_names`` values, in class order)."""
    try:
        factory = TASKS[name]
    except KeyError:
        raise RsvlmError(f"unknown chat task {name!r}; known tasks: {', '.join(TASKS)}") from None
    if name == "chat-classify" and options.get("class_names") is None and dataset is not None:
        options["class_names"] = list(dataset.class_names.values())
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise RsvlmError(f"chat task {name!r} takes no option {unknown[0]!r}; it takes {', '.join(accepted)}")
    return factory(**options)
