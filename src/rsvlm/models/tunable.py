"""Building blocks behind ``TunableContrastive``: frozen tower copies and attention split for LoRA.

A tower copy is a new module tree whose parameters are new frozen ``Parameter`` objects over the *same* storage
as the loaded model (no weights are duplicated) and whose buffers are cloned, so tuning modules that LoRA adds
inside it, or switching it to training mode, cannot change the base model's outputs.

``torch.nn.MultiheadAttention`` (open_clip's text and ViT blocks) and open_clip's ``AttentionPool2d`` (the
ResNet towers) read their query/key/value weights as raw tensors, never calling a ``Linear``: LoRA wrapping a
layer would be ignored, and peft's own MultiheadAttention support merges and unmerges weights around every
forward, which drifts them by rounding. So a copy swaps them for the same attention computed from four
``Linear`` layers over views of the fused weights (what CLIP-LoRA does as well); results agree with the fused
kernel to float rounding.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from rsvlm.errors import RsvlmError


def frozen_copy(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` as its own tree in eval mode: frozen parameters sharing storage, cloned buffers."""
    memo: dict[int, Any] = {}
    for p in module.parameters():
        memo[id(p)] = torch.nn.Parameter(p.detach(), requires_grad=False)
    for b in module.buffers():
        memo[id(b)] = b.detach().clone()
    out: torch.nn.Module = copy.deepcopy(module, memo)
    return out.eval()


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.nn.Linear:
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    layer.weight = torch.nn.Parameter(weight.detach(), requires_grad=False)
    if bias is not None:
        layer.bias = torch.nn.Parameter(bias.detach(), requires_grad=False)
    return layer


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, Lq, E), (B, Lk, E) ×2 → (B, Lq, E) scaled dot-product attention over ``heads`` heads."""
    b, lq, e = q.shape

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(b, x.shape[1], heads, e // heads).transpose(1, 2)

    out = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask)
    return out.transpose(1, 2).reshape(b, lq, e)


class SplitAttention(torch.nn.Module):
    """``nn.MultiheadAttention`` (self- or cross-attention, no dropout) with ``q_proj``/``k_proj``/``v_proj``/
    ``out_proj`` as ``Linear`` layers sharing the fused layer's storage."""

    def __init__(self, mha: torch.nn.MultiheadAttention) -> None:
        super().__init__()
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise RsvlmError("this attention layer (separate key/value sizes or extra bias tokens) cannot take LoRA")
        e = mha.embed_dim
        w, bias = mha.in_proj_weight, mha.in_proj_bias
        self.heads, self.batch_first = mha.num_heads, mha.batch_first
        parts = [(w[i * e : (i + 1) * e], None if bias is None else bias[i * e : (i + 1) * e]) for i in range(3)]
        self.q_proj, self.k_proj, self.v_proj = (_linear(pw, pb) for pw, pb in parts)
        self.out_proj = _linear(mha.out_proj.weight, mha.out_proj.bias)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        need_weights: bool = False,
        attn_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, None]:
        if not self.batch_first:
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        if attn_mask is not None and attn_mask.dtype == torch.bool:
            attn_mask = torch.zeros_like(attn_mask, dtype=query.dtype).masked_fill(attn_mask, float("-inf"))
        out = self.out_proj(_attend(self.q_proj(query), self.k_proj(key), self.v_proj(value), self.heads, attn_mask))
        return (out if self.batch_first else out.transpose(0, 1)), None


class SplitAttentionPool(torch.nn.Module):
    """open_clip's ``AttentionPool2d`` (the ResNet towers' final attention pooling) calling its projections as
    layers: the mean token attends over itself and every position."""

    def __init__(self, pool: Any) -> None:
        super().__init__()
        self.positional_embedding = pool.positional_embedding
        self.q_proj, self.k_proj, self.v_proj, self.c_proj = pool.q_proj, pool.k_proj, pool.v_proj, pool.c_proj
        self.heads = int(pool.num_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2).transpose(1, 2)  # (N, HW, C)
        position: torch.Tensor = self.positional_embedding
        x = torch.cat([x.mean(dim=1, keepdim=True), x], dim=1) + position.to(x.dtype)
        out = _attend(self.q_proj(x[:, :1]), self.k_proj(x), self.v_proj(x), self.heads, None)
        result: torch.Tensor = self.c_proj(out[:, 0])
        return result


def split_attention(module: torch.nn.Module) -> torch.nn.Module:
    """Replace, in place inside a tower copy, every fused attention by its split form."""
    from open_clip.modified_resnet import AttentionPool2d

    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.MultiheadAttention):
            setattr(module, name, SplitAttention(child))
        elif isinstance(child, AttentionPool2d):
            setattr(module, name, SplitAttentionPool(child))
        else:
            split_attention(child)
    return module


def plain_pointwise(module: torch.nn.Module, names: list[str]) -> torch.nn.Module:
    """Replace, in place, the 1x1 stride-1 convolutions ``names`` (e.g. EfficientNet's "same"-padded subclass,
    which peft cannot rebuild) by plain ``Conv2d`` layers over the same weights: the same computation."""
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        conv = getattr(parent, child)
        if not isinstance(conv, torch.nn.Conv2d) or conv.kernel_size != (1, 1) or tuple(conv.stride) != (1, 1):
            raise RsvlmError(f"{name} is not a pointwise convolution")
        plain = torch.nn.Conv2d(conv.in_channels, conv.out_channels, 1, bias=conv.bias is not None, device="meta")
        plain.weight = conv.weight
        if conv.bias is not None:
            plain.bias = conv.bias
        setattr(parent, child, plain.eval())
    return module


def last(items: list[list[str]], blocks: int) -> list[str]:
    """The target names of the last ``blocks`` blocks (0 or more than there are: all), flattened."""
    if blocks < 0:
        raise RsvlmError(f"blocks must be 0 (all) or more, got {blocks}")
    chosen = items[-blocks:] if 0 < blocks < len(items) else items
    return [name for block in chosen for name in block]
