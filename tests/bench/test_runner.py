"""The bench runner: a run killed mid-task resumes from its caches and ends with the metrics of an unbroken run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rsvlm.bench import runner
from rsvlm.bench.spec import load_suite
from rsvlm.errors import RsvlmError

pytestmark = pytest.mark.shared

SUITE = """
name: resume-check
version: 1
description: Two small tasks, one per model family, for the resume test.
tasks:
  - id: aid-zeroshot-48
    kind: zeroshot
    data: {path: aid, manifest: aid-smoke.txt, limit: 48}
    metrics: [top1, top5, mean_per_class]
  - id: rsvqa-lr-12
    kind: vqa
    data: {path: rsvqa/lr, manifest: rsvqa-lr-heldout.txt, limit: 12}
    metrics: [overall, presence, comp]
  - id: golden-remoteclip
    kind: golden-zeroshot
    data: {path: golden/whurs19/results/WHURS19/RemoteCLIP/ViT-B-32, manifest: golden-whurs19.txt}
    metrics: [top1]
"""


class KilledError(RuntimeError):
    """Stands for the process being killed between two batches."""


class Breaking:
    """The real model, failing after ``calls`` batches, as if the process died there."""

    def __init__(self, model: Any, calls: int) -> None:
        self._model, self._left = model, calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def _tick(self) -> None:
        self._left -= 1
        if self._left < 0:
            raise KilledError("killed mid-task")

    def encode_images(self, pixels: Any) -> Any:
        self._tick()
        return self._model.encode_images(pixels)

    def generate(self, requests: Any, config: Any = None) -> Any:
        self._tick()
        return self._model.generate(requests, config)


def _metrics(folder: Path) -> dict[str, Any]:
    return {
        p.relative_to(folder).as_posix(): json.loads(p.read_text())["metrics"] for p in folder.glob("results/*/*.json")
    }


def test_killed_run_resumes_to_the_metrics_of_an_unbroken_run(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_file = tmp_path / "suite.yaml"
    spec_file.write_text(SUITE, encoding="utf-8")
    suite = load_suite(spec_file)
    models = ["rsvlm-lite", "rsvlm-lite-chat"]
    quiet = lambda message: None  # noqa: E731

    whole = runner.run_suite(suite, models, tmp_path / "whole", shared_data, log=quiet)

    real_load = runner.load_model
    monkeypatch.setattr(runner, "load_model", lambda name, family: Breaking(real_load(name, family), calls=1))
    broken = tmp_path / "broken"
    with pytest.raises(KilledError):  # the contrastive task dies after one batch of 32 images
        runner.run_suite(suite, models, broken, shared_data, log=quiet)
    assert not (broken / "results").exists()
    assert any((broken / "features").rglob("*")), "the embedded batch is cached"
    with pytest.raises(KilledError):  # zero-shot ends from the cache + one batch; VQA dies after its first batch of 8
        runner.run_suite(suite, models, broken, shared_data, log=quiet)
    assert (broken / "results/rsvlm-lite/aid-zeroshot-48.json").is_file()
    predictions = (broken / "work/rsvlm-lite-chat/rsvqa-lr-12/predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 8
    monkeypatch.setattr(runner, "load_model", real_load)
    runner.run_suite(suite, models, broken, shared_data, log=quiet)

    assert _metrics(broken) == _metrics(whole)
    assert set(_metrics(whole)) == {
        "results/rsvlm-lite/aid-zeroshot-48.json",
        "results/rsvlm-lite-chat/rsvqa-lr-12.json",
        "results/published/golden-remoteclip.json",
    }
    run = json.loads((broken / "run.json").read_text())
    assert run["finished"] and run["data"]["aid-zeroshot-48"]["verified"]


def test_a_run_folder_of_another_suite_is_refused(tmp_path: Path, shared_data: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"suite": "other", "suite_version": 3}), encoding="utf-8")
    with pytest.raises(RsvlmError, match="holds a run of suite other v3"):
        runner.run_suite(load_suite("smoke"), ["rsvlm-lite"], tmp_path, shared_data, log=lambda m: None)


def test_unknown_model_is_refused(tmp_path: Path, shared_data: Path) -> None:
    with pytest.raises(RsvlmError, match="unknown model 'no-such-model'"):
        runner.run_suite(load_suite("smoke"), ["no-such-model"], tmp_path, shared_data, log=lambda m: None)


def test_results_of_other_weights_are_redone_not_reused(tmp_path: Path, shared_data: Path) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    from rsvlm.models.lite import packaged_weights

    folder = tmp_path / "my-lite"
    shutil.copytree(packaged_weights("rsvlm-lite"), folder)
    spec_file = tmp_path / "suite.yaml"
    spec_file.write_text(SUITE.split("  - id: rsvqa-lr-12")[0], encoding="utf-8")  # the zero-shot task only
    suite = load_suite(spec_file)
    messages: list[str] = []
    out = tmp_path / "run"
    runner.run_suite(suite, [str(folder)], out, shared_data, log=messages.append)
    result = next(out.glob("results/*/aid-zeroshot-48.json"))
    first = json.loads(result.read_text())
    assert first["weights_digest"] == runner.weights_digest(str(folder))

    runner.run_suite(suite, [str(folder)], out, shared_data, log=messages.append)
    assert any(m.endswith("aid-zeroshot-48: done already") for m in messages)
    assert not any("redoing" in m for m in messages)

    state = load_file(str(folder / "model.safetensors"))  # the folder is retrained: other weights, same name
    name = next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 2)
    state[name] = state[name] * 0.5
    save_file(state, str(folder / "model.safetensors"))
    runner.run_suite(suite, [str(folder)], out, shared_data, log=messages.append)
    assert any("came from other weights" in m and "redoing it" in m for m in messages)
    second = json.loads(result.read_text())
    assert second["weights_digest"] == runner.weights_digest(str(folder)) != first["weights_digest"]
    assert runner.weights_digest("rsvlm-lite") is not None and runner.weights_digest("openai-vit-b-32") is None


BOX_SUITE = """
name: box-check
version: 1
description: Counting and grounding on the held-out NEON region, tiled by the runner.
tasks:
  - id: neon-counting
    kind: counting
    data: {path: neon_trees, manifest: neon.txt}
    metrics: [mae, exact]
    options: {protocol: counting/1, max_new_tokens: 8, object_name: trees, tile: 200, regions: [OSBS_029.tif]}
  - id: neon-grounding
    kind: grounding
    data: {path: neon_trees, manifest: neon.txt}
    metrics: [acc@0.5, mean_iou]
    options: {protocol: grounding/1, max_new_tokens: 32, object_name: trees, tile: 200, regions: [OSBS_029.tif]}
"""


def test_box_tasks_score_the_held_out_tiles_the_instruction_builder_holds_out(
    tmp_path: Path, shared_data: Path
) -> None:
    from rsvlm.build.instructions import write_voc_tiles
    from rsvlm.data.raster import read_image
    from rsvlm.data.registry import open_dataset

    spec_file = tmp_path / "suite.yaml"
    spec_file.write_text(BOX_SUITE, encoding="utf-8")
    out = tmp_path / "run"
    runner.run_suite(load_suite(spec_file), ["rsvlm-lite-chat"], out, shared_data, log=lambda m: None)
    counting = json.loads((out / "results/rsvlm-lite-chat/neon-counting.json").read_text())
    assert counting["samples"] == 4 and counting["metrics"]["mae"] >= 0  # OSBS_029 is 400 px: 2 x 2 tiles
    tiles = sorted(p.name for p in (out / "data/neon-counting-tiles").glob("*.png"))
    assert tiles == ["OSBS_029_0_0.png", "OSBS_029_0_200.png", "OSBS_029_200_0.png", "OSBS_029_200_200.png"]

    # the same tiles and boxes as the builder's held-out folder (one function writes both)
    record = next(r for r in open_dataset(shared_data / "neon_trees").records if r.id == "OSBS_029")
    assert record.image_path is not None and record.boxes is not None
    own = tmp_path / "builder"
    write_voc_tiles(read_image(record.image_path), record.boxes, "OSBS_029", own, 200, "trees", True)
    written = sorted((out / "data/neon-grounding-tiles").glob("*.xml"))
    assert [x.name for x in written] == sorted(x.name for x in own.glob("*.xml")) and len(written) == 4
    assert all(x.read_text() == (own / x.name).read_text() for x in written)
    grounding = json.loads((out / "results/rsvlm-lite-chat/neon-grounding.json").read_text())
    expressions = sum(x.read_text().count("<description>") for x in own.glob("*.xml"))
    assert grounding["samples"] == expressions == 3
