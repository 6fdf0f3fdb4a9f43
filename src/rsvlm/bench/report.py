"""``report.html`` of a benchmark run: one self-contained file (inline CSS and SVG, base64 images, no URL at all).

It opens from disk, offline, years later: what was run (suite, models, environment, data digests), the
leaderboard with its leakage marks, our numbers beside the published anchors, and per task the plots of its
kind. A malformed detail block costs its plot a one-line note, never the report. ``screenshot`` renders a page
in headless Chromium and returns the console messages, for the test and for ``rsvlm bench``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rsvlm.bench import plots
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
from rsvlm.errors import RsvlmError
from rsvlm.htmlkit import esc, table

MAX_EXAMPLES = 6
"""Examples shown per model and task: enough to see what the model does, few enough to keep the file small."""

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
def _chart(kind: str, svg: str, caption: str = "") -> str:
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure class="chart" data-plot="{esc(kind)}">{svg}{cap}</figure>'


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


# -- per-task sections --------------------------------------------------------------------------------------------
def _details(results: Sequence[ResultRow], key: str) -> dict[str, Any]:
    return {r.model: r.details[key] for r in results if r.details.get(key) is not None}


def _classification(results: Sequence[ResultRow], base: Path) -> str:
    parts = []
    per_class = {
        m: {str(k): plots.number(v) for k, v in pc.items()}
        for m, pc in _details(results, "per_class").items()
        if isinstance(pc, Mapping)
    }
    if per_class:
        parts.append(_chart("per-class", plots.per_class_svg(per_class), "Accuracy per class (recall, percent)."))
    for r in results:
        matrix = r.details.get("confusion")
        if not isinstance(matrix, list) or not matrix:
            continue
        names = r.details.get("class_names") or list(r.details.get("per_class") or {}) or list(range(len(matrix)))
        svg = plots.confusion_svg([str(n) for n in names], matrix, f"{r.model}: confusion (row-normalised)")
        parts.append(
            _chart("confusion", svg, "Rows: true class, columns: predicted class; hover a cell for its count.")
        )
    return "".join(parts)


def _retrieval(results: Sequence[ResultRow], base: Path) -> str:
    parts = []
    for r in results:
        examples = [e for e in r.details.get("examples") or [] if isinstance(e, Mapping)][:MAX_EXAMPLES]
        if examples:
            parts.append(f"<h3>{esc(r.model)}: text → image, top 5</h3>")
            parts += [
                plots.retrieval_html(
                    str(e.get("query", "")), list(e.get("top") or []), list(e.get("correct") or []), base
                )
                for e in examples
            ]
    return "".join(parts)


def _caption(results: Sequence[ResultRow], base: Path) -> str:
    parts = []
    for r in results:
        examples = [e for e in r.details.get("examples") or [] if isinstance(e, Mapping)][:MAX_EXAMPLES]
        if examples:
            parts.append(f"<h3>{esc(r.model)}: captions beside the references</h3>")
            parts += [
                plots.caption_html(
                    str(e.get("image", "")),
                    str(e.get("prediction", "")),
                    [str(x) for x in e.get("references") or []],
                    base,
                )
                for e in examples
            ]
    return "".join(parts)


def _vqa(results: Sequence[ResultRow], base: Path) -> str:
    parts = []
    per_type = {
        m: {str(k): plots.number(v) for k, v in pt.items()}
        for m, pt in _details(results, "per_type").items()
        if isinstance(pt, Mapping)
    }
    if per_type:
        types = list(dict.fromkeys(t for s in per_type.values() for t in s))
        svg = plots.bar_chart(types, per_type, "accuracy per question type", 100.0, "%")
        parts.append(_chart("vqa-types", svg, "Accuracy per question type, one bar per model."))
    for r in results:
        examples = [e for e in r.details.get("examples") or [] if isinstance(e, Mapping)][:MAX_EXAMPLES]
        if not examples:
            continue
        rows = [
            [
                plots.image_html(str(e.get("image", "")), base),
                esc(e.get("question", "")),
                esc(e.get("answer", "")),
                esc(e.get("prediction", "")),
                '<span class="ok">✓</span>' if e.get("correct") else '<span class="bad">✗</span>',
            ]
            for e in examples
        ]
        parts.append(f"<h3>{esc(r.model)}: examples</h3>")
        parts.append(table(["image", "question", "answer", "prediction", ""], rows, raw=True))
    return "".join(parts)


def _counting(results: Sequence[ResultRow], base: Path) -> str:
    pairs = {m: p for m, p in _details(results, "pairs").items() if isinstance(p, list)}
    if not pairs:
        return ""
    clean = {m: [[plots.number(v) for v in row] for row in p if isinstance(row, list)] for m, p in pairs.items()}
    return _chart("counting", plots.scatter_svg(clean), "Each dot is one image; on the dashed line the count is exact.")


def _grounding(results: Sequence[ResultRow], base: Path) -> str:
    parts = []
    for r in results:
        examples = [e for e in r.details.get("examples") or [] if isinstance(e, Mapping)][:MAX_EXAMPLES]
        if not examples:
            continue
        figures = []
        for e in examples:
            iou = plots.number(e.get("iou"))
            svg = plots.grounding_svg(str(e.get("image", "")), e.get("truth"), e.get("prediction"), base)
            note = (
                "no box in the answer" if e.get("prediction") is None else f"IoU {iou:.2f}" if iou is not None else ""
            )
            caption = (
                f'“{esc(e.get("expression", ""))}” — <span class="ok">truth</span>, '
                f'<span class="bad">prediction</span>; {esc(note)}'
            )
            figures.append(
                f'<figure class="chart" data-plot="grounding">{svg}<figcaption>{caption}</figcaption></figure>'
            )
        parts.append(f'<h3>{esc(r.model)}: boxes</h3><div class="grid">{"".join(figures)}</div>')
    return "".join(parts)


def _golden(results: Sequence[ResultRow], base: Path) -> str:
    series = {
        r.model: {
            "published": plots.number(r.details.get("published")),
            "reproduced": plots.number(r.details.get("reproduced")),
        }
        for r in results
        if "published" in r.details or "reproduced" in r.details
    }
    if not series:
        return ""
    svg = plots.bar_chart(["published", "reproduced"], series, "published vs reproduced (top-1, percent)", 100.0, "%")
    return _chart("golden", svg, "The paper's number and ours from the same published embeddings.")


_SECTIONS: dict[str, Callable[[Sequence[ResultRow], Path], str]] = {
    "zeroshot": _classification,
    "linear-probe": _classification,
    "chat-classify": _classification,
    "retrieval": _retrieval,
    "caption": _caption,
    "vqa": _vqa,
    "counting": _counting,
    "grounding": _grounding,
    "golden-zeroshot": _golden,
}


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
    draw = _SECTIONS.get(kind)
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
    page = render_report(run_dir)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    return target


# -- headless Chromium ------------------------------------------------------------------------------------------------
_CONSOLE = re.compile(
    r'^\[[^\]\n]*:CONSOLE[^\]\n]*\] "(?P<message>.*?)", source: (?P<source>[^\n]*?) \((?P<line>\d+)\)$', re.M | re.S
)
"""A page console message as Chromium 150 logs it with ``--enable-logging=stderr``, e.g.
``[29899:29899:1128/003133.621562:INFO:CONSOLE:1] "Uncaught ReferenceError: f is not defined", source: PAGE (1)``
(older builds write ``INFO:CONSOLE(1)``). Messages may span lines; the source and line number end the record."""


def console_messages(stderr: str) -> list[str]:
    """The page console messages in Chromium's stderr, as ``message (source:line)``.

    Chromium logs every console level of web content (log, warn, error, uncaught exceptions) alike at INFO, so the
    level cannot be told apart; a report has no script, so every message it causes counts as an error.
    """
    return [f"{m['message']} ({m['source']}:{m['line']})" for m in _CONSOLE.finditer(stderr)]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(
    html: str | Path, png: str | Path, width: int = 1280, height: int = 2000, timeout: float = 60.0
) -> list[str]:
    """Render ``html`` in headless Chromium, save a ``width`` x ``height`` PNG, return the page's console messages.

    Runs in a throw-away profile (parallel runs do not share a lock) and its own process group, which is killed
    whole on timeout so no renderer outlives the call. Raises ``RsvlmError`` without Chromium or without a PNG.
    """
    exe = chromium_path()
    if exe is None:
        raise RsvlmError("no Chromium to render the report with: install it (Debian: apt-get install chromium)")
    page, shot = Path(html).resolve(), Path(png).resolve()
    if not page.is_file():
        raise RsvlmError(f"{page}: no such page to screenshot")
    shot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="rsvlm-chromium-", ignore_cleanup_errors=True) as profile:
        command = [
            exe,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            f"--window-size={width},{height}",
            "--enable-logging=stderr",
            "--v=0",
            page.as_uri(),
        ]
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.communicate()
            raise RsvlmError(f"Chromium did not render {page.name} within {timeout:g} s") from None
        finally:
            _kill_group(proc.pid)  # helpers (zygote, GPU process) of this run only
    if proc.returncode != 0 or not shot.is_file():
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        raise RsvlmError(f"Chromium could not screenshot {page.name} (exit {proc.returncode}): {tail}")
    return console_messages(stderr)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def finish_run(run_dir: str | Path) -> list[Path]:
    """Leaderboards (md, csv, json) and the HTML report of a run folder; what ``rsvlm bench`` ends with."""
    from rsvlm.bench.leaderboard import write_leaderboards

    folder = Path(run_dir)
    boards = write_leaderboards(folder)
    return [boards["md"], boards["csv"], boards["json"], write_report(folder)]
