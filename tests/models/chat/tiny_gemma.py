"""A tiny random Gemma-3 text model with a locally trained tokenizer carrying Gemma's special tokens, and a
tiny LLaVA-JSON instruction set over real AID images: the lite chat model's fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from tests.models.chat.tiny_chat import train_tokenizer

GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
AID_IMAGES = ["Airport/airport_1.jpg", "Beach/beach_1.jpg", "Bridge/bridge_1.jpg", "Desert/desert_1.jpg"]
ANSWERS = ["an airport with planes.", "a beach near the sea.", "a bridge over the river.", "a desert."]


def write_tiny_gemma(folder: Path, seed: int = 0) -> Path:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(GEMMA_SPECIALS, bos=None),
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=["<start_of_turn>", "<end_of_turn>"],
    )
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=16,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=512,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        initializer_range=0.5,
    )
    torch.manual_seed(seed)
    Gemma3ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_instructions(folder: Path, aid: Path) -> Path:
    """``train.json`` as ``rsvlm.build.instructions`` writes it: images relative to the json's folder."""
    folder.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    for i, (image, answer) in enumerate(zip(AID_IMAGES, ANSWERS, strict=True)):
        records.append(
            {
                "id": f"aid-{i}",
                "image": str(aid / image),
                "task": "caption",
                "conversations": [
                    {"from": "human", "value": "<image>\nDescribe this remote sensing image in one sentence."},
                    {"from": "gpt", "value": answer},
                ],
            }
        )
    path = folder / "train.json"
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path
