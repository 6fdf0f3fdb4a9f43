"""Leaderboards of a benchmark run folder: one row per (task, main metric), one column per model.

Every cell carries the model's seen-in-training flag (``†`` when the model's declared training data holds the
evaluation images), and the copy-free score (measured on the part with no near-duplicate of a training image)
sits beside it, so a number inflated by leakage can never be read without its caveat. The anchors table puts
each of our numbers next to the published one, with the source and how our protocol differs.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsvlm.bench.kinds import KINDS
from rsvlm.bench.spec import Anchor
from rsvlm.errors import DataError
from rsvlm.fileio import atomic_write, atomic_write_json

LOWER_IS_BETTER = frozenset(m for kind in KINDS.values() for m in kind.lower_is_better)
"""Errors rather than scores (each kind declares its own): the best cell of their row is the smallest."""

MARKS: dict[str, str] = {"seen": "†", "not declared": "?"}
"""Seen-in-training statuses that mark a cell; ``clean`` and ``test-split-excluded`` carry no mark."""

LEGEND: dict[str, str] = {
    "†": "seen in training — the model's declared training data contains this dataset's evaluation images, "
    "so the score measures memory as much as generalisation",
    "?": "training data not declared — leakage cannot be ruled out",
    "copy-free": "the same metric on the evaluation images with no near-duplicate among the model's training images",
    "—": "no value — the model did not run this task, or the metric was undefined",
}


@dataclass(frozen=True)
class ResultRow:
    """One ``results/<model>/<task>.json`` of a run folder."""

    task: str
    kind: str
    model: str
    metrics: dict[str, float | None]
    family: str = ""
    seconds: float | None = None
    samples: int | None = None
    copy_free_samples: int | None = None
    copy_free: dict[str, float | None] | None = None
    seen_status: str = "not declared"
    seen_reason: str = ""
    anchors: tuple[Anchor, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def mark(self) -> str:
        return MARKS.get(self.seen_status, "")


@dataclass(frozen=True)
class Cell:
    value: float | None
    seen_status: str = "not declared"
    copy_free: float | None = None
    best: bool = False

    @property
    def mark(self) -> str:
        return MARKS.get(self.seen_status, "")


@dataclass(frozen=True)
class BoardRow:
    task: str
    kind: str
    metric: str
    cells: dict[str, Cell]

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER


@dataclass(frozen=True)
class AnchorRow:
    task: str
    model: str
    metric: str
    ours: float | None
    published: float | None
    source: str
    protocol_difference: str
    seen_status: str

    @property
    def delta(self) -> float | None:
        return None if self.ours is None or self.published is None else self.ours - self.published


@dataclass(frozen=True)
class Leaderboard:
    models: list[str]
    rows: list[BoardRow]
    anchors: list[AnchorRow]


# -- reading ------------------------------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _metrics(value: Any) -> dict[str, float | None]:
    return {str(k): _number(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _row(path: Path) -> ResultRow:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"unreadable result file: {exc}", "delete it and rerun the benchmark to redo it") from exc
    if not isinstance(data, dict) or not all(k in data for k in ("task", "model", "metrics")):
        raise DataError(path, "a result file needs 'task', 'model' and 'metrics'", "delete it and rerun the benchmark")
    raw_free, raw_seen = data.get("copy_free"), data.get("seen_in_training")
    copy_free: dict[str, Any] = raw_free if isinstance(raw_free, dict) else {}
    seen: dict[str, Any] = raw_seen if isinstance(raw_seen, dict) else {}
    free_samples = copy_free.get("samples")
    anchors = tuple(
        Anchor(
            metric=str(a.get("metric", "")),
            value=_number(a.get("value")),
            model=str(a.get("model", "")),
            source=str(a.get("source", "")),
            protocol_difference=str(a.get("protocol_difference", "")),
        )
        for a in data.get("anchors") or []
        if isinstance(a, dict)
    )
    samples = data.get("samples")
    return ResultRow(
        task=str(data["task"]),
        kind=str(data.get("kind", "")),
        model=str(data["model"]),
        metrics=_metrics(data["metrics"]),
        family=str(data.get("family", "")),
        seconds=_number(data.get("seconds")),
        samples=samples if isinstance(samples, int) else None,
        copy_free=_metrics(copy_free.get("metrics")) if copy_free else None,
        copy_free_samples=free_samples if isinstance(free_samples, int) else None,
        seen_status=str(seen.get("status", "not declared")),
        seen_reason=str(seen.get("reason", "")),
        anchors=anchors,
        details=data["details"] if isinstance(data.get("details"), dict) else {},
        path=path,
    )


def read_run(run_dir: Path) -> dict[str, Any]:
    """``run.json`` of a run folder, or an empty dict when the runner has not written it."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"unreadable run file: {exc}") from exc
    return data if isinstance(data, dict) else {}


def collect(run_dir: str | Path) -> list[ResultRow]:
    """Every result of a run folder, in run.json's task and model order (others after, sorted)."""
    run_dir = Path(run_dir)
    results = run_dir / "results"
    if not results.is_dir():
        raise DataError(results, "no results folder", "run `rsvlm bench` into this folder first")
    rows = [_row(p) for p in sorted(results.glob("*/*.json"))]
    run = read_run(run_dir)
    task_order = {t: i for i, t in enumerate(run.get("data") or {})}
    model_order = {m: i for i, m in enumerate(run.get("models") or [])}
    big = len(task_order) + len(model_order) + 1
    return sorted(rows, key=lambda r: (task_order.get(r.task, big), r.task, model_order.get(r.model, big), r.model))


# -- tables -------------------------------------------------------------------------------------------------------
def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def main_metrics(kind: str, available: Sequence[str]) -> list[str]:
    """The leaderboard metrics of a task: its kind's main ones that were measured, else all of them."""
    main = KINDS[kind].main_metrics if kind in KINDS else ()
    chosen = [m for m in main if m in available]
    return chosen or sorted(available)


def leaderboard(rows: Sequence[ResultRow], models: Sequence[str] | None = None) -> Leaderboard:
    """The leaderboard and anchors table of some results; ``models`` fixes the column order."""
    model_list = _unique([*(models or []), *(r.model for r in rows)])
    by_task: dict[str, list[ResultRow]] = {}
    for r in rows:
        by_task.setdefault(r.task, []).append(r)
    board: list[BoardRow] = []
    for task, results in by_task.items():
        kind = results[0].kind
        available = _unique(m for r in results for m in r.metrics)
        for metric in main_metrics(kind, available):
            cells = {
                r.model: Cell(
                    value=r.metrics.get(metric),
                    seen_status=r.seen_status,
                    copy_free=(r.copy_free or {}).get(metric),
                )
                for r in results
            }
            values = [c.value for c in cells.values() if c.value is not None]
            if len(values) > 1:
                best = min(values) if metric in LOWER_IS_BETTER else max(values)
                cells = {m: Cell(c.value, c.seen_status, c.copy_free, c.value == best) for m, c in cells.items()}
            board.append(BoardRow(task, kind, metric, cells))
    anchors = [
        AnchorRow(
            task=r.task,
            model=r.model,
            metric=a.metric,
            ours=r.metrics.get(a.metric),
            published=a.value,
            source=a.source,
            protocol_difference=a.protocol_difference,
            seen_status=r.seen_status,
        )
        for r in rows
        for a in r.anchors
    ]
    return Leaderboard(model_list, board, anchors)


def fmt(value: float | None, metric: str = "") -> str:
    """Scores (percent) with one decimal, errors in objects (MAE, RMSE) with two; ``—`` for no value."""
    if value is None:
        return "—"
    return f"{value:.2f}" if metric in LOWER_IS_BETTER or metric.endswith("_mae") else f"{value:.1f}"


def cell_text(cell: Cell | None, metric: str) -> str:
    """``93.9 † (copy-free 91.2)``: the score, its leakage mark, and the copy-free score when measured."""
    if cell is None:
        return "—"
    text = fmt(cell.value, metric)
    if cell.mark:
        text += f" {cell.mark}"
    if cell.copy_free is not None:
        text += f" (copy-free {fmt(cell.copy_free, metric)})"
    return text


def legend_lines() -> list[str]:
    """The legend, every mark explained even when unused, so a reader learns what a missing mark means too."""
    return [f"{key} = {text}" for key, text in LEGEND.items()]


def anchor_table(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    header = ["task", "model", "metric", "ours", "published", "Δ", "source", "protocol difference"]
    body = [
        [
            a.task,
            a.model,
            a.metric,
            fmt(a.ours, a.metric) + (f" {MARKS[a.seen_status]}" if a.seen_status in MARKS else ""),
            fmt(a.published, a.metric),
            "—" if a.delta is None else f"{a.delta:+.1f}",
            a.source,
            a.protocol_difference or "none stated",
        ]
        for a in board.anchors
    ]
    return header, body


# -- writers ------------------------------------------------------------------------------------------------------
def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in body]
    return lines


def to_markdown(board: Leaderboard, title: str = "Leaderboard") -> str:
    header = ["task", "metric", *board.models]
    body = [
        [
            r.task,
            r.metric + ("" if r.higher_is_better else " ↓"),
            *(cell_text(r.cells.get(m), r.metric) for m in board.models),
        ]
        for r in board.rows
    ]
    lines = [f"# {title}", "", *_md_table(header, body), ""]
    lines += [f"- {line}" for line in legend_lines()]
    lines += ["- ↓ = lower is better", ""]
    if board.anchors:
        lines += ["## Anchors: our numbers beside the published ones", "", *_md_table(*anchor_table(board)), ""]
    return "\n".join(lines)


def to_csv(board: Leaderboard) -> str:
    """Wide CSV: per model its score, its leakage mark and status, and its copy-free score, as separate columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    per_model = [(m, f"{m} mark", f"{m} seen_in_training", f"{m} copy-free") for m in board.models]
    writer.writerow(["task", "kind", "metric", "higher_is_better", *(c for cols in per_model for c in cols)])
    for r in board.rows:
        values: list[Any] = [r.task, r.kind, r.metric, r.higher_is_better]
        for m in board.models:
            cell = r.cells.get(m)
            if cell is None:
                values += ["", "", "", ""]
            else:
                values += [
                    "" if cell.value is None else repr(cell.value),
                    cell.mark,
                    cell.seen_status,
                    "" if cell.copy_free is None else repr(cell.copy_free),
                ]
        writer.writerow(values)
    return out.getvalue()


def to_json(board: Leaderboard) -> dict[str, Any]:
    return {
        "models": board.models,
        "legend": LEGEND,
        "rows": [
            {
                "task": r.task,
                "kind": r.kind,
                "metric": r.metric,
                "higher_is_better": r.higher_is_better,
                "cells": {
                    m: {
                        "value": c.value,
                        "text": cell_text(c, r.metric),
                        "mark": c.mark,
                        "seen_in_training": c.seen_status,
                        "copy_free": c.copy_free,
                        "best": c.best,
                    }
                    for m, c in r.cells.items()
                },
            }
            for r in board.rows
        ],
        "anchors": [
            {
                "task": a.task,
                "model": a.model,
                "metric": a.metric,
                "ours": a.ours,
                "published": a.published,
                "delta": a.delta,
                "source": a.source,
                "protocol_difference": a.protocol_difference,
                "seen_in_training": a.seen_status,
            }
            for a in board.anchors
        ],
    }


def write_markdown(board: Leaderboard, run_dir: str | Path, title: str = "Leaderboard") -> Path:
    path = Path(run_dir) / "leaderboard.md"
    atomic_write(path, to_markdown(board, title))
    return path


def write_csv(board: Leaderboard, run_dir: str | Path) -> Path:
    path = Path(run_dir) / "leaderboard.csv"
    atomic_write(path, to_csv(board))
    return path


def write_json(board: Leaderboard, run_dir: str | Path) -> Path:
    path = Path(run_dir) / "leaderboard.json"
    atomic_write_json(path, to_json(board), ensure_ascii=False)
    return path


def board_of(run_dir: str | Path) -> Leaderboard:
    """The leaderboard of a run folder, models in run.json's order."""
    return leaderboard(collect(run_dir), read_run(Path(run_dir)).get("models") or None)


def write_leaderboards(run_dir: str | Path) -> dict[str, Path]:
    """``leaderboard.md``, ``.csv`` and ``.json`` of a run folder; returns them by format."""
    board = board_of(run_dir)
    run = read_run(Path(run_dir))
    title = f"Leaderboard — suite {run['suite']}" if run.get("suite") else "Leaderboard"
    return {
        "md": write_markdown(board, run_dir, title),
        "csv": write_csv(board, run_dir),
        "json": write_json(board, run_dir),
    }
