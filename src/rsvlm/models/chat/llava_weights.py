"""The weights of an original LLaVA-repository checkpoint, routed into components and exported to transformers.

Names follow the layout ``rsvlm.models.chat.llava_repo`` describes: the CLIP tower under ``VISION_PREFIX``, the
projector under ``PROJECTOR_PREFIX`` (an ``nn.Sequential``), the language model under ``model.``, ``lm_head``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rsvlm.models.chat.clip_tower import SKIPPED_SUFFIXES
from rsvlm.models.checkpoint import WeightsError

if TYPE_CHECKING:
    import torch

VISION_PREFIX = "model.vision_tower.vision_tower."
PROJECTOR_PREFIX = "model.mm_projector."


def route(key: str) -> tuple[str, str] | None:
    """(component, key inside it) for an original weight name; None for recomputed buffers."""
    if key.endswith(SKIPPED_SUFFIXES):
        return None
    for prefix, component in ((VISION_PREFIX, "vision"), (PROJECTOR_PREFIX, "projector"), ("model.", "language")):
        if key.startswith(prefix):
            return component, key[len(prefix) :]
    if key.startswith("lm_head."):
        return "lm_head", key[len("lm_head.") :]
    return "unexpected", key


def read_checkpoint(source: Path, keep_vision: bool) -> dict[str, dict[str, torch.Tensor]]:
    from rsvlm.models.chat.shards import iter_shards

    parts: dict[str, dict[str, torch.Tensor]] = {"vision": {}, "projector": {}, "language": {}, "lm_head": {}}
    unexpected: list[str] = []
    for _, state in iter_shards(source):
        for key, tensor in state.items():
            routed = route(key)
            if routed is None or (routed[0] == "vision" and not keep_vision):
                continue
            if routed[0] == "unexpected":
                unexpected.append(key)
            else:
                parts[routed[0]][routed[1]] = tensor
    if unexpected:
        raise WeightsError(
            f"{source}: {len(unexpected)} weights outside the LLaVA layout, e.g. {unexpected[0]} "
            "(not a LLaVA-repository checkpoint rsvlm can convert)"
        )
    return parts


def _export_mlp(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """LLaVA's ``nn.Sequential`` (``0`` linear, ``1`` GELU, ``2`` linear) → ``linear_1``, ``linear_2``."""
    return {f"linear_{1 if k.startswith('0.') else 2}.{k.split('.', 1)[1]}": v for k, v in state.items()}


def _export_linear(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A single linear as transformers' two-layer projector: linear, identity activation, identity."""
    import torch

    dim = state["weight"].shape[0]
    eye = torch.eye(dim, dtype=state["weight"].dtype)
    return {
        "linear_1.weight": state["weight"],
        "linear_1.bias": state["bias"],
        "linear_2.weight": eye,
        "linear_2.bias": torch.zeros(dim, dtype=state["weight"].dtype),
    }


PROJECTOR_EXPORTS: dict[str, tuple[Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]], str]] = {
    "mlp2x_gelu": (_export_mlp, "gelu"),
    "linear": (_export_linear, "linear"),
}
"""LLaVA projector type → (transformers projector weights, transformers ``projector_hidden_act``)."""


def export_projector(
    raw: dict[str, torch.Tensor], kind: str, vision_dim: int, text_dim: int, source: Path
) -> tuple[dict[str, torch.Tensor], str]:
    """Validate the released projector by loading it into rsvlm's alignment layer, then export it."""
    from rsvlm.models.chat.alignment import AlignmentConfig, build_alignment

    layer = build_alignment(AlignmentConfig(kind, vision_dim, text_dim))
    try:
        layer.load_state_dict(raw, strict=True)
    except RuntimeError as exc:
        detail = str(exc).splitlines()[0][:200]
        raise WeightsError(f"{source}: model.mm_projector does not fit a {kind} projector ({detail})") from None
    dtype = next(iter(raw.values())).dtype
    export, act = PROJECTOR_EXPORTS[kind]
    return {k: v.detach().to(dtype) for k, v in export(layer.state_dict()).items()}, act
