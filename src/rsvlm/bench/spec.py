"""Benchmark suites as validated, versioned data: which tasks, on exactly which files, scored how, next to
which published numbers.

A suite (``bench/suites/<name>.yaml``, or any YAML file of the same schema) lists tasks. Each task names
its kind (one module of ``rsvlm.bench.kinds``, see ``KINDS``), its data (a dataset path under the data root and the
manifest that pins its files by hash), the metrics it reports (the evaluator's own key names), options
(validated per kind; defaults filled in so a run records every setting) and anchors: published numbers
with their source and how the published protocol differs from ours. Loading is strict: an unknown key,
kind, metric or option, a wrong type, a duplicate id or a missing manifest is a one-line error naming the
suite file and the task, because a typo that silently changed what a suite measures would make its numbers
incomparable. Changing what a shipped suite measures means raising its ``version``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from rsvlm.bench.kind import Kind
from rsvlm.bench.kind import metric_value as metric_value  # the suite metric names, read from a report
from rsvlm.bench.kinds import KINDS as KINDS  # every kind by name
from rsvlm.configfile import check_keys, read_config_file
from rsvlm.errors import RsvlmError

SUITE_DIR = Path(__file__).resolve().parent / "suites"
"""Where the shipped suites live (package data)."""

FAMILIES = ("contrastive", "chat", "embeddings")
"""Which models a task runs for: contrastive models, chat models, or none (published embeddings)."""


@dataclass(frozen=True)
class DataSpec:
    """Where a task's data is; every path is relative to the data root given at run time."""

    path: str
    format: str | None = None
    images: str | None = None
    split: str | None = None
    manifest: str | None = None
    """A shipped manifest's file name (``bench/manifests``), or the resolved path of a user suite's own."""
    limit: int | None = None
    """Only the first N usable samples (images for retrieval), in dataset order, after the manifest filter."""


@dataclass(frozen=True)
class Anchor:
    """A published number a metric is compared with, and why the comparison is not exact."""

    metric: str
    value: float | None
    """The published number (a suite always gives one; None only when a result file read back lacks it)."""
    model: str
    source: str
    """Citation of the number (paper, and where this repo quotes it)."""
    protocol_difference: str
    """How the published protocol differs from the suite's (test set, image size, prompts …)."""


@dataclass(frozen=True)
class TaskSpec:
    """One evaluation: a kind on some data, reporting some metrics, with options and anchors."""

    id: str
    kind: str
    data: DataSpec
    metrics: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    anchors: tuple[Anchor, ...] = ()
    description: str = ""

    @property
    def family(self) -> str:
        """``contrastive``, ``chat`` or ``embeddings``, from the kind."""
        return KINDS[self.kind].family


@dataclass(frozen=True)
class Suite:
    """A named, versioned list of tasks."""

    name: str
    version: int
    description: str
    tasks: tuple[TaskSpec, ...]

    def task(self, task_id: str) -> TaskSpec:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise RsvlmError(f"suite {self.name} has no task {task_id!r} (tasks: {', '.join(t.id for t in self.tasks)})")

    def manifests(self) -> list[str]:
        """Manifest names the tasks use, each once, in task order."""
        return list(dict.fromkeys(t.data.manifest for t in self.tasks if t.data.manifest))


def list_suites() -> list[str]:
    """Names of the shipped suites."""
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml")) if SUITE_DIR.is_dir() else []


def load_suite(name_or_path: str | Path) -> Suite:
    """A shipped suite by name (``smoke``, ``rs-core``) or a suite YAML file, fully validated."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text:
        path = Path(text)
        if not path.exists():
            raise RsvlmError(f"suite file {path} not found: check the path, or use one of {', '.join(list_suites())}")
        return _parse(read_config_file(path), str(path), path.parent, expected_name=None)
    path = SUITE_DIR / f"{text}.yaml"
    if not path.is_file():
        raise RsvlmError(f"unknown suite {text!r}: use one of {', '.join(list_suites())} or a suite YAML file")
    return _parse(read_config_file(path), path.name, None, expected_name=text)


# ---- strict parsing -------------------------------------------------------------------------------------------
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def _str(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RsvlmError(f"{where}: {what} must be a non-empty string, got {value!r}")
    return value.strip()


def _opt_str(value: Any, where: str, what: str) -> str | None:
    return None if value is None else _str(value, where, what)


def _required(data: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise RsvlmError(f"{where}: missing key {missing[0]!r}")


def _parse(data: Any, file: str, base: Path | None, expected_name: str | None) -> Suite:
    top = check_keys(Suite, data, file)
    _required(top, ("name", "version", "description", "tasks"), file)
    name = _str(top["name"], file, "name")
    if not _ID.match(name):
        raise RsvlmError(f"{file}: name {name!r} must be lower-case letters, digits, '.', '_' or '-'")
    if expected_name is not None and name != expected_name:
        raise RsvlmError(f"{file}: declares name {name!r}; a shipped suite's name must match its file name")
    version = top["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RsvlmError(f"{file}: version must be an integer >= 1 (raise it when the suite changes), got {version!r}")
    tasks_raw = top["tasks"]
    if not isinstance(tasks_raw, list) or not tasks_raw:
        raise RsvlmError(f"{file}: tasks must be a non-empty list")
    tasks: list[TaskSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(tasks_raw):
        task = _task(raw, file, i, base)
        if task.id in seen:
            raise RsvlmError(f"{file}: task {task.id!r}: duplicate task id (ids must be unique within a suite)")
        seen.add(task.id)
        tasks.append(task)
    return Suite(name, version, _str(top["description"], file, "description"), tuple(tasks))


def _task(raw: Any, file: str, index: int, base: Path | None) -> TaskSpec:
    task_id = raw.get("id") if isinstance(raw, dict) else None
    where = f"{file}: task {task_id!r}" if isinstance(task_id, str) else f"{file}: tasks[{index}]"
    top = check_keys(TaskSpec, raw, where)
    _required(top, ("id", "kind", "data", "metrics"), where)
    task_id = _str(top["id"], where, "id")
    if not _ID.match(task_id):
        raise RsvlmError(f"{where}: id must be lower-case letters, digits, '.', '_' or '-' (it names result files)")
    kind = top["kind"]
    if not isinstance(kind, str) or kind not in KINDS:
        raise RsvlmError(f"{where}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    spec = KINDS[kind]
    metrics = _metrics(top["metrics"], kind, where)
    anchors_raw = top.get("anchors") or []
    if not isinstance(anchors_raw, list):
        raise RsvlmError(f"{where}: anchors must be a list of {{metric, value, model, source, protocol_difference}}")
    return TaskSpec(
        id=task_id,
        kind=kind,
        data=_data(top["data"], spec, f"{where}: data", base),
        metrics=metrics,
        options=_options(top.get("options"), kind, where),
        anchors=tuple(_anchor(a, metrics, f"{where}: anchors[{k}]") for k, a in enumerate(anchors_raw)),
        description=_str(top["description"], where, "description") if top.get("description") is not None else "",
    )


def _metrics(value: Any, kind: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(m, str) for m in value):
        raise RsvlmError(f"{where}: metrics must be a non-empty list of metric names")
    known = KINDS[kind].metrics
    for m in value:
        if m not in known:
            raise RsvlmError(f"{where}: unknown metric {m!r} for {kind} (known: {', '.join(known)})")
    if len(set(value)) != len(value):
        raise RsvlmError(f"{where}: metric {next(m for m in value if value.count(m) > 1)!r} is listed twice")
    return tuple(value)


def _rel_path(value: Any, where: str, what: str) -> str:
    text = _str(value, where, what)
    parts = PurePosixPath(text).parts
    if text.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", text) or ".." in parts or "\\" in text:
        raise RsvlmError(f"{where}: {what} {text!r} must be relative to the data root (no '/', '~' or '..' prefix)")
    return text


def _data(value: Any, spec: Kind, where: str, base: Path | None) -> DataSpec:
    data = check_keys(DataSpec, value, where)
    _required(data, ("path",), where)
    fmt = _opt_str(data.get("format"), where, "format")
    if fmt is not None:
        from rsvlm.data.registry import FORMATS

        if fmt not in FORMATS:
            raise RsvlmError(f"{where}: unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    limit = data.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise RsvlmError(f"{where}: limit must be a positive integer or omitted, got {limit!r}")
    spec_data = DataSpec(
        path=_rel_path(data["path"], where, "path"),
        format=fmt,
        images=_rel_path(data["images"], where, "images") if data.get("images") is not None else None,
        split=_opt_str(data.get("split"), where, "split"),
        manifest=_manifest(data.get("manifest"), where, base),
        limit=limit,
    )
    if spec.family == "embeddings":
        extra = [k for k in ("format", "images", "split", "limit") if getattr(spec_data, k) is not None]
        if extra:
            raise RsvlmError(f"{where}: {extra[0]} does not apply to an embeddings folder; remove it")
    return spec_data


def _manifest(value: Any, where: str, base: Path | None) -> str | None:
    """The shipped manifest's file name, or (user suites only) the resolved path of one beside the suite."""
    if value is None:
        return None
    from rsvlm.bench.manifest import MANIFEST_DIR, manifest_names

    name = _str(value, where, "manifest")
    if "/" not in name and "\\" not in name and (MANIFEST_DIR / name).is_file():
        return name
    if base is not None and (base / name).is_file():
        return str((base / name).resolve())
    beside = " or a file beside the suite" if base is not None else ""
    raise RsvlmError(
        f"{where}: manifest {name!r} not found (shipped: {', '.join(manifest_names()) or 'none'}{beside}; "
        "build shipped ones with scripts/make_manifests.py)"
    )


_TYPE_TEXT = {
    "str": "a non-empty string",
    "int": "a positive integer",
    "int|None": "a positive integer or null",
    "float": "a number",
    "bool": "true or false",
    "list[int]": "a non-empty list of integers",
    "list[str]": "a list of strings",
}


def _typed(value: Any, kind: str) -> tuple[bool, Any]:
    """(valid, normalised value) of ``value`` for an option type; lists become tuples."""
    if kind == "int|None" and value is None:
        return True, None
    if kind in ("int", "int|None"):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1, value
    if kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if kind == "bool":
        return isinstance(value, bool), value
    if kind == "str":
        return isinstance(value, str) and bool(value.strip()), value
    if kind == "list[int]":
        ok = (
            isinstance(value, list)
            and bool(value)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        )
        return ok, tuple(value) if ok else value
    if kind == "list[str]":
        ok = isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
        return ok, tuple(value) if ok else value
    raise AssertionError(f"option type {kind} has no check")  # pragma: no cover - KINDS is fixed


def _options(value: Any, kind: str, where: str) -> dict[str, Any]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise RsvlmError(f"{where}: options must be a mapping, got {type(value).__name__}")
    allowed = KINDS[kind].options
    out = {key: default for key, (_, default) in allowed.items()}
    for key, raw in value.items():
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise RsvlmError(f"{where}: unknown option {key!r} for {kind} (known: {known})")
        type_name = allowed[key][0]
        ok, normalised = _typed(raw, type_name)
        if not ok:
            raise RsvlmError(f"{where}: option {key!r} must be {_TYPE_TEXT[type_name]}, got {raw!r}")
        out[key] = normalised
    _check_option_values(out, kind, where)
    return out


def _check_option_values(options: dict[str, Any], kind: str, where: str) -> None:
    """Checks that need more than a type: known protocols and template sets, fractions in range."""
    if "protocol" in options:
        from rsvlm.tasks.chat.protocols import load_protocol

        try:
            protocol = load_protocol(options["protocol"])
        except RsvlmError as exc:
            raise RsvlmError(f"{where}: option 'protocol': {exc}") from None
        if protocol.task != kind:
            raise RsvlmError(f"{where}: protocol {protocol.id} is for the {protocol.task} task, not {kind}")
    if "templates" in options:
        from rsvlm.tasks.templates import template_sets

        if options["templates"] not in template_sets():
            raise RsvlmError(
                f"{where}: unknown template set {options['templates']!r} (known: {', '.join(template_sets())})"
            )
    if kind == "golden-zeroshot":
        from rsvlm.tasks.templates import load_templates, template_name

        names = {"averageprompt", *(template_name(t) for t in load_templates("rs-transclip-106"))}
        if options["template"] not in names:
            raise RsvlmError(
                f"{where}: template {options['template']!r} is not averageprompt or one of the 106 released templates"
            )
    if kind in ("few-shot", "golden-few-shot"):  # known methods and their options, shots >= 1, seeds in range
        from rsvlm.bench.kinds._fewshot import settings

        try:
            settings(options)
        except RsvlmError as exc:
            raise RsvlmError(f"{where}: {exc}") from None
    if "test_fraction" in options and not 0 < options["test_fraction"] < 1:
        raise RsvlmError(f"{where}: option 'test_fraction' must lie strictly between 0 and 1")


def _anchor(value: Any, metrics: tuple[str, ...], where: str) -> Anchor:
    data = check_keys(Anchor, value, where)
    _required(data, ("metric", "value", "model", "source", "protocol_difference"), where)
    metric = _str(data["metric"], where, "metric")
    if metric not in metrics:
        raise RsvlmError(f"{where}: anchor metric {metric!r} is not among the task's metrics ({', '.join(metrics)})")
    number = data["value"]
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise RsvlmError(f"{where}: value must be a number, got {number!r}")
    return Anchor(
        metric=metric,
        value=float(number),
        model=_str(data["model"], where, "model"),
        source=_str(data["source"], where, "source"),
        protocol_difference=_str(data["protocol_difference"], where, "protocol_difference"),
    )
