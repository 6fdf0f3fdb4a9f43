"""Rich tables for summaries printed to a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

_HEADERS = {"unmatched_items": "unpaired", "unmatched_annotations": "unpaired annotations"}


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        numeric = bool(rows) and all(isinstance(r[i], int | float) for r in rows)
        table.add_column(_HEADERS.get(c, c), justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    return table


def render_summary(summary: dict[str, Any]) -> None:
    console = Console()
    if summary["format"] == "raster":
        rows = [[k, v] for k, v in summary.items() if k not in ("format",)]
        console.print(_table(f"raster {summary['path']}", ["field", "value"], rows))
        return
    console.print(
        f"[bold]{summary['path']}[/bold]  format [cyan]{summary['format']}[/cyan]  "
        f"{summary['samples']:,} samples, {summary['images']:,} images"
    )
    keys = sorted({k for counts in summary["splits"].values() for k in counts})
    order = [
        "images",
        "samples",
        "captions",
        "questions",
        "boxes",
        "turns",
        "unmatched_items",
        "unmatched_annotations",
    ]
    keys = [k for k in order if k in keys]
    console.print(
        _table(
            "splits",
            ["split", *keys],
            [[n, *(c.get(k, 0) for k in keys)] for n, c in summary["splits"].items()],
        )
    )
    if summary["classes"]:
        names = summary["class_names"]
        console.print(
            _table(
                "classes",
                ["class", "readable name", "samples"],
                [[c, names.get(c, c), n] for c, n in summary["classes"].items()],
            )
        )
    if summary["question_types"]:
        console.print(
            _table(
                "question types",
                ["type", "questions"],
                [list(kv) for kv in summary["question_types"].items()],
            )
        )
    if summary["box_labels"]:
        console.print(_table("box labels", ["label", "boxes"], [list(kv) for kv in summary["box_labels"].items()]))
    if summary["image_sizes"]:
        console.print(
            _table(
                "image sizes",
                ["width x height", "bands", "dtype", "images"],
                [
                    [f"{s['width']}x{s['height']}", s["bands"], s["dtype"], s["count"]]
                    for s in summary["image_sizes"][:10]
                ],
            )
        )
        if len(summary["image_sizes"]) > 10:
            console.print(f"… and {len(summary['image_sizes']) - 10} more sizes (see --json)")
    if summary["unmatched"]:
        console.print(
            _table(
                "not paired (reported, not dropped silently)",
                ["split", "reason", "items", "annotations", "examples"],
                [
                    [u["split"], u["reason"], u["items"], u["annotations"], ", ".join(u["examples"])]
                    for u in summary["unmatched"]
                ],
            )
        )
    for u in summary["unreadable"]:
        console.print(f"[red]unreadable[/red] {u['path']}: {u['error']}")
    for note in summary["notes"]:
        console.print(f"[yellow]note[/yellow] {note}")


def render_result(result: dict[str, Any]) -> None:
    """Headline metrics of an evaluation; the full object is available with --json."""
    console = Console()
    headline = [
        "top1",
        "top5",
        "mean_per_class",
        "i2t_r1",
        "i2t_r5",
        "i2t_r10",
        "t2i_r1",
        "t2i_r5",
        "t2i_r10",
        "mR",
    ]
    rows = [[k, f"{result[k]:.2f}"] for k in headline if isinstance(result.get(k), int | float)]
    rows.append(["n", str(result.get("n"))])
    for k in ("task", "protocol", "model", "embeddings", "data", "split", "template", "transductive", "shots"):
        if result.get(k) is not None:
            rows.append([k, str(result[k])])
    console.print(_table(f"{result.get('task', 'result')}", ["metric", "value"], rows))
    per_template = result.get("per_template")
    if per_template:
        console.print(
            _table(
                "per template (top-1)",
                ["template", "top1"],
                [[t, f"{v:.2f}"] for t, v in per_template.items()],
            )
        )
    per_class = result.get("per_class")
    if per_class:
        console.print(
            _table(
                "per class (accuracy)",
                ["class", "accuracy"],
                [[c, "-" if v is None else f"{v:.1f}"] for c, v in per_class.items()],
            )
        )


def _flatten(prefix: str, value: Any, out: list[list[Any]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, float):
        out.append([prefix, f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}"])
    else:
        out.append([prefix, str(value)])


def render_chat_report(report: dict[str, Any]) -> None:
    """Metrics of a chat-task run, with the full protocol it was scored under (prompts, matching rules)."""
    import json

    console = Console()
    rows: list[list[Any]] = []
    _flatten("", report.get("metrics", {}), rows)
    title = f"{report.get('task')} · {report['model']['name']} · n={report.get('n')}"
    console.print(_table(title, ["metric", "value"], rows))
    console.print(f"protocol: {json.dumps(report.get('protocol'), sort_keys=True)}", soft_wrap=True, markup=False)
    console.print(f"data: {json.dumps(report.get('data'), sort_keys=True)}", soft_wrap=True, markup=False)
    console.print(f"run folder: {report.get('output')} (rerun the same command to resume)", markup=False)
