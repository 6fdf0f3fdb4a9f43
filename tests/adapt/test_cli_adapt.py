"""``rsvlm adapt``, ``rsvlm classify --adapter`` and ``rsvlm.load_model(adapter=…)`` through the real CLI.

The contract test iterates the method registry × the registry's model families: a tiny random checkpoint of each
open_clip family (ViT and ResNet towers) written in the layout its authors release, plus ``rsvlm-lite``, the real
default model. Each pair is fitted with ``rsvlm adapt fit`` on the fixture's labelled scene folder, applied with
``rsvlm classify --adapter``, and what it printed is checked against the adapter the fit held in memory: the saved
adapter, loaded again, predicts exactly what the fitted one predicts (the same computation, so equality is exact).
A method added to ``rsvlm.adapt.methods`` is covered the day it is added.

Each weights file is loaded once per module (``load_contrastive`` is memoised; tests/models cover the loaders): the
commands share one model object, which also proves that fitting leaves the base model untouched. Two prompt
templates instead of the default set keep the tiny text towers' work small; one test runs the real subprocess.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rsvlm
from rsvlm.adapt.methods import METHODS, get_method
from rsvlm.adapt.saved import Adapter, load_adapter
from rsvlm.errors import RsvlmError
from rsvlm.models.registry import MODELS, get_spec
from tests.clihelp import assert_one_line_error, run_main_output
from tests.clihelp import rsvlm as run_cli
from tests.models.tiny import source_model, tiny_spec, write_checkpoint


def _one_per_tower() -> list[str]:
    """The first registry entry of each (open_clip family, ViT or ResNet) pair."""
    seen: dict[tuple[str, bool], str] = {}
    for spec in MODELS.values():
        if spec.loader == "open_clip":
            seen.setdefault((spec.family, spec.arch.startswith("RN")), spec.name)
    return list(seen.values())


OPEN_CLIP = _one_per_tower()
FAMILIES = [*OPEN_CLIP, "rsvlm-lite"]
CLASSES = ["Airport", "BareLand", "footballfield"]
QUICK_KEYS = ("epochs", "steps", "iterations")


def quick(method: str) -> dict[str, Any]:
    """Options that keep a trained method to one pass over the support set (the test checks plumbing, not skill)."""
    options = get_method(method).options
    return {k: 1 for k, (kind, _) in options.items() if k in QUICK_KEYS and kind == "int"}


def quick_args(method: str) -> list[str]:
    return [a for k, v in quick(method).items() for a in ("--set", f"{k}={v}")]


def _spec_file(spec: Any, path: Path) -> Path:
    """A JSON model spec (what ``--model FILE`` reads) of a tiny registry entry."""
    data = dataclasses.asdict(spec)
    data.pop("training")
    data.update(default=False, trained_on=list(spec.trained_on))
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str | None]]:
    """Per family (model, weights) as ``--model``/``--weights`` take them: a tiny checkpoint in the family's real
    release layout (OpenAI: open_clip's safetensors; RemoteCLIP, GeoRSCLIP: a state dict; SkyCLIP: a DDP training
    checkpoint), and ``rsvlm-lite`` with its packaged weights."""
    root = tmp_path_factory.mktemp("zoo")
    out: dict[str, tuple[str, str | None]] = {"rsvlm-lite": ("rsvlm-lite", None)}
    for name in OPEN_CLIP:
        spec = tiny_spec(get_spec(name))
        assert spec.weights is not None
        layout = "safetensors" if spec.weights.filename.endswith(".safetensors") else spec.weights.layout
        weights = write_checkpoint(source_model(spec), layout, root / name)
        out[name] = (str(_spec_file(spec, root / f"{name}.json")), str(weights))
    return out


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core machine, two threads wait on each other and run 10-50x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", autouse=True)
def load_once() -> Iterator[None]:
    """Every (model, weights) pair is loaded once for the module, whoever asks (CLI or API)."""
    from rsvlm.models import openclip

    real = openclip.load_contrastive
    loaded: dict[tuple[object, object, bool], Any] = {}

    def memo(name: Any = None, weights: Any = None, *, download: bool = False) -> Any:
        key = (name, str(weights) if weights is not None else None, download)
        if key not in loaded:
            loaded[key] = real(name, weights, download=download)
        return loaded[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(openclip, "load_contrastive", memo)
        yield


def model_args(zoo: dict[str, tuple[str, str | None]], family: str) -> list[str]:
    name, weights = zoo[family]
    return ["--model", name, *(["--weights", weights] if weights else [])]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A feature cache shared by the module, and a two-template prompt file."""
    root = tmp_path_factory.mktemp("adapt-cli")
    templates = root / "templates.txt"
    templates.write_text("a satellite photo of {}.\nan aerial image of {}.\n", encoding="utf-8")
    return {"cache": root / "features", "templates": templates}


@pytest.fixture(scope="module")
def scenes(fixtures: Path) -> Path:
    return fixtures / "scene_folder"


def one_per_class(scenes: Path) -> list[Path]:
    return [scenes / c / f"{c.lower()}_1.jpg" for c in CLASSES]


def fit_args(method: str, family: str, zoo: dict[str, tuple[str, str | None]], work: dict[str, Path]) -> list[str]:
    return [
        "adapt", "fit", "--method", method, *model_args(zoo, family), "--templates", str(work["templates"]),
        "--cache-dir", str(work["cache"]), *quick_args(method),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def baseline(zoo: dict[str, tuple[str, str | None]], scenes: Path) -> dict[str, np.ndarray]:
    """Per family the base model's embeddings of one image per class, before anything is fitted."""
    return {family: rsvlm.load_model(*zoo[family]).embed_images(one_per_class(scenes)) for family in FAMILIES}


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("family", FAMILIES)
def test_every_method_on_every_family_through_the_cli(
    family: str,
    method: str,
    zoo: dict[str, tuple[str, str | None]],
    scenes: Path,
    work: dict[str, Path],
    baseline: dict[str, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fitted: list[Adapter] = []
    save = Adapter.save

    def keep(self: Adapter, folder: Path) -> Path:
        fitted.append(self)
        return save(self, folder)

    monkeypatch.setattr(Adapter, "save", keep)
    model = rsvlm.load_model(*zoo[family])  # the very object the commands load (see load_once)
    images = one_per_class(scenes)
    folder = tmp_path / "adapter"
    fit = [*fit_args(method, family, zoo, work), "--data", scenes, "--shots", "2", "--seed", "3", "--out", folder]
    code, out, err = run_main_output(monkeypatch, capsys, *fit)
    assert code == 0, err
    assert f"{method} on {model.name}: 3 classes, 2 examples each (6 in all)" in out and str(folder) in out
    saved = json.loads((folder / "adapter.json").read_text())
    assert saved["method"] == method and saved["classes"] == CLASSES and saved["seed"] == 3
    assert saved["base"]["name"] == model.name and saved["base"]["weights_id"] == model.model.weights_id
    assert saved["trained_on"] == {
        "data": str(scenes.resolve()), "format": "scene-folder", "split": "all", "shots": 2, "seed": 3, "examples": 6,
    }  # fmt: skip
    assert saved["shots"] == (2 if get_method(method).trains else None)

    code, out, err = run_main_output(
        monkeypatch, capsys, "classify", *images, *model_args(zoo, family), "--adapter", folder, "--json"
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["image"] for line in lines] == [str(p) for p in images]
    assert all(line["adapter"]["method"] == method for line in lines)

    # what the CLI printed from the saved adapter is what the adapter fitted in memory gives
    (original,) = fitted
    tower = original.image_model(model.model)
    vectors = rsvlm.Model(tower).embed_images(images)
    expected = original.probabilities(vectors)
    for line, row in zip(lines, expected, strict=True):
        printed = {r["label"]: r["probability"] for r in line["labels"]}
        assert printed == {c: round(float(p), 4) for c, p in zip(CLASSES, row, strict=True)}
    # and loaded again in this process it scores exactly the same (same computation)
    loaded = load_adapter(folder, model.model)
    again = vectors if tower is model.model else rsvlm.Model(loaded.image_model(model.model)).embed_images(images)
    assert np.array_equal(vectors, again), "the image tower the adapter embeds with is restored exactly"
    assert np.array_equal(loaded.probabilities(again), expected), "save → load changed the scores"
    base_now = vectors if tower is model.model else model.embed_images(images)
    assert np.array_equal(base_now, baseline[family]), f"{method}: fitting changed the base model"


# -- what the commands refuse, in one line, before any work -------------------------------------------------------
@pytest.fixture(scope="module")
def adapters(
    zoo: dict[str, tuple[str, str | None]],
    scenes: Path,
    work: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    """Prototype adapters fitted through the API on the tiny OpenAI ViT and on rsvlm-lite, saved."""
    root = tmp_path_factory.mktemp("adapters")
    out = {}
    for family in ("openai-vit-b-32", "rsvlm-lite"):
        model = rsvlm.load_model(*zoo[family])
        adapter = model.fit_adapter(scenes, "prototype", shots=2, templates=str(work["templates"]))
        out[family] = adapter.save(root / family)
    return out


def test_methods_lists_the_registry(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main_output(monkeypatch, capsys, "adapt", "methods", "--json")
    assert code == 0, err
    listed = {m["name"]: m for m in json.loads(out)}
    assert list(listed) == list(METHODS)
    for name, method in METHODS.items():
        entry = listed[name]
        assert entry["paper"] == method.paper and entry["needs_model"] == method.needs_model
        assert entry["generalises"] == method.generalises
        assert {k: (o["type"], o["default"]) for k, o in entry["options"].items()} == dict(method.options)
    code, out, _ = run_main_output(monkeypatch, capsys, "adapt", "methods")
    assert code == 0 and all(f"{name} " in out for name in METHODS) and "options: alpha=1.0 (float)" in out


@pytest.mark.parametrize(
    ("applied_to", "adapter_of", "fragment"),
    [
        (
            "remoteclip-vit-b-32",
            "openai-vit-b-32",
            "adapter was trained on openai-vit-b-32, not on remoteclip-vit-b-32",
        ),
        ("openai-rn50", "rsvlm-lite", "adapter was trained on rsvlm-lite, not on openai-rn50"),
        ("rsvlm-lite", "openai-vit-b-32", "adapter was trained on openai-vit-b-32, not on rsvlm-lite"),
    ],
)
def test_an_adapter_of_another_model_is_refused(
    applied_to: str,
    adapter_of: str,
    fragment: str,
    zoo: dict[str, tuple[str, str | None]],
    adapters: dict[str, Path],
    scenes: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = one_per_class(scenes)[0]
    args = ["classify", image, *model_args(zoo, applied_to), "--adapter", adapters[adapter_of]]
    code, out, err = run_main_output(monkeypatch, capsys, *args)
    assert code == 2 and out == "" and err.count("error:") == 1 and fragment in err, err
    with pytest.raises(RsvlmError, match=fragment):
        rsvlm.load_model(*zoo[applied_to], adapter=adapters[adapter_of])


def test_an_adapter_of_the_same_model_with_other_weights_is_refused(
    zoo: dict[str, tuple[str, str | None]],
    adapters: dict[str, Path],
    scenes: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec_file, _ = zoo["openai-vit-b-32"]
    retrained = write_checkpoint(source_model(tiny_spec(get_spec("openai-vit-b-32")), seed=1), "safetensors", tmp_path)
    args = ["classify", one_per_class(scenes)[0], "--model", spec_file, "--weights", retrained]
    code, _, err = run_main_output(monkeypatch, capsys, *args, "--adapter", adapters["openai-vit-b-32"])
    assert code == 2 and err.count("error:") == 1, err
    assert "adapter was trained on openai-vit-b-32 (weights" in err and "not on openai-vit-b-32 (weights" in err
    model = rsvlm.load_model(spec_file, retrained)
    with pytest.raises(RsvlmError, match="adapter was trained on openai-vit-b-32"):
        model.adapter = rsvlm.load_model(*zoo["openai-vit-b-32"], adapter=adapters["openai-vit-b-32"]).adapter


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--method", "no-such", "--shots", "1"], "unknown adaptation method 'no-such'; known: "),
        (["--method", "tip-adapter-f", "--set", "epochs=many"], "method tip-adapter-f: option epochs must be int"),
        (["--method", "prototype", "--set", "lr=0.1"], "method prototype: unknown option(s) lr (options: text_weight)"),
        (["--method", "prototype", "--set", "text_weight"], "option 'text_weight': expected KEY=VALUE"),
        (["--method", "prototype", "--shots", "3"], "class 'BareLand' has 2 training example(s), fewer than --shots 3"),
    ],
)
def test_bad_methods_options_and_shots_are_one_line_before_the_model_loads(
    extra: list[str],
    fragment: str,
    scenes: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "no-such-model.json"  # loading it would fail: every check here comes first
    args = ["adapt", "fit", *extra, "--data", scenes, "--model", missing, "--out", tmp_path / "out"]
    code, _, err = run_main_output(monkeypatch, capsys, *args)
    assert code == 2 and err.count("error:") == 1 and fragment in err, err
    assert not (tmp_path / "out").exists()


def test_sources_and_output_folder_are_checked(
    scenes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        ([], "give the labels with exactly one of --data PATH (labelled images) or --embeddings DIR"),
        (["--data", scenes, "--embeddings", tmp_path], "exactly one of --data PATH"),
        (["--embeddings", tmp_path, "--model", "rsvlm-lite"], "--embeddings holds features already: drop --model"),
        (["--embeddings", tmp_path, "--split", "train"], "drop --split"),
        (["--embeddings", tmp_path, "--templates", "rs-transclip-106"], "drop --templates"),
    ]
    for extra, fragment in cases:
        code, _, err = run_main_output(
            monkeypatch, capsys, "adapt", "fit", "--method", "prototype", "--out", tmp_path / "o", *extra
        )
        assert code == 2 and err.count("error:") == 1 and fragment in err, (extra, err)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    args = ["adapt", "fit", "--method", "prototype", "--data", scenes, "--out", taken]
    code, _, err = run_main_output(monkeypatch, capsys, *args)
    assert code == 2 and "holds other files and is not an adapter folder" in err, err
    assert (taken / "notes.txt").read_text() == "mine"


def test_labels_must_be_the_adapters_classes(
    zoo: dict[str, tuple[str, str | None]],
    adapters: dict[str, Path],
    scenes: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = one_per_class(scenes)[0]
    base = ["classify", image, *model_args(zoo, "rsvlm-lite"), "--adapter", adapters["rsvlm-lite"]]
    code, _, err = run_main_output(monkeypatch, capsys, *base, "--labels", "airport,forest")
    assert code == 2 and "--labels must name exactly the adapter's classes (Airport, BareLand, footballfield)" in err
    code, out, err = run_main_output(monkeypatch, capsys, *base, "--labels", "footballfield,Airport,BareLand")
    assert code == 0 and out.startswith(f"{image}: "), err
    code, _, err = run_main_output(monkeypatch, capsys, "classify", image)
    assert code == 2 and "--labels needs at least two comma-separated class names (or give --adapter DIR)" in err


# -- precomputed embeddings -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embeddings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled embeddings folder in the released layout: 3 classes × 6 images, two prompt templates."""
    from rsvlm.tasks.embeddings import EmbeddingSet, l2_normalise, save_embedding_dir

    rng = np.random.default_rng(0)
    centres = l2_normalise(rng.normal(size=(3, 16)).astype(np.float32))
    labels = np.repeat(np.arange(3), 6)
    images = l2_normalise((centres[labels] + 0.3 * rng.normal(size=(18, 16))).astype(np.float32))
    texts = {t: l2_normalise((centres + 0.5 * rng.normal(size=centres.shape)).astype(np.float32)) for t in ("a", "b")}
    folder = tmp_path_factory.mktemp("embeddings") / "ViT-B-32"
    save_embedding_dir(folder, EmbeddingSet(images, labels.astype(np.int64), texts, ["forest", "river", "port"]))
    return folder


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_on_precomputed_embeddings(
    method: str, embeddings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rsvlm.adapt.labelled import embeddings_identity

    args = ["adapt", "fit", "--method", method, "--embeddings", embeddings, "--shots", "4", "--out", tmp_path / "a"]
    code, out, err = run_main_output(monkeypatch, capsys, *args, *quick_args(method), "--json")
    if get_method(method).needs_model:
        assert code == 2 and err.count("error:") == 1 and f"method {method} runs the model's towers" in err, err
        assert "--model" in err and not (tmp_path / "a").exists()
        return
    assert code == 0, err
    report = json.loads(out)
    assert report["examples_per_class"] == {"forest": 4, "river": 4, "port": 4}
    assert report["base"]["name"] == "embeddings:ViT-B-32" and report["trained_on"]["examples"] == 12
    emb, base = embeddings_identity(embeddings)
    adapter = load_adapter(tmp_path / "a", None, base=base)
    accuracy = float((adapter.logits(emb.images).argmax(1) == emb.labels).mean())
    assert accuracy > 0.5, f"{method}: {accuracy:.2f} on separable clusters (chance 0.33)"


# -- a real process, the Python API, the default split, show ----------------------------------------------------------
def test_fit_and_classify_in_a_real_process(scenes: Path, work: dict[str, Path], tmp_path: Path) -> None:
    env = {"OMP_NUM_THREADS": "1", "RSVLM_CACHE_DIR": str(tmp_path / "cache")}
    folder = tmp_path / "my adapter"
    fit = run_cli(
        "adapt", "fit", "--method", "tip-adapter", "--data", scenes, "--shots", "2", "--out", folder,
        "--templates", work["templates"], env=env,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr
    assert "tip-adapter on rsvlm-lite: 3 classes, 2 examples each (6 in all)" in fit.stdout
    assert "Airport 2 · BareLand 2 · footballfield 2" in fit.stdout
    images = one_per_class(scenes)
    shown = run_cli("classify", *images, "--adapter", folder, "--top", "3", env=env)
    assert shown.returncode == 0, shown.stderr
    adapted = rsvlm.load_model(adapter=folder)
    expected = [f"{r.image}: " + ", ".join(f"{c} {p:.1%}" for c, p in r.top(3)) for r in adapted.classify(images)]
    assert shown.stdout.splitlines() == expected
    wrong = run_cli("classify", images[0], "--adapter", tmp_path, env=env)
    assert_one_line_error(wrong, f"{tmp_path}: not an adapter folder (needs adapter.json and adapter.safetensors)")


def test_python_api_fits_saves_and_applies_an_adapter(
    zoo: dict[str, tuple[str, str | None]], scenes: Path, work: dict[str, Path], tmp_path: Path
) -> None:
    model = rsvlm.load_model(*zoo["rsvlm-lite"])
    images = one_per_class(scenes)
    with pytest.raises(RsvlmError, match="labels: give at least two class names"):
        model.classify(images)
    adapter = model.fit_adapter(
        scenes, "tip-adapter-f", shots=2, seed=5, options={"epochs": 2}, templates=str(work["templates"])
    )
    assert adapter.classes == CLASSES and adapter.shots == 2 and adapter.options["epochs"] == 2
    model.adapter = adapter
    assert repr(model) == "rsvlm.Model('rsvlm-lite', adapter='tip-adapter-f')"
    in_memory = model.classify(images)
    assert [sorted(r.probabilities) for r in in_memory] == [CLASSES] * 3
    again = rsvlm.load_model("rsvlm-lite", adapter=adapter.save(tmp_path / "saved"))
    assert [r.probabilities for r in again.classify(images, ["BareLand", "footballfield", "Airport"])] == [
        r.probabilities for r in in_memory
    ]  # the same computation on the same features: equal to the last bit
    with pytest.raises(RsvlmError, match="labels must name exactly the adapter's classes"):
        again.classify(images, ["Airport", "BareLand"])
    model.adapter = None
    assert sorted(model.classify(images[:1], ["forest", "river"])[0].probabilities) == ["forest", "river"]


def test_the_train_split_is_the_default_and_show_prints_the_record(
    zoo: dict[str, tuple[str, str | None]],
    fixtures: Path,
    work: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = fixtures / "scene_split"
    for split, examples in ((None, 4), ("all", 6), ("test", 2)):
        folder = tmp_path / str(split)
        args = [*fit_args("prototype", "openai-vit-b-32", zoo, work), "--data", data, "--out", folder]
        code, _, err = run_main_output(monkeypatch, capsys, *args, *(["--split", split] if split else []))
        assert code == 0, err
        assert f"({'split train' if split is None else 'all splits' if split == 'all' else 'split test'})" in err
        code, out, err = run_main_output(monkeypatch, capsys, "adapt", "show", folder)
        assert code == 0, err
        trained = json.loads(out)["trained_on"]
        assert trained["split"] == (split or "train") and trained["examples"] == examples and trained["shots"] is None
    code, _, err = run_main_output(monkeypatch, capsys, "adapt", "show", data)
    assert code == 2 and "not an adapter folder" in err
