"""End to end through the protocol: dataset → tiny model → cached features → task metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rsvlm.data.raster import read_image
from rsvlm.features.cache import FeatureCache
from rsvlm.models.openclip import load_contrastive
from rsvlm.models.registry import get_spec
from rsvlm.pipeline import embed_caption_dataset, embed_images, embed_scene_dataset, model_cache_key
from rsvlm.tasks.zeroshot import evaluate_zeroshot
from tests.models.tiny import source_model, tiny_spec, write_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny ViT spec file and its weights, as a user with a custom model would pass them."""
    folder = tmp_path_factory.mktemp("tiny")
    spec = tiny_spec(get_spec("remoteclip-vit-b-32"))
    weights = write_checkpoint(source_model(spec), "state_dict", folder)
    spec_file = folder / "tiny-vit.json"
    spec_file.write_text(
        json.dumps(
            {
                "name": "tiny-vit",
                "family": "remoteclip",
                "arch": "ViT-B-32",
                "description": "test",
                "arch_config": spec.arch_config,
                "quick_gelu": False,
            }
        )
    )
    return spec_file, weights


def test_embeddings_match_direct_encoding_and_cache(tiny: tuple[Path, Path], fixtures: Path, tmp_path: Path) -> None:
    model = load_contrastive(str(tiny[0]), tiny[1])
    paths = sorted((fixtures / "scene_folder").rglob("*.jpg"))
    first = embed_images(model, paths, batch_size=3, cache_dir=tmp_path)
    direct = np.stack([model.encode_images(model.preprocess(read_image(p))[None]).numpy()[0] for p in paths])
    np.testing.assert_allclose(first, direct, atol=1e-6)
    entries = sorted((tmp_path / model_cache_key(model)).rglob("*.emb"))
    assert len(entries) == len(paths)
    # corrupt one entry: it is detected, recomputed (alone, so batch rounding may differ) and rewritten
    entries[0].write_bytes(entries[0].read_bytes()[:-4] + b"\x00\x00\x00\x00")
    cache = FeatureCache(tmp_path, model_cache_key(model), model.embed_dim)
    assert cache.get(entries[0].stem) is None and cache.corrupt == 1
    second = embed_images(model, paths, batch_size=3, cache_dir=tmp_path)
    np.testing.assert_allclose(first, second, atol=1e-6)
    assert cache.get(entries[0].stem) is not None


def test_scene_dataset_to_zero_shot(tiny: tuple[Path, Path], fixtures: Path, tmp_path: Path) -> None:
    emb, source = embed_scene_dataset(
        str(tiny[0]), fixtures / "scene_folder", weights=tiny[1], cache_dir=tmp_path, show_progress=False
    )
    assert emb.class_names == ["airport", "bare land", "football field"]
    assert emb.images.shape == (7, 32) and list(emb.labels) == [0, 0, 0, 1, 1, 2, 2]
    assert "a satellite photo of a" in emb.texts
    report = evaluate_zeroshot(emb)
    assert report["n"] == 7 and 0.0 <= report["top1"] <= 100.0
    assert source["model"] == "tiny-vit"


def test_caption_dataset(tiny: tuple[Path, Path], fixtures: Path, tmp_path: Path) -> None:
    img, txt, owner, source = embed_caption_dataset(
        str(tiny[0]),
        fixtures / "rsicd",
        weights=tiny[1],
        images=fixtures / "rsicd_images",
        split="test",
        cache_dir=tmp_path,
        show_progress=False,
    )
    assert img.shape == (2, 32) and txt.shape == (10, 32)
    assert owner.tolist() == [0] * 5 + [1] * 5
    assert source["unmatched_images"] == 1


def _cli(*args: str | Path) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "rsvlm", *map(str, args), "--json"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def test_cli_eval_with_a_model(tiny: tuple[Path, Path], fixtures: Path, tmp_path: Path) -> None:
    spec, weights = tiny
    common: list[str | Path] = ["--model", spec, "--weights", weights, "--cache-dir", tmp_path]
    zs = _cli("eval", "zeroshot", *common, "--data", fixtures / "scene_folder", "--per-template")
    assert zs["n"] == 7 and "top1" in zs and len(zs["per_template"]) == 6  # type: ignore[arg-type]
    ret = _cli(
        "eval",
        "retrieval",
        *common,
        "--data",
        fixtures / "rsicd",
        "--images",
        fixtures / "rsicd_images",
        "--split",
        "test",
    )
    assert ret["n"] == 2 and {"i2t_r1", "t2i_r10", "mR"} <= set(ret)
    lp = _cli("eval", "linear-probe", *common, "--data", fixtures / "scene_split")
    assert lp["n"] == 2 and lp["n_train"] == 4
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsvlm",
            "classify",
            fixtures / "scene_folder/Airport/airport_1.jpg",
            "--labels",
            "airport,forest,river",
            "--model",
            spec,
            "--weights",
            weights,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    ranked = json.loads(out.stdout)["labels"]
    assert {r["label"] for r in ranked} == {"airport", "forest", "river"}
    assert abs(sum(r["probability"] for r in ranked) - 1.0) < 1e-3


def test_spec_file_typo_is_an_error(tmp_path: Path) -> None:
    from rsvlm.errors import RsvlmError

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "family": "f", "arch": "ViT-B-32", "description": "d", "quickgelu": True}))
    with pytest.raises(RsvlmError, match=r"unknown model-spec key.*quickgelu"):
        get_spec(str(bad))


@pytest.mark.parametrize("name", ["CLIP", "RemoteCLIP"])
def test_cli_golden_embeddings(shared_data: Path, name: str) -> None:
    folder = shared_data / "golden/whurs19/results/WHURS19" / name / "ViT-B-32"
    expected = {"CLIP": (81.29, 90.35), "RemoteCLIP": (95.22, 97.91)}[name]
    assert round(float(_cli("eval", "zeroshot", "--embeddings", folder)["top1"]), 2) == expected[0]  # type: ignore[arg-type]
    assert round(float(_cli("eval", "zeroshot", "--embeddings", folder, "--transductive")["top1"]), 2) == expected[1]  # type: ignore[arg-type]


def test_cli_linear_probe_on_golden(shared_data: Path) -> None:
    folder = shared_data / "golden/whurs19/results/WHURS19/RemoteCLIP/ViT-B-32"
    result = _cli("eval", "linear-probe", "--embeddings", folder, "--shots", "1")
    again = _cli("eval", "linear-probe", "--embeddings", folder, "--shots", "1")
    assert result["top1"] == again["top1"]  # seeded protocol
    assert result["n_train"] == 19 and result["seeds"] == [1, 2, 3]
    full = _cli("eval", "linear-probe", "--embeddings", folder)
    assert float(full["top1"]) > float(result["top1"]) > 50  # type: ignore[arg-type]


def test_eval_needs_a_source() -> None:
    result = subprocess.run([sys.executable, "-m", "rsvlm", "eval", "zeroshot"], capture_output=True, text=True)
    assert result.returncode == 2 and "nothing to evaluate" in result.stderr


def test_copy_of_images_hits_the_cache(tiny: tuple[Path, Path], fixtures: Path, tmp_path: Path) -> None:
    model = load_contrastive(str(tiny[0]), tiny[1])
    src = fixtures / "scene_folder/Airport/airport_1.jpg"
    copy = tmp_path / "renamed.jpg"
    shutil.copy(src, copy)
    embed_images(model, [src], cache_dir=tmp_path / "c")
    cache_before = len(list((tmp_path / "c").rglob("*.emb")))
    embed_images(model, [copy], cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").rglob("*.emb"))) == cache_before == 1


def test_aliases_are_averaged(tiny: tuple[Path, Path]) -> None:
    from rsvlm.pipeline import class_text_embeddings, embed_texts
    from rsvlm.tasks.embeddings import average_normalised

    model = load_contrastive(str(tiny[0]), tiny[1])
    out = class_text_embeddings(model, ["airport|airfield", "forest"], ["a photo of a {}."])["a photo of a"]
    a, b, f = embed_texts(model, ["a photo of a airport.", "a photo of a airfield.", "a photo of a forest."])
    np.testing.assert_allclose(out[0], average_normalised([a[None], b[None]])[0], atol=1e-6)
    np.testing.assert_allclose(out[1], f, atol=1e-6)


def test_class_names_file_reaches_the_prompts(tiny: tuple[Path, Path], fixtures: Path, tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("Airport=airport|airfield\nBareLand=bare soil\n")
    from rsvlm.data.names import load_name_map

    emb, _ = embed_scene_dataset(
        str(tiny[0]),
        fixtures / "scene_folder",
        weights=tiny[1],
        cache_dir=tmp_path,
        show_progress=False,
        class_names=load_name_map(names),
    )
    assert emb.class_names == ["airport|airfield", "bare soil", "football field"]
