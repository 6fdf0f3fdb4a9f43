"""Training-data leakage from declarations: which results are on data a model was trained on.

Each model's training sets, splits and held-out parts are declared once, beside the model, as its model card,
recipe or paper states them (``TrainingData`` in ``rsvlm.models.registry`` and ``rsvlm.models.chat.registry``;
a JSON model spec's ``trained_on``). This module adds the known image overlaps between datasets (RSICD's
class-named images are AID's; about 630 of WHU-RS19's images are AID's) and the flag: a result on a declared
set, or on a set that shares images with one, is "seen"; what a paper does not state stays "not declared"
rather than being guessed "clean". The content check (copies found by their pixels) is
``rsvlm.bench.near_duplicates``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rsvlm.models.spec import Part, TrainingData

if TYPE_CHECKING:
    from rsvlm.bench.spec import TaskSpec

Status = Literal["seen", "test-split-excluded", "not declared", "clean"]


@dataclass(frozen=True)
class Flag:
    """Whether a result is on data the model saw, and why; ``status`` is one of ``Status``."""

    status: Status
    reason: str

    @property
    def label(self) -> str:
        """The words a report prints next to a score."""
        return "seen in training" if self.status == "seen" else self.status


@dataclass(frozen=True)
class Overlap:
    """Two datasets that share images (so training on one is training on part of the other)."""

    a: str
    b: str
    note: str


_ALIASES = {
    "whurs19": "whu-rs19",
    "whu-rs-19": "whu-rs19",
    "ucmerced": "ucm",
    "uc-merced": "ucm",
    "uc-merced-land-use": "ucm",
    "ucm-caption": "ucm-captions",
    "neon": "neon-trees",
    "imagenet": "imagenet-1k",
    "rsvqa-low-resolution": "rsvqa-lr",
    "rsvqa-high-resolution": "rsvqa-hr",
}


KNOWN_DATASETS = frozenset(
    {
        "aid",
        "rsicd",
        "rsitmd",
        "ucm",
        "ucm-captions",
        "sydney-captions",
        "whu-rs19",
        "rsvqa-lr",
        "rsvqa-hr",
        "neon-trees",
        "eurosat",
        "resisc45",
        "patternnet",
        "optimal-31",
        "rs5m",
        "skyscript",
        "million-aid",
        "imagenet-1k",
    }
)
"""Dataset names ``canonical_dataset`` recognises inside a path (``golden/whurs19/…`` → ``whu-rs19``)."""


def _key(name: str) -> str:
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    return _ALIASES.get(key, key)


def canonical_dataset(name: str | Path) -> str:
    """One spelling per dataset: ``"WHU_RS19"`` and ``"WHURS19"`` are ``whu-rs19``; a path such as
    ``rsvqa/lr`` or ``golden/whurs19/results/…`` (as benchmark suites give them) names the dataset it holds."""
    keys = [_key(p) for p in re.split(r"[/\\]+", str(name)) if p.strip()]
    for a, b in reversed(list(pairwise(keys))):  # the deepest match: /data/aid/tiles/eurosat is eurosat
        if f"{a}-{b}" in KNOWN_DATASETS:
            return f"{a}-{b}"
    return next((k for k in reversed(keys) if k in KNOWN_DATASETS), keys[-1] if keys else "")


OVERLAPS: tuple[Overlap, ...] = (
    Overlap(
        "rsicd",
        "aid",
        "RSICD's class-named images are AID images: all 10,000 of AID's, 8,973 in RSICD's train split and "
        "1,027 in its test split (../shared/data/README.md)",
    ),
    Overlap(
        "whu-rs19",
        "aid",
        "about 630 of WHU-RS19's 1,005 images are AID images (pixel correlation >= 0.95 after resizing; issue 8)",
    ),
    Overlap(
        "whu-rs19",
        "rsicd",
        "about 630 of WHU-RS19's 1,005 images are AID images, and all of AID's images are RSICD images",
    ),
    Overlap("ucm-captions", "ucm", "UCM-captions captions the 2,100 UC Merced land-use images"),
)
"""Known image overlaps between datasets (either direction)."""


def _overlap(a: str, b: str) -> Overlap | None:
    return next((o for o in OVERLAPS if {o.a, o.b} == {a, b}), None)


def _part_words(part: Part) -> str:
    where = f"{part.dataset} {'/'.join(part.splits)}" if part.splits else part.dataset
    return f"{where} ({part.how})" if part.how else where


def seen_in_training(model: str, dataset: str | Path, split: str | None = None) -> Flag:
    """Flag a result of ``model`` on ``dataset`` (``split`` None: the whole dataset) from declarations only.

    Order: a held-out split is "test-split-excluded"; training on the dataset, or on one sharing images with
    it, is "seen"; undisclosed training images or undeclared splits are "not declared"; else "clean".
    """
    data = training_data(model)
    name = canonical_dataset(dataset)
    what = f"{name} {split}" if split else name
    if data is None:
        return Flag("not declared", f"no training data is declared for {model} (rsvlm.models registries)")
    held = next((h for h in data.held_out if (h.dataset, h.split) == (name, split)), None)
    if held is not None:
        return Flag("test-split-excluded", f"{model} did not train on {what}: {held.how}")
    unknown: list[str] = []
    other_split: list[str] = []
    for part in data.parts:
        if part.dataset != name:
            continue
        if not part.splits_declared and split is not None:
            unknown.append(f"{model} trained on {name}, but which splits is not declared ({part.how})")
        elif part.splits is None or split is None or split in part.splits:
            return Flag("seen", f"{model} trained on {_part_words(part)}")
        else:
            other_split.append(f"{model} trained on {name} {'/'.join(part.splits)} only, not on {split}")
    for part in data.parts:
        overlap = _overlap(part.dataset, name)
        if overlap is not None and part.dataset != name:
            return Flag("seen", f"{model} trained on {_part_words(part)}; {overlap.note}")
    if data.undisclosed:
        known = f" ({'; '.join(unknown + other_split)})" if unknown or other_split else ""
        return Flag("not declared", f"whether {model} saw {what} is unknown: {data.undisclosed}{known}")
    if unknown:
        return Flag("not declared", "; ".join(unknown))
    if other_split:
        return Flag("test-split-excluded", "; ".join(other_split) + " (by split, not checked by content)")
    trained = ", ".join(dict.fromkeys(_part_words(Part(p.dataset, p.splits)) for p in data.parts)) or "nothing"
    return Flag("clean", f"none of {model}'s declared training data ({trained}) is or overlaps {name}")


def training_data(model: str) -> TrainingData | None:
    """The declared training data of a registered model name or a JSON model-spec file; None if undeclared,
    with dataset names in one spelling (``canonical_dataset``)."""
    from rsvlm.models.chat.registry import CHAT_MODELS
    from rsvlm.models.registry import MODELS, get_spec

    if model.endswith(".json"):
        data = get_spec(model).training
    elif model in MODELS:
        data = MODELS[model].training
    elif model in CHAT_MODELS:
        data = CHAT_MODELS[model].training
    else:
        data = None
    if data is None:
        return None
    parts = tuple(Part(canonical_dataset(p.dataset), p.splits, p.how, p.splits_declared) for p in data.parts)
    return data if parts == data.parts else replace(data, parts=parts)


# -- benchmark results -----------------------------------------------------------------------------------------
HELD_OUT_MANIFESTS = {
    "rsicd-test.txt": ("rsicd", "test"),
    "aid-smoke.txt": ("rsicd", "test"),
    "rsvqa-lr-heldout.txt": ("rsvqa-lr", "test"),
    "rsvqa-hr-heldout.txt": ("rsvqa-hr", "test"),
    "neon.txt": ("neon-trees", "test"),
}
"""Manifests that pin a held-out part, as the (dataset, split) the declarations name it: AID images listed by
``rsicd-test.txt`` or ``aid-smoke.txt`` are RSICD test images, whatever folder they are read from."""

GOLDEN_MODELS = {"clip": "openai", "georsclip": "georsclip", "remoteclip": "remoteclip", "skyclip50": "skyclip"}
"""Model folder of the released embeddings (``…/<Model>/ViT-B-32``) → registry family prefix."""


def declared_name(model: str, task: TaskSpec) -> str:
    """The model whose training data decides the flag: for released embeddings, the model that made them."""
    if task.family != "embeddings":
        return model
    parts = Path(task.data.path).parts
    prefix = GOLDEN_MODELS.get(parts[-2].lower(), parts[-2].lower()) if len(parts) >= 2 else model
    return f"{prefix}-{parts[-1].lower()}"


def result_flag(model: str, task: TaskSpec) -> dict[str, str]:
    """The seen-in-training flag of ``model`` on ``task``'s data, as a result file records it."""
    dataset, split = HELD_OUT_MANIFESTS.get(task.data.manifest or "", (task.data.path, task.data.split))
    flag = seen_in_training(declared_name(model, task), dataset, split)
    return {"status": flag.status, "reason": flag.reason}
