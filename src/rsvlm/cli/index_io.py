"""``rsvlm index export|import``: an index's embeddings as one GeoParquet file for other tools, and embeddings made
elsewhere (Major TOM, Clay, Earth Index, another rsvlm) into an index. ``rsvlm.cli.index`` registers both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def export_command(
    index: Annotated[Path, typer.Argument(help="An index folder.")],
    out: Annotated[Path, typer.Argument(help="GeoParquet file to write, e.g. embeddings.parquet.")],
) -> None:
    """Write every entry of INDEX with its embedding, footprint and time as one GeoParquet file (one row per chip:
    id, geometry, embedding, datetime; the model in the file metadata) for geopandas, QGIS, DuckDB or another rsvlm."""
    from rsvlm.index.interchange import export_geoparquet

    rows = export_geoparquet(index, out)
    typer.echo(f"{out}: {rows:,} embeddings of {index}")


def import_command(
    files: Annotated[list[Path], typer.Argument(help="GeoParquet files of embeddings, one row per chip.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Index folder (created, or added to when it exists).")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="The model that made these vectors (text search then works); omit: vector search only.",
        ),
    ] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Local weights file for --model.")] = None,
    embedding_column: Annotated[
        str | None, typer.Option("--embedding-column", help="\\[default: embedding, embeddings, vector].")
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="\\[default: id, unique_id, chip_id; else the row number].")
    ] = None,
    time_column: Annotated[
        str | None, typer.Option("--time-column", help="\\[default: datetime, timestamp, time, date]; none: no times.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Name of the embedding space of vectors without --model.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON report per file.")] = False,
) -> None:
    """Add the embeddings of FILES to the index at --out (rerun to resume; rows it holds are skipped). A file rsvlm
    exported brings its model; for others, --model says whose vectors they are, or they are searched by vector only."""
    from rsvlm.index.interchange import import_geoparquet
    from rsvlm.pipeline import rich_progress

    loaded = None
    if model is not None:
        from rsvlm.api import load_model

        loaded = load_model(model, weights).model
    for file in files:
        bar, callback = rich_progress(f"importing {file.name}")
        with bar:
            report = import_geoparquet(
                file, out, model=loaded, embedding_column=embedding_column, id_column=id_column,
                time_column=time_column, name=name, progress=callback,
            )  # fmt: skip
        if as_json:
            typer.echo(json.dumps({"index": str(out), "file": str(file), **report.to_dict()}))
            continue
        from rsvlm.index.store import IndexStore

        space = IndexStore.open(out).model
        search = "vector search only" if space["preprocess_id"] == "precomputed" else "text, image and vector search"
        typer.echo(
            f"{out}: {report.count:,} entries ({report.vectors.get('kind', '?')} vectors, {space['name']}: {search}); "
            f"imported {report.added:,} from {file}, already there {report.already:,}; {report.seconds:.1f} s"
        )
