"""``rsvlm eval …``: score a model (or its precomputed embeddings) with a versioned protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rsvlm.cli.common import ALL_SPLITS, describe_split, note, open_for_eval, split_label
from rsvlm.errors import RsvlmError

app = typer.Typer(help="Evaluate models on remote-sensing tasks.", no_args_is_help=True)

EmbeddingsOpt = Annotated[
    Path | None,
    typer.Option("--embeddings", help="Folder of precomputed embeddings (images.pt, classes.pt, texts_*.pt)."),
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Registry name or spec file (see `rsvlm models`); default model if omitted."),
]
WeightsOpt = Annotated[Path | None, typer.Option("--weights", help="Local weights file or folder for --model.")]
DownloadOpt = Annotated[bool, typer.Option("--download", help="Allow fetching the released weights (needs network).")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Dataset path (any format of `rsvlm data formats`).")]
ImagesOpt = Annotated[Path | None, typer.Option("--images", help="Images folder, when not beside the annotations.")]
SplitOpt = Annotated[
    str | None,
    typer.Option(
        "--split", help="Dataset split to evaluate (default: test where the data has one); 'all': every split."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ClassNamesOpt = Annotated[
    Path | None,
    typer.Option(
        "--class-names",
        help="JSON or 'raw=readable' file naming classes for prompts; 'a|b' gives aliases that are averaged.",
    ),
]
CacheOpt = Annotated[
    Path | None, typer.Option("--cache-dir", help="Feature cache folder (default: ~/.cache/rsvlm/features).")
]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Images per forward pass.")]


def _emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result))
        return
    from rsvlm.cli.render import render_result

    render_result(result)


def _announce(data: Path, what: str, count: int) -> None:
    """Say what will be scored before the slow part starts; nothing to score is an error, not a 0 % result."""
    if count == 0:
        raise RsvlmError(f"{data}: nothing to score in {what} (check --data, --images and --split)")
    note(f"{data}: {what}")


def _exactly_one_source(embeddings: Path | None, model: str | None, data: Path | None) -> None:
    if embeddings is not None and (model is not None or data is not None):
        raise RsvlmError("use either --embeddings DIR or --model NAME --data PATH, not both")
    if embeddings is None and data is None:
        raise RsvlmError(
            "nothing to evaluate: pass --embeddings DIR, or --data PATH (--model NAME, default rsvlm-lite)"
        )


@app.command("zeroshot")
def zeroshot(
    embeddings: EmbeddingsOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    download: DownloadOpt = False,
    data: DataOpt = None,
    images: ImagesOpt = None,
    split: SplitOpt = None,
    templates: Annotated[
        str, typer.Option("--templates", help="Template set (rs-default, rs-transclip-106) or a text file.")
    ] = "rs-default",
    template: Annotated[
        str | None, typer.Option("--template", help="Score one template instead of the averaged prompts.")
    ] = None,
    per_template: Annotated[bool, typer.Option("--per-template", help="Also score every template alone.")] = False,
    transductive: Annotated[
        bool,
        typer.Option("--transductive", help="Refine with the whole unlabelled test set (TransCLIP-style)."),
    ] = False,
    class_names: ClassNamesOpt = None,
    adapter: Annotated[
        Path | None,
        typer.Option(
            "--adapter",
            help="Score with a saved adapter (`rsvlm adapt fit --out`) fitted on this model or these embeddings; "
            "the set's classes must be its classes.",
        ),
    ] = None,
    cache_dir: CacheOpt = None,
    batch_size: BatchOpt = 32,
    as_json: JsonOpt = False,
) -> None:
    """Zero-shot scene classification: top-1, top-5, per-class accuracy and confusion matrix."""
    from rsvlm.tasks.embeddings import AVERAGE
    from rsvlm.tasks.zeroshot import evaluate_per_template, evaluate_zeroshot

    _exactly_one_source(embeddings, model, data)
    if adapter is not None:
        from rsvlm.cli import fewshot

        if template is not None or per_template:
            raise RsvlmError(
                "--template and --per-template do not apply with --adapter: it scores with its own classes"
            )
        if embeddings is not None:
            _emit(fewshot.adapter_on_embeddings(embeddings, adapter, transductive), as_json)
            return
        from rsvlm.data.names import load_name_map

        assert data is not None
        result = fewshot.adapter_on_data(
            adapter, data, model=model, weights=weights, download=download, images=images, split=split,
            class_names=load_name_map(class_names) if class_names else None, transductive=transductive,
            cache_dir=cache_dir, batch_size=batch_size,
        )  # fmt: skip
        _emit(result, as_json)
        return
    if embeddings is not None:
        from rsvlm.tasks.embeddings import load_embedding_dir

        emb = load_embedding_dir(embeddings)
        source: dict[str, Any] = {"embeddings": str(embeddings)}
    else:
        from rsvlm.data.names import load_name_map
        from rsvlm.pipeline import embed_scene_dataset
        from rsvlm.tasks.templates import load_templates, template_name

        assert data is not None
        names = load_name_map(class_names) if class_names else None
        known = {template_name(t) for t in load_templates(templates)}  # a bad set fails before the model loads
        if template is not None and template_name(template) not in known:
            raise RsvlmError(f"--template {template!r} is not one of the templates of {templates!r}")
        dataset, chosen_split = open_for_eval(
            data, images=images, split=split, class_names=names, has_format_option=False
        )
        n = sum(1 for r in dataset.records if r.label is not None and r.image_path is not None)
        _announce(data, f"{describe_split(dataset, chosen_split, split)}: {n:,} labelled images", n)
        emb, source = embed_scene_dataset(
            model,
            data,
            weights=weights,
            download=download,
            images=images,
            split=chosen_split,
            templates=templates,
            cache_dir=cache_dir,
            batch_size=batch_size,
            class_names=names,
        )
        source["split"] = split_label(chosen_split)
    from rsvlm.tasks.templates import template_name

    chosen = template_name(template) if template is not None else AVERAGE
    result = evaluate_zeroshot(emb, chosen, transductive=transductive)
    if per_template:
        result["per_template"] = evaluate_per_template(emb, transductive=transductive)
    _emit({**source, **result}, as_json)


@app.command("retrieval")
def retrieval(
    embeddings: EmbeddingsOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    download: DownloadOpt = False,
    data: DataOpt = None,
    images: ImagesOpt = None,
    split: SplitOpt = None,
    cache_dir: CacheOpt = None,
    batch_size: BatchOpt = 32,
    as_json: JsonOpt = False,
) -> None:
    """Image-text retrieval: I2T and T2I recall@1/5/10 and their mean (mR)."""
    from rsvlm.tasks.retrieval import evaluate_retrieval

    _exactly_one_source(embeddings, model, data)
    if embeddings is not None:
        from rsvlm.tasks.embeddings import load_retrieval_dir

        img, txt, owner = load_retrieval_dir(embeddings)
        source: dict[str, Any] = {"embeddings": str(embeddings)}
    else:
        from rsvlm.pipeline import embed_caption_dataset

        assert data is not None
        dataset, chosen_split = open_for_eval(data, images=images, split=split, has_format_option=False)
        records = [r for r in dataset.records if r.captions and r.image_path is not None]
        captions = sum(len(r.captions) for r in records)
        _announce(
            data,
            f"{describe_split(dataset, chosen_split, split)}: {len(records):,} images, {captions:,} captions",
            captions,
        )
        img, txt, owner, source = embed_caption_dataset(
            model,
            data,
            weights=weights,
            download=download,
            images=images,
            split=chosen_split,
            cache_dir=cache_dir,
            batch_size=batch_size,
        )
        source["split"] = split_label(chosen_split)
    _emit({**source, **evaluate_retrieval(img, txt, owner)}, as_json)


@app.command("linear-probe")
def linear_probe(
    embeddings: EmbeddingsOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    download: DownloadOpt = False,
    data: DataOpt = None,
    images: ImagesOpt = None,
    shots: Annotated[
        int | None, typer.Option("--shots", help="k images per class (few-shot, k >= 1); all when omitted.")
    ] = None,
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated seeds for the k-shot draws.")] = "1,2,3",
    test_fraction: Annotated[
        float,
        typer.Option("--test-fraction", help="Held-out share (0 to 1) when the data has no train/test split."),
    ] = 0.5,
    c: Annotated[float, typer.Option("--C", help="Inverse L2 regularisation of the logistic regression.")] = 1.0,
    cache_dir: CacheOpt = None,
    batch_size: BatchOpt = 32,
    as_json: JsonOpt = False,
) -> None:
    """Linear probe / k-shot logistic regression on frozen image features, fixed seeded protocol."""
    import numpy as np

    from rsvlm.tasks.linear_probe import check_protocol, evaluate_linear_probe, parse_seeds, stratified_split

    _exactly_one_source(embeddings, model, data)
    # settings the protocol cannot run fail before the (slow) embedding, naming the option
    seed_list = parse_seeds(seeds)
    check_protocol(shots, seed_list, c)
    if not 0 < test_fraction < 1:  # also refuses NaN
        raise RsvlmError(f"--test-fraction must lie strictly between 0 and 1, got {test_fraction}")
    split_train = split_test = None
    if embeddings is not None:
        from rsvlm.tasks.embeddings import load_embedding_dir

        emb = load_embedding_dir(embeddings)
        source: dict[str, Any] = {"embeddings": str(embeddings)}
    else:
        from rsvlm.pipeline import embed_scene_dataset

        assert data is not None
        dataset, _ = open_for_eval(data, images=images, split=ALL_SPLITS, has_format_option=False)
        n = sum(1 for r in dataset.records if r.label is not None and r.image_path is not None)
        _announce(data, f"{describe_split(dataset, None, ALL_SPLITS)}: {n:,} labelled images", n)
        emb, source = embed_scene_dataset(
            model,
            data,
            weights=weights,
            download=download,
            images=images,
            cache_dir=cache_dir,
            batch_size=batch_size,
        )
        if {"train", "test"} <= {s for s in emb.splits if s}:
            split_train = np.flatnonzero(np.array([s == "train" for s in emb.splits]))
            split_test = np.flatnonzero(np.array([s == "test" for s in emb.splits]))
            source["split"] = "train -> test"
    if split_train is None or split_test is None:
        split_train, split_test = stratified_split(emb.labels, test_fraction, seed=0)
        source["split"] = f"stratified, {test_fraction:.0%} test, seed 0"
    note(f"{data or embeddings}: probe split {source['split']}: {len(split_train):,} train, {len(split_test):,} test")
    result = evaluate_linear_probe(
        emb.images[split_train],
        emb.labels[split_train],
        emb.images[split_test],
        emb.labels[split_test],
        emb.class_names,
        shots=shots,
        seeds=seed_list,
        c=c,
    )
    _emit({**source, **result}, as_json)


@app.command("few-shot")
def few_shot(
    embeddings: EmbeddingsOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    download: DownloadOpt = False,
    data: DataOpt = None,
    images: ImagesOpt = None,
    data_format: Annotated[
        str | None, typer.Option("--format", help="Dataset format (see `rsvlm data formats`); detected if omitted.")
    ] = None,
    class_names: ClassNamesOpt = None,
    templates: Annotated[
        str, typer.Option("--templates", help="Template set or file for the class prompts (with --model).")
    ] = "rs-default",
    methods: Annotated[
        str | None,
        typer.Option("--methods", help="Comma-separated methods (`rsvlm adapt methods`); default: every one."),
    ] = None,
    shots: Annotated[str, typer.Option("--shots", help="Comma-separated shots per class.")] = "1,2,4,8,16",
    seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated seeds: one k-shot draw each.")] = "1,2,3",
    base_to_novel: Annotated[
        bool, typer.Option("--base-to-novel", help="Also fit on half of the classes and score the other half.")
    ] = False,
    transductive: Annotated[
        bool, typer.Option("--transductive", help="Also refine each method with the unlabelled test set (TransCLIP).")
    ] = False,
    set_options: Annotated[
        list[str] | None,
        typer.Option("--set", help="A method's option, METHOD.KEY=VALUE (repeatable), e.g. tip-adapter-f.epochs=5."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for results.json and report.html (plot and tables).")
    ] = None,
    cache_dir: CacheOpt = None,
    batch_size: BatchOpt = 32,
    as_json: JsonOpt = False,
) -> None:
    """Few-shot head to head (fewshot/1): methods x shots x seeds on one train/test split, mean ± std."""
    from rsvlm.adapt.protocol import (
        from_embeddings,
        make_settings,
        parse_methods,
        parse_set_options,
        parse_shots,
        run_protocol,
    )
    from rsvlm.cli import fewshot
    from rsvlm.tasks.linear_probe import parse_seeds

    _exactly_one_source(embeddings, model, data)
    if embeddings is not None and (images or data_format or class_names or weights or download):
        raise RsvlmError("--embeddings holds features already: drop --images, --format, --class-names and --weights")
    # every setting is checked before the (slow) model load and embedding
    settings = make_settings(
        parse_methods(methods), parse_shots(shots), parse_seeds(seeds), parse_set_options(set_options or []),
        base_to_novel=base_to_novel, transductive=transductive,
    )  # fmt: skip
    fewshot.check_out(out)
    if embeddings is not None:
        labelled = from_embeddings(embeddings)
    else:
        from rsvlm.adapt.labelled import choose_images
        from rsvlm.adapt.methods import get_method
        from rsvlm.data.names import load_name_map
        from rsvlm.models.openclip import load_contrastive
        from rsvlm.tasks.templates import load_templates

        assert data is not None
        prompts = load_templates(templates)
        names = load_name_map(class_names) if class_names else None
        chosen = choose_images(data, data_format=data_format, images=images, split=ALL_SPLITS, class_names=names)
        splits = sorted({r.split for r in chosen.records if r.split}) or ["none"]
        _announce(data, f"{len(chosen.records):,} labelled images, splits {', '.join(splits)}", len(chosen.records))
        base = load_contrastive(model, weights, download=download)
        pixels = any(get_method(m).needs_pixels for m in settings.methods)
        labelled = fewshot.images_set(
            base,
            chosen,
            prompts,
            pixels=pixels,
            batch_size=batch_size,
            cache_dir=cache_dir,
            source="/".join(data.resolve().parts[-2:]),
        )
    result = run_protocol(labelled, settings, log=note)
    if out is not None:
        written = fewshot.write_out(out, result)
        note(f"wrote {', '.join(str(p) for p in written)}")
    if as_json:
        typer.echo(json.dumps(result))
    else:
        fewshot.render(result)
