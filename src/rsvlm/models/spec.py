"""What the registry knows about a model: architecture as a small config, weights as a named source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    trained_on: tuple[str, ...] = ()
    """Datasets seen in training, for "seen in training" flags in benchmarks."""
    loader: str = "open_clip"
    """Which loader builds it: ``open_clip`` (CLIP families) or ``lite`` (rsvlm's own small model)."""
    default: bool = False
    """The model every command uses when ``--model`` is omitted."""
    licence: str = ""
    citation: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
