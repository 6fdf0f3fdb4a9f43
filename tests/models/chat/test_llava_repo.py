from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rsvlm.errors import RsvlmError
from rsvlm.models.chat import llava_repo, llava_weights
from rsvlm.models.chat.cache import read_record
from rsvlm.models.chat.clip_tower import interpolate_position_embedding
from rsvlm.models.chat.hf import HFChatModel
from rsvlm.models.chat.llava_repo import convert_llava_repo
from rsvlm.models.chat.protocol import ChatRequest, GenerationConfig
from rsvlm.models.chat.registry import load_chat
from rsvlm.models.chat.templates import render, to_messages
from rsvlm.models.checkpoint import WeightsError
from tests.models.chat import tiny_chat
from tests.models.chat.conftest import synthetic

POSITIONS_504 = (504 // 14) ** 2 + 1  # 1297: CLS + a 36 x 36 grid
CONFIG = GenerationConfig(max_new_tokens=6)


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("*.safetensors")):
        state.update(load_file(str(path)))
    return state


def _position(state: dict[str, torch.Tensor]) -> torch.Tensor:
    return next(v for k, v in state.items() if k.endswith("position_embedding.weight") and "vision" in k)


@pytest.fixture(scope="module")
def geochat(chat_folders: dict[str, Path], chat_root: Path) -> Path:
    return convert_llava_repo(chat_folders["geochat"], cache_dir=chat_root / "cache")


def test_geochat_converts_to_a_504_px_llava_folder(geochat: Path) -> None:
    config = json.loads((geochat / "config.json").read_text())
    assert config["model_type"] == "llava" and config["vision_config"]["image_size"] == 504
    assert config["vision_feature_layer"] == -2 and config["vision_feature_select_strategy"] == "default"
    assert _position(_tensors(geochat)).shape == (POSITIONS_504, tiny_chat.TINY_CLIP["hidden_size"])
    record = read_record(geochat)
    assert record is not None
    assert record["family"] == "geochat" and record["template"] == "llava_v1" and record["image_tokens"] == 1296
    assert record["vision_tower"] == "embedded" and record["pad_to_square"] is False
    assert not list(geochat.glob("*.bin"))  # safetensors only


def test_conversion_is_cached(
    chat_folders: dict[str, Path], chat_root: Path, geochat: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> None:
        raise AssertionError("converted twice")

    monkeypatch.setattr(llava_repo, "_convert", fail)
    assert convert_llava_repo(chat_folders["geochat"], cache_dir=chat_root / "cache") == geochat
    model = load_chat(chat_folders["geochat"], cache_dir=chat_root / "cache")
    assert model.family == "geochat"


def test_a_changed_source_is_converted_again(chat_root: Path, tmp_path: Path) -> None:
    source = tiny_chat.write_llava_repo(tmp_path / "geochat")
    first = convert_llava_repo(source, cache_dir=tmp_path / "cache")
    config = source / "config.json"
    config.write_text(config.read_text())
    os.utime(config, ns=(1, 1))
    second = convert_llava_repo(source, cache_dir=tmp_path / "cache")
    assert second != first and read_record(second) is not None


def test_prompt_and_tokens_follow_the_llava_repository(chat_folders: dict[str, Path], chat_root: Path) -> None:
    model = load_chat(chat_folders["geochat"], cache_dir=chat_root / "cache")
    assert isinstance(model, HFChatModel) and model.encoding == "llava-repo"
    request = ChatRequest.ask(synthetic(70, 90, 5), "[grounding] locate the bridge")
    prompt = model.prompt(request)
    assert prompt == render("llava_v1", request.turns, 1)
    # the converted folder's own Jinja template builds the same prompt for plain transformers users
    messages = to_messages(request.turns, 1)
    assert model.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) == prompt
    tokenizer = model.processor.tokenizer
    ids = model.encode(request)["input_ids"][0].tolist()
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    before, after = prompt.split("<image>")
    expected = tokenizer(before).input_ids + [image_id] * 1296 + tokenizer(after, add_special_tokens=False).input_ids
    assert ids == expected and ids[0] == tokenizer.bos_token_id
    assert model.generate([request], CONFIG)[0]


def test_separate_clip_folder_is_interpolated_like_geochat(chat_root: Path, geochat: Path) -> None:
    clip = tiny_chat.write_clip_folder(chat_root / "clip-336")
    source = tiny_chat.write_llava_repo(chat_root / "geochat_named", tower="named", tower_name=str(clip))
    converted = convert_llava_repo(source, cache_dir=chat_root / "cache")
    record = read_record(converted)
    assert record is not None and record["vision_tower"] == str(clip.resolve())
    named, embedded = _tensors(converted), _tensors(geochat)
    assert _position(named).shape[0] == POSITIONS_504
    # same CLIP, interpolated here vs. saved by GeoChat after interpolation (in fp16): the same tower
    vision = [k for k in named if "vision" in k]
    assert vision and all(torch.allclose(named[k].float(), embedded[k].float(), rtol=1e-3, atol=1e-3) for k in vision)
    request = ChatRequest.ask(synthetic(64, 64, 3), "What is in this image?")
    assert load_chat(converted).generate([request], CONFIG)[0]


def test_tower_named_by_a_hub_id_needs_a_local_folder(chat_root: Path, tmp_path: Path) -> None:
    source = tiny_chat.write_llava_repo(tmp_path / "no_tower", tower="named")
    with pytest.raises(RsvlmError, match=r"'openai/clip-vit-large-patch14-336' is neither inside.*vision_tower=PATH"):
        load_chat(source, cache_dir=tmp_path / "cache")
    clip = tiny_chat.write_clip_folder(tmp_path / "clip")
    model = load_chat(source, vision_tower=clip, cache_dir=tmp_path / "cache")
    assert model.family == "geochat"
    with pytest.raises(RsvlmError, match="vision tower folder not found"):
        load_chat(source, vision_tower=tmp_path / "nothing", cache_dir=tmp_path / "cache")


def test_llava_15_layout_with_linear_projector(chat_root: Path, tmp_path: Path) -> None:
    clip = tiny_chat.write_clip_folder(tmp_path / "clip")
    source = tiny_chat.write_llava_repo(
        tmp_path / "llava15", model_type="llava", tower="named", tower_name=str(clip), projector="linear"
    )
    model = load_chat(source, cache_dir=tmp_path / "cache")
    assert (model.family, model.box_format) == ("llava", "unit")
    assert isinstance(model, HFChatModel) and model.processor.image_processor.do_pad  # image_aspect_ratio: pad
    converted = convert_llava_repo(source, cache_dir=tmp_path / "cache")
    assert _position(_tensors(converted)).shape[0] == (336 // 14) ** 2 + 1  # native size kept
    requests = [ChatRequest.ask(synthetic(40 + 10 * i, 60, i), "Describe " + "it " * i) for i in range(4)]
    alone = [model.generate([r], CONFIG)[0] for r in requests]
    assert model.generate(requests, GenerationConfig(max_new_tokens=6, batch_size=4)) == alone


def test_linear_projector_export_is_exact() -> None:
    layer = torch.nn.Linear(4, 6)
    state = {"weight": layer.weight.detach(), "bias": layer.bias.detach()}
    exported, act = llava_weights.PROJECTOR_EXPORTS["linear"]
    hf = exported(state)
    x = torch.randn(3, 4)
    two_layers = (x @ hf["linear_1.weight"].T + hf["linear_1.bias"]) @ hf["linear_2.weight"].T + hf["linear_2.bias"]
    assert act == "linear" and torch.allclose(two_layers, layer(x))


def test_interpolation_keeps_cls_and_matches_geochat() -> None:
    weight = torch.randn(577, 8)
    out = interpolate_position_embedding(weight, 36)
    assert out.shape == (1297, 8) and torch.equal(out[0], weight[0])
    assert torch.allclose(out, tiny_chat.interpolate_like_geochat(weight, 504, 14), atol=1e-6)
    assert interpolate_position_embedding(weight, 24) is weight
    with pytest.raises(WeightsError, match="square grid"):
        interpolate_position_embedding(torch.randn(11, 8), 4)


class NotATensor:
    pass


def test_bin_shards_are_read_without_running_code(tmp_path: Path) -> None:
    source = tiny_chat.write_llava_repo(tmp_path / "evil")
    shard = source / "pytorch_model-00002-of-00002.bin"
    state = torch.load(shard, weights_only=True)
    state["model.norm.weight"] = NotATensor()
    torch.save(state, shard)
    with pytest.raises(WeightsError, match="refused to load"):
        convert_llava_repo(source, cache_dir=tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())  # nothing half-built is left behind


def test_layout_errors(tmp_path: Path) -> None:
    source = tiny_chat.write_llava_repo(tmp_path / "bad")
    (source / "pytorch_model-00001-of-00002.bin").unlink()
    with pytest.raises(WeightsError, match=r"shard pytorch_model-00001-of-00002.bin named by the index is missing"):
        convert_llava_repo(source, cache_dir=tmp_path / "cache")
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "mm_projector_type": "mlp3x_gelu"}))
    with pytest.raises(RsvlmError, match=r"'mlp3x_gelu' is not supported \(known: mlp2x_gelu, linear\)"):
        convert_llava_repo(source, cache_dir=tmp_path / "cache")
    (source / "config.json").write_text(json.dumps({**config, "mm_use_im_start_end": True}))
    with pytest.raises(RsvlmError, match="mm_use_im_start_end"):
        convert_llava_repo(source, cache_dir=tmp_path / "cache")
