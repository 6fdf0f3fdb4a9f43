"""``rsvlm adapt …``: fit an adaptation method to a user's labelled images (or embeddings) and save the adapter.

``rsvlm adapt fit`` writes an adapter folder that ``rsvlm classify --adapter``, ``rsvlm bench --adapter`` and
``rsvlm.load_model(adapter=…)`` apply; ``rsvlm adapt methods`` lists what can be fitted (read from the method
registry), ``rsvlm adapt show`` prints what a folder holds. Every check that needs no model (method, options,
data, split, shots, templates, output folder) runs before the model loads.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.adapt.saved import Adapter

app = typer.Typer(
    help="Adapt a contrastive model to your classes from a few labelled images; apply with --adapter.",
    no_args_is_help=True,
)


def _note(message: str) -> None:
    print(f"[rsvlm adapt] {message}", file=sys.stderr, flush=True)


@app.command("methods")
def methods(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the adaptation methods, their papers and options (with defaults)."""
    from rsvlm.adapt.methods import METHODS

    rows: list[dict[str, Any]] = [
        {
            "name": m.name,
            "title": m.title,
            "paper": m.paper,
            "needs_model": m.needs_model,
            "needs_pixels": m.needs_pixels,
            "generalises": m.generalises,
            "trains": m.trains,
            "options": {k: {"type": kind, "default": default} for k, (kind, default) in m.options.items()},
        }
        for m in METHODS.values()
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        traits = [
            "needs --model (not --embeddings)" if r["needs_model"] else "runs on --embeddings too",
            "tunes the image tower" if r["needs_pixels"] else "",
            "scores unseen classes" if r["generalises"] else "",
            "" if r["trains"] else "learns nothing (baseline)",
        ]
        typer.echo(f"{r['name']:16s} {r['title']} ({'; '.join(t for t in traits if t)})")
        typer.echo(f"{'':16s} {r['paper']}")
        if r["options"]:
            shown = ", ".join(f"{k}={json.dumps(v['default'])} ({v['type']})" for k, v in r["options"].items())
            typer.echo(f"{'':16s} options: {shown}")


def _check_out(out: Path) -> None:
    """The adapter folder: new, empty, or an adapter folder (refitted in place); never someone's other files."""
    from rsvlm.adapt.saved import CONFIG_FILE

    if out.exists() and not out.is_dir():
        raise RsvlmError(f"{out}: exists and is not a folder; give --out a new folder for the adapter")
    if out.is_dir() and any(out.iterdir()) and not (out / CONFIG_FILE).is_file():
        raise RsvlmError(f"{out}: holds other files and is not an adapter folder; give --out a new or empty folder")


def _check_sources(
    data: Path | None, embeddings: Path | None, model: str | None, weights: Path | None, download: bool,
    data_only: Mapping[str, object],
) -> None:  # fmt: skip
    """One source of labels; precomputed embeddings take none of the options that only images use."""
    if (data is None) == (embeddings is None):
        raise RsvlmError("give the labels with exactly one of --data PATH (labelled images) or --embeddings DIR")
    if embeddings is not None:
        clash = [name for name, value in {"--model": model, "--weights": weights, **data_only}.items() if value]
        if download:
            clash.append("--download")
        if clash:
            raise RsvlmError(f"--embeddings holds features already: drop {', '.join(clash)}")


@app.command("fit")
def fit(
    method: Annotated[str, typer.Option("--method", help="Adaptation method (see `rsvlm adapt methods`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the adapter to.")],
    data: Annotated[
        Path | None, typer.Option("--data", help="Labelled images: a class-per-folder tree or any labelled dataset.")
    ] = None,
    data_format: Annotated[
        str | None, typer.Option("--format", help="Dataset format (see `rsvlm data formats`); detected if omitted.")
    ] = None,
    images: Annotated[Path | None, typer.Option("--images", help="Images folder, when not beside the labels.")] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split", help="Split to learn from (default: train where the data has one); 'all': every split."
        ),
    ] = None,
    class_names: Annotated[
        Path | None,
        typer.Option("--class-names", help="JSON or 'raw=readable' file naming classes for prompts."),
    ] = None,
    shots: Annotated[
        int | None, typer.Option("--shots", min=1, help="Draw K labelled images per class (all when omitted).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the k-shot draw and of training.")] = 1,
    embeddings: Annotated[
        Path | None,
        typer.Option("--embeddings", help="Precomputed labelled embeddings instead of images (features-only methods)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Registry name or spec file (see `rsvlm models`); default model if omitted."
        ),
    ] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Local weights file or folder for --model.")] = None,
    download: Annotated[bool, typer.Option("--download", help="Allow fetching the released weights.")] = False,
    templates: Annotated[
        str, typer.Option("--templates", help="Template set (rs-default, rs-transclip-106) or a text file.")
    ] = "rs-default",
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Feature cache folder (default: ~/.cache/rsvlm/features).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per forward pass.")] = 32,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="Method option KEY=VALUE, e.g. epochs=20 (repeatable; see `rsvlm adapt methods`)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the saved adapter's JSON.")] = False,
) -> None:
    """Fit a method on labelled images (all, or K per class) or embeddings, and save the adapter folder."""
    from rsvlm.adapt.labelled import choose_embeddings, choose_images, fit_on_embeddings, fit_on_images
    from rsvlm.adapt.method import parse_option_values
    from rsvlm.adapt.methods import get_method

    data_only = {
        "--format": data_format, "--images": images, "--split": split, "--class-names": class_names,
        "--templates": templates if templates != "rs-default" else None, "--cache-dir": cache_dir,
    }  # fmt: skip
    _check_sources(data, embeddings, model, weights, download, data_only)
    chosen_method = get_method(method)
    options = chosen_method.check_options(parse_option_values(settings or []))
    _check_out(out)
    if embeddings is not None:
        from_embeddings = choose_embeddings(embeddings, shots=shots, seed=seed)
        adapter = fit_on_embeddings(chosen_method, from_embeddings, options=options)
        counts = _counts(from_embeddings.support.labels, from_embeddings.support.classes.names)
    else:
        from rsvlm.data.names import load_name_map
        from rsvlm.tasks.templates import load_templates

        assert data is not None
        load_templates(templates)  # a bad template set fails before the model loads
        names = load_name_map(class_names) if class_names else None
        chosen = choose_images(
            data, data_format=data_format, images=images, split=split, class_names=names, shots=shots, seed=seed
        )
        where = f"split {chosen.split}" if chosen.split else "all splits" if chosen.dataset.all_splits else "no splits"
        drawn = f", {shots} per class drawn with seed {seed}" if shots is not None else ""
        _note(f"{data}: {len(chosen.records):,} labelled images of {len(chosen.classes)} classes ({where}{drawn})")
        from rsvlm.api import load_model
        from rsvlm.pipeline import rich_progress

        base = load_model(model, weights, download=download).model
        bar, callback = rich_progress("embedding images")
        with bar:
            adapter = fit_on_images(
                chosen_method, base, chosen, options=options, templates=templates, batch_size=batch_size,
                cache_dir=cache_dir, progress=callback,
            )  # fmt: skip
        counts = chosen.counts()
    adapter.save(out)
    _report(adapter, counts, out, as_json)


def _counts(labels: Any, names: list[str]) -> dict[str, int]:
    import numpy as np

    found = np.bincount(labels, minlength=len(names))
    return {n: int(c) for n, c in zip(names, found, strict=True)}


def _report(adapter: Adapter, counts: dict[str, int], out: Path, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"folder": str(out), "examples_per_class": counts, **adapter.config()}))
        return
    sizes = sorted(set(counts.values()))
    each = f"{sizes[0]} examples each" if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]} examples per class"
    typer.echo(
        f"{adapter.method.name} on {adapter.base.name}: {len(counts)} classes, {each} "
        f"({sum(counts.values())} in all), fitted in {adapter.seconds:.2f} s"
    )
    typer.echo("  " + " · ".join(f"{c} {n}" for c, n in counts.items()))
    typer.echo(f"saved to {out} (apply it with --adapter {out})")


@app.command("show")
def show(folder: Annotated[Path, typer.Argument(help="Adapter folder (from `rsvlm adapt fit`).")]) -> None:
    """Print what an adapter folder holds: method, options, classes, shots, seed, base model, training data."""
    from rsvlm.adapt.saved import read_adapter_config

    typer.echo(json.dumps(read_adapter_config(folder), indent=2, ensure_ascii=False))
