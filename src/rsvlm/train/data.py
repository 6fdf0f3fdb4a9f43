"""Training pairs for contrastive learning: images with captions, and labelled scenes as prompt captions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rsvlm.data.registry import open_dataset
from rsvlm.errors import RsvlmError
from rsvlm.train.config import DataConfig


@dataclass
class ImageItem:
    path: Path
    captions: list[str] = field(default_factory=list)
    label: str | None = None
    """Readable class name, when a scene set labels this image."""


@dataclass
class PairSet:
    train: list[ImageItem]
    val: list[ImageItem]
    templates: dict[str, list[str]]
    """Template set name → templates, for the scene sources used."""
    excluded: int = 0


def _key(path: Path) -> str:
    return str(path.resolve())


def build_pairs(config: DataConfig, seed: int) -> PairSet:
    """Merge caption and scene sources by image file, drop excluded images, split off a validation set."""
    from rsvlm.tasks.templates import load_templates

    items: dict[str, ImageItem] = {}
    for src in config.captions:
        ds = open_dataset(src.path, format=src.format, images=src.images, split=src.split)
        for r in ds.records:
            if r.image_path is None or not r.captions:
                continue
            items.setdefault(_key(r.image_path), ImageItem(r.image_path)).captions.extend(r.captions)
    templates: dict[str, list[str]] = {}
    for scene in config.scenes:
        ds = open_dataset(scene.path, format=scene.format, images=scene.images, split=scene.split)
        templates[scene.templates] = load_templates(scene.templates)
        per_class: dict[str, int] = {}
        for r in ds.records:
            if r.image_path is None or r.label is None:
                continue
            if scene.max_per_class is not None and per_class.get(r.label, 0) >= scene.max_per_class:
                continue
            per_class[r.label] = per_class.get(r.label, 0) + 1
            item = items.setdefault(_key(r.image_path), ImageItem(r.image_path))
            item.label = ds.class_names[r.label]
    # Excluded images are matched by content, so a copy of a test image elsewhere is excluded too.
    from rsvlm.features.cache import file_hash

    excluded_hashes: set[str] = set()
    for src in config.exclude:
        ds = open_dataset(src.path, format=src.format, images=src.images, split=src.split)
        excluded_hashes |= {file_hash(r.image_path) for r in ds.records if r.image_path is not None}
    dropped = {k for k in items if excluded_hashes and file_hash(items[k].path) in excluded_hashes}
    kept = [items[k] for k in sorted(items) if k not in dropped]
    if config.max_images is not None:
        kept = [kept[i] for i in np.random.default_rng(seed).permutation(len(kept))[: config.max_images]]
        kept.sort(key=lambda it: str(it.path))
    if not kept:
        raise RsvlmError("no training images: check data.captions / data.scenes paths and data.exclude")
    captioned = [i for i, it in enumerate(kept) if it.captions]
    n_val = round(len(captioned) * config.val_fraction)
    val_idx = set(np.random.default_rng(seed).permutation(captioned)[:n_val].tolist()) if n_val else set()
    train = [it for i, it in enumerate(kept) if i not in val_idx]
    val = [it for i, it in enumerate(kept) if i in val_idx]
    return PairSet(train, val, templates, excluded=len(dropped))
