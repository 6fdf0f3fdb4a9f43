"""Tiny random CLIPs written in each registry family's real file layout (the loaders' fixtures)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from rsvlm.models.spec import ModelSpec

TEXT = {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}
TINY_VIT: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": TEXT,
}
TINY_RN: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "patch_size": None},
    "text_cfg": TEXT,
}


def tiny_spec(spec: ModelSpec) -> ModelSpec:
    """The registry entry with a tiny architecture of the same kind and the same activation."""
    config = TINY_RN if spec.arch.startswith("RN") else TINY_VIT
    return dataclasses.replace(spec, arch_config=config)


def source_model(spec: ModelSpec, seed: int = 0) -> Any:
    """What the authors would have trained: the tiny architecture with the family's activation."""
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    config = dict(tiny_spec(spec).arch_config or {})
    return CLIP(**config, quick_gelu=spec.quick_gelu).eval()


def write_checkpoint(model: Any, layout: str, folder: Path) -> Path:
    """Save ``model`` the way its family releases weights."""
    folder.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    if layout == "state_dict":  # RemoteCLIP, GeoRSCLIP: torch.save(model.state_dict())
        path = folder / "weights.pt"
        torch.save(state, path)
    elif layout == "training":  # SkyCLIP: open_clip training checkpoint saved under DDP
        path = folder / "epoch_20.pt"
        torch.save(
            {
                "epoch": 20,
                "name": "tiny-run",
                "state_dict": {f"module.{k}": v for k, v in state.items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-9, "params": [0, 1]}]},
            },
            path,
        )
    elif layout == "torchscript":  # OpenAI's original archives
        path = folder / "model.pt"
        size = model.visual.image_size
        side = int(size[0] if isinstance(size, tuple | list) else size)
        image = torch.zeros(1, 3, side, side)
        text = torch.zeros(1, 77, dtype=torch.long)
        torch.jit.trace(model, (image, text), check_trace=False).save(str(path))
    elif layout == "safetensors":  # open_clip's hub format (timm/*.openai)
        from safetensors.torch import save_file

        path = folder / "open_clip_model.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        raise ValueError(layout)
    return path
