"""``report.html`` of a benchmark run: one self-contained file (inline CSS and SVG, base64 images, no URL at all).

It opens from disk, offline, years later: what was run (suite, models, environment, data digests), the
leaderboard with its leakage marks, our numbers beside the published anchors, and per task the plots of its
kind (each kind module draws its own section). A malformed detail block costs its plot a one-line note, never the
report.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rsvlm.bench.kinds import KINDS
from rsvlm.bench.leaderboard import (
    LEGEND,
    MARKS,
    Leaderboard,
    ResultRow,
    anchor_table,
    collect,
    fmt,
    leaderboard,
    read_run,
)
from rsvlm.fileio import atomic_write
from rsvlm.htmlkit import esc, table

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;
line-height:1.45;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem} h3{margin-top:1.6rem}
table{border-collapse:collapse;margin:.6rem 0} td,th{border:1px solid #ddd;padding:.25rem .55rem;text-align:left;
font-size:.9rem;vertical-align:top} th{background:#f4f4f4} td.num{text-align:right;white-space:nowrap}
code{font-size:.82rem;word-break:break-all} .muted{color:#666;font-size:.88rem} .cf{color:#555;font-size:.82rem}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5rem .8rem;margin:.8rem 0}
.warn{color:#b71c1c} figure{margin:.4rem 0} figure.chart{overflow-x:auto} figcaption{font-size:.85rem;color:#444}
.thumb{display:inline-block;vertical-align:top;line-height:0} img.thumb{border:1px solid #ccc}
.retrieval{margin:.8rem 0} .retrieval .query{margin:.2rem 0;font-style:italic}
.row{display:flex;flex-wrap:wrap;gap:.5rem}
figure.rank{width:170px} .pair{display:flex;gap:1rem;margin:.8rem 0;align-items:flex-start} .pair ol{margin:.2rem 0}
.grid{display:flex;flex-wrap:wrap;gap:1rem} .grid figure{max-width:250px}
.ok{color:#2e7d32} .bad{color:#c62828}
"""


# -- small HTML helpers (the shared ones are in rsvlm.htmlkit) ---------------------------------------------------
def _anchor_id(text: str, taken: set[str]) -> str:
    base = "task-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x")
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


# -- header -------------------------------------------------------------------------------------------------------
def _header(run: Mapping[str, Any], models: Sequence[str]) -> str:
    finished = run.get("finished")
    facts = [
        ["suite", f"{run.get('suite', '?')} (version {run.get('suite_version', '?')})"],
        ["models", ", ".join(models) or "none"],
        ["started", str(run.get("started") or "—")],
        ["finished", str(finished) if finished else "not finished: the run was interrupted or is still going"],
        ["report written", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")],
    ]
    parts = [table(["run", ""], facts)]
    env = run.get("environment")
    if isinstance(env, Mapping) and env:
        parts.append("<h3>Environment</h3>" + table(["", ""], [[str(k), str(v)] for k, v in env.items()]))
    seeds = run.get("seeds")
    if isinstance(seeds, Mapping) and seeds:
        parts.append("<h3>Seeds</h3>" + table(["", ""], [[str(k), str(v)] for k, v in seeds.items()]))
    data = run.get("data")
    if isinstance(data, Mapping) and data:
        rows = []
        for task, d in data.items():
            d = d if isinstance(d, Mapping) else {}
            verified = d.get("verified")
            mark = '<span class="ok">yes</span>' if verified else '<span class="bad">no</span>'
            rows.append(
                [
                    esc(task),
                    esc(d.get("manifest", "—")),
                    f"<code>{esc(d.get('digest', '—'))}</code>",
                    esc(d.get("files", "—")),
                    mark if verified is not None else "—",
                ]
            )
        parts.append(
            '<h3>Data</h3><p class="muted">SHA-256 digest of each task\'s data manifest; '
            '"verified" means every file was hashed against it before the run.</p>'
            + table(["task", "manifest", "digest (sha256)", "files", "verified"], rows, raw=True, numeric=[3])
        )
    return "".join(parts)


# -- leaderboard and anchors ----------------------------------------------------------------------------------------
def _board_html(board: Leaderboard, ids: Mapping[str, str]) -> str:
    header = ["task", "metric", *board.models]
    rows = []
    for r in board.rows:
        cells = [f'<a href="#{ids[r.task]}">{esc(r.task)}</a>' if r.task in ids else esc(r.task)]
        cells.append(esc(r.metric) + ("" if r.higher_is_better else " ↓"))
        for m in board.models:
            c = r.cells.get(m)
            if c is None:
                cells.append("—")
                continue
            text = esc(fmt(c.value, r.metric))
            if c.best:
                text = f"<b>{text}</b>"
            if c.mark:
                text += f' <span title="{esc(c.seen_status)}">{esc(c.mark)}</span>'
            if c.copy_free is not None:
                text += f' <span class="cf">(copy-free {esc(fmt(c.copy_free, r.metric))})</span>'
            cells.append(text)
        rows.append(cells)
    legend = "".join(f"<li><b>{esc(k)}</b> = {esc(v)}</li>" for k, v in LEGEND.items())
    return (
        table(header, rows, raw=True, numeric=range(2, 2 + len(board.models)))
        + f'<ul class="muted">{legend}<li><b>↓</b> = lower is better; <b>bold</b> = best of the row</li></ul>'
    )


_LEAKAGE = """
<div class="note"><p><b>Leakage.</b> A score is only evidence of generalisation if the model never saw the
evaluation images. Each cell therefore carries the model's <em>seen-in-training</em> status, taken from the
datasets its authors declare: <b>†</b> marks <em>seen</em> (the declared training data contains this dataset's
evaluation images, so the number partly measures memory), <b>?</b> marks <em>not declared</em> (the training data is
unknown and leakage cannot be ruled out); <em>test-split-excluded</em> (trained on the dataset, but not on its test
split) and <em>clean</em> carry no mark. The per-task tables below give the reason for every status.</p>
<p>Remote-sensing datasets re-use the same scenes, so an image can leak under another dataset's name. Where a
<em>copy-free</em> score is shown, the metric was recomputed on the evaluation samples that have no near-duplicate
among the model's training images; a copy-free score well below the full score means the full score is inflated by
copies. Compare models on copy-free scores where they exist, and read † numbers as upper bounds.</p></div>
"""


def _anchors_html(board: Leaderboard) -> str:
    if not board.anchors:
        return '<p class="muted">No task of this suite has a published anchor.</p>'
    header, body = anchor_table(board)
    return (
        '<p class="muted">Each of our numbers beside the published one for the same model and dataset. A difference '
        "is only meaningful together with the protocol difference in the last column (prompts, split, image size, "
        "metric definition).</p>" + table(header, body, numeric=[3, 4, 5])
    )


# -- per-task sections ----------------------------------------------------------------------------------------------
def _summary(results: Sequence[ResultRow]) -> str:
    rows = []
    for r in results:
        metrics = ", ".join(f"{k} {fmt(v, k)}" for k, v in r.metrics.items())
        seen = esc(r.seen_status) + (f" {esc(MARKS[r.seen_status])}" if r.seen_status in MARKS else "")
        if r.seen_reason:
            seen += f'<br><span class="muted">{esc(r.seen_reason)}</span>'
        copy_free = "—"
        if r.copy_free is not None:
            copy_free = esc(", ".join(f"{k} {fmt(v, k)}" for k, v in r.copy_free.items()))
            if r.copy_free_samples is not None:
                copy_free += f' <span class="muted">({r.copy_free_samples} samples)</span>'
        rows.append(
            [
                esc(r.model),
                esc(r.samples if r.samples is not None else "—"),
                esc(f"{r.seconds:.1f}" if r.seconds is not None else "—"),
                esc(metrics),
                copy_free,
                seen,
            ]
        )
    return table(["model", "samples", "seconds", "metrics", "copy-free", "seen in training"], rows, True, [1, 2])


def _task_section(task: str, results: Sequence[ResultRow], base: Path, anchor: str) -> str:
    kind = results[0].kind
    body = [f'<section id="{esc(anchor)}"><h2>{esc(task)} <span class="muted">({esc(kind)})</span></h2>']
    body.append(_summary(results))
    draw = KINDS[kind].section if kind in KINDS else None
    if draw is not None:
        try:
            body.append(draw(results, base))
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            body.append(f'<p class="warn">The plots of this task could not be drawn: {esc(exc)}</p>')
    body.append("</section>")
    return "".join(body)


# -- the page -----------------------------------------------------------------------------------------------------
def render_report(run_dir: str | Path) -> str:
    """The report of a run folder as one HTML string."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    rows = collect(run_dir)
    board = leaderboard(rows, run.get("models") or None)
    by_task: dict[str, list[ResultRow]] = {}
    for r in rows:
        by_task.setdefault(r.task, []).append(r)
    taken: set[str] = set()
    ids = {task: _anchor_id(task, taken) for task in by_task}
    title = f"rsvlm benchmark — {run.get('suite', 'run')}"
    contents = "".join(
        f'<li><a href="#{ids[t]}">{esc(t)}</a> <span class="muted">({esc(r[0].kind)})</span></li>'
        for t, r in by_task.items()
    )
    sections = "".join(_task_section(t, r, run_dir, ids[t]) for t, r in by_task.items())
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1>{_header(run, board.models)}</header><main>"
        f"<h2>Leaderboard</h2>{_board_html(board, ids)}{_LEAKAGE}"
        f"<h2>Anchors</h2>{_anchors_html(board)}"
        f"<h2>Tasks</h2><ul>{contents}</ul>{sections}"
        "</main></body></html>\n"
    )


def write_report(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Write ``report.html`` into the run folder (or to ``path``) and return where it went."""
    target = Path(path) if path is not None else Path(run_dir) / "report.html"
    atomic_write(target, render_report(run_dir))
    return target


def finish_run(run_dir: str | Path) -> list[Path]:
    """Leaderboards (md, csv, json) and the HTML report of a run folder; what ``rsvlm bench`` ends with."""
    from rsvlm.bench.leaderboard import write_leaderboards

    folder = Path(run_dir)
    boards = write_leaderboards(folder)
    return [boards["md"], boards["csv"], boards["json"], write_report(folder)]
