"""The public Python API (``rsvlm.load_model``, ``load_chat``, ``open_dataset``, ``analyse_scene``) as a user calls it,
and proof that ``rsvlm classify``, ``ask`` and ``caption`` give exactly what the API gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rsvlm
from rsvlm import samples
from rsvlm.api import Chat, Model, check_labels
from rsvlm.errors import RsvlmError
from tests.clihelp import assert_one_line_error
from tests.clihelp import rsvlm as run_cli
from tests.models.chat import tiny_chat

LABELS = ["farmland", "beach", "parking lot", "viaduct", "port", "dense residential area", "forest"]


@pytest.fixture(scope="module")
def model() -> Model:
    return rsvlm.load_model()


def test_import_stays_light_and_exports_the_api() -> None:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, rsvlm; rsvlm.__version__; rsvlm.samples.path('beach'); "
            "print(sorted(m for m in ('torch', 'numpy', 'rasterio', 'PIL', 'rsvlm.api') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"  # the API and heavy libraries load on first use
    for name in rsvlm.__all__:
        assert getattr(rsvlm, name) is not None and name in dir(rsvlm)
    assert rsvlm.load_model is rsvlm.api.load_model and rsvlm.RsvlmError is RsvlmError
    with pytest.raises(AttributeError, match="no attribute 'load_modle'"):
        _ = rsvlm.load_modle


def test_classify_ranks_every_label_of_every_image(model: Model) -> None:
    results = model.classify(samples.photos(), LABELS)
    assert [r.image for r in results] == samples.photos()
    for result in results:
        probs = list(result.probabilities.values())
        assert sorted(result.probabilities) == sorted(LABELS) and probs == sorted(probs, reverse=True)
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert result.top(2) == list(result.probabilities.items())[:2] and result.label == result.top(1)[0][0]
    by_name = {r.image.stem: r for r in results}
    # the two clearest scenes (both over 95 % when measured): real imagery, not noise
    assert by_name["beach"].label == "beach" and by_name["parking_lot"].label == "parking lot"
    single = model.classify(samples.path("beach"), LABELS)  # one path in, a list of one out
    assert len(single) == 1
    assert single[0].probabilities == pytest.approx(by_name["beach"].probabilities, abs=1e-5)


def test_cli_classify_prints_what_the_api_returns(model: Model) -> None:
    images = samples.paths("farmland", "port")
    result = run_cli("classify", *images, "--labels", ",".join(LABELS), "--json", "--top", "3")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    for row, api in zip(rows, model.classify(images, LABELS), strict=True):
        assert row["image"] == str(api.image) and row["model"] == model.name == "rsvlm-lite"
        assert [r["label"] for r in row["labels"]] == [label for label, _ in api.top(3)]
        assert [r["probability"] for r in row["labels"]] == pytest.approx([p for _, p in api.top(3)], abs=1e-3)


def test_embeddings_are_normalised_and_order_preserving(model: Model) -> None:
    pair = model.embed_images(samples.paths("beach", "port"))
    assert pair.shape == (2, model.embed_dim) and pair.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(pair, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.embed_images(samples.path("port"))[0], pair[1], atol=1e-5)
    texts = model.embed_texts(["a sandy beach", "ships at a pier"])
    assert texts.shape == (2, model.embed_dim)
    np.testing.assert_allclose(model.embed_texts("a sandy beach")[0], texts[0], atol=1e-5)


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ("forest,river", "give a list of class names"),
        (["forest"], "labels needs at least two class names"),
        (["forest", "river", "forest"], "labels names forest more than once"),
        (["bare_land", "BareLand"], "classes 'bare_land' and 'BareLand' both read as 'bare land'"),
    ],
)
def test_labels_that_would_mislead_are_refused(labels: list[str] | str, fragment: str) -> None:
    with pytest.raises(RsvlmError, match=fragment):
        check_labels(labels)


def test_a_missing_image_fails_before_the_model_loads(tmp_path: Path) -> None:
    """An unknown model name is only found at load time: the missing image must be reported first."""
    missing = tmp_path / "nope.jpg"
    assert_one_line_error(run_cli("classify", missing, "--labels", "a,b", "--model", "clip-xl"), "nope.jpg")
    assert_one_line_error(run_cli("caption", missing, "--model", "geochat-7b"), "nope.jpg")
    with pytest.raises(RsvlmError, match=r"nope\.jpg"):
        rsvlm.api.check_images([samples.path("beach"), missing])


@pytest.fixture(scope="module")
def chat_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_chat.write_hf_llava(tmp_path_factory.mktemp("chat") / "llava")


def test_chat_ask_and_caption_match_the_cli(chat_folder: Path) -> None:
    chat = rsvlm.load_chat(chat_folder)
    assert isinstance(chat, Chat) and chat.name == "llava"
    image = samples.path("trees")
    answer = chat.ask(image, "How many trees are there?", max_new_tokens=8)
    assert answer == chat.ask(image, "How many trees are there?", max_new_tokens=8)  # greedy
    assert rsvlm.load_chat(weights=chat_folder).ask(image, "How many trees are there?", max_new_tokens=8) == answer
    images = samples.paths("beach", "port", "trees")
    captions = chat.caption(images, max_new_tokens=8, batch_size=2)
    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)

    asked = run_cli(
        "ask", image, "How many trees are there?", "--model", chat_folder, "--max-new-tokens", "8", "--json"
    )
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["answer"] == answer
    described = run_cli(
        "caption", *images, "--model", chat_folder, "--max-new-tokens", "8", "--batch-size", "2", "--json"
    )
    assert described.returncode == 0, described.stderr
    assert [json.loads(line)["caption"] for line in described.stdout.splitlines()] == captions


def test_chat_model_without_weights_names_the_fix() -> None:
    with pytest.raises(RsvlmError, match="rsvlm never downloads weights"):
        rsvlm.load_chat("geochat-7b")


def test_open_dataset(fixtures: Path) -> None:
    ds = rsvlm.open_dataset(fixtures / "scene_folder")
    assert len(ds) > 0 and ds.classes and ds[0].label in ds.classes


def test_analyse_scene_writes_maps_of_the_sample(model: Model, tmp_path: Path) -> None:
    analysis = rsvlm.analyse_scene(samples.path("coast"), tmp_path / "coast", model=model, queries=["sandy beach"])
    assert analysis.scores.tiles_scored == 9  # 128 px at 10 m: 64 px tiles (≈ 640 m) every 32 px
    assert sum(analysis.class_share.values()) == pytest.approx(1.0)
    written = {p.name for p in (tmp_path / "coast").iterdir()}
    assert {"landcover.tif", "landcover.png", "query_sandy-beach.tif", "summary.json"} <= written
    summary = json.loads((tmp_path / "coast" / "summary.json").read_text(encoding="utf-8"))
    assert summary["queries"] == ["sandy beach"] and len(summary["classes"]) == 10


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"classes": ["forest"]}, "fewer than two given"),
        ({"classes": ["forest", "forest"]}, "forest given more than once"),
        ({"classes": "nope"}, "give a preset"),
        ({"tile": 512}, "tile 512 px is larger than the 128x128 px scene"),
        ({"max_tiles": 2}, "plans 9 tiles, over the limit of 2"),
    ],
)
def test_analyse_scene_refuses_bad_plans_before_loading_a_model(
    kwargs: dict[str, object], fragment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_load(*_: object, **__: object) -> Model:
        raise AssertionError("the model was loaded before the plan was checked")

    monkeypatch.setattr(rsvlm.api, "load_model", no_load)
    with pytest.raises(RsvlmError, match=fragment):
        rsvlm.analyse_scene(samples.path("coast"), tmp_path / "out", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()
