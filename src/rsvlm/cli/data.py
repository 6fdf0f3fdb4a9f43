"""``rsvlm data …``: look inside datasets and rasters before using them."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Inspect datasets and raster files.", no_args_is_help=True)


@app.command("formats")
def formats() -> None:
    """List the dataset formats rsvlm reads."""
    from rsvlm.data.registry import FORMATS, format_class

    width = max(len(name) for name in FORMATS)
    for name in FORMATS:
        typer.echo(f"{name:{width}s} {format_class(name).description}")


@app.command("info")
def info(
    path: Annotated[Path, typer.Argument(help="Dataset folder or annotation file, or one raster/image file.")],
    format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="Dataset format (see `rsvlm data formats`); detected when omitted."),
    ] = None,
    images: Annotated[
        Path | None, typer.Option(help="Folder holding the images, when they are not beside the annotations.")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Only this split.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="Decode every image fully to find truncated files (slower).")
    ] = False,
    no_images: Annotated[
        bool, typer.Option("--no-images", help="Skip reading image headers (faster; no sizes).")
    ] = False,
) -> None:
    """Counts per split, class and question type, image sizes and bands, and unmatched items."""
    from rsvlm.data.raster import is_image_file

    if path.is_file() and is_image_file(path) and format is None:
        from rsvlm.data.info import raster_summary
        from rsvlm.data.raster import inspect_raster, verify_raster

        if verify:
            verify_raster(path)
        _emit(raster_summary(inspect_raster(path)), as_json)
        return

    from rsvlm.data.info import dataset_summary
    from rsvlm.data.registry import open_dataset

    dataset = open_dataset(path, format=format, images=images, split=split)
    if as_json or no_images:
        summary = dataset_summary(dataset, inspect_images=not no_images, verify=verify)
    else:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("reading image headers", total=None)
            summary = dataset_summary(
                dataset,
                verify=verify,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    _emit(summary, as_json)


@app.command("samples")
def samples(
    names: Annotated[list[str] | None, typer.Argument(help="Sample names (default: every sample).")] = None,
    paths: Annotated[bool, typer.Option("--paths", help="Print only the file paths, one per line.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """The real sample images that ship with rsvlm: name, what they show, source and licence, path.

    `rsvlm classify $(rsvlm data samples --paths farmland beach) --labels "farmland,beach,forest"`.
    """
    from rsvlm.samples import NOTICE, SAMPLES, get

    chosen = [get(n) for n in names] if names else list(SAMPLES)
    if paths:
        for sample in chosen:
            typer.echo(str(sample.path))
    elif as_json:
        rows = [{**asdict(s), "path": str(s.path)} for s in chosen]
        typer.echo(json.dumps(rows, indent=2))
    else:
        for sample in chosen:
            typer.echo(f"{sample.name:12s} {sample.label:24s} {sample.path}")
            typer.echo(f"{'':12s} {sample.source}; {sample.licence}")
        typer.echo(f"sources and licences: {NOTICE}")


@app.command("instructions")
def instructions(
    config: Annotated[Path, typer.Option("--config", help="Build config (YAML): sources, task per source, splits.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (train.json, heldout/, manifest.json).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Build chat instruction data from labelled sets, with held-out images/regions for evaluation."""
    from rsvlm.build.instructions import build_instructions, load_instruction_config

    manifest = build_instructions(load_instruction_config(config), out)
    if as_json:
        typer.echo(json.dumps(manifest, indent=2, default=str))
        return
    typer.echo(f"{manifest['conversations']} conversations in {out / 'train.json'}: {manifest['per_task']}")
    for src in manifest["sources"]:
        held = len(src["split"].get("test", []))
        typer.echo(f"  {src['name']} ({src['task']}): {src['conversations']} conversations, {held} images held out")


def _emit(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    from rsvlm.cli.render import render_summary

    render_summary(summary)
