"""What ``rsvlm eval few-shot`` and ``rsvlm eval zeroshot --adapter`` need besides option parsing: the labelled set
(precomputed embeddings, or a dataset embedded by a model), a terminal table, the output folder, and an adapter
applied to an evaluation set."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.adapt.labelled import LabelledImages
    from rsvlm.adapt.protocol import LabelledSet
    from rsvlm.adapt.saved import Adapter
    from rsvlm.models.protocols import ContrastiveModel


def images_set(
    model: ContrastiveModel,
    chosen: LabelledImages,
    templates: Sequence[str],
    *,
    pixels: bool,
    batch_size: int = 32,
    cache_dir: Path | None = None,
    source: str = "",
) -> LabelledSet:
    """Every labelled image of ``chosen`` (all splits) embedded by ``model``, with a rich progress bar."""
    from rsvlm.adapt.labelled import image_support
    from rsvlm.adapt.protocol import LabelledSet
    from rsvlm.pipeline import rich_progress

    bar, callback = rich_progress("embedding images")
    with bar:
        support = image_support(
            model, chosen, templates, pixels=pixels, batch_size=batch_size, cache_dir=cache_dir, progress=callback
        )
    return LabelledSet(
        support.features, support.labels, support.classes, support.logit_scale,
        splits=[r.split for r in chosen.records], model=model, pixels=support.pixels, templates=list(templates),
        source=source,
    )  # fmt: skip


def render(result: Mapping[str, Any]) -> None:
    """Top-1 per method and shot count (mean ± std over seeds), fit times, base-to-novel, and what was skipped."""
    from rich.console import Console
    from rich.table import Table

    from rsvlm.bench.fewshot_report import b2n_grid, b2n_title, notes_of, timing_grid, top1_grid

    console = Console()
    console.print(
        f"{result.get('source')}: {result['protocol']}, split {result['split']} ({result['n_train']} train, "
        f"{result['n_test']} test), seeds {', '.join(map(str, result['seeds']))}; majority-class baseline "
        f"top-1 {result['majority']['top1']:.2f}",
        markup=False,
    )
    grids = [("top-1 (%), mean ± std over seeds", top1_grid(result)), ("fit seconds", timing_grid(result)),
             (b2n_title(result), b2n_grid(result))]  # fmt: skip
    for title, (header, rows) in grids:
        if not rows:
            continue
        table = Table(title=title, title_justify="left")
        for i, head in enumerate(header):
            table.add_column(head, justify="right" if i else "left")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for note in notes_of(result):
        console.print(f"note: {note}", markup=False)


def write_out(folder: Path, result: Mapping[str, Any]) -> list[Path]:
    """``results.json`` and a self-contained ``report.html`` (accuracy-vs-shots plot and tables)."""
    from rsvlm.bench.fewshot_report import page_html
    from rsvlm.fileio import atomic_write, atomic_write_json

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "results.json", dict(result), indent=2)
    title = f"rsvlm few-shot comparison — {result.get('source')}"
    atomic_write(folder / "report.html", page_html([(str(result.get("source")), result)], title))
    return [folder / "results.json", folder / "report.html"]


def check_out(folder: Path | None) -> None:
    """``--out`` must be a folder (or not exist yet): refused before the slow part, not after it."""
    if folder is not None and folder.exists() and not folder.is_dir():
        raise RsvlmError(f"--out {folder}: exists and is not a folder")


# -- an adapter on an evaluation set ----------------------------------------------------------------------------
def adapter_columns(
    adapter_classes: Sequence[str], adapter_names: Sequence[str], classes: Sequence[str], names: Sequence[str]
) -> list[int]:
    """For each class of the evaluation set (labels ``classes``, readable ``names``), the adapter's column.

    The set's classes must be the adapter's (by label or by readable name, in any order): an adapter scores
    only the classes it was fitted on.
    """
    for mine in (list(adapter_classes), list(adapter_names)):
        for theirs in (list(classes), list(names)):
            if sorted(mine) == sorted(theirs):
                return [mine.index(c) for c in theirs]
    known = set(adapter_classes) | set(adapter_names)
    missing = [n for c, n in zip(classes, names, strict=True) if c not in known and n not in known]
    extra = [c for c, n in zip(adapter_classes, adapter_names, strict=True) if c not in classes and n not in names]
    raise RsvlmError(
        f"the data's classes are not the adapter's: the data has {', '.join(missing[:4]) or 'no other'} "
        f"(not in the adapter), the adapter has {', '.join(extra[:4]) or 'no other'} (not in the data); "
        "fit an adapter on this set's classes"
    )


def adapter_on_embeddings(folder: Path, adapter_dir: Path, transductive: bool) -> dict[str, Any]:
    """A saved adapter scored on precomputed embeddings (refused unless fitted on these very embeddings)."""
    from rsvlm.adapt.labelled import embeddings_identity
    from rsvlm.adapt.saved import load_adapter

    emb, base = embeddings_identity(folder)
    adapter = load_adapter(adapter_dir, None, base=base)
    columns = adapter_columns(adapter.classes, adapter.class_set.names, emb.class_names, emb.class_names)
    report = adapter_report(adapter, emb.images, emb.labels, emb.class_names, columns, transductive)
    return {"embeddings": str(folder), **report, "adapter": {"folder": str(adapter_dir), **report["adapter"]}}


def adapter_on_data(
    adapter_dir: Path,
    data: Path,
    *,
    model: str | None,
    weights: Path | None,
    download: bool,
    images: Path | None,
    split: str | None,
    class_names: Mapping[str, str] | None,
    transductive: bool,
    cache_dir: Path | None,
    batch_size: int,
) -> dict[str, Any]:
    """A saved adapter scored on a labelled dataset's split (default: test), its images embedded through their
    reader by the adapter's image model. A wrong folder, wrong classes or another model fail before embedding."""
    from rsvlm.adapt.labelled import choose_images
    from rsvlm.adapt.saved import read_adapter_config
    from rsvlm.api import load_model
    from rsvlm.cli.common import describe_split, note, open_for_eval, split_label
    from rsvlm.pipeline import embed_records, rich_progress

    config = read_adapter_config(adapter_dir)
    dataset, chosen_split = open_for_eval(
        data, images=images, split=split, class_names=class_names, has_format_option=False
    )
    chosen = choose_images(dataset)
    saved_classes = [str(c) for c in config["classes"]]
    columns = adapter_columns(saved_classes, [str(n) for n in config["class_names"]], chosen.classes, chosen.names)
    note(f"{data}: {describe_split(dataset, chosen_split, split)}: {len(chosen.records):,} labelled images")
    clip = load_model(model, weights, download=download, adapter=adapter_dir)
    adapter = clip.adapter
    assert adapter is not None
    bar, callback = rich_progress("embedding images")
    with bar:
        features = embed_records(
            adapter.image_model(clip.model), dataset, chosen.records, batch_size=batch_size, cache_dir=cache_dir,
            progress=callback,
        )  # fmt: skip
    report = adapter_report(adapter, features, chosen.labels, chosen.names, columns, transductive)
    source = {"model": clip.name, "data": str(data), "split": split_label(chosen_split)}
    return {**source, **report, "adapter": {"folder": str(adapter_dir), **report["adapter"]}}


def adapter_report(
    adapter: Adapter, features: Any, labels: Any, names: Sequence[str], columns: Sequence[int], transductive: bool
) -> dict[str, Any]:
    """The classification report of ``adapter`` on features from its image model (optionally refined by
    TransCLIP with the adapter's probabilities as the prior)."""
    from rsvlm.tasks.metrics import classification_report

    feats = np.asarray(features, np.float32)
    probs = adapter.probabilities(feats)[:, list(columns)]
    if transductive:
        from rsvlm.tasks.transductive import transclip

        probs = transclip(feats, adapter.class_set.text_weights[list(columns)], prior=probs).probabilities
    report = classification_report(probs, np.asarray(labels), list(names))
    info = {"method": adapter.method.name, "shots": adapter.shots, "seed": adapter.seed}
    return {"task": "zeroshot", "transductive": transductive, "adapter": info, **report}


def echo_json(result: Mapping[str, Any]) -> None:
    import typer

    typer.echo(json.dumps(result))
