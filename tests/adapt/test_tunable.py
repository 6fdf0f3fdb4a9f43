"""The tower-tuning methods (coop, cocoop, lora, lora-image) on every kind of tunable model: tiny random
checkpoints of each registry family in its real layout, a JSON spec file with arch_config, rsvlm-lite and the
spectral-adapted lite model. Support sets are crops of the real sample images through each model's own
preprocessing and image tower (``pixel_loader``, as ``rsvlm adapt fit`` builds them)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rsvlm import samples
from rsvlm.adapt.method import ClassSet, Support
from rsvlm.adapt.methods import get_method
from rsvlm.adapt.methods._prompt import PromptLearner, init_context
from rsvlm.adapt.saved import Adapter, BaseModelId, fit_adapter, load_adapter
from rsvlm.adapt.support import model_class_set, pixel_loader
from rsvlm.data.raster import read_image
from rsvlm.data.sample import RasterImage
from rsvlm.errors import RsvlmError
from rsvlm.models.openclip import load_contrastive
from rsvlm.models.protocols import ContrastiveModel, Tower, TunableContrastive
from rsvlm.models.registry import get_spec
from tests.models.tiny import TINY_VIT, source_model, tiny_spec, write_checkpoint

FAMILIES = [
    "openai-vit-b-32",
    "openai-rn50",
    "remoteclip-vit-b-32",
    "remoteclip-rn50",
    "georsclip-vit-b-32",
    "skyclip-vit-b-32",
    "spec-file",
]
MODELS = [*FAMILIES, "rsvlm-lite"]
CLASSES = ["farmland", "beach", "parking lot", "viaduct"]
NOVEL = ["port", "dense residential area", "forest"]
TEMPLATES = ["a satellite photo of a {}.", "an aerial photo of a {}."]
QUICK: dict[str, dict[str, Any]] = {  # a few full-batch steps: enough to move, quick on 2 CPUs
    "coop": {"epochs": 10, "lr": 0.02},
    "cocoop": {"epochs": 1, "batch_size": 8},
    "lora": {"epochs": 5, "lr": 0.01},
    "lora-image": {"epochs": 2, "lr": 0.01},
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ContrastiveModel]:
    """Every model kind, loaded once: tiny open_clip checkpoints in each family's layout, and rsvlm-lite."""
    root = tmp_path_factory.mktemp("tiny")
    out: dict[str, ContrastiveModel] = {}
    for name in FAMILIES:
        if name == "spec-file":
            spec_path = root / "spec.json"
            spec_path.write_text(json.dumps({"name": "tiny-vit", "family": "custom", "arch": "ViT-B-32",
                                             "description": "a tiny ViT", "arch_config": TINY_VIT}))  # fmt: skip
            spec = get_spec(str(spec_path))
            weights = write_checkpoint(source_model(spec, seed=7), "safetensors", root / name)
        else:
            spec = tiny_spec(get_spec(name))
            assert spec.weights is not None
            weights = write_checkpoint(source_model(spec), spec.weights.layout, root / name)
        out[name] = load_contrastive(spec, weights)
    out["rsvlm-lite"] = load_contrastive("rsvlm-lite")
    return out


def _crops(names: Sequence[str], offsets: Sequence[tuple[int, int]], size: int = 128) -> list[RasterImage]:
    by_label = {s.label: s for s in samples.SAMPLES}
    out = []
    for name in names:
        image = read_image(by_label[name].path)
        for y, x in offsets:
            out.append(RasterImage(image.data[:, y : y + size, x : x + size].copy(), image.bands))
    return out


SUPPORT_CROPS = [(0, 0), (0, 128), (128, 0), (128, 128)]
TEST_CROPS = [(64, 64), (32, 96)]


def _support(model: ContrastiveModel) -> Support:
    items = _crops(CLASSES, SUPPORT_CROPS)
    features = model.encode_images(torch.stack([model.preprocess(c) for c in items])).numpy()
    labels = np.repeat(np.arange(len(CLASSES)), len(SUPPORT_CROPS)).astype(np.int64)
    classes = model_class_set(model, CLASSES, TEMPLATES)
    return Support(
        features, labels, classes, model.logit_scale, model=model,
        pixels=pixel_loader(model, items, lambda item: item), templates=TEMPLATES,  # type: ignore[arg-type, return-value]
    )  # fmt: skip


def _embeddings(model: ContrastiveModel) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = torch.stack([model.preprocess(c) for c in _crops(CLASSES[:2], TEST_CROPS)])
    return model.encode_images(pixels), model.encode_texts(["a satellite photo of a port.", "forest"])


def _fit(name: str, model: ContrastiveModel, support: Support, seed: int = 0, **options: Any) -> Adapter:
    return fit_adapter(get_method(name), support, CLASSES, BaseModelId.of_model(model),
                       options={**QUICK[name], **options}, seed=seed)  # fmt: skip


def _loss(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))


def _check_reload(adapter: Adapter, model: ContrastiveModel, features: np.ndarray, folder: Path) -> Adapter:
    again = load_adapter(adapter.save(folder), model)
    assert np.array_equal(again.logits(features), adapter.logits(features))  # same computation: exact
    novel = ClassSet(NOVEL, model_class_set(model, NOVEL, TEMPLATES).text_weights)
    scores = again.fitted.logits(features, novel)  # base-to-novel: any class name is scored
    assert scores.shape == (len(features), len(NOVEL)) and np.isfinite(scores).all()
    assert np.array_equal(scores, adapter.fitted.logits(features, novel))
    return again


@pytest.mark.parametrize("name", MODELS)
def test_protocol_opens_the_towers_without_changing_them(name: str, models: dict[str, ContrastiveModel]) -> None:
    model = models[name]
    assert isinstance(model, TunableContrastive)
    texts = ["a satellite photo of a parking lot.", "beach"]
    tokens = model.tokenize(texts)
    via_words = model.encode_word_embeddings(model.word_embeddings(tokens.ids), tokens)
    torch.testing.assert_close(via_words, model.encode_texts(texts), rtol=0, atol=1e-6)  # trimmed padding
    pixels = torch.stack([model.preprocess(c) for c in _crops(["farmland"], TEST_CROPS)])
    torch.testing.assert_close(model.image_embeddings(pixels), model.encode_images(pixels), rtol=0, atol=1e-5)
    towers: tuple[Tower, ...] = ("text", "image")
    copies = {tower: model.tower_copy(tower) for tower in towers}
    for tower, module in copies.items():
        names = dict(module.named_modules())
        assert model.lora_targets(tower, 0) and all(t in names for t in model.lora_targets(tower, 0))
        assert len(model.lora_targets(tower, 1)) < len(model.lora_targets(tower, 0))
    same = model.with_towers(copies, "copy")  # split attention over the same weights: the same model
    assert same.weights_id != model.weights_id and "+copy" in same.weights_id
    torch.testing.assert_close(same.encode_images(pixels), model.encode_images(pixels), rtol=0, atol=1e-5)
    torch.testing.assert_close(same.encode_texts(texts), model.encode_texts(texts), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_coop_and_lora_learn_reload_identically_and_leave_the_base_alone(
    name: str, models: dict[str, ContrastiveModel], tmp_path: Path
) -> None:
    model = models[name]
    support = _support(model)
    before = _embeddings(model)
    test = model.encode_images(torch.stack([model.preprocess(c) for c in _crops(CLASSES, TEST_CROPS)])).numpy()

    coop = _fit("coop", model, support, seed=1)
    assert isinstance(model, TunableContrastive)
    start = PromptLearner(model, init_context(model, "a satellite photo of a", 0, torch.Generator()), None,
                          support.logit_scale)  # fmt: skip
    initial = _loss(start.logits(support.features, support.classes), support.labels)
    assert _loss(coop.logits(support.features), support.labels) < initial - 0.01
    _check_reload(coop, model, test, tmp_path / "coop")

    lora = _fit("lora", model, support, seed=1)
    assert lora.image_model(model) is model  # text tower only: the base model's image features
    zero = model_class_set(model, CLASSES, TEMPLATES)
    assert not np.allclose(lora.fitted.text_weights(zero), zero.text_weights, atol=1e-4)  # type: ignore[attr-defined]
    _check_reload(lora, model, test, tmp_path / "lora")

    image = _fit("lora-image", model, support, seed=1)  # both towers, CLIP-LoRA's setting
    assert {k.split(".")[0] for k in image.fitted.state()} == {"text", "image", "templates"}
    assert not np.allclose(image.fitted.text_weights(zero), zero.text_weights, atol=1e-4)  # type: ignore[attr-defined]
    tuned = image.image_model(model)
    assert tuned.weights_id.startswith(model.weights_id) and tuned.weights_id != model.weights_id
    pixels = torch.stack([model.preprocess(c) for c in _crops(CLASSES, TEST_CROPS)])
    tuned_features = tuned.encode_images(pixels)
    assert not torch.allclose(tuned_features, model.encode_images(pixels), atol=1e-5)  # the tower was tuned
    again = _check_reload(image, model, tuned_features.numpy(), tmp_path / "lora-image")
    reloaded = again.image_model(model)
    assert reloaded.weights_id == tuned.weights_id
    assert torch.equal(reloaded.encode_images(pixels), tuned_features)  # restored tower: exact

    after = _embeddings(model)  # fitting and applying changed nothing of the base model
    assert torch.equal(after[0], before[0]) and torch.equal(after[1], before[1])
    assert not any(p.grad is not None for p in model.network.parameters())


@pytest.mark.parametrize("name", ["remoteclip-vit-b-32", "openai-rn50", "rsvlm-lite"])
def test_cocoop_and_repeatability(name: str, models: dict[str, ContrastiveModel], tmp_path: Path) -> None:
    model = models[name]
    support = _support(model)
    cocoop = _fit("cocoop", model, support, seed=2)
    state = cocoop.fitted.state()
    assert {"ctx", "meta.0.weight", "meta.2.weight"} <= set(state)
    assert state["meta.2.weight"].shape[0] == state["ctx"].shape[1]  # π(x) lives in the token-embedding space
    _check_reload(cocoop, model, support.features, tmp_path / "cocoop")
    again = _fit("cocoop", model, support, seed=2)
    assert np.array_equal(again.logits(support.features), cocoop.logits(support.features))
    for method in ("coop", "lora"):
        one, two = (_fit(method, model, support, seed=3, epochs=3) for _ in range(2))
        assert np.array_equal(one.logits(support.features), two.logits(support.features))
    other = _fit("coop", model, support, seed=4, epochs=3, init="")  # random context of n_ctx vectors
    assert other.fitted.state()["ctx"].shape[0] == 16


def test_spectral_model_is_tunable(models: dict[str, ContrastiveModel], tmp_path: Path) -> None:
    from rsvlm.models.spectral import SpectralAdapter, SpectralContrastiveModel

    lite = models["rsvlm-lite"]
    spectral = SpectralContrastiveModel(lite, SpectralAdapter(4, (2, 1, 0), [0.0] * 4, [255.0] * 4), image_size=64)  # type: ignore[arg-type]
    assert isinstance(spectral, TunableContrastive)
    items = [
        RasterImage(np.concatenate([c.data, c.data[:1]]), ("r", "g", "b", "n")) for c in _crops(CLASSES, SUPPORT_CROPS)
    ]
    features = spectral.encode_images(torch.stack([spectral.preprocess(c) for c in items])).numpy()
    labels = np.repeat(np.arange(len(CLASSES)), len(SUPPORT_CROPS)).astype(np.int64)
    support = Support(features, labels, model_class_set(spectral, CLASSES, TEMPLATES), spectral.logit_scale,
                      model=spectral, pixels=pixel_loader(spectral, items, lambda i: i), templates=TEMPLATES)  # type: ignore[arg-type, return-value]  # fmt: skip
    image = _fit("lora-image", spectral, support, towers="image", epochs=1)
    tuned = image.image_model(spectral)
    assert tuned.weights_id != spectral.weights_id and tuned.in_bands == 4
    _check_reload(image, spectral, features, tmp_path / "spectral")


def test_models_without_towers_and_other_bases_are_refused(models: dict[str, ContrastiveModel], tmp_path: Path) -> None:
    from tests.adapt.test_regression import OtherModel

    other = OtherModel("frozen-embedder", 32, "resize32")
    support = _support(models["remoteclip-vit-b-32"])
    support.model = other
    for method in ("coop", "lora"):
        with pytest.raises(RsvlmError, match=f"method {method} needs a model whose towers can be tuned") as err:
            fit_adapter(get_method(method), support, CLASSES, BaseModelId.of_model(other), options=QUICK[method])
        assert "\n" not in str(err.value)
    support.pixels = None
    with pytest.raises(RsvlmError, match="tunes the image tower"):
        fit_adapter(get_method("lora-image"), support, CLASSES, BaseModelId.of_model(other))

    model = models["spec-file"]
    folder = _fit("coop", model, _support(model), epochs=1).save(tmp_path / "coop")
    with pytest.raises(RsvlmError, match="adapter was trained on tiny-vit") as wrong:
        load_adapter(folder, models["remoteclip-vit-b-32"])
    assert "\n" not in str(wrong.value)
