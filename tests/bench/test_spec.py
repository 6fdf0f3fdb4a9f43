"""Benchmark suite specs: shipped suites validate, every mistake is a one-line error naming file and task,
and every metric name a suite may use is one the evaluators really report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from rsvlm.bench.manifest import manifest_path, read_manifest
from rsvlm.bench.spec import KINDS, Suite, list_suites, load_suite, metric_value
from rsvlm.errors import RsvlmError

GOOD_TASK: dict[str, Any] = {
    "id": "aid-zs",
    "kind": "zeroshot",
    "data": {"path": "aid", "manifest": "aid-smoke.txt"},
    "metrics": ["top1", "top5"],
}


def _suite(tmp_path: Path, *tasks: dict[str, Any], **top: Any) -> Path:
    data = {"name": "mine", "version": 1, "description": "a test suite", "tasks": list(tasks), **top}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _error(tmp_path: Path, *tasks: dict[str, Any], **top: Any) -> str:
    with pytest.raises(RsvlmError) as info:
        load_suite(_suite(tmp_path, *tasks, **top))
    message = str(info.value)
    assert "\n" not in message
    assert "mine.yaml" in message
    return message


# ---- shipped suites -------------------------------------------------------------------------------------------
def test_shipped_suites_are_listed() -> None:
    assert {"smoke", "rs-core"} <= set(list_suites())


@pytest.mark.parametrize("name", list_suites())
def test_shipped_suite_loads_and_references_existing_manifests(name: str) -> None:
    suite = load_suite(name)
    assert isinstance(suite, Suite) and suite.name == name and suite.version >= 1
    for task in suite.tasks:
        assert task.data.manifest is not None, f"{task.id}: shipped tasks pin their data"
        assert len(read_manifest(manifest_path(task.data.manifest))) > 0
        assert set(task.metrics) <= set(KINDS[task.kind].metrics)
        assert all(a.metric in task.metrics for a in task.anchors)
        assert set(task.options) == set(KINDS[task.kind].options)  # defaults filled in


def test_smoke_covers_each_family_and_rs_core_anchors_published_numbers() -> None:
    smoke, core = load_suite("smoke"), load_suite("rs-core")
    assert {t.family for t in smoke.tasks} == {"contrastive", "chat", "embeddings"}
    anchors = {(t.id, a.model, a.metric): a.value for t in core.tasks for a in t.anchors}
    assert anchors[("rsicd-caption", "SkyEyeGPT", "CIDEr")] == 83.65
    assert anchors[("rsicd-retrieval", "RemoteCLIP ViT-L/14", "mR")] == 36.35
    assert anchors[("golden-remoteclip-whurs19", "RemoteCLIP ViT-B/32", "top1")] == pytest.approx(95.22, abs=0.01)
    assert len([t for t in core.tasks if t.kind == "golden-zeroshot"]) == 8


def test_defaults_fill_options_and_given_values_win() -> None:
    task = load_suite("rs-core").task("aid-16shot")
    assert task.options == {"shots": 16, "seeds": (1, 2, 3), "test_fraction": 0.5}
    assert load_suite("smoke").task("aid-zeroshot").options["transductive"] is False


def test_unknown_task_id_and_unknown_suite_name() -> None:
    with pytest.raises(RsvlmError, match="no task 'nope'"):
        load_suite("smoke").task("nope")
    with pytest.raises(RsvlmError, match=r"unknown suite 'smok'.*smoke"):
        load_suite("smok")


def test_a_valid_user_suite_loads_with_its_own_manifest(tmp_path: Path) -> None:
    (tmp_path / "own.txt").write_text("# mine\naid/a.jpg\t" + "0" * 64 + "\n", encoding="utf-8")
    task = {**GOOD_TASK, "data": {"path": "aid", "manifest": "own.txt", "limit": 5}}
    suite = load_suite(_suite(tmp_path, task))
    assert suite.tasks[0].data.manifest == str((tmp_path / "own.txt").resolve())
    assert suite.tasks[0].data.limit == 5


# ---- every mistake is a named, one-line error -------------------------------------------------------------------
def test_typo_in_a_task_key(tmp_path: Path) -> None:
    task = {k: v for k, v in GOOD_TASK.items() if k != "metrics"} | {"metrcs": ["top1"]}
    message = _error(tmp_path, task)
    assert "task 'aid-zs'" in message and "metrcs" in message


def test_typo_in_a_top_level_or_data_key(tmp_path: Path) -> None:
    assert "tasks_" in _error(tmp_path, GOOD_TASK, tasks_=[])
    message = _error(tmp_path, {**GOOD_TASK, "data": {"path": "aid", "manifets": "aid.txt"}})
    assert "task 'aid-zs': data" in message and "manifets" in message


def test_unknown_metric(tmp_path: Path) -> None:
    message = _error(tmp_path, {**GOOD_TASK, "metrics": ["top_1"]})
    assert message.endswith(
        "mine.yaml: task 'aid-zs': unknown metric 'top_1' for zeroshot (known: top1, top5, mean_per_class)"
    )


def test_unknown_kind(tmp_path: Path) -> None:
    message = _error(tmp_path, {**GOOD_TASK, "kind": "zero-shot"})
    assert "task 'aid-zs': unknown kind 'zero-shot'" in message and "zeroshot" in message


def test_duplicate_task_id(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD_TASK, dict(GOOD_TASK))
    assert "task 'aid-zs': duplicate task id" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"data": {"path": "aid", "limit": "ten"}}, "limit must be a positive integer"),
        ({"data": {"path": "aid", "limit": 0}}, "limit must be a positive integer"),
        ({"data": "aid"}, "expected a mapping, got str"),
        ({"metrics": "top1"}, "metrics must be a non-empty list"),
        ({"options": {"transductive": "yes"}}, "option 'transductive' must be true or false, got 'yes'"),
        ({"kind": "linear-probe", "options": {"shots": "five"}}, "option 'shots' must be a positive integer or null"),
        ({"kind": "linear-probe", "options": {"seeds": [1, 2.5]}}, "option 'seeds' must be a non-empty list"),
        ({"kind": "linear-probe", "options": {"test_fraction": 1.5}}, "'test_fraction' must lie strictly between"),
        ({"options": {"shots": 4}}, "unknown option 'shots' for zeroshot (known: copy_free, templates, transductive)"),
        ({"options": {"templates": "rs-defualt"}}, "unknown template set 'rs-defualt'"),
        ({"data": {"path": "/abs/aid"}}, "must be relative to the data root"),
        ({"data": {"path": "../aid"}}, "must be relative to the data root"),
        ({"data": {"path": "aid", "format": "jpeg-folder"}}, "unknown format 'jpeg-folder'"),
        ({"data": {"path": "aid", "manifest": "nowhere.txt"}}, "manifest 'nowhere.txt' not found"),
        ({"id": "AID zs"}, "id must be lower-case"),
    ],
)
def test_wrong_values_name_the_task(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    message = _error(tmp_path, {**GOOD_TASK, **change})
    assert expected in message
    assert "task 'aid-zs'" in message or "task 'AID zs'" in message


def test_wrong_top_level_types(tmp_path: Path) -> None:
    assert "version must be an integer" in _error(tmp_path, GOOD_TASK, version="1")
    assert "version must be an integer" in _error(tmp_path, GOOD_TASK, version=True)
    assert "tasks must be a non-empty list" in _error(tmp_path, tasks=[])
    assert "missing key 'kind'" in _error(tmp_path, {k: v for k, v in GOOD_TASK.items() if k != "kind"})


def test_chat_options_are_checked_against_the_protocols(tmp_path: Path) -> None:
    vqa = {"id": "q", "kind": "vqa", "data": {"path": "rsvqa/lr"}, "metrics": ["overall"]}
    assert "protocol counting/1 is for the counting task, not vqa" in _error(
        tmp_path, {**vqa, "options": {"protocol": "counting/1"}}
    )
    assert "unknown protocol 'vqa/9'" in _error(tmp_path, {**vqa, "options": {"protocol": "vqa/9"}})
    assert "option 'max_new_tokens' must be a positive integer" in _error(
        tmp_path, {**vqa, "options": {"max_new_tokens": -1}}
    )


def test_anchor_checks(tmp_path: Path) -> None:
    anchor = {"metric": "top1", "value": 90.0, "model": "M", "source": "paper", "protocol_difference": "none"}
    assert load_suite(_suite(tmp_path, {**GOOD_TASK, "anchors": [anchor]})).tasks[0].anchors[0].value == 90.0
    bad_metric = {**anchor, "metric": "mean_per_class"}
    assert "anchor metric 'mean_per_class' is not among" in _error(tmp_path, {**GOOD_TASK, "anchors": [bad_metric]})
    assert "value must be a number" in _error(tmp_path, {**GOOD_TASK, "anchors": [{**anchor, "value": "high"}]})
    missing = {k: v for k, v in anchor.items() if k != "source"}
    assert "anchors[0]: missing key 'source'" in _error(tmp_path, {**GOOD_TASK, "anchors": [missing]})


def test_embeddings_tasks_take_no_dataset_options(tmp_path: Path) -> None:
    golden = {"id": "g", "kind": "golden-zeroshot", "data": {"path": "golden/x", "split": "test"}, "metrics": ["top1"]}
    assert "split does not apply to an embeddings folder" in _error(tmp_path, golden)
    bad_template = {**golden, "data": {"path": "golden/x"}, "options": {"template": "a photo of"}}
    assert "not averageprompt or one of the 106" in _error(tmp_path, bad_template)


# ---- metric names are the evaluators' own ---------------------------------------------------------------------
def _reports() -> dict[str, dict[str, Any]]:
    """One real report per kind, from the evaluators themselves on tiny synthetic inputs."""
    from rsvlm.tasks.chat.classify import classification_metrics
    from rsvlm.tasks.chat.counting import count_metrics
    from rsvlm.tasks.chat.geometry import PixelBox
    from rsvlm.tasks.chat.grounding import grounding_metrics
    from rsvlm.tasks.chat.protocols import load_protocol
    from rsvlm.tasks.chat.vqa import vqa_metrics
    from rsvlm.tasks.embeddings import EmbeddingSet
    from rsvlm.tasks.linear_probe import evaluate_linear_probe
    from rsvlm.tasks.retrieval import evaluate_retrieval
    from rsvlm.tasks.zeroshot import evaluate_zeroshot

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 6)
    images = (np.eye(6, 8)[labels] + 0.2 * rng.normal(size=(36, 8))).astype(np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    emb = EmbeddingSet(images, labels, {"a photo of a": np.eye(6, 8, dtype=np.float32)}, list("abcdef"))
    zeroshot = evaluate_zeroshot(emb, "a photo of a")
    probe = evaluate_linear_probe(images, labels, images, labels, list("abcdef"), shots=2, seeds=(1, 2))
    retrieval = evaluate_retrieval(images, images, np.arange(36))
    vqa = vqa_metrics(
        ["yes", "no", "rural", "3", "10m2"],
        ["yes", "yes", "rural", "4", "10m2"],
        ["presence", "comp", "rural_urban", "count", "area"],
        load_protocol("vqa-rsvqa/1"),
    )
    box = PixelBox(0.0, 0.0, 10.0, 10.0)
    return {
        "zeroshot": zeroshot,
        "golden-zeroshot": zeroshot,
        "linear-probe": probe,
        "retrieval": retrieval,
        "vqa": vqa,
        "counting": count_metrics([1.0, None], [1.0, 2.0], (0, 10, 100, 1000)),
        "grounding": grounding_metrics([box, None], [box, box]),
        "chat-classify": classification_metrics([0, None], [0, 1], ["a", "b"]),
        **dict.fromkeys(("few-shot", "golden-few-shot"), _few_shot_report(rng)),
    }


def _few_shot_report(rng: np.random.Generator) -> dict[str, float]:
    """The few-shot kinds' metrics from a real fewshot/1 run: 6 classes x 34 synthetic images (16 shots fit)."""
    from rsvlm.adapt.method import ClassSet
    from rsvlm.adapt.protocol import LabelledSet, make_settings, run_protocol
    from rsvlm.bench.kinds._fewshot import metrics

    labels = np.repeat(np.arange(6), 34)
    images = (np.eye(6, 8)[labels] + 0.3 * rng.normal(size=(len(labels), 8))).astype(np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    data = LabelledSet(images, labels, ClassSet(list("abcdef"), np.eye(6, 8, dtype=np.float32)), 100.0)
    quick = {"clip-adapter": {"epochs": 2}, "tip-adapter-f": {"epochs": 2}}
    return metrics(run_protocol(data, make_settings(None, seeds=(1,), options=quick, base_to_novel=True)))


def test_every_metric_name_is_reported_by_its_evaluator() -> None:
    from rsvlm.tasks.chat.captioning import METRICS

    reports = _reports()
    for kind, spec in KINDS.items():
        if kind == "caption":
            assert spec.metrics == METRICS  # caption_metrics needs Java; its key list is the contract
            continue
        missing = [m for m in spec.metrics if metric_value(reports[kind], m) is None]
        assert not missing, f"{kind}: the evaluator reports no {missing}"


def test_vqa_metrics_are_the_protocols_question_types_and_defaults_are_the_tasks() -> None:
    from rsvlm.tasks.chat import captioning, classify, counting, grounding, vqa
    from rsvlm.tasks.chat.protocols import load_protocol

    types = set(load_protocol("vqa-rsvqa/1").matching.question_types)
    assert types <= set(KINDS["vqa"].metrics)
    defaults = {
        k: KINDS[k].options["protocol"][1] for k in ("caption", "vqa", "counting", "grounding", "chat-classify")
    }
    modules = (captioning, vqa, counting, grounding, classify)
    assert list(defaults.values()) == [m.DEFAULT_PROTOCOL for m in modules]
    assert {s.family for s in KINDS.values()} == {"contrastive", "chat", "embeddings"}


def test_metric_value_reads_nested_vqa_entries() -> None:
    report = {"overall": 50.0, "per_type": {"count": {"accuracy": 25.0, "mae": 3.5}}, "flag": True}
    assert metric_value(report, "overall") == 50.0
    assert metric_value(report, "count") == 25.0
    assert metric_value(report, "count_mae") == 3.5
    assert metric_value(report, "area") is None and metric_value(report, "flag") is None
