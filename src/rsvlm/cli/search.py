"""``rsvlm search INDEX "text" | --image CHIP``: ranked hits with scores and footprints (text, JSON, GeoJSON, HTML)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rsvlm.errors import RsvlmError


def search(
    index: Annotated[Path, typer.Argument(help="An index folder from `rsvlm index build`.")],
    text: Annotated[str | None, typer.Argument(help='What to find, e.g. "a flooded field".')] = None,
    image: Annotated[Path | None, typer.Option("--image", help="Find what looks like this image chip.")] = None,
    bbox: Annotated[str | None, typer.Option("--bbox", help="W S E N in degrees (WGS84): hits that touch it.")] = None,
    within: Annotated[
        Path | None, typer.Option("--within", help="GeoJSON file of polygons (WGS84): hits that touch them.")
    ] = None,
    time: Annotated[
        str | None, typer.Option("--time", help="FROM/TO in ISO dates, e.g. 2020-01-01/2021-06-30 (.. = open).")
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="How many hits.")] = 20,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model to query with \\[default: the index's own].")
    ] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Local weights file for the model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Write the hits as GeoJSON (opens in QGIS).")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write an HTML page of the hits with thumbnails.")] = None,
) -> None:
    """Search an index by text or by image, within a place and a time span."""
    from rsvlm.index.search import SearchQuery, parse_bbox, parse_time, read_within

    if (text is None) == (image is None):
        raise RsvlmError('give a text query or --image CHIP (one of them), e.g. rsvlm search INDEX "a flooded field"')
    if image is not None and not image.is_file():
        raise RsvlmError(f"--image {image}: no such file (check the path)")
    query = SearchQuery(
        text=text, image=image, k=k,
        bbox=parse_bbox(bbox) if bbox is not None else None,
        within=read_within(within) if within is not None else None,
        time=parse_time(time) if time is not None else None,
    )  # fmt: skip
    from rsvlm.index.archive import load_index_model, open_archive

    archive = open_archive(index)
    result = archive.search(query, load_index_model(archive, model, weights))
    if out is not None:
        from rsvlm.fileio import atomic_write_json

        atomic_write_json(out, result.to_geojson())
    if html is not None:
        from rsvlm.fileio import atomic_write
        from rsvlm.index.page import results_page

        atomic_write(html, results_page(archive, result, f"rsvlm search: {text or image}"))
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    exact = "exact" if result.exact else "approximate"
    typer.echo(f"{len(result.hits)} hits of {result.candidates:,} candidates ({exact}, {result.took_ms:.1f} ms)")
    for hit in result.hits:
        where = f" window {','.join(map(str, hit.window))}" if hit.window else ""
        label = f" [{hit.label}]" if hit.label else ""
        typer.echo(f"{hit.rank:>4}  {hit.score:.4f}  {hit.path}{where}{label}")
