"""What the tower-tuning methods (prompt learning, LoRA) share: the protocol check, frozen base weights while
training, the optimiser with its cosine schedule, and batched text encoding."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    import torch

    from rsvlm.models.protocols import ContrastiveModel, TunableContrastive

TEXT_BATCH = 512
"""Prompts encoded per forward when scoring (bounds memory for CoCoOp's images × classes prompts)."""


def tunable(model: ContrastiveModel | None, method: str) -> TunableContrastive:
    """``model`` as a ``TunableContrastive``, or a one-line error saying why the method cannot run on it."""
    from rsvlm.models.protocols import TunableContrastive

    if model is None:
        raise RsvlmError(f"method {method} runs the model's towers: give --model (not --embeddings)")
    if not isinstance(model, TunableContrastive):
        raise RsvlmError(
            f"method {method} needs a model whose towers can be tuned (open_clip families, rsvlm-lite); "
            f"{model.name} does not open them"
        )
    return model


@contextmanager
def frozen(module: torch.nn.Module) -> Iterator[None]:
    """The base model's weights take no gradients while a method trains; their flags are restored after."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def optimiser(
    params: Sequence[torch.nn.Parameter], kind: str, lr: float, weight_decay: float, steps: int, warmup: int = 0
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """SGD (momentum 0.9) or AdamW with a cosine schedule over ``steps``, after ``warmup`` steps at lr 1e-5
    (CoOp's constant warm-up)."""
    import math

    import torch

    if lr <= 0 or weight_decay < 0 or not math.isfinite(lr):
        raise RsvlmError(f"lr must be > 0 and weight_decay >= 0, got lr={lr}, weight_decay={weight_decay}")
    if kind == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    cosine = max(1, steps - warmup)

    def factor(step: int) -> float:
        if step < warmup:
            return min(1.0, 1e-5 / lr)
        return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, cosine) / cosine))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def batches(n: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """One epoch of shuffled index batches."""
    import torch

    if size < 1:
        raise RsvlmError(f"batch_size must be at least 1, got {size}")
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, size):
        yield order[start : start + size]


def aliases(names: Sequence[str]) -> tuple[list[str], torch.Tensor]:
    """Class names split at ``|`` (``city centre|downtown``: both are prompted, as zero-shot does), and the
    (C, A) matrix that averages the A alias rows back into C classes."""
    import torch

    groups = [[a.strip() for a in name.split("|") if a.strip()] or [name] for name in names]
    flat = [a for group in groups for a in group]
    average = torch.zeros(len(groups), len(flat))
    pos = 0
    for c, group in enumerate(groups):
        average[c, pos : pos + len(group)] = 1.0 / len(group)
        pos += len(group)
    return flat, average


def template_text_features(model: TunableContrastive, names: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """(C, D) class embeddings averaged over ``templates`` and a class's aliases, renormalised (zero-shot's
    prompt ensemble), with gradients."""
    import torch

    flat, average = aliases(names)
    texts = [t.format(a) for a in flat for t in templates]
    tokens = model.tokenize(texts)
    per = model.encode_word_embeddings(model.word_embeddings(tokens.ids), tokens)
    mean = average @ per.reshape(len(flat), len(templates), -1).mean(dim=1)
    return torch.nn.functional.normalize(mean, dim=-1)


def tensor_digest(state: Mapping[str, npt.NDArray[Any]]) -> str:
    """A short digest of named tensors (names, shapes, bytes): what makes a tuned model's ``weights_id``."""
    h = hashlib.sha256()
    for name in sorted(state):
        value = np.ascontiguousarray(state[name])
        h.update(f"{name}:{value.dtype}:{value.shape};".encode())
        h.update(value.tobytes())
    return h.hexdigest()[:16]


def shot_epochs(shots: int) -> int:
    """CoOp's schedule (IJCV 2022, section 4.1): 200 epochs for 8–16 shots, 100 for 2–4, 50 for 1."""
    return 200 if shots >= 8 else 100 if shots >= 2 else 50


def check_epochs(value: int, name: str = "epochs") -> int:
    if isinstance(value, bool) or value < 0:
        raise RsvlmError(f"{name} must be 0 (automatic) or more, got {value}")
    return int(value)
