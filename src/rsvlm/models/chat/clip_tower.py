"""The CLIP vision tower of a LLaVA-style model: where its weights come from and how it is resized.

Towers come either from a CLIP folder as OpenAI/transformers release them (a ``config.json`` with
``vision_config``, weights keyed ``vision_model.*``, next to ``text_model.*``) or from inside a LLaVA
checkpoint. A bare tower's architecture is read from its tensors where no config is at hand.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsvlm.errors import RsvlmError
from rsvlm.models.checkpoint import WeightsError

if TYPE_CHECKING:
    import torch

POSITION_KEY = "vision_model.embeddings.position_embedding.weight"
SKIPPED_SUFFIXES = ("rotary_emb.inv_freq", "embeddings.position_ids")
"""Buffers older transformers saved in checkpoints; recomputed on load."""
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_VISION_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_channels",
    "image_size",
    "patch_size",
    "hidden_act",
    "layer_norm_eps",
    "projection_dim",
)
CLIP_REQUIRED = (
    "vision_model.embeddings.patch_embedding.weight",
    POSITION_KEY,
    "vision_model.encoder.layers.0.mlp.fc1.weight",
)


def interpolate_position_embedding(weight: torch.Tensor, grid: int) -> torch.Tensor:
    """CLIP position embeddings ``(1 + g*g, dim)`` → ``(1 + grid*grid, dim)``: CLS kept, grid resized
    bicubically with ``align_corners=True`` (GeoChat's ``clip_interpolate_embeddings``), in float32."""
    import torch

    old = math.isqrt(weight.shape[0] - 1)
    if old * old != weight.shape[0] - 1:
        raise WeightsError(f"position embeddings of shape {tuple(weight.shape)} are not CLS + a square grid")
    if old == grid:
        return weight
    cls, patches = weight[:1].float(), weight[1:].float()
    image = patches.T.reshape(1, weight.shape[1], old, old)
    resized = torch.nn.functional.interpolate(image, size=(grid, grid), mode="bicubic", align_corners=True)
    return torch.cat([cls, resized.reshape(weight.shape[1], grid * grid).T]).to(weight.dtype)


def read_clip_tower(folder: Path) -> dict[str, torch.Tensor]:
    """The ``vision_model.*`` tensors of a CLIP folder (its text tower and projections are left out)."""
    from rsvlm.models.chat.shards import iter_shards

    tower = {
        key: tensor
        for _, state in iter_shards(folder)
        for key, tensor in state.items()
        if key.startswith("vision_model.") and not key.endswith(SKIPPED_SUFFIXES)
    }
    if not tower:
        raise WeightsError(f"{folder}: no CLIP vision weights (vision_model.*) in this folder")
    return tower


def clip_config(folder: Path) -> dict[str, Any]:
    """The vision architecture a CLIP folder's config.json declares (full CLIP or vision-only config)."""
    raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    vision = raw.get("vision_config", raw) if isinstance(raw, dict) else None
    if not isinstance(vision, dict) or "hidden_size" not in vision:
        raise RsvlmError(f"{folder / 'config.json'}: not a CLIP config (no vision hidden_size)")
    return {k: vision[k] for k in CLIP_VISION_KEYS if k in vision}


def check_tower(tower: dict[str, torch.Tensor], where: Path) -> None:
    """A one-line error when a tower lacks the tensors its size is read from."""
    missing = [k for k in CLIP_REQUIRED if k not in tower]
    if missing:
        raise WeightsError(f"{where}: the CLIP vision tower is incomplete (no {missing[0]})")


def infer_clip_config(tower: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Architecture of a bare CLIP tower from its tensors. Heads are not visible in weights; OpenAI's CLIP
    ViTs (B/32, B/16, L/14, L/14-336) all use 64-wide heads, QuickGELU and LayerNorm eps 1e-5."""
    patch = tower["vision_model.embeddings.patch_embedding.weight"]
    layers = {int(m.group(1)) for k in tower if (m := re.match(r"vision_model\.encoder\.layers\.(\d+)\.", k))}
    hidden = int(patch.shape[0])
    return {
        "hidden_size": hidden,
        "intermediate_size": int(tower["vision_model.encoder.layers.0.mlp.fc1.weight"].shape[0]),
        "num_hidden_layers": max(layers) + 1,
        "num_attention_heads": max(1, hidden // 64),
        "num_channels": int(patch.shape[1]),
        "patch_size": int(patch.shape[-1]),
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
    }
