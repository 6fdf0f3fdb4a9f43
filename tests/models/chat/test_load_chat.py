from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rsvlm.data.raster import read_image
from rsvlm.data.sample import Turn
from rsvlm.errors import RsvlmError
from rsvlm.models.chat.hf import HFChatModel
from rsvlm.models.chat.protocol import BOX_FORMATS, ChatModel, ChatRequest, GenerationConfig
from rsvlm.models.chat.registry import BOX_FORMAT_BY_FAMILY, CHAT_MODELS, DEFAULT_CHAT, get_chat_spec, load_chat
from rsvlm.models.chat.templates import render
from tests.models.chat import tiny_chat
from tests.models.chat.conftest import synthetic

EXPECTED = {
    "llava": ("llava", "unit"),
    "llava_next": ("llava-next", "unit"),
    "qwen2_vl": ("qwen2-vl", "qwen-1000"),
    "geochat": ("geochat", "geochat-100"),
}
CONFIG = GenerationConfig(max_new_tokens=8, batch_size=8)


@pytest.fixture(scope="module", params=list(EXPECTED))
def loaded(request: pytest.FixtureRequest, chat_folders: dict[str, Path], chat_root: Path) -> tuple[str, ChatModel]:
    layout = str(request.param)
    return layout, load_chat(chat_folders[layout], cache_dir=chat_root / "cache")


def test_each_layout_loads_and_answers_deterministically(loaded: tuple[str, ChatModel]) -> None:
    layout, model = loaded
    assert isinstance(model, ChatModel)
    assert (model.family, model.box_format) == EXPECTED[layout] and model.box_format in BOX_FORMATS
    request = ChatRequest.ask(synthetic(64, 64, 7), "What is in this image?")
    first = model.generate([request], CONFIG)
    assert len(first) == 1 and first[0] and isinstance(first[0], str)
    assert model.generate([request], CONFIG) == first


def test_batched_equals_one_by_one(loaded: tuple[str, ChatModel], requests_mixed: list[ChatRequest]) -> None:
    _, model = loaded
    assert isinstance(model, HFChatModel)
    lengths = {int(model.encode(r)["input_ids"].shape[-1]) for r in requests_mixed}
    assert len(lengths) >= 4  # the requests really differ in prompt length
    alone = [model.generate([r], CONFIG)[0] for r in requests_mixed]
    assert model.generate(requests_mixed, CONFIG) == alone
    assert model.generate(requests_mixed, GenerationConfig(max_new_tokens=8, batch_size=3)) == alone
    assert len(set(alone)) > 1  # the tiny models are not degenerate: answers depend on the input


def test_left_padded_batches_match_too(loaded: tuple[str, ChatModel], requests_mixed: list[ChatRequest]) -> None:
    _, model = loaded
    assert isinstance(model, HFChatModel)
    padded = HFChatModel(
        model.model,
        model.processor,
        name=model.name,
        family=model.family,
        box_format=model.box_format,
        template=model.template,
        encoding=model.encoding,
        batching="padded",
    )
    alone = [model.generate([r], CONFIG)[0] for r in requests_mixed]
    assert padded.generate(requests_mixed, CONFIG) == alone


def test_multi_turn_conversations_reach_the_prompt(loaded: tuple[str, ChatModel]) -> None:
    _, model = loaded
    assert isinstance(model, HFChatModel)
    image = synthetic(48, 48, 9)
    turns = (Turn("human", "What is it?"), Turn("gpt", "an airport"), Turn("human", "How many runways?"))
    multi = ChatRequest(images=(image,), turns=turns)
    prompt = model.prompt(multi)
    assert prompt.index("What is it?") < prompt.index("an airport") < prompt.index("How many runways?")
    answer = model.generate([multi], CONFIG)[0]
    assert answer and answer == model.generate([multi], CONFIG)[0]


def test_folder_without_chat_template_uses_the_documented_one(chat_root: Path, chat_folders: dict[str, Path]) -> None:
    bare = tiny_chat.write_hf_qwen2_vl(chat_root / "qwen_no_template", chat_template=False)
    model = load_chat(bare)
    with_template = load_chat(chat_folders["qwen2_vl"])
    assert isinstance(model, HFChatModel) and isinstance(with_template, HFChatModel)
    assert model.template == "chatml" and with_template.template is None
    request = ChatRequest(
        images=(synthetic(56, 56, 1),), turns=(Turn("human", "hi"), Turn("gpt", "ok"), Turn("human", "x"))
    )
    assert model.prompt(request) == with_template.prompt(request) == render("chatml", request.turns, 1)
    assert model.generate([request], CONFIG) == with_template.generate([request], CONFIG)


@pytest.mark.shared
def test_real_aid_images(shared_data: Path, chat_folders: dict[str, Path]) -> None:
    model = load_chat(chat_folders["llava"])
    images = [read_image(shared_data / "aid" / "Airport" / f"airport_{i}.jpg") for i in (1, 2)]
    requests = [ChatRequest.ask(image, "Describe this image.") for image in images]
    answers = model.generate(requests, CONFIG)
    assert all(answers) and answers == [model.generate([r], CONFIG)[0] for r in requests]


def test_registry_entries() -> None:
    for name in ("geochat-7b", "skysensegpt-7b", "llava-1.5-7b", "qwen2-vl-2b"):
        spec = get_chat_spec(name)
        assert spec.box_format == BOX_FORMAT_BY_FAMILY[spec.family] and spec.hub_id and spec.licence and spec.citation
    assert get_chat_spec("geochat-7b").box_format == "geochat-100"
    assert get_chat_spec("qwen2-vl-2b").box_format == "qwen-1000"
    assert get_chat_spec("llava-1.5-7b").box_format == "unit"
    assert {s.layout for s in CHAT_MODELS.values()} == {
        "llava",
        "llava_next",
        "qwen2_vl",
        "llava-repo",
        "rsvlm-lite-chat",
    }


def test_the_default_chat_model_ships_only_trained_tensors_with_the_gemma_notice() -> None:
    from safetensors import safe_open

    from rsvlm.models.chat.formats import LITE_CHAT, detect_layout
    from rsvlm.models.lite import packaged_weights

    spec = get_chat_spec(DEFAULT_CHAT)
    assert spec.packaged and spec.family == "rsvlm" and "Gemma Terms of Use" in spec.licence
    folder = packaged_weights(DEFAULT_CHAT)
    assert detect_layout(folder) == LITE_CHAT
    assert "Gemma is provided under and subject to the Gemma Terms of Use" in (folder / "NOTICE").read_text()
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        names = list(f.keys())
    # alignment layer, LoRA and the answer vocabulary; no Gemma tensor (embeddings, MLPs, norms)
    assert all(n.startswith("alignment.") or "lora_" in n or n == "vocab_subset" for n in names), names
    assert any("lora_" in n for n in names)


def test_registered_name_with_weights(chat_folders: dict[str, Path]) -> None:
    model = load_chat("llava-1.5-7b", weights=chat_folders["llava"])
    assert (model.name, model.family, model.box_format) == ("llava-1.5-7b", "llava", "unit")
    assert load_chat(chat_folders["llava"], family="geochat").box_format == "geochat-100"


def test_errors_are_one_line_and_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(RsvlmError, match=r"known: .*geochat-7b.*skysensegpt-7b") as err:
        load_chat("geochat-13b")
    assert "\n" not in str(err.value)
    with pytest.raises(RsvlmError, match=r"never downloads.*MBZUAI/geochat-7B.*weights=DIR"):
        load_chat("geochat-7b")
    with pytest.raises(RsvlmError, match=r"nowhere: chat model folder not found.*download"):
        load_chat("geochat-7b", weights=tmp_path / "nowhere")
    with pytest.raises(RsvlmError, match="neither a chat model folder nor a registered chat model"):
        load_chat(tmp_path / "missing")
    with pytest.raises(RsvlmError, match=r"config.json: missing"):
        load_chat(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(RsvlmError, match="'bert' is not a chat model"):
        load_chat(tmp_path)
    with pytest.raises(RsvlmError, match="unknown chat family"):
        load_chat(tmp_path, family="gpt4")


def test_missing_weights_file_is_named(chat_root: Path) -> None:
    folder = tiny_chat.write_hf_llava(chat_root / "llava_no_weights")
    (folder / "model.safetensors").unlink()
    with pytest.raises(RsvlmError, match=r"llava_no_weights: no weights \(expected model.safetensors"):
        load_chat(folder)


def test_registry_import_is_cheap() -> None:
    code = "import sys, rsvlm.models.chat.registry; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_dtype_choice(chat_folders: dict[str, Path]) -> None:
    default = load_chat(chat_folders["llava"])
    half = load_chat(chat_folders["llava"], dtype="bfloat16")
    assert isinstance(default, HFChatModel) and isinstance(half, HFChatModel)
    assert str(default.model.dtype) == "torch.float32" and str(half.model.dtype) == "torch.bfloat16"
    assert half.generate([ChatRequest.ask(synthetic(56, 56, 2), "What is it?")], CONFIG)[0]
    with pytest.raises(RsvlmError, match="unknown dtype 'int8'"):
        load_chat(chat_folders["llava"], dtype="int8")
