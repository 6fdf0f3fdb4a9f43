from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rsvlm.data.raster import read_image
from rsvlm.errors import RsvlmError
from rsvlm.models.lite import LiteCLIP, LiteConfig, load_lite, save_lite, to_lite_pixels

TEXTS = ["many planes are parked next to a terminal .", "a dense forest ."]


@pytest.fixture(scope="module")
def net() -> LiteCLIP:
    torch.manual_seed(0)
    return LiteCLIP(LiteConfig(embed_dim=64, image_size=64, image_trainable_blocks=3, text_trainable_layers=1)).eval()


def test_towers_come_from_the_packages_pretrained(net: LiteCLIP) -> None:
    # ImageNet BatchNorm statistics and a trained MiniLM: not a random initialisation
    assert float(net.image_net._bn0.running_var.mean()) != 1.0
    emb = net.text_net.embeddings.word_embeddings.weight
    assert emb.shape == (30522, 384) and float(emb.std()) < 0.2


def test_prefix_suffix_split_equals_the_whole(net: LiteCLIP, fixtures: Path) -> None:
    pixels = to_lite_pixels(read_image(fixtures / "scene_folder/Airport/airport_1.jpg"), 64, "t")[None]
    assert pixels.shape == (1, 3, 64, 64) and float(pixels.min()) >= -1 and float(pixels.max()) <= 1
    with torch.no_grad():
        whole = net.encode_image(pixels)
        split = net.image_suffix(net.image_prefix(pixels))
        assert torch.allclose(whole, split)
        batch = net.tokenize(TEXTS)
        assert torch.allclose(
            net.encode_text(TEXTS), net.text_suffix(net.text_prefix(**batch), batch["attention_mask"])
        )
    assert torch.allclose(whole.norm(dim=-1), torch.ones(1))


def test_only_trained_parts_are_trainable_and_saved(net: LiteCLIP, tmp_path: Path) -> None:
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert "logit_scale" in trainable and "image_proj.weight" in trainable
    assert "image_net._blocks.15._project_conv.weight" in trainable
    assert "image_net._blocks.12._project_conv.weight" not in trainable
    assert "text_net.encoder.layer.5.output.dense.weight" in trainable
    assert "text_net.encoder.layer.4.output.dense.weight" not in trainable
    state = net.trainable_state_dict()
    assert "image_net._bn1.running_mean" in state  # buffers of tuned blocks travel too
    assert not any(k.startswith("text_net.embeddings") for k in state)


def test_save_load_round_trip(net: LiteCLIP, tmp_path: Path, fixtures: Path) -> None:
    with torch.no_grad():
        net.image_proj.weight.mul_(1.5)  # make the saved tensors differ from a fresh build
    folder = save_lite(net, tmp_path / "m")
    model = load_lite(folder, "tiny-lite")
    image = read_image(fixtures / "scene_folder/BareLand/bareland_1.jpg")
    pixels = model.preprocess(image)[None]
    with torch.no_grad():
        assert torch.allclose(model.encode_images(pixels), net.encode_image(pixels), atol=1e-6)
        assert torch.allclose(model.encode_texts(TEXTS), net.encode_text(TEXTS), atol=1e-6)


def test_bad_folders(tmp_path: Path, net: LiteCLIP) -> None:
    with pytest.raises(RsvlmError, match="not found"):
        load_lite(tmp_path)
    folder = save_lite(net, tmp_path / "m")
    (folder / "config.json").write_text('{"model": {"embed_dim": 64, "image_size": 64, "imag_trainable_blocks": 2}}')
    with pytest.raises(RsvlmError, match=r"unknown model config key.*imag_trainable_blocks"):
        load_lite(folder)
    (folder / "config.json").write_text('{"model": {"embed_dim": 64, "image_size": 64, "text_trainable_layers": 3}}')
    with pytest.raises(RsvlmError, match=r"tensors do not match config\.json"):
        load_lite(folder)


def test_half_precision_shipping_is_close(net: LiteCLIP, tmp_path: Path) -> None:
    full = load_lite(save_lite(net, tmp_path / "f32"))
    half = load_lite(save_lite(net, tmp_path / "f16", half=True))
    assert (tmp_path / "f16" / "model.safetensors").stat().st_size < 0.6 * (
        tmp_path / "f32" / "model.safetensors"
    ).stat().st_size
    a, b = full.encode_texts(TEXTS), half.encode_texts(TEXTS)
    assert b.dtype == torch.float32 and torch.allclose(a, b, atol=5e-3)
