"""Which requests share a forward pass, so that batching never changes an answer.

Encoded requests are dicts of tensors whose first dimension is the batch (or, for Qwen2-VL's flattened
patches, a count that simply concatenates). Two policies:

- ``exact`` (default): requests share a batch only when every tensor has the same trailing shape, i.e.
  the same prompt length and image geometry. Such a batch needs no padding at all, so each row sees
  exactly the numbers it would see alone; only the kernels' reduction order may differ with the batch
  size, which in float32 stays far below what flips a greedy choice (half precision on a GPU does not:
  ``hf.HALF_PRECISION_NOTE``).
- ``padded``: requests of different prompt lengths are left-padded with a zero attention mask (position
  ids then follow the mask). Fewer, fuller batches, but the softmax over a longer, partly masked row sums
  in a different order, so answers equal the batch-size-1 answers only up to float rounding.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

BATCHING = ("exact", "padded")
SEQUENCE_KEYS = frozenset({"input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids"})
"""Tensors of shape ``(1, prompt_length)``; ``padded`` batching left-pads these."""


def batch_key(encoding: Mapping[str, torch.Tensor], batching: str) -> Hashable:
    """Requests with equal keys can be stacked (``exact``) or left-padded (``padded``) into one batch."""
    parts = []
    for name in sorted(encoding):
        shape = tuple(encoding[name].shape[1:])
        if batching == "padded" and name in SEQUENCE_KEYS:
            shape = shape[:-1]
        parts.append((name, shape, str(encoding[name].dtype)))
    return tuple(parts)


def plan_batches(keys: Sequence[Hashable], lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Request indices grouped by key (first-seen order), sorted by length inside a group, cut to size."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    groups: dict[Hashable, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    batches: list[list[int]] = []
    for members in groups.values():
        members.sort(key=lambda i: lengths[i])
        batches.extend(members[start : start + batch_size] for start in range(0, len(members), batch_size))
    return batches


def collate(encodings: Sequence[Mapping[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """One batch: sequence tensors left-padded to the longest prompt, everything concatenated on dim 0."""
    import torch

    longest = max(int(e["input_ids"].shape[-1]) for e in encodings)
    batch = {}
    for name in encodings[0]:
        parts = [e[name] for e in encodings]
        if name in SEQUENCE_KEYS:
            fill = pad_id if name == "input_ids" else 0
            parts = [torch.cat([torch.full((1, longest - p.shape[-1]), fill, dtype=p.dtype), p], dim=-1) for p in parts]
        batch[name] = torch.cat(parts, dim=0)
    return batch
