"""``rsvlm classify``: labels for a few images, zero-shot from a list of class names or from a fitted adapter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rsvlm.errors import RsvlmError


def classify(
    images: Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, GeoTIFF …).")],
    labels: Annotated[
        str | None,
        typer.Option(
            "--labels", "-l", help='Comma-separated class names, e.g. "airport,forest" (with --adapter: its classes).'
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Registry name (see `rsvlm models`); the default model when omitted."),
    ] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Local weights file for --model.")] = None,
    download: Annotated[bool, typer.Option("--download", help="Allow fetching released weights.")] = False,
    adapter: Annotated[
        Path | None,
        typer.Option("--adapter", help="Adapter folder from `rsvlm adapt fit` (fitted on this --model/--weights)."),
    ] = None,
    templates: Annotated[
        str, typer.Option("--templates", help="Template set or file (zero-shot; an adapter keeps its own prompts).")
    ] = "rs-default",
    top: Annotated[int, typer.Option("--top", min=1, help="How many labels to show per image.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines, one per image.")] = False,
) -> None:
    """Rank the labels for each image: CLIP-style zero-shot (prompt ensemble), or an adapter's classes."""
    names = [n.strip() for n in labels.split(",") if n.strip()] if labels is not None else None
    from rsvlm.api import check_adapter_labels, check_images, check_labels, load_model

    # bad labels, a bad adapter folder, a bad template file or a bad image fail before the (slow) model load
    if adapter is not None:
        from rsvlm.adapt.saved import read_adapter_config

        check_adapter_labels([str(c) for c in read_adapter_config(adapter)["classes"]], names, option="--labels")
    elif names is None or len(names) < 2:
        raise RsvlmError("--labels needs at least two comma-separated class names (or give --adapter DIR)")
    else:
        check_labels(names, templates, option="--labels")
    check_images(images)
    clip = load_model(model, weights, download=download, adapter=adapter)
    for result in clip.classify(images, names, templates=templates):
        ranked = [{"label": label, "probability": round(p, 4)} for label, p in result.top(top)]
        if as_json:
            line: dict[str, object] = {"image": str(result.image), "model": clip.name, "labels": ranked}
            if clip.adapter is not None:
                line["adapter"] = {"folder": str(adapter), "method": clip.adapter.method.name}
            typer.echo(json.dumps(line))
        else:
            typer.echo(f"{result.image}: " + ", ".join(f"{r['label']} {r['probability']:.1%}" for r in ranked))
