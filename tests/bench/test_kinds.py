"""The kind registry's contract: every module of ``rsvlm.bench.kinds`` is one complete kind, and adding a module is
all it takes for the suite parser, runner, leaderboard and report to know a new kind."""

from __future__ import annotations

import inspect
import pkgutil
import sys
from pathlib import Path

import pytest

import rsvlm.bench.kinds as kinds_package
from rsvlm.bench.kind import Kind, KindResult
from rsvlm.bench.kinds import KINDS
from rsvlm.bench.leaderboard import LOWER_IS_BETTER, ResultRow, main_metrics
from rsvlm.bench.report import _task_section
from rsvlm.bench.spec import FAMILIES, _typed, list_suites, load_suite
from rsvlm.plugins import discover

OPTION_TYPES = {"str", "int", "int|None", "float", "bool", "list[int]", "list[str]"}


def test_every_public_module_of_the_package_is_one_registered_kind() -> None:
    modules = [m.name for m in pkgutil.iter_modules(kinds_package.__path__) if not m.name.startswith("_")]
    assert sorted(KINDS) == sorted(m.replace("_", "-") for m in modules)
    assert len(KINDS) == 11  # zeroshot, linear-probe, retrieval, golden-zeroshot, five chat kinds, two few-shot


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_kind_declares_everything_the_bench_needs(name: str) -> None:
    kind = KINDS[name]
    assert kind.name == name and kind.family in FAMILIES and kind.description
    assert kind.metrics and len(set(kind.metrics)) == len(kind.metrics)
    assert kind.main_metrics and set(kind.main_metrics) <= set(kind.metrics)
    assert kind.lower_is_better <= set(kind.metrics) and kind.lower_is_better <= LOWER_IS_BETTER
    for option, (type_name, default) in kind.options.items():
        assert type_name in OPTION_TYPES, f"{name}: option {option} has unknown type {type_name}"
        given = list(default) if isinstance(default, tuple) else default
        if not (type_name == "list[str]" and default == ()):
            assert _typed(given, type_name)[0], f"{name}: default of {option} is not a valid {type_name}"
    assert list(inspect.signature(kind.run).parameters) == ["task", "ctx"]
    assert inspect.signature(kind.run).return_annotation in ("KindResult", KindResult)
    with pytest.raises(TypeError):
        kind.options["new"] = ("str", "x")  # type: ignore[index]  # a kind is read-only


@pytest.mark.parametrize("name", sorted(KINDS))
def test_the_leaderboard_rows_of_a_kind_are_its_main_metrics(name: str) -> None:
    kind = KINDS[name]
    assert main_metrics(name, list(reversed(kind.metrics))) == list(kind.main_metrics)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_is_measured_by_a_shipped_suite(name: str) -> None:
    used = {t.kind for suite in list_suites() for t in load_suite(suite).tasks}
    assert name in used, f"no shipped suite runs {name}: `rsvlm bench` would never exercise it"


@pytest.mark.parametrize("name", sorted(k for k in KINDS if KINDS[k].section is not None))
def test_a_section_draws_nothing_from_empty_details_and_survives_garbage(name: str, tmp_path: Path) -> None:
    section = KINDS[name].section
    assert section is not None
    empty = ResultRow(task="t", kind=name, model="m", metrics={})
    assert section([empty], tmp_path) == ""
    garbage = ResultRow(task="t", kind=name, model="m", metrics={}, details={k: 7 for k in _DETAIL_KEYS})
    html = _task_section("t", [garbage], tmp_path, "task-t")  # at worst a one-line note, never a crash
    assert html.startswith('<section id="task-t">') and html.endswith("</section>")


_DETAIL_KEYS = ("examples", "per_class", "confusion", "class_names", "per_type", "pairs", "published", "reproduced")


TOY = """
from rsvlm.bench.kind import Context, Kind, KindResult


def run(task, ctx: Context) -> KindResult:
    return KindResult(samples=1, metrics={"score": 1.0})


KIND = Kind(
    name="toy",
    family="contrastive",
    metrics=("score",),
    options={},
    description="a kind added as one module",
    main_metrics=("score",),
    run=run,
)
"""


def _package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, **modules: str) -> str:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("", encoding="utf-8")
    for module, text in modules.items():
        (folder / f"{module}.py").write_text(text, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    return name


def test_adding_a_kind_is_adding_one_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = _package(tmp_path, monkeypatch, "toykinds", toy=TOY, _shared="HELPER = 1\n")
    found = discover(package, "KIND", Kind)
    assert list(found) == ["toy"] and isinstance(found["toy"], Kind)  # helpers (``_shared``) are no kinds
    assert found["toy"].run(None, None).metrics == {"score": 1.0}  # type: ignore[arg-type]


def test_a_module_without_kind_or_a_kind_defined_twice_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lacking = _package(tmp_path, monkeypatch, "lackingkinds", toy=TOY, other="X = 1\n")
    with pytest.raises(TypeError, match=r"lackingkinds\.other defines no KIND"):
        discover(lacking, "KIND", Kind)
    twice = _package(tmp_path, monkeypatch, "twicekinds", toy=TOY, toy_again=TOY)
    with pytest.raises(TypeError, match="kind 'toy' is defined twice"):
        discover(twice, "KIND", Kind)
