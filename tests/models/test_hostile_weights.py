"""Hostile or damaged weights through the real CLI: code in TorchScript archives never runs, NaN weights,
impossible model specs and mis-shaped tensors are refused in one line."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from rsvlm.models.lite import packaged_weights
from rsvlm.models.registry import get_spec
from rsvlm.models.torchscript import read_torchscript_tensors
from tests.clihelp import assert_one_line_error, rsvlm
from tests.models.chat import tiny_chat
from tests.models.evil_archive import PAYLOAD, write_evil_archive
from tests.models.tiny import TINY_VIT, source_model, write_checkpoint


@pytest.fixture
def image(fixtures: Path) -> Path:
    return fixtures / "scene_prefix" / "airport_01.jpg"


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_the_crafted_archive_is_hostile_under_torch_jit_load(tmp_path: Path) -> None:
    """The fixture really attacks: TorchScript's own loader writes the target (so the tests below can fail)."""
    target = tmp_path / "written-by-jit-load"
    archive = write_evil_archive(tmp_path / "evil.pt", target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.load(str(archive))
    assert target.read_bytes() == PAYLOAD


@pytest.mark.parametrize("model", ["openai-vit-b-32", "remoteclip-vit-b-32"])
def test_classify_refuses_the_archive_and_writes_nothing(model: str, tmp_path: Path, image: Path) -> None:
    target = tmp_path / "target"
    archive = write_evil_archive(tmp_path / "evil.pt", target)
    before = _files(tmp_path)
    result = rsvlm("classify", image, "--labels", "a,b", "--model", model, "--weights", archive, cwd=tmp_path)
    assert_one_line_error(result, "evil.pt: refused to load this TorchScript archive", "convert it once")
    assert not target.exists()
    assert _files(tmp_path) == before


@pytest.mark.parametrize("layout", ["llava-repo", "hf-llava"])
def test_chat_folder_with_an_archive_as_weights_is_refused(
    layout: str, tmp_path: Path, image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    target = tmp_path / "target"
    if layout == "llava-repo":  # GeoChat's release layout: a shard of the index is the archive
        tiny_chat.write_llava_repo(folder)
        write_evil_archive(folder / "pytorch_model-00002-of-00002.bin", target)
    else:  # a Hugging Face folder whose single weights file is the archive
        tiny_chat.write_hf_llava(folder)
        for weights in folder.glob("*.safetensors"):
            weights.unlink()
        write_evil_archive(folder / "pytorch_model.bin", target)
    cache = tmp_path / "cache"
    before = _files(tmp_path)
    result = rsvlm("ask", image, "How many trees?", "--model", folder, env={"RSVLM_CACHE_DIR": str(cache)})
    assert_one_line_error(result, str(folder))
    assert not target.exists()
    assert {p for p in _files(tmp_path) - before if cache not in p.parents} == set()


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_an_archive_pickling_a_python_callable_is_refused(tmp_path: Path, image: Path) -> None:
    """A TorchScript-looking zip whose data record calls ``os.system``: refused by name, never called."""
    spec = get_spec("openai-vit-b-32")
    genuine = write_checkpoint(source_model(spec), "torchscript", tmp_path / "genuine")
    marker = tmp_path / "pwned"
    forged = tmp_path / "forged.pt"
    with zipfile.ZipFile(genuine) as src, zipfile.ZipFile(forged, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("/data.pkl"):
                buffer = io.BytesIO()
                pickle.Pickler(buffer, protocol=2).dump({"visual.proj": _Exploit(marker)})
                data = buffer.getvalue()
            dst.writestr(item, data)
    result = rsvlm("classify", image, "--labels", "a,b", "--model", "openai-vit-b-32", "--weights", forged)
    assert_one_line_error(result, "forged.pt: refused to load", "system, which a weights file does not need")
    assert not marker.exists()


def test_archive_tensors_equal_what_torchscript_restores(tmp_path: Path) -> None:
    """OpenAI's layout keeps loading with no user action: the same tensors, bit for bit, as torch.jit.load."""
    model = source_model(get_spec("openai-rn50"))
    path = write_checkpoint(model, "torchscript", tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        expected = torch.jit.load(str(path)).state_dict()
    got = read_torchscript_tensors(path)
    assert set(got) == set(expected)
    assert all(got[k].dtype == v.dtype and torch.equal(got[k], v) for k, v in expected.items())


def _tiny_spec_file(tmp_path: Path, **overrides: object) -> Path:
    spec = {
        "name": "tiny-vit",
        "family": "custom",
        "arch": "ViT-B-32",
        "description": "a tiny ViT",
        "arch_config": TINY_VIT,
        **overrides,
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_nan_weights_are_refused(tmp_path: Path, image: Path) -> None:
    spec = _tiny_spec_file(tmp_path)
    model = source_model(get_spec("remoteclip-vit-b-32"))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["visual.proj"][0, 0] = float("nan")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "nan.safetensors"))
    result = rsvlm("classify", image, "--labels", "a,b", "--model", spec, "--weights", tmp_path / "nan.safetensors")
    assert_one_line_error(result, "nan.safetensors: 1 weight tensor(s) hold NaN, e.g. visual.proj")
    assert "nan%" not in result.stdout


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"arch": 123, "arch_config": None}, "model-spec key 'arch' must be a non-empty string"),
        ({"arch": "ViT-Z-99", "arch_config": None}, "unknown open_clip architecture 'ViT-Z-99'"),
        ({"arch_config": [1, 2]}, "'arch_config' must be a JSON object"),
        ({"arch_config": {"embed_dim": 8, "unknown_key": 1}}, "arch_config does not describe an open_clip CLIP"),
        (
            {"arch_config": {**TINY_VIT, "vision_cfg": {**TINY_VIT["vision_cfg"], "width": 4_000_000}}},
            "B parameters (at most 5 B)",
        ),
        (
            {"arch_config": {**TINY_VIT, "text_cfg": {**TINY_VIT["text_cfg"], "layers": 10_000_000}}},
            "text_cfg asks for 10000000 layers (at most 256)",
        ),
    ],
)
def test_impossible_model_specs_are_one_line(
    overrides: dict[str, object], fragment: str, tmp_path: Path, image: Path
) -> None:
    spec = _tiny_spec_file(tmp_path, **overrides)
    weights = write_checkpoint(source_model(get_spec("remoteclip-vit-b-32")), "safetensors", tmp_path / "w")
    result = rsvlm("classify", image, "--labels", "a,b", "--model", spec, "--weights", weights, timeout=120)
    assert_one_line_error(result, fragment)


@pytest.mark.parametrize("damage", ["shape", "nan"])
def test_damaged_lite_weights_are_one_line(damage: str, tmp_path: Path, image: Path) -> None:
    folder = tmp_path / "lite"
    shutil.copytree(packaged_weights("rsvlm-lite"), folder)
    state = load_file(str(folder / "model.safetensors"))
    name = sorted(k for k, v in state.items() if v.ndim == 2)[0]
    if damage == "shape":
        state[name] = state[name][:, :-1].contiguous()
        fragment = f"1 tensor(s) have the wrong shape for config.json, e.g. {name}"
    else:
        state[name] = state[name].clone()
        state[name][0, 0] = float("nan")
        fragment = f"1 weight tensor(s) hold NaN, e.g. {name}"
    save_file(state, str(folder / "model.safetensors"))
    result = rsvlm("classify", image, "--labels", "a,b", "--weights", folder)
    assert_one_line_error(result, "model.safetensors", fragment)


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ("forest,river,forest", "--labels names forest more than once"),
        ("bare_land,BareLand,river", "classes 'bare_land' and 'BareLand' both read as 'bare land'"),
    ],
)
def test_labels_that_would_share_a_prompt_are_refused(labels: str, fragment: str, image: Path) -> None:
    """Two labels with one prompt used to collapse into one score and shift every later label's name."""
    result = rsvlm("classify", image, "--labels", labels)
    assert_one_line_error(result, fragment)


def test_weights_that_overflow_give_an_error_not_nan_percent(tmp_path: Path, image: Path) -> None:
    """Finite weights can still overflow to infinity in the forward pass: the embeddings are checked too."""
    spec = _tiny_spec_file(tmp_path)
    state = {k: v.clone() for k, v in source_model(get_spec("remoteclip-vit-b-32")).state_dict().items()}
    state["visual.proj"].fill_(3e38)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "huge.safetensors"))
    result = rsvlm("classify", image, "--labels", "a,b", "--model", spec, "--weights", tmp_path / "huge.safetensors")
    assert_one_line_error(result, "tiny-vit: 1 of 1 embeddings are NaN or infinite", "airport_01.jpg")
    assert "nan%" not in result.stdout
