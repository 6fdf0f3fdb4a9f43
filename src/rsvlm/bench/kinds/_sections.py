"""Pieces the kinds' report sections share: a figure around a chart, examples per result, the classification
plots (per-class accuracy and confusion matrices) of every scene-classification kind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsvlm.bench import plots
from rsvlm.htmlkit import esc

if TYPE_CHECKING:
    from rsvlm.bench.leaderboard import ResultRow

MAX_EXAMPLES = 6
"""Examples shown per model and task: enough to see what the model does, few enough to keep the file small."""


def chart(kind: str, svg: str, caption: str = "") -> str:
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure class="chart" data-plot="{esc(kind)}">{svg}{cap}</figure>'


def details(results: Sequence[ResultRow], key: str) -> dict[str, Any]:
    """``details[key]`` of each result that has one, by model."""
    return {r.model: r.details[key] for r in results if r.details.get(key) is not None}


def examples(result: ResultRow) -> list[Mapping[str, Any]]:
    """The first ``MAX_EXAMPLES`` well-formed examples of a result."""
    return [e for e in result.details.get("examples") or [] if isinstance(e, Mapping)][:MAX_EXAMPLES]


def classification(results: Sequence[ResultRow], base: Path) -> str:
    """Accuracy per class (one bar per model) and each model's row-normalised confusion matrix."""
    parts = []
    per_class = {
        m: {str(k): plots.number(v) for k, v in pc.items()}
        for m, pc in details(results, "per_class").items()
        if isinstance(pc, Mapping)
    }
    if per_class:
        parts.append(chart("per-class", plots.per_class_svg(per_class), "Accuracy per class (recall, percent)."))
    for r in results:
        matrix = r.details.get("confusion")
        if not isinstance(matrix, list) or not matrix:
            continue
        names = r.details.get("class_names") or list(r.details.get("per_class") or {}) or list(range(len(matrix)))
        svg = plots.confusion_svg([str(n) for n in names], matrix, f"{r.model}: confusion (row-normalised)")
        parts.append(chart("confusion", svg, "Rows: true class, columns: predicted class; hover a cell for its count."))
    return "".join(parts)
