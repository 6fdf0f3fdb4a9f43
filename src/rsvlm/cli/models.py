"""``rsvlm models``: what can be loaded, from which weights, with which preprocessing."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def models(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the model registry."""
    from rsvlm.models.openclip import weights_dir
    from rsvlm.models.registry import MODELS

    rows = []
    for spec in MODELS.values():
        w = spec.weights
        local = weights_dir() / spec.name / (w.filename.split("/")[-1] if w else "")
        rows.append(
            {
                "name": spec.name,
                "family": spec.family,
                "arch": spec.arch,
                "activation": "QuickGELU" if spec.quick_gelu else "GELU",
                "weights": w.filename if w else None,
                "source": (w.hf_repo and f"hf:{w.hf_repo}") or w.url if w else None,
                "layout": w.layout if w else None,
                "preprocessing": "bicubic resize of the shorter side + centre crop to the tower's input size, "
                "CLIP mean/std",
                "local": str(local) if local.is_file() else None,
                "trained_on": list(spec.trained_on),
                "description": spec.description,
            }
        )
    from rsvlm.models.chat.registry import CHAT_MODELS

    chat_rows = [
        {
            "name": c.name,
            "kind": "chat",
            "family": c.family,
            "layout": c.layout,
            "box_format": c.box_format,
            "source": "packaged" if c.packaged else f"hf:{c.hub_id}",
            "licence": c.licence,
            "description": c.description,
        }
        for c in CHAT_MODELS.values()
    ]
    if as_json:
        typer.echo(json.dumps([{"kind": "contrastive", **r} for r in rows] + chat_rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="contrastive models (weights load from --weights PATH, or ~/.cache/rsvlm/weights/<name>/)")
    for col in ("name", "arch", "activation", "weights", "source", "local"):
        table.add_column(col, overflow="fold", no_wrap=col == "name")
    for r in rows:
        table.add_row(*(str(r[c] or "-") for c in ("name", "arch", "activation", "weights", "source", "local")))
    Console().print(table)
    chat = Table(title="chat models (packaged: ships with rsvlm; others: --model NAME --weights DIR, or --model DIR)")
    for col in ("name", "family", "layout", "box_format", "source"):
        chat.add_column(col, overflow="fold", no_wrap=col == "name")
    for c in chat_rows:
        chat.add_row(*(str(c[k]) for k in ("name", "family", "layout", "box_format", "source")))
    Console().print(chat)
