"""``rsvlm eval few-shot`` and ``rsvlm eval zeroshot --adapter`` through the real CLI: on precomputed embeddings (every
features-only method, the others reported as skipped), on a labelled image folder with a tiny model (prompt learning
and an image-tower LoRA run, the tuned tower re-embeds the test images), and a saved adapter scored on a set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rsvlm.adapt.labelled import choose_embeddings, choose_images, fit_on_embeddings, fit_on_images
from rsvlm.adapt.methods import get_method
from rsvlm.models.registry import get_spec
from rsvlm.tasks.embeddings import EmbeddingSet, save_embedding_dir
from tests.clihelp import assert_one_line_error, rsvlm, run_main, run_main_output
from tests.models.tiny import source_model, tiny_spec, write_checkpoint

NAMES = ["airport", "beach", "forest", "river"]


def _normalise(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def _embeddings(folder: Path, seed: int, names: list[str] = NAMES) -> Path:
    """A released-layout embeddings folder: 4 classes x 12 images around centres the prompts only roughly match."""
    rng = np.random.default_rng(seed)
    centres = _normalise(rng.normal(size=(4, 16)))
    labels = np.repeat(np.arange(4), 12).astype(np.int64)
    images = _normalise(centres[labels] + 0.4 * rng.normal(size=(48, 16)))
    texts = _normalise(centres + 0.5 * rng.normal(size=centres.shape))
    save_embedding_dir(folder, EmbeddingSet(images, labels, {"averageprompt": texts, "a photo of a": texts}, names))
    return folder


@pytest.fixture(scope="module")
def emb(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("emb")
    out = {"a": _embeddings(root / "a" / "emb", 0), "b": _embeddings(root / "b" / "emb", 1)}
    # the same embeddings (same folder name and class embeddings: the same identity) with other class names
    out["renamed"] = _embeddings(root / "c" / "emb", 0, ["port", "shore", "woods", "stream"])
    adapter = fit_on_embeddings(get_method("prototype"), choose_embeddings(out["a"], shots=3, seed=1))
    out["adapter"] = adapter.save(root / "adapter")
    return out


def test_few_shot_on_embeddings_writes_results_and_report(
    emb: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["eval", "few-shot", "--embeddings", emb["a"], "--methods", "zero-shot,prototype,tip-adapter-f,coop",
            "--shots", "1,2,8", "--seeds", "1,2", "--base-to-novel", "--transductive",
            "--set", "tip-adapter-f.epochs=2", "--out", out, "--json"]  # fmt: skip
    code, stdout, err = run_main_output(monkeypatch, capsys, *args)
    assert code == 0, err
    result = json.loads(stdout)
    assert result == json.loads((out / "results.json").read_text())
    assert result["protocol"] == "fewshot/1" and result["split"] == "stratified 50% test, seed 0"
    assert result["shots"] == [1, 2] and result["skipped_shots"][0]["shots"] == 8  # 6 train images per class
    assert result["skipped"] == [
        {"method": "coop", "reason": "runs the model's towers: needs the model (--model), not precomputed embeddings"}
    ]
    assert "coop skipped" in err and "8-shot skipped" in err
    assert result["options"]["tip-adapter-f"]["epochs"] == 2
    methods = {(r["method"], r["shots"], r["transductive"]) for r in result["rows"]}
    assert ("zero-shot", 0, True) in methods and ("tip-adapter-f", 2, True) in methods
    assert [r["method"] for r in result["base_to_novel"]["rows"]] == ["zero-shot"]
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 2 and "top-1 vs shots" in html and "Base-to-novel" in html
    assert "http" not in html  # self-contained


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--shots", "0,1"], "shot count 0 is not a whole number"),
        (["--methods", "zero-shot,nope"], "unknown adaptation method 'nope'"),
        (["--set", "prototype.nope=1"], "method prototype: unknown option(s) nope"),
        (["--methods", "zero-shot", "--set", "prototype.text_weight=0.5"], "not among the compared methods"),
        (["--seeds", "1,x"], "expected comma-separated whole numbers"),
        (["--set", "epochs=3"], "expected METHOD.KEY=VALUE"),
    ],
)
def test_bad_settings_are_one_line_errors(
    args: list[str], fragment: str, emb: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    code, err = run_main(monkeypatch, capsys, "eval", "few-shot", "--embeddings", emb["a"], *args)
    assert code == 2 and err.count("error:") == 1 and fragment in err, err


def test_zeroshot_with_an_adapter_scores_its_predictions(
    emb: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rsvlm.adapt.labelled import embeddings_identity
    from rsvlm.adapt.saved import load_adapter
    from rsvlm.tasks.transductive import transclip

    data, base = embeddings_identity(emb["a"])
    adapter = load_adapter(emb["adapter"], None, base=base)
    probs = adapter.probabilities(data.images)
    expected = 100 * float((probs.argmax(1) == data.labels).mean())
    code, stdout, err = run_main_output(
        monkeypatch, capsys, "eval", "zeroshot", "--embeddings", emb["a"], "--adapter", emb["adapter"], "--json"
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert result["top1"] == pytest.approx(expected) and result["n"] == 48
    assert result["adapter"] == {"folder": str(emb["adapter"]), "method": "prototype", "shots": 3, "seed": 1}
    refined = transclip(data.images, adapter.class_set.text_weights, prior=probs).probabilities
    code, stdout, err = run_main_output(
        monkeypatch, capsys, "eval", "zeroshot", "--embeddings", emb["a"], "--adapter", emb["adapter"],
        "--transductive", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["top1"] == pytest.approx(100 * float((refined.argmax(1) == data.labels).mean()))
    code, err = run_main(
        monkeypatch, capsys, "eval", "zeroshot", "--embeddings", emb["renamed"], "--adapter", emb["adapter"]
    )
    assert code == 2 and "the data's classes are not the adapter's: the data has port, shore, woods, stream" in err
    code, err = run_main(
        monkeypatch, capsys, "eval", "zeroshot", "--embeddings", emb["a"], "--adapter", emb["adapter"], "--per-template"
    )
    assert code == 2 and "do not apply with --adapter" in err


def test_an_adapter_from_other_embeddings_is_refused_in_one_line(emb: dict[str, Path]) -> None:
    result = rsvlm("eval", "zeroshot", "--embeddings", emb["b"], "--adapter", emb["adapter"], timeout=120)
    assert_one_line_error(result, "adapter was trained on embeddings:emb (weights", "use it with that model")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny ViT spec file and two weights files (different random initialisations: two different models)."""
    root = tmp_path_factory.mktemp("tiny")
    spec = tiny_spec(get_spec("remoteclip-vit-b-32"))
    spec_file = root / "tiny-vit.json"
    spec_file.write_text(json.dumps({"name": "tiny-vit", "family": "remoteclip", "arch": "ViT-B-32",
                                     "description": "test", "arch_config": spec.arch_config}))  # fmt: skip
    templates = root / "templates.txt"
    templates.write_text("a satellite photo of {}.\n", encoding="utf-8")
    return {
        "spec": spec_file,
        "weights": write_checkpoint(source_model(spec, seed=0), "state_dict", root / "w0"),
        "other": write_checkpoint(source_model(spec, seed=1), "state_dict", root / "w1"),
        "templates": templates,
    }


def test_few_shot_with_a_model_runs_prompt_learning_and_a_tuned_image_tower(
    tiny: dict[str, Path], fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    args = ["eval", "few-shot", "--model", tiny["spec"], "--weights", tiny["weights"], "--data",
            fixtures / "scene_split", "--templates", tiny["templates"], "--methods", "zero-shot,coop,lora-image",
            "--shots", "1,2", "--seeds", "1", "--set", "coop.epochs=1", "--set", "lora-image.epochs=1",
            "--cache-dir", tmp_path, "--json"]  # fmt: skip
    code, stdout, err = run_main_output(monkeypatch, capsys, *args)
    assert code == 0, err
    result = json.loads(stdout)
    assert result["split"] == "the data's own split: train -> test" and (result["n_train"], result["n_test"]) == (4, 2)
    assert result["skipped"] == [] and result["classes"] == ["forest", "river"]
    assert {(r["method"], r["shots"]) for r in result["rows"]} == {
        ("zero-shot", 0), ("coop", 1), ("coop", 2), ("lora-image", 1), ("lora-image", 2),
    }  # fmt: skip
    assert all(r["top1"] in (0.0, 50.0, 100.0) for r in result["rows"])  # two test images


def test_zeroshot_with_an_adapter_on_images_and_another_models_adapter_refused(
    tiny: dict[str, Path], fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from rsvlm.models.openclip import load_contrastive
    from rsvlm.pipeline import embed_records

    model = load_contrastive(str(tiny["spec"]), tiny["weights"])
    chosen = choose_images(fixtures / "scene_folder", split="all")
    adapter = fit_on_images(get_method("prototype"), model, chosen, templates=str(tiny["templates"]))
    folder = adapter.save(tmp_path / "adapter")
    features = embed_records(model, chosen.dataset, chosen.records, use_cache=False)
    expected = 100 * float((adapter.logits(features).argmax(1) == chosen.labels).mean())
    common: list[str | Path] = [
        "eval", "zeroshot", "--model", tiny["spec"], "--data", fixtures / "scene_folder", "--adapter", folder,
    ]  # fmt: skip
    code, stdout, err = run_main_output(monkeypatch, capsys, *common, "--weights", tiny["weights"], "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["n"] == 7 and result["top1"] == pytest.approx(expected) and result["adapter"]["method"] == "prototype"
    code, err = run_main(monkeypatch, capsys, *common, "--weights", tiny["other"])
    assert code == 2 and err.count("error:") == 1 and "adapter was trained on tiny-vit (weights" in err, err
    other_classes = tmp_path / "scenes"
    shutil.copytree(fixtures / "scene_split" / "train", other_classes)
    code, err = run_main(monkeypatch, capsys, *common[:4], "--data", other_classes, "--adapter", folder)
    assert code == 2 and "the data's classes are not the adapter's" in err, err
