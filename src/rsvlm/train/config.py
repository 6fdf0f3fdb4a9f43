"""Training configuration: a YAML/JSON file validated into typed sections; a typo is an error."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rsvlm.configfile import check_keys, read_config_file
from rsvlm.digests import file_digest as content_digest
from rsvlm.digests import json_digest as digest
from rsvlm.errors import RsvlmError

T = TypeVar("T")


@dataclass(frozen=True)
class CaptionSource:
    """An image-caption set (any caption reader), e.g. RSICD train."""

    path: str
    images: str | None = None
    split: str | None = None
    format: str | None = None


@dataclass(frozen=True)
class SceneSource:
    """A labelled scene set whose class names become captions through prompt templates."""

    path: str
    images: str | None = None
    split: str | None = None
    format: str | None = None
    templates: str = "rs-default"
    max_per_class: int | None = None


@dataclass(frozen=True)
class DataConfig:
    captions: tuple[CaptionSource, ...] = ()
    scenes: tuple[SceneSource, ...] = ()
    exclude: tuple[CaptionSource, ...] = ()
    """Sets whose images must never be trained on (e.g. the RSICD test split, whose images are AID images)."""
    val_fraction: float = 0.05
    views: int = 3
    """Views per training image whose frozen-prefix features are precomputed: view 0 is the clean image,
    the others random augmentations (crop, flip/rotation, colour, resolution loss)."""
    max_images: int | None = None


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    """Learning rate of the projection heads."""
    tower_lr: float = 1e-4
    """Learning rate of the tuned tower blocks/layers."""
    weight_decay: float = 0.1
    warmup_steps: int = 50
    seed: int = 0
    scene_caption_share: float = 0.3
    """Fraction of pairs in a batch drawn from scene-prompt captions (when scenes are given)."""
    max_steps: int | None = None


@dataclass(frozen=True)
class TrainConfig:
    model: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    output: str = "runs/contrastive"
    cache_dir: str | None = None
    """Where frozen-prefix features are cached (default: ``<output>/cache``). Runs that share data, image
    size and frozen split can share it: entries are keyed by exactly what determines them."""

    def fingerprint(self) -> str:
        """Hash of everything that changes the result; a resumed run must match it."""
        return digest({k: v for k, v in asdict(self).items() if k != "cache_dir"})


def file_digest(path: Path) -> str:
    """Content hash of a weights file, so a config that starts from it names exactly those weights."""
    if not path.is_file():
        raise RsvlmError(f"{path}: not found (init must be a saved lite chat folder holding model.safetensors)")
    return content_digest(path, 16)


def _build(cls: type[T], data: Any, where: str) -> T:
    data = check_keys(cls, data, where)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        nested = {"data": DataConfig, "optim": OptimConfig}.get(key) if cls is TrainConfig else None
        if nested is not None:
            kwargs[key] = _build(nested, value, f"{where}.{key}")
        elif cls is DataConfig and key in ("captions", "scenes", "exclude"):
            item = SceneSource if key == "scenes" else CaptionSource
            if not isinstance(value, list):
                raise RsvlmError(f"{where}.{key}: expected a list")
            kwargs[key] = tuple(_build(item, v, f"{where}.{key}[{i}]") for i, v in enumerate(value))
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise RsvlmError(f"{where}: {exc}") from None


def load_config(path: str | Path) -> TrainConfig:
    """Read a training config (``.yaml``/``.yml`` or ``.json``); relative paths stay relative to the CWD."""
    return _build(TrainConfig, read_config_file(path), Path(path).name)
