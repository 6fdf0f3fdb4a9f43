"""Tables and the accuracy-vs-shots plot of a few-shot comparison (``rsvlm.adapt.protocol`` results), as HTML
fragments, a self-contained page and Markdown.

``rsvlm eval few-shot --out``, the ``few-shot`` bench kinds and ``benchmarks/fewshot_table.py`` all draw a result
through here, so the three show the same numbers the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rsvlm.bench import plots
from rsvlm.htmlkit import esc, table

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;
line-height:1.45;padding:0 1rem} h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0} td,th{border:1px solid #ddd;padding:.25rem .55rem;text-align:left;
font-size:.9rem} th{background:#f4f4f4} td.num{text-align:right;white-space:nowrap} .muted{color:#666;font-size:.88rem}
figure{margin:.4rem 0} figure.chart{overflow-x:auto} figcaption{font-size:.85rem;color:#444}
"""


def _pm(mean: Any, std: Any) -> str:
    m, s = plots.number(mean), plots.number(std)
    if m is None:
        return "—"
    return f"{m:.2f} ± {s:.2f}" if s is not None else f"{m:.2f}"


def _cell(row: Mapping[str, Any]) -> str:
    """mean ± std over seeds; zero-shot (scored once) and single-seed rows have no spread to show."""
    runs = row.get("per_seed")
    spread = bool(row.get("shots")) and (not isinstance(runs, list) or len(runs) > 1)
    return _pm(row.get("top1"), row.get("top1_std") if spread else None)


def _label(row: Mapping[str, Any]) -> str:
    return str(row.get("method")) + (" + TransCLIP" if row.get("transductive") else "")


def _rows(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    rows = result.get("rows")
    return [r for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else []


def _shots(result: Mapping[str, Any]) -> list[int]:
    shots = result.get("shots")
    return [int(k) for k in shots if isinstance(k, int)] if isinstance(shots, list) else []


def zero_shot(result: Mapping[str, Any], transductive: bool = False) -> Mapping[str, Any] | None:
    """The zero-shot baseline's row (scored once, shots 0)."""
    return next((r for r in _rows(result) if not r.get("shots") and bool(r.get("transductive")) == transductive), None)


def curves(result: Mapping[str, Any], transductive: bool = False) -> str:
    """The accuracy-vs-shots line chart: one line per trained method, zero-shot dashed."""
    shots = _shots(result)
    series: dict[str, list[float | None]] = {}
    spread: dict[str, list[float | None]] = {}
    for r in _rows(result):
        if not r.get("shots") or bool(r.get("transductive")) != transductive:
            continue
        name = _label(r)
        series.setdefault(name, [None] * len(shots))
        spread.setdefault(name, [None] * len(shots))
        if r["shots"] in shots:
            series[name][shots.index(r["shots"])] = plots.number(r.get("top1"))
            spread[name][shots.index(r["shots"])] = plots.number(r.get("top1_std"))
    base = zero_shot(result, transductive)
    refs = {_label(base): plots.number(base.get("top1"))} if base else {}
    if not series:
        return ""
    title = f"{result.get('source') or 'few-shot'}: top-1 vs shots" + (" (TransCLIP)" if transductive else "")
    return plots.line_chart([str(k) for k in shots], series, title, spread=spread, references=refs)


Grid = tuple[list[str], list[list[str]]]
"""A table as (header, rows of cell text): drawn as HTML, Markdown or a terminal table."""


def top1_grid(result: Mapping[str, Any]) -> Grid:
    """Top-1 per method (and its TransCLIP refinement) and shot count, mean ± std over seeds."""
    shots = _shots(result)
    body: dict[str, list[str]] = {}
    for r in _rows(result):
        cells = body.setdefault(_label(r), ["—"] * (len(shots) + 1))
        column = 0 if not r.get("shots") else shots.index(r["shots"]) + 1 if r.get("shots") in shots else None
        if column is not None:
            cells[column] = _cell(r)
    return ["method", "0-shot", *(f"{k}-shot" for k in shots)], [[n, *c] for n, c in body.items()]


def timing_grid(result: Mapping[str, Any]) -> Grid:
    """Seconds to fit each method, per shot count (mean over seeds)."""
    shots = _shots(result)
    body: dict[str, list[str]] = {}
    for r in _rows(result):
        if r.get("transductive") or not r.get("shots") or r.get("shots") not in shots:
            continue
        cells = body.setdefault(str(r.get("method")), ["—"] * len(shots))
        seconds = plots.number(r.get("fit_seconds"))
        cells[shots.index(r["shots"])] = f"{seconds:.3f}" if seconds is not None else "—"
    return ["method", *(f"{k}-shot" for k in shots)], [[n, *c] for n, c in body.items()]


def b2n_grid(result: Mapping[str, Any]) -> Grid:
    """Base, novel and harmonic-mean accuracy per method that generalises."""
    b2n = result.get("base_to_novel")
    rows = [r for r in b2n.get("rows") or [] if isinstance(r, Mapping)] if isinstance(b2n, Mapping) else []
    body = []
    for r in rows:
        runs = r.get("per_seed")
        spread = bool(r.get("trains")) and (not isinstance(runs, list) or len(runs) > 1)  # one run: no spread
        cells = [_pm(r.get(k), r.get(f"{k}_std") if spread else None) for k in ("base", "novel")]
        body.append([str(r.get("method")), *cells, _pm(r.get("hm"), None)])
    return ["method", "base", "novel", "harmonic mean"], body


def b2n_title(result: Mapping[str, Any]) -> str:
    b2n = result.get("base_to_novel")
    if not isinstance(b2n, Mapping):
        return ""
    base, novel = len(b2n.get("base_classes") or []), len(b2n.get("novel_classes") or [])
    return (
        f"Base-to-novel: {b2n.get('shots', '?')} shots on the {base} base classes, scored on them and the {novel} novel"
    )


def _html(grid: Grid) -> str:
    header, rows = grid
    return table(header, rows, numeric=range(1, len(header))) if rows else ""


def _md(grid: Grid) -> list[str]:
    header, rows = grid
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header), *(f"| {' | '.join(r)} |" for r in rows)]


def notes_of(result: Mapping[str, Any]) -> list[str]:
    notes = [
        f"{s.get('method')}: skipped — {s.get('reason')}" for s in result.get("skipped") or [] if isinstance(s, Mapping)
    ]
    notes += [f"{s.get('shots')}-shot: skipped — {s.get('reason')}" for s in result.get("skipped_shots") or []
              if isinstance(s, Mapping)]  # fmt: skip
    b2n = result.get("base_to_novel")
    if isinstance(b2n, Mapping):
        notes += [f"base-to-novel: {b2n['note']}"] if b2n.get("note") else []
        notes += [f"{s.get('method')}: no base-to-novel — {s.get('reason')}" for s in b2n.get("not_measured") or []
                  if isinstance(s, Mapping)]  # fmt: skip
    return notes


def _facts(result: Mapping[str, Any]) -> str:
    majority = result.get("majority") if isinstance(result.get("majority"), Mapping) else {}
    facts = [
        ["protocol", str(result.get("protocol"))],
        ["split", f"{result.get('split')}: {result.get('n_train')} train, {result.get('n_test')} test images"],
        ["classes", str(len(result.get("classes") or []))],
        ["seeds", ", ".join(map(str, result.get("seeds") or []))],
        ["majority-class baseline (top-1)", _pm(majority.get("top1"), None)],  # type: ignore[union-attr]
    ]
    return table(["", ""], facts)


def section_html(result: Mapping[str, Any], heading: str = "") -> str:
    """One dataset's comparison: facts, the plot(s), top-1 (mean ± std over seeds), fit times, base-to-novel."""
    if not _rows(result):
        return ""
    parts = [f"<h3>{esc(heading)}</h3>"] if heading else []
    parts.append(_facts(result))
    for transductive in (False, True):
        svg = curves(result, transductive)
        if svg:
            caption = "Mean top-1 over seeds, bars ± one standard deviation; dashed: zero-shot (learns nothing)."
            parts.append(f'<figure class="chart" data-plot="few-shot">{svg}<figcaption>{caption}</figcaption></figure>')
    parts.append("<h4>Top-1 accuracy (%), mean ± std over seeds</h4>" + _html(top1_grid(result)))
    timing = _html(timing_grid(result))
    if timing:
        parts.append("<h4>Fit time (seconds, mean over seeds)</h4>" + timing)
    b2n = _html(b2n_grid(result))
    if b2n:
        parts.append(f"<h4>{esc(b2n_title(result))}</h4>{b2n}")
    notes = notes_of(result)
    if notes:
        parts.append("<ul>" + "".join(f'<li class="muted">{esc(n)}</li>' for n in notes) + "</ul>")
    return "".join(parts)


def page_html(sections: Sequence[tuple[str, Mapping[str, Any]]], title: str, intro: str = "", outro: str = "") -> str:
    """A self-contained HTML page (inline CSS and SVG, nothing fetched) with one section per dataset; ``intro`` and
    ``outro`` are HTML the caller escaped."""
    body = "".join(f"<h2>{esc(name)}</h2>{section_html(result)}" for name, result in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><h1>{esc(title)}</h1>{intro}{body}{outro}"
        "</body></html>\n"
    )


def markdown(result: Mapping[str, Any]) -> list[str]:
    """The top-1 table (mean ± std), base-to-novel rows and the notes as Markdown lines."""
    lines = _md(top1_grid(result))
    if b2n_grid(result)[1]:
        lines += ["", b2n_title(result) + ":", "", *_md(b2n_grid(result))]
    notes = notes_of(result)
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return lines
