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
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise RsvlmError(f"--labels names {', '.join(repeated)} more than once; give each class once")
    import numpy as np

    from rsvlm.cli.common import check_image_files
    from rsvlm.data.names import class_name_map
    from rsvlm.models.openclip import load_contrastive
    from rsvlm.pipeline import class_text_embeddings, embed_images
    from rsvlm.tasks.embeddings import average_normalised
    from rsvlm.tasks.templates import load_templates

    prompts = load_templates(templates)  # a bad template file or image fails before the (slow) model load
    # Two labels that read alike ("bare_land,BareLand") would share one prompt and one score.
    readable = class_name_map(names, fix="give each --labels entry a distinct name")
    check_image_files(images)
    clip = load_contrastive(model, weights, download=download)
    texts = average_normalised(list(class_text_embeddings(clip, [readable[n] for n in names], prompts).values()))
    vectors = embed_images(clip, images, use_cache=False)
    logits = float(getattr(clip, "logit_scale", 100.0)) * vectors @ texts.T  # the model's own temperature
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    for path, p in zip(images, probs, strict=True):
        order = np.argsort(-p)[:top]
        ranked = [{"label": names[i], "probability": round(float(p[i]), 4)} for i in order]
        if as_json:
            typer.echo(json.dumps({"image": str(path), "model": clip.name, "labels": ranked}))
        else:
            typer.echo(f"{path}: " + ", ".join(f"{r['label']} {r['probability']:.1%}" for r in ranked))
