"""``rsvlm classify``: zero-shot labels for a few images from a list of class names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rsvlm.errors import RsvlmError


def classify(
    images: Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, GeoTIFF …).")],
    labels: Annotated[str, typer.Option("--labels", "-l", help='Comma-separated class names, e.g. "airport,forest".')],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Registry name (see `rsvlm models`); the default model when omitted."),
    ] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Local weights file for --model.")] = None,
    download: Annotated[bool, typer.Option("--download", help="Allow fetching released weights.")] = False,
    templates: Annotated[str, typer.Option("--templates", help="Template set or file.")] = "rs-default",
    top: Annotated[int, typer.Option("--top", min=1, help="How many labels to show per image.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines, one per image.")] = False,
) -> None:
    """Rank the given labels for each image (CLIP-style zero-shot, prompt ensemble)."""
    names = [n.strip() for n in labels.split(",") if n.strip()]
    if len(names) < 2:
        raise RsvlmError("--labels needs at least two comma-separated class names")
    from rsvlm.api import check_images, check_labels, load_model

    # bad labels, a bad template file or a bad image fail before the (slow) model load
    check_labels(names, templates, option="--labels")
    check_images(images)
    clip = load_model(model, weights, download=download)
    for result in clip.classify(images, names, templates=templates):
        ranked = [{"label": label, "probability": round(p, 4)} for label, p in result.top(top)]
        if as_json:
            typer.echo(json.dumps({"image": str(result.image), "model": clip.name, "labels": ranked}))
        else:
            typer.echo(f"{result.image}: " + ", ".join(f"{r['label']} {r['probability']:.1%}" for r in ranked))
