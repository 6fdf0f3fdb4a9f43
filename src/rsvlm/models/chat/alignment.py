"""Alignment layers: vision features ``(batch, patches, vision_dim)`` → LLM embeddings ``(batch, tokens, text_dim)``.

Three kinds, chosen by name from ``ALIGNMENTS`` (a table, so a new kind is one entry):

- ``linear``: one projection, LLaVA-1's projector (``mm_projector_type: linear`` in the LLaVA repository);
- ``mlp2x_gelu``: Linear → GELU → Linear, LLaVA-1.5's projector and GeoChat's. Built as an
  ``nn.Sequential`` so its state-dict keys (``0.weight``, ``2.weight`` …) are the ones the LLaVA
  repository saves under ``model.mm_projector.``; the LLaVA-repo converter loads released projectors
  into it to validate them;
- ``resampler``: a Q-Former-style resampler (BLIP-2, Li et al. 2023; Flamingo's perceiver resampler):
  a fixed set of learned queries that attend to the image features through cross-attention layers, so
  the LLM always receives ``num_queries`` tokens whatever the number of patches.

Token counts: ``linear`` and ``mlp2x_gelu`` keep one token per patch; ``resampler`` returns
``num_queries`` tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from rsvlm.errors import RsvlmError


@dataclass(frozen=True)
class AlignmentConfig:
    kind: str
    """A key of ``ALIGNMENTS``: ``linear``, ``mlp2x_gelu`` or ``resampler``."""
    vision_dim: int
    text_dim: int
    num_queries: int = 64
    """Resampler only: how many tokens reach the LLM per image."""
    num_layers: int = 2
    """Resampler only: cross-attention blocks."""
    num_heads: int = 8
    """Resampler only: attention heads; must divide ``width``."""
    width: int | None = None
    """Resampler only: inner width of the query stream (``text_dim`` when None)."""

    def __post_init__(self) -> None:
        if self.kind not in ALIGNMENTS:
            raise RsvlmError(f"unknown alignment layer {self.kind!r} (known: {', '.join(sorted(ALIGNMENTS))})")
        if min(self.vision_dim, self.text_dim, self.num_queries, self.num_layers, self.num_heads) < 1:
            raise RsvlmError(f"alignment sizes must be positive: {self}")
        if self.kind == "resampler" and self.inner_width % self.num_heads:
            raise RsvlmError(f"resampler width {self.inner_width} is not divisible by {self.num_heads} heads")

    @property
    def inner_width(self) -> int:
        return self.width or self.text_dim

    def output_tokens(self, patches: int) -> int:
        """Tokens the LLM receives for an image of ``patches`` feature vectors."""
        return self.num_queries if self.kind == "resampler" else patches


class LinearAlignment(nn.Linear):
    """One projection per patch; state-dict keys ``weight``, ``bias`` as LLaVA-1 saves them."""

    def __init__(self, config: AlignmentConfig) -> None:
        super().__init__(config.vision_dim, config.text_dim)


class MLPAlignment(nn.Sequential):
    """Linear → GELU → Linear per patch, laid out like LLaVA's ``mlp2x_gelu`` ``nn.Sequential``."""

    def __init__(self, config: AlignmentConfig) -> None:
        super().__init__(
            nn.Linear(config.vision_dim, config.text_dim), nn.GELU(), nn.Linear(config.text_dim, config.text_dim)
        )


class _ResamplerBlock(nn.Module):
    """Pre-norm block: queries attend to each other, then to the image features, then an MLP."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.self_norm = nn.LayerNorm(width)
        self.self_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.cross_norm = nn.LayerNorm(width)
        self.feature_norm = nn.LayerNorm(width)
        self.cross_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, queries: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        q = self.self_norm(queries)
        queries = queries + self.self_attn(q, q, q, need_weights=False)[0]
        q = self.cross_norm(queries)
        kv = self.feature_norm(features)
        queries = queries + self.cross_attn(q, kv, kv, need_weights=False)[0]
        out: torch.Tensor = queries + self.mlp(self.mlp_norm(queries))
        return out


class ResamplerAlignment(nn.Module):
    """Learned queries + cross-attention layers: a fixed number of output tokens per image."""

    def __init__(self, config: AlignmentConfig) -> None:
        super().__init__()
        width = config.inner_width
        self.queries = nn.Parameter(torch.randn(config.num_queries, width) * width**-0.5)
        self.feature_proj = nn.Linear(config.vision_dim, width)
        self.blocks = nn.ModuleList(_ResamplerBlock(width, config.num_heads) for _ in range(config.num_layers))
        self.out_norm = nn.LayerNorm(width)
        self.out_proj = nn.Linear(width, config.text_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        kv = self.feature_proj(features)
        queries = self.queries.unsqueeze(0).expand(features.shape[0], -1, -1)
        for block in self.blocks:
            queries = block(queries, kv)
        out: torch.Tensor = self.out_proj(self.out_norm(queries))
        return out


ALIGNMENTS: dict[str, Callable[[AlignmentConfig], nn.Module]] = {
    "linear": LinearAlignment,
    "mlp2x_gelu": MLPAlignment,
    "resampler": ResamplerAlignment,
}


def build_alignment(config: AlignmentConfig) -> nn.Module:
    """The alignment layer ``config`` describes, freshly initialised."""
    return ALIGNMENTS[config.kind](config)
