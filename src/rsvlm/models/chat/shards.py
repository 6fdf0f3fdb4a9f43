"""The weight files of a transformers-style checkpoint folder, read one shard at a time, safely.

Layouts (as ``save_pretrained`` writes them): one ``model.safetensors`` or ``pytorch_model.bin``, or
numbered shards (``pytorch_model-00001-of-00002.bin`` …, ``model-00001-of-00002.safetensors`` …) named by
an index (``pytorch_model.bin.index.json`` / ``model.safetensors.index.json``, ``{"weight_map": {key:
file}}``). GeoChat-7B ships two ``.bin`` shards plus the ``.bin`` index. Every file goes through
``rsvlm.models.checkpoint.read_state_dict``: safetensors, or ``torch.load(weights_only=True)``, which
refuses pickles that would construct objects or run code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rsvlm.models.checkpoint import WeightsError, read_state_dict

if TYPE_CHECKING:
    import torch

INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
SINGLE_FILES = ("model.safetensors", "pytorch_model.bin")


def _index(folder: Path) -> dict[str, str] | None:
    for name in INDEX_FILES:
        path = folder / name
        if path.is_file():
            try:
                weight_map = json.loads(path.read_text(encoding="utf-8"))["weight_map"]
            except (ValueError, KeyError, TypeError) as exc:
                raise WeightsError(f"{path}: not a readable checkpoint index ({exc})") from None
            if not isinstance(weight_map, dict) or not weight_map:
                raise WeightsError(f"{path}: the index names no weights")
            return {str(k): str(v) for k, v in weight_map.items()}
    return None


def weight_files(folder: Path) -> list[Path]:
    """The files holding the weights, in shard order; a missing shard or an empty folder is an error."""
    weight_map = _index(folder)
    if weight_map is not None:
        files = [folder / name for name in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise WeightsError(
                f"{folder}: shard {missing[0]} named by the index is missing ({len(missing)} of {len(files)} "
                "missing; download the complete model folder)"
            )
        return files
    for name in SINGLE_FILES:
        if (folder / name).is_file():
            return [folder / name]
    raise WeightsError(
        f"{folder}: no weights (expected {' or '.join(SINGLE_FILES)}, or shards with {' or '.join(INDEX_FILES)})"
    )


def weight_names(folder: Path) -> set[str] | None:
    """Tensor names from the index without reading any weights; None for a single-file checkpoint."""
    weight_map = _index(folder)
    return None if weight_map is None else set(weight_map)


def iter_shards(folder: Path) -> Iterator[tuple[Path, dict[str, torch.Tensor]]]:
    """Each weight file with its tensors, one at a time (peak memory: the largest shard)."""
    for path in weight_files(folder):
        yield path, read_state_dict(path)
