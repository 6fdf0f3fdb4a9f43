from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rsvlm.data.raster import read_image
from rsvlm.errors import RsvlmError
from rsvlm.models.checkpoint import WeightsError, read_state_dict
from rsvlm.models.openclip import OpenClipModel, load_contrastive, save_weights
from rsvlm.models.protocols import ContrastiveModel
from rsvlm.models.registry import MODELS, get_spec
from tests.models.tiny import source_model, tiny_spec, write_checkpoint

CASES = [(s.name, s.weights.layout) for s in MODELS.values() if s.weights is not None and s.loader == "open_clip"]
CASES += [("openai-vit-b-32", "torchscript"), ("openai-rn50", "torchscript"), ("openai-vit-b-32", "safetensors")]
TEXTS = ["a satellite photo of an airport.", "an aerial photo of a forest."]


def _reference(model: Any, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    import open_clip

    tok = open_clip.tokenizer.SimpleTokenizer(context_length=77)
    with torch.no_grad():
        img = torch.nn.functional.normalize(model.encode_image(pixels), dim=-1)
        txt = torch.nn.functional.normalize(model.encode_text(tok(TEXTS)), dim=-1)
    return img, txt


@pytest.mark.parametrize(("name", "layout"), CASES)
def test_family_loader_reproduces_the_source_model(name: str, layout: str, tmp_path: Path, fixtures: Path) -> None:
    spec = tiny_spec(get_spec(name))
    source = source_model(spec)
    path = write_checkpoint(source, layout, tmp_path / "release")
    model = load_contrastive(spec, path)
    assert isinstance(model, ContrastiveModel) and isinstance(model, OpenClipModel)
    image = read_image(fixtures / "scene_folder/Airport/airport_1.jpg")
    pixels = model.preprocess(image)[None]
    assert pixels.shape[-1] == (64 if spec.arch.startswith("RN") else 32)
    ref_img, ref_txt = _reference(source, pixels)
    torch.testing.assert_close(model.encode_images(pixels), ref_img, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.encode_texts(TEXTS), ref_txt, rtol=0, atol=1e-6)

    # save through rsvlm (safetensors) and reload: identical embeddings
    again = load_contrastive(spec, save_weights(model, tmp_path / "rsvlm.safetensors"))
    assert torch.equal(again.encode_images(pixels), model.encode_images(pixels))
    assert torch.equal(again.encode_texts(TEXTS), model.encode_texts(TEXTS))


@pytest.mark.parametrize("name", ["openai-vit-b-32", "skyclip-vit-l-14", "georsclip-vit-b-32"])
def test_quickgelu_families_are_built_with_quickgelu(name: str, tmp_path: Path) -> None:
    from open_clip.model import QuickGELU

    spec = tiny_spec(get_spec(name))
    assert spec.quick_gelu
    model = load_contrastive(spec, write_checkpoint(source_model(spec), "state_dict", tmp_path))
    assert isinstance(model, OpenClipModel)
    assert any(isinstance(m, QuickGELU) for m in model.model.modules())
    # the same weights with plain GELU embed differently: the flag is not cosmetic
    import dataclasses

    gelu = load_contrastive(dataclasses.replace(spec, quick_gelu=False), tmp_path / "weights.pt")
    assert not torch.allclose(gelu.encode_texts(TEXTS), model.encode_texts(TEXTS))


def test_registry_lists_every_required_family() -> None:
    archs = {(s.family, s.arch) for s in MODELS.values()}
    assert {("openai", a) for a in ("RN50", "ViT-B-32", "ViT-L-14")} <= archs
    assert {("remoteclip", a) for a in ("RN50", "ViT-B-32", "ViT-L-14")} <= archs
    assert {("georsclip", "ViT-B-32"), ("georsclip", "ViT-H-14")} <= archs
    assert {("skyclip", "ViT-B-32"), ("skyclip", "ViT-L-14")} <= archs
    assert all(s.weights is not None and s.citation for s in MODELS.values())


def test_unknown_model() -> None:
    with pytest.raises(RsvlmError, match="unknown model 'clip-xl'"):
        get_spec("clip-xl")


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="weights file not found"):
        load_contrastive(tiny_spec(get_spec("remoteclip-vit-b-32")), tmp_path / "RemoteCLIP-ViT-B-32.pt")


def test_no_weights_and_no_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSVLM_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match=r"pass --weights PATH to RemoteCLIP-ViT-B-32\.pt"):
        load_contrastive("remoteclip-vit-b-32")


def test_download_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSVLM_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match=r"download from huggingface.co/chendelong/RemoteCLIP failed"):
        load_contrastive("remoteclip-vit-b-32", download=True)


def test_wrong_family_weights(tmp_path: Path) -> None:
    rn = tiny_spec(get_spec("remoteclip-rn50"))
    path = write_checkpoint(source_model(rn), "state_dict", tmp_path)
    with pytest.raises(WeightsError, match=r"do not fit remoteclip-vit-b-32.*looks like: ResNet image tower") as err:
        load_contrastive(tiny_spec(get_spec("remoteclip-vit-b-32")), path)
    assert "\n" not in str(err.value)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_code_executing_pickle_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with path.open("wb") as f:
        pickle.dump({"state_dict": {"visual.proj": _Exploit(marker)}}, f)
    with pytest.raises(WeightsError, match=r"refused to load.*code execution"):
        read_state_dict(path)
    assert not marker.exists()


def test_cli_errors_are_one_line(tmp_path: Path, fixtures: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rsvlm", *args], capture_output=True, text=True, timeout=120)

    image = str(fixtures / "scene_prefix" / "airport_01.jpg")
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    with evil.open("wb") as f:
        pickle.dump(_Exploit(marker), f)
    for args, fragment in [
        (["classify", image, "--labels", "a,b", "--model", "clip-xl"], "unknown model 'clip-xl'"),
        (
            [
                "classify",
                image,
                "--labels",
                "a,b",
                "--model",
                "remoteclip-vit-b-32",
                "--weights",
                str(tmp_path / "no.pt"),
            ],
            "weights file not found",
        ),
        (
            ["classify", image, "--labels", "a,b", "--model", "remoteclip-vit-b-32", "--weights", str(evil)],
            "refused to load",
        ),
    ]:
        result = run(*args)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert not marker.exists()


def test_models_command_lists_registry() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rsvlm", "models", "--json"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    rows = json.loads(result.stdout)
    listed = {row["name"]: row for row in rows if row["kind"] == "contrastive"}
    assert set(listed) == set(MODELS)
    chat = {row["name"]: row for row in rows if row["kind"] == "chat"}
    assert chat["geochat-7b"]["box_format"] == "geochat-100" and chat["geochat-7b"]["layout"] == "llava-repo"
    assert (
        listed["skyclip-vit-l-14"]["activation"] == "QuickGELU" and listed["skyclip-vit-l-14"]["layout"] == "training"
    )


def test_embeddings_are_normalised_float32(tmp_path: Path, fixtures: Path) -> None:
    spec = tiny_spec(get_spec("remoteclip-vit-b-32"))
    model = load_contrastive(spec, write_checkpoint(source_model(spec), "state_dict", tmp_path))
    out = model.encode_texts(TEXTS)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.norm(dim=-1).numpy(), 1.0, rtol=1e-5)
