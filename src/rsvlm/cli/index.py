"""``rsvlm index build|add|remove|info|export|import``: an archive of images, datasets and scenes made searchable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rsvlm.cli.index_io import export_command, import_command
from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.index.build import BuildReport
    from rsvlm.index.sources import SourceOptions

app = typer.Typer(help="Build and maintain a search index of images, datasets and whole scenes.", no_args_is_help=True)

Paths = Annotated[
    list[Path],
    typer.Argument(
        help="Image files, folders, labelled datasets, whole scenes (GeoTIFF, band folders), STAC catalogs."
    ),
]
Out = Annotated[Path, typer.Option("--out", "-o", help="Index folder (created, or resumed when it exists).")]
Model = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Registry name (see `rsvlm models`); the default model when omitted."),
]
Weights = Annotated[Path | None, typer.Option("--weights", help="Local weights file for --model.")]
Adapter = Annotated[
    Path | None, typer.Option("--adapter", help="Adapter folder from `rsvlm adapt fit`: images embedded with it.")
]
Tile = Annotated[int | None, typer.Option("--tile", help="Tile side in scene pixels \\[default: ~640 m, 160 px].")]
Stride = Annotated[int | None, typer.Option("--stride", help="Tile step in pixels \\[default: the tile].")]
Scheduler = Annotated[
    str,
    typer.Option(
        "--scheduler",
        help="Dask's local threads (measured fastest here), processes, a cluster address tcp://host:8786, or sync "
        "(a plain loop in this process).",
    ),
]
Format = Annotated[
    str | None, typer.Option("--format", help="Dataset format of a labelled folder (`rsvlm data formats`).")
]
Images = Annotated[
    Path | None, typer.Option("--images", help="Images folder of a dataset whose annotations are elsewhere.")
]
Split = Annotated[str | None, typer.Option("--split", help="Dataset split to index \\[default: every split].")]
Bands = Annotated[str | None, typer.Option("--bands", help="Band preset of the scenes (sentinel2-l1c, landsat8 …).")]
DEFAULT_SCHEDULER = "threads"
"""Dask's local threaded scheduler: 1.01-1.07x plain embedding throughput against 0.90-0.95x for the in-process loop
(``benchmarks/index_build.py``: two chunks are embedded at once, so one chunk's reading and decoding overlap the
other's forward pass). Parts are written as each group of chunks (``map_ordered``'s window) completes."""
AsJson = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
PartRows = Annotated[
    int, typer.Option("--part-rows", min=1, help="Entries per part file (a killed build loses at most one part).")
]


def _build(
    paths: list[Path],
    out: Path,
    model: str | None,
    weights: Path | None,
    adapter: Path | None,
    options: SourceOptions,
    scheduler: str,
    batch_size: int,
    part_rows: int,
    must_exist: bool,
    as_json: bool,
) -> None:
    from rsvlm.index.store import IndexStore

    if must_exist:
        store = IndexStore.open(out)  # `add` to a missing index fails before any model loads
        model = model or store.model["name"]
    if options.tile is not None and options.tile < 1:
        raise RsvlmError(f"--tile {options.tile}: give a tile side of at least 1 pixel")
    for path in paths:
        if not path.exists():
            raise RsvlmError(f"{path}: no such file or folder (check the path)")
    if adapter is not None:
        from rsvlm.adapt.saved import read_adapter_config

        read_adapter_config(adapter)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from rsvlm.api import load_model
    from rsvlm.index.build import build_index

    loaded = load_model(model, weights, adapter=adapter)
    bar = Progress(
        SpinnerColumn(), TextColumn("indexing: {task.completed:,} entries"), TimeElapsedColumn(), transient=True
    )
    task = bar.add_task("indexing", total=None)

    def callback(done: int) -> None:
        bar.update(task, completed=done)

    with bar:
        report = build_index(
            out, paths, loaded.model, adapter=loaded.adapter, adapter_folder=adapter, options=options,
            scheduler=scheduler, batch_size=batch_size, part_rows=part_rows, progress=callback,
        )  # fmt: skip
    _print_report(report, out, as_json)


def _print_report(report: BuildReport, out: Path, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"index": str(out), **report.to_dict()}))
        return
    rate = report.added / report.embed_seconds if report.embed_seconds > 0 else 0.0
    kind = report.vectors.get("kind", "?")
    typer.echo(
        f"{out}: {report.count:,} entries ({kind} vectors); added {report.added:,}, already there {report.already:,}, "
        f"left out for nodata {report.nodata:,}; {report.scenes} scene(s); {report.seconds:.1f} s "
        f"({rate:.1f} images/s embedding)"
    )


@app.command("build")
def build(
    paths: Paths,
    out: Out,
    model: Model = None,
    weights: Weights = None,
    adapter: Adapter = None,
    tile: Tile = None,
    stride: Stride = None,
    scheduler: Scheduler = DEFAULT_SCHEDULER,
    data_format: Format = None,
    images: Images = None,
    split: Split = None,
    bands: Bands = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 32,
    part_rows: PartRows = 2048,
    as_json: AsJson = False,
) -> None:
    """Embed every image, record or scene tile of PATHS into the index at --out; rerun to resume a cut build."""
    from rsvlm.index.sources import SourceOptions

    options = SourceOptions(tile, stride, data_format, images, split, bands)
    _build(paths, out, model, weights, adapter, options, scheduler, batch_size, part_rows, False, as_json)


@app.command("add")
def add(
    index: Annotated[Path, typer.Argument(help="An existing index folder.")],
    paths: Paths,
    weights: Weights = None,
    adapter: Adapter = None,
    tile: Tile = None,
    stride: Stride = None,
    scheduler: Scheduler = DEFAULT_SCHEDULER,
    data_format: Format = None,
    images: Images = None,
    split: Split = None,
    bands: Bands = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 32,
    part_rows: PartRows = 2048,
    as_json: AsJson = False,
) -> None:
    """Add PATHS to an index with its own model (entries it holds already are skipped)."""
    from rsvlm.index.sources import SourceOptions

    options = SourceOptions(tile, stride, data_format, images, split, bands)
    _build(paths, index, None, weights, adapter, options, scheduler, batch_size, part_rows, True, as_json)


@app.command("remove")
def remove(
    index: Annotated[Path, typer.Argument(help="An existing index folder.")],
    paths: Annotated[list[Path], typer.Argument(help="Files, scenes or folders whose entries to remove.")],
) -> None:
    """Remove the entries of PATHS (a file, a scene, or everything under a folder, or a source as it was added)."""
    from rsvlm.index.maintain import remove_paths

    removed, count = remove_paths(index, paths)
    typer.echo(f"{index}: removed {removed:,} entries; {count:,} remain")


@app.command("info")
def info(
    index: Annotated[Path, typer.Argument(help="An index folder.")],
    as_json: AsJson = False,
) -> None:
    """What an index holds: entries, model, adapter, vectors, extent, time span, scenes."""
    from rsvlm.index.archive import open_archive

    details = open_archive(index).info()
    if as_json:
        typer.echo(json.dumps(details))
        return
    model = details["model"]
    vectors = details["vectors"]
    kinds = ", ".join(f"{k} {v}" for k, v in details["kinds"].items())
    typer.echo(f"{details['path']}: {details['count']:,} entries ({kinds})")
    typer.echo(f"  model {model['name']} ({model['embed_dim']}-d, weights {str(model['weights_id'])[:12]})")
    if details["adapter"]:
        typer.echo(f"  adapter {details['adapter']['folder']} ({details['adapter']['method']})")
    tuning = vectors.get("tuning") or {}
    recall = f", recall@10 {tuning['recall_at_10']:.3f} at {tuning['params']}" if tuning else ""
    typer.echo(f"  vectors {vectors.get('kind')}{recall}")
    typer.echo(
        f"  extent {details['bounds'] or 'none (no georeferenced entries)'}; time {details['time'] or 'unknown'}"
    )
    for scene in details["scenes"]:
        typer.echo(f"  scene {scene['path']} ({scene['width']}x{scene['height']} px)")


app.command("export")(export_command)
app.command("import")(import_command)
