"""Which layout a chat-model folder is in, read from its ``config.json``.

- ``llava``, ``llava_next``, ``qwen2_vl``: Hugging Face format (``model_type`` of a transformers config
  with ``text_config``/``vision_config``), run as they are;
- ``llava-repo``: the original LLaVA repository's layout (a LLaMA config with ``mm_*`` keys, as GeoChat and
  SkySenseGPT release it), converted once to ``llava`` by ``llava_repo.convert_llava_repo``;
- ``rsvlm-lite-chat``: rsvlm's own chat model (``format`` key; only trained tensors), run by ``lite_chat``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rsvlm.errors import RsvlmError

HF_LAYOUTS = ("llava", "llava_next", "qwen2_vl")
LLAVA_REPO = "llava-repo"
LITE_CHAT = "rsvlm-lite-chat"
LAYOUT_FAMILIES = {"llava": "llava", "llava_next": "llava-next", "qwen2_vl": "qwen2-vl"}
"""Family of a Hugging Face folder when nothing more specific is known."""


def read_model_config(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise RsvlmError(f"{folder}: chat model folder not found (download the model and pass its local folder)")
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RsvlmError(f"{path}: missing; not a model folder (pass the folder of the downloaded model)") from None
    except ValueError as exc:
        raise RsvlmError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise RsvlmError(f"{path}: not a model config")
    return config


def detect_layout(folder: Path) -> str:
    """``llava``, ``llava_next``, ``qwen2_vl``, ``llava-repo`` or ``rsvlm-lite-chat``; else an error."""
    from rsvlm.models.chat.llava_repo import is_llava_repo_config

    config = read_model_config(folder)
    if config.get("format") == LITE_CHAT:
        return LITE_CHAT
    if is_llava_repo_config(config):
        return LLAVA_REPO
    model_type = config.get("model_type")
    if model_type in HF_LAYOUTS:
        return str(model_type)
    raise RsvlmError(
        f"{folder}: model_type {model_type!r} is not a chat model rsvlm runs "
        f"(Hugging Face {', '.join(HF_LAYOUTS)}, or an original LLaVA-repository checkpoint)"
    )
