from __future__ import annotations

import torch

from rsvlm.models.chat.batching import batch_key, collate, plan_batches


def _enc(length: int, side: int = 4) -> dict[str, torch.Tensor]:
    return {
        "input_ids": torch.arange(1, length + 1)[None],
        "attention_mask": torch.ones(1, length, dtype=torch.long),
        "pixel_values": torch.zeros(1, 3, side, side),
    }


def test_exact_batches_only_share_identical_shapes() -> None:
    encs = [_enc(5), _enc(6), _enc(5), _enc(5, side=8), _enc(5)]
    keys = [batch_key(e, "exact") for e in encs]
    assert plan_batches(keys, [5, 6, 5, 5, 5], batch_size=2) == [[0, 2], [4], [1], [3]]


def test_padded_batches_group_lengths_and_left_pad() -> None:
    encs = [_enc(5), _enc(3), _enc(4, side=8)]
    keys = [batch_key(e, "padded") for e in encs]
    assert plan_batches(keys, [5, 3, 4], batch_size=8) == [[1, 0], [2]]
    batch = collate([encs[1], encs[0]], pad_id=0)
    assert batch["input_ids"].tolist() == [[0, 0, 1, 2, 3], [1, 2, 3, 4, 5]]
    assert batch["attention_mask"].tolist() == [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]
    assert batch["pixel_values"].shape == (2, 3, 4, 4)
