"""What the eval commands share: which split gets scored (and saying so), and checks made before a slow load.

A dataset with a test split is scored on it unless ``--split`` says otherwise (``--split all`` scores every
split): scoring train and test together silently mixes seen and unseen images and takes far longer. Every
run states its split and sample count on stderr before the work starts, so a wrong choice shows at once.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from rsvlm.errors import FormatError, RsvlmError

if TYPE_CHECKING:
    from rsvlm.data.dataset import Dataset

ALL_SPLITS = "all"
"""``--split all``: every split of the data together."""

DEFAULT_SPLIT = "test"
"""The split scored when ``--split`` is omitted and the data has it."""


def note(message: str) -> None:
    """One line on stderr, so ``--json`` output on stdout stays machine-readable."""
    print(f"[rsvlm eval] {message}", file=sys.stderr, flush=True)


def open_for_eval(
    data: Path,
    *,
    images: Path | None = None,
    split: str | None = None,
    data_format: str | None = None,
    class_names: Mapping[str, str] | None = None,
    has_format_option: bool = True,
) -> tuple[Dataset, str | None]:
    """The dataset restricted to the split to score, and that split (None: every split).

    ``has_format_option`` False: the command cannot take ``--format``, so an unrecognised path is not
    answered with advice to pass one.
    """
    from rsvlm.data.registry import FORMATS, open_dataset

    wanted = None if split == ALL_SPLITS else split
    try:
        dataset = open_dataset(data, format=data_format, images=images, split=wanted, class_names=class_names)
    except FormatError:
        if has_format_option or not data.exists():
            raise
        raise RsvlmError(
            f"{data}: not a dataset rsvlm recognises (formats: {', '.join(FORMATS)}; "
            "`rsvlm data formats` describes them, `rsvlm data info PATH` shows what a path holds)"
        ) from None
    if split is None and DEFAULT_SPLIT in dataset.all_splits:
        dataset = open_dataset(data, format=data_format, images=images, split=DEFAULT_SPLIT, class_names=class_names)
        return dataset, DEFAULT_SPLIT
    return dataset, wanted


def split_label(split: str | None) -> str:
    """The split as results and run folders name it."""
    return ALL_SPLITS if split is None else split


def describe_split(dataset: Dataset, split: str | None, asked: str | None) -> str:
    """``split test (the default …)``, ``all splits (test, train)`` or ``no splits``, for the stderr note."""
    if split is not None:
        if asked is not None:
            return f"split {split}"
        others = [s for s in dataset.all_splits if s != split]
        also = f"; the data also has {', '.join(others)}" if others else ""
        return f"split {split} (the default where the data has one{also}; --split all scores every split)"
    if dataset.all_splits:
        return f"all splits together ({', '.join(dataset.all_splits)})"
    return "the whole set (it has no splits)"
