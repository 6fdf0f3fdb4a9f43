"""What the registry knows about a model: architecture as a small config, weights as a named source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Part:
    """One dataset (or some splits of it) a model was trained on."""

    dataset: str
    """Dataset name in the benchmarks' spelling (``rsicd``, ``whu-rs19``; ``rsvlm.bench.leakage`` reads aliases)."""
    splits: tuple[str, ...] | None = None
    """The splits trained on; None: all of the dataset."""
    how: str = ""
    """What of it was used (captions, class names as prompts …), for the flag's reason."""
    splits_declared: bool = True
    """False when the source names the dataset but not which splits were trained on."""


@dataclass(frozen=True)
class HeldOut:
    """A split removed from a model's training, so a result on it is on images the model did not see."""

    dataset: str
    split: str
    how: str


@dataclass(frozen=True)
class ImagePool:
    """Training images enumerable from the benchmark manifests: the files ``manifest`` lists under ``prefix``,
    minus those the ``minus`` manifests list (what a copy-free score is checked against)."""

    manifest: str
    prefix: str = ""
    minus: tuple[str, ...] = ()


_SPLIT_WORDS = frozenset({"train", "val", "test", "trainval"})


@dataclass(frozen=True)
class TrainingData:
    """What one model was trained on, as its documentation declares it: the one source for leakage flags,
    copy-free scores and ``rsvlm models``."""

    parts: tuple[Part, ...]
    excluded: str = ""
    """What was deliberately held out, in words ("" when nothing was)."""
    source: str = ""
    """Where these facts come from (model card, recipe, paper)."""
    held_out: tuple[HeldOut, ...] = ()
    undisclosed: str = ""
    """Training images that are not enumerated anywhere (web crawls): overlap with any benchmark is unknown."""
    notes: str = ""
    images: ImagePool | None = None
    """Its training image files, where the manifests enumerate them (rsvlm's own models)."""

    @property
    def datasets(self) -> frozenset[str]:
        return frozenset(p.dataset for p in self.parts)

    @property
    def names(self) -> tuple[str, ...]:
        """``rsicd-train``, ``aid``: one short name per dataset (and split) trained on."""
        return tuple(
            dict.fromkeys(
                name
                for p in self.parts
                for name in ([f"{p.dataset}-{s}" for s in p.splits] if p.splits else [p.dataset])
            )
        )

    @classmethod
    def from_names(cls, names: tuple[str, ...], source: str) -> TrainingData:
        """A JSON model spec's ``trained_on`` (``"RSICD-train"``, ``"AID"``): a trailing split word names the
        split, anything else the whole dataset; pretraining of the starting weights stays undeclared."""
        parts = []
        for entry in names:
            key = entry.strip().lower().replace("_", "-").replace(" ", "-")
            name, _, split = key.rpartition("-")
            if name and split in _SPLIT_WORDS:
                parts.append(Part(name, (split,), "declared in the model spec"))
            else:
                parts.append(Part(key, None, "declared in the model spec"))
        return cls(
            parts=tuple(parts),
            source=source,
            undisclosed="any pretraining of the weights it starts from is not declared in the spec file",
        )


@dataclass(frozen=True)
class WeightsSource:
    """Where the released weights live, for users who can download them (rsvlm never does so silently)."""

    filename: str
    """The file name the authors release, e.g. ``RemoteCLIP-ViT-B-32.pt``."""
    hf_repo: str | None = None
    url: str | None = None
    layout: str = "state_dict"
    """``state_dict`` (bare tensors), ``training`` (open_clip training checkpoint: ``state_dict`` key,
    ``module.`` prefixes) or ``torchscript`` (OpenAI's archives)."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    arch: str
    """open_clip architecture name (``ViT-B-32``, ``RN50`` …)."""
    description: str
    weights: WeightsSource | None
    quick_gelu: bool = False
    """OpenAI-initialised towers use QuickGELU; loading them with GELU silently degrades accuracy."""
    arch_config: dict[str, Any] | None = None
    """A full open_clip model config; overrides ``arch`` (tests use tiny configs through the same path)."""
    image_size: int | None = None
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    training: TrainingData | None = None
    """What it was trained on (None: not declared); a JSON spec gives it as ``trained_on``."""
    loader: str = "open_clip"
    """Which loader builds it: ``open_clip`` (CLIP families) or ``lite`` (rsvlm's own small model)."""
    default: bool = False
    """The model every command uses when ``--model`` is omitted."""
    licence: str = ""
    citation: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def trained_on(self) -> tuple[str, ...]:
        """Datasets seen in training (``TrainingData.names``); empty when nothing is declared."""
        return self.training.names if self.training is not None else ()
