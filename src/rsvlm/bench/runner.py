"""``rsvlm bench``: every (model, task) pair of a suite, resumable, into one run folder.

Layout of a run folder (the contract the leaderboard and report read)::

    run.json                       suite, models, environment, seeds, data manifests and their digests
    results/<model>/<task>.json    metrics, leakage flag, anchors, plot details and weights digest of one pair
    work/<model>/<task>/           per-sample predictions (chat) — an interrupted task resumes here
    features/                      embedding cache (contrastive) — an interrupted embedding resumes here

A finished pair is not recomputed unless the model's own weights changed since (rsvlm's shipped models and
local folders are hashed); rerunning the same command after a kill continues where it
stopped, and the metrics equal those of an uninterrupted run (predictions are greedy and cached per
sample, embeddings are cached per image file). Each task kind is one function in ``KIND_RUNNERS``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rsvlm.errors import RsvlmError
from rsvlm.fileio import atomic_write, atomic_write_json, run_lock

Log = Callable[[str], None]


@dataclass
class Context:
    """What a kind runner needs besides the task: where data lives and where to cache."""

    data_root: Path
    run_dir: Path
    model_name: str
    model: Any
    """A loaded ContrastiveModel, ChatModel, or None for embeddings-only tasks."""
    log: Log
    progress: Callable[[int, int], None] | None = None

    @property
    def features(self) -> Path:
        return self.run_dir / "features"

    def work(self, task_id: str) -> Path:
        return self.run_dir / "work" / slug(self.model_name) / task_id


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-") or "model"


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def environment() -> dict[str, Any]:
    import importlib.metadata as md

    versions: dict[str, str | None] = {}
    for package in ("rsvlm", "torch", "transformers", "open_clip_torch", "numpy", "rasterio"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": _torch_threads(),
        **versions,
    }


def _torch_threads() -> int | None:
    try:
        import torch

        return int(torch.get_num_threads())
    except ImportError:  # pragma: no cover - torch is a dependency
        return None


def model_family(name: str) -> str:
    """``contrastive`` or ``chat``, from the registries (a folder: by what its config says)."""
    from rsvlm.models.chat.registry import CHAT_MODELS
    from rsvlm.models.registry import MODELS

    if name in MODELS:
        return "contrastive"
    if name in CHAT_MODELS:
        return "chat"
    path = Path(name)
    if (path / "config.json").is_file():
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        return "chat" if "chat" in str(config.get("format", "")) or "llm" in config.get("model", {}) else "contrastive"
    known = ", ".join(sorted([*MODELS, *CHAT_MODELS]))
    raise RsvlmError(f"unknown model {name!r} for rsvlm bench (known: {known}; or a local model folder)")


def load_model(name: str, family: str) -> Any:
    if family == "chat":
        from rsvlm.models.chat.registry import load_chat

        return load_chat(name)
    from rsvlm.models.openclip import load_contrastive

    if Path(name).is_dir():
        from rsvlm.models.lite import load_lite

        return load_lite(name)
    return load_contrastive(name, None, download=False)


def weights_digest(name: str) -> str | None:
    """SHA-256 over a model's own weight files (a local folder or a model shipped in the package), or None.

    A result made by other weights than the ones named now must not be reused when a run resumes: rsvlm's
    shipped models change when they are retrained, and a folder can be overwritten. Third-party releases
    are fixed named tags and are not hashed.
    """
    import hashlib

    from rsvlm.models.chat.registry import CHAT_MODELS
    from rsvlm.models.registry import MODELS

    folder = Path(name)
    if not folder.is_dir():
        packaged = (name in CHAT_MODELS and CHAT_MODELS[name].packaged) or (
            name in MODELS and MODELS[name].loader == "lite"
        )
        if not packaged:
            return None
        from rsvlm.models.lite import packaged_weights

        folder = packaged_weights(name)
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("config.json")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _stale(target: Path, digest: str | None, out: Path, model: str, task_id: str, log: Log) -> bool:
    """True (after clearing the pair's result and per-sample work) when ``target`` came from other weights."""
    import shutil

    recorded = json.loads(target.read_text(encoding="utf-8")).get("weights_digest")
    if digest is None or recorded == digest:
        return False
    log(f"{model} · {task_id}: the saved result came from other weights than {model}'s now; redoing it")
    target.unlink()
    shutil.rmtree(out / "work" / slug(model) / task_id, ignore_errors=True)
    return True


def run_suite(
    suite: Any,
    models: list[str],
    out: Path,
    data_root: Path,
    *,
    log: Log,
    progress: Callable[[str], Callable[[int, int], None]] | None = None,
    verify: bool = True,
) -> Path:
    """Run (or resume) ``suite`` for ``models`` into ``out``; returns the run folder.

    The folder is locked for the run: a second ``rsvlm bench`` on it is refused at once rather than
    computing every pair twice and racing on the same result and prediction files.
    """
    with run_lock(out, "bench run folder"):
        return _run_suite(suite, models, out, data_root, log=log, progress=progress, verify=verify)


def _run_suite(
    suite: Any,
    models: list[str],
    out: Path,
    data_root: Path,
    *,
    log: Log,
    progress: Callable[[str], Callable[[int, int], None]] | None,
    verify: bool,
) -> Path:
    from rsvlm.bench.spec import KINDS

    families = {m: model_family(m) for m in models}
    run_path = out / "run.json"
    previous = json.loads(run_path.read_text(encoding="utf-8")) if run_path.is_file() else None
    if previous is not None and (previous.get("suite"), previous.get("suite_version")) != (suite.name, suite.version):
        raise RsvlmError(
            f"{out} holds a run of suite {previous.get('suite')} v{previous.get('suite_version')}; "
            "use another --out folder"
        )
    run = {
        "suite": suite.name,
        "suite_version": suite.version,
        "models": sorted({*models, *((previous or {}).get("models", []))}),
        "started": (previous or {}).get("started") or _now(),
        "finished": None,
        "environment": environment(),
        "seeds": {"linear_probe": [1, 2, 3], "generation": "greedy (deterministic)"},
        "data": data_manifests(suite, data_root, verify, log),
    }
    atomic_write_json(run_path, run, default=_jsonable)
    pairs: list[tuple[str, Any]] = []
    for model in models:
        pairs += [(model, t) for t in suite.tasks if KINDS[t.kind].family == families[model]]
    pairs += [("published", t) for t in suite.tasks if KINDS[t.kind].family == "embeddings"]
    loaded: dict[str, Any] = {}
    digests = {m: weights_digest(m) for m in models}
    for n, (model, task) in enumerate(pairs, start=1):
        target = out / "results" / slug(model) / f"{task.id}.json"
        if target.is_file() and not _stale(target, digests.get(model), out, model, task.id, log):
            log(f"[{n}/{len(pairs)}] {model} · {task.id}: done already")
            continue
        family = KINDS[task.kind].family
        if family != "embeddings" and model not in loaded:
            log(f"loading {model}")
            loaded = {model: load_model(model, family)}  # one model in memory at a time
        ctx = Context(
            data_root, out, model, loaded.get(model), log, progress(f"{model} · {task.id}") if progress else None
        )
        log(f"[{n}/{len(pairs)}] {model} · {task.id} ({task.kind})")
        start = time.perf_counter()
        result = KIND_RUNNERS[task.kind](task, ctx)
        result.update(
            task=task.id,
            kind=task.kind,
            model=model,
            family=family,
            seconds=round(time.perf_counter() - start, 2),
            seen_in_training=_seen(model, task),
            anchors=[a.__dict__ for a in task.anchors],
            weights_digest=digests.get(model),
        )
        result["metrics"] = {k: v for k, v in result["metrics"].items() if isinstance(v, int | float)}
        atomic_write_json(target, result, default=_jsonable)
    run["finished"] = _now()
    atomic_write_json(run_path, run, default=_jsonable)
    return out


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@functools.cache
def shipped_manifest(name: str) -> Any:
    """A packaged manifest, parsed once per process however many tasks and steps use it."""
    from rsvlm.bench.manifest import manifest_path, read_manifest

    return read_manifest(manifest_path(name))


def data_manifests(suite: Any, data_root: Path, verify: bool, log: Log) -> dict[str, Any]:
    from rsvlm.bench.manifest import verify_manifest

    out: dict[str, Any] = {}
    checks: dict[str, Any] = {}  # tasks sharing a manifest hash its files once
    for task in suite.tasks:
        name = task.data.manifest
        if name is None:
            out[task.id] = {"manifest": None}
            continue
        manifest = shipped_manifest(name)
        entry: dict[str, Any] = {"manifest": name, "files": len(manifest.files)}
        if verify:
            if name not in checks:
                checks[name] = verify_manifest(manifest, data_root)
            check = checks[name]
            if not check.ok:
                bad = (check.missing + check.changed)[:3]
                raise RsvlmError(
                    f"task {task.id}: data under {data_root} does not match manifest {name} "
                    f"({len(check.missing)} missing, {len(check.changed)} changed, e.g. {', '.join(map(str, bad))})"
                )
            entry.update(digest=check.digest, verified=True)
        out[task.id] = entry
    log(f"data verified against {sum(1 for v in out.values() if v.get('manifest'))} manifests")
    return out


HELD_OUT_MANIFESTS = {
    "rsicd-test.txt": ("rsicd", "test"),
    "aid-smoke.txt": ("rsicd", "test"),
    "rsvqa-lr-heldout.txt": ("rsvqa-lr", "test"),
    "rsvqa-hr-heldout.txt": ("rsvqa-hr", "test"),
    "neon.txt": ("neon-trees", "test"),
}
"""Manifests that pin a held-out part, as the (dataset, split) the leakage declarations name it: AID images
listed by ``rsicd-test.txt`` or ``aid-smoke.txt`` are RSICD test images, whatever folder they are read from."""


GOLDEN_MODELS = {"clip": "openai", "georsclip": "georsclip", "remoteclip": "remoteclip", "skyclip50": "skyclip"}
"""Model folder of the released embeddings (``…/<Model>/ViT-B-32``) → registry family prefix."""


def _declared_name(model: str, task: Any) -> str:
    """The model whose training data decides the flag: for released embeddings, the model that made them."""
    if task.family != "embeddings":
        return model
    parts = Path(task.data.path).parts
    prefix = GOLDEN_MODELS.get(parts[-2].lower(), parts[-2].lower()) if len(parts) >= 2 else model
    return f"{prefix}-{parts[-1].lower()}"


def _seen(model: str, task: Any) -> dict[str, str]:
    from rsvlm.bench.leakage import seen_in_training

    dataset, split = HELD_OUT_MANIFESTS.get(task.data.manifest or "", (task.data.path, task.data.split))
    flag = seen_in_training(_declared_name(model, task), dataset, split)
    return {"status": flag.status, "reason": flag.reason}


# -- data selection --------------------------------------------------------------------------------------------
def manifest_files(task: Any, data_root: Path) -> set[Path] | None:
    """Resolved paths a task's manifest lists, or None for 'the whole dataset'."""
    if task.data.manifest is None:
        return None
    return {(data_root / p).resolve() for p in shipped_manifest(task.data.manifest)}


def open_task_dataset(task: Any, data_root: Path) -> Any:
    from rsvlm.data.registry import open_dataset

    images = data_root / task.data.images if task.data.images else None
    return open_dataset(data_root / task.data.path, format=task.data.format, images=images, split=task.data.split)


def selected_records(task: Any, dataset: Any, data_root: Path, usable: Callable[[Any], bool]) -> list[Any]:
    """Records the task scores: usable, listed by the manifest (when there is one), then the first ``limit``."""
    keep = manifest_files(task, data_root)
    records = [
        r
        for r in dataset.records
        if r.image_path is not None and usable(r) and (keep is None or r.image_path.resolve() in keep)
    ]
    if not records:
        raise RsvlmError(f"task {task.id}: no usable samples in {dataset.root} (check the suite's data entry)")
    return records[: task.data.limit] if task.data.limit else records


# -- contrastive kinds -----------------------------------------------------------------------------------------
def _embed(ctx: Context, paths: list[Path]) -> Any:
    from rsvlm.pipeline import embed_images

    return embed_images(ctx.model, paths, cache_dir=ctx.features, progress=ctx.progress)


def _scene_embeddings(task: Any, ctx: Context) -> tuple[Any, list[Path]]:
    from rsvlm.pipeline import class_text_embeddings
    from rsvlm.tasks.embeddings import EmbeddingSet
    from rsvlm.tasks.templates import load_templates

    dataset = open_task_dataset(task, ctx.data_root)
    records = selected_records(task, dataset, ctx.data_root, lambda r: r.label is not None)
    classes = sorted({r.label for r in records})
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[r.label] for r in records], dtype=np.int64)
    vectors = _embed(ctx, [r.image_path for r in records])
    readable = [dataset.class_names[c] for c in classes]
    texts = class_text_embeddings(ctx.model, readable, load_templates(task.options.get("templates", "rs-default")))
    paths = [r.image_path for r in records]
    return EmbeddingSet(
        vectors, labels, texts, readable, source=str(dataset.root), splits=[r.split for r in records]
    ), paths


def training_pool(model: str, data_root: Path) -> list[Path] | None:
    """Image files a shipped model trained on, from its recipe: AID minus the RSICD test images (rsvlm-lite's
    captions and class prompts, and rsvlm-lite-chat's caption and classification conversations, all come from
    them). None for models whose training images are not enumerable here."""
    if model not in ("rsvlm-lite", "rsvlm-lite-chat"):
        return None
    aid = {p for p in shipped_manifest("aid.txt") if str(p).startswith("aid/")}
    test = set(shipped_manifest("rsicd-test.txt"))
    return [data_root / p for p in sorted(aid - test, key=str)]


def copy_free_ids(task: Any, ctx: Context, paths: list[Path]) -> tuple[list[int], dict[str, Any]] | None:
    """Indexes of ``paths`` with no near-duplicate among the model's training images (when asked and known)."""
    pool = training_pool(ctx.model_name, ctx.data_root) if task.options.get("copy_free") else None
    if not pool:
        return None
    from rsvlm.bench.leakage import find_near_duplicates

    ctx.log(f"near-duplicate check: {len(paths)} test images against {len(pool)} training images")
    matches = find_near_duplicates(pool, paths, cache_dir=ctx.run_dir / "thumbnails")
    copied = {m.test for m in matches}
    keep = [i for i, p in enumerate(paths) if str(p) not in copied]
    info = {"copies": len(copied), "threshold": 0.95, "examples": [m.__dict__ for m in matches[:5]]}
    return keep, info


def run_zeroshot(task: Any, ctx: Context) -> dict[str, Any]:
    from rsvlm.tasks.zeroshot import evaluate_zeroshot

    emb, paths = _scene_embeddings(task, ctx)
    transductive = bool(task.options.get("transductive", False))
    report = evaluate_zeroshot(emb, transductive=transductive)
    copy_free = None
    found = copy_free_ids(task, ctx, paths)
    if found is not None:
        keep, info = found
        part = replace(emb, images=emb.images[keep], labels=emb.labels[keep], splits=[])
        sub = evaluate_zeroshot(part, transductive=transductive)
        copy_free = {"samples": len(keep), "metrics": {k: sub[k] for k in ("top1", "top5", "mean_per_class")}, **info}
    return {
        "samples": len(emb.labels),
        "copy_free": copy_free,
        "metrics": {k: report[k] for k in ("top1", "top5", "mean_per_class") if k in report},
        "details": {"class_names": emb.class_names, "confusion": report["confusion"], "per_class": report["per_class"]},
    }


def run_linear_probe(task: Any, ctx: Context) -> dict[str, Any]:
    from rsvlm.tasks.linear_probe import evaluate_linear_probe, stratified_split

    emb, _ = _scene_embeddings(task, ctx)
    train, test = stratified_split(emb.labels, float(task.options.get("test_fraction", 0.5)), seed=0)
    seeds = tuple(task.options.get("seeds", (1, 2, 3)))
    report = evaluate_linear_probe(
        emb.images[train], emb.labels[train], emb.images[test], emb.labels[test], emb.class_names,
        shots=task.options.get("shots"), seeds=seeds,
    )  # fmt: skip
    metrics = {k: v for k, v in report.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    details = {k: report[k] for k in ("per_class", "confusion") if k in report}
    return {"samples": len(test), "metrics": metrics, "details": {"class_names": emb.class_names, **details}}


def run_retrieval(task: Any, ctx: Context) -> dict[str, Any]:
    from rsvlm.pipeline import embed_texts
    from rsvlm.tasks.retrieval import evaluate_retrieval

    dataset = open_task_dataset(task, ctx.data_root)
    records = selected_records(task, dataset, ctx.data_root, lambda r: bool(r.captions))
    images = _embed(ctx, [r.image_path for r in records])
    captions = [c for r in records for c in r.captions]
    owner = np.array([i for i, r in enumerate(records) for _ in r.captions], dtype=np.int64)
    texts = embed_texts(ctx.model, captions)
    report = evaluate_retrieval(images, texts, owner)
    copy_free = None
    found = copy_free_ids(task, ctx, [r.image_path for r in records])
    if found is not None:
        keep, info = found
        kept_texts = np.flatnonzero(np.isin(owner, keep))
        remap = {old: new for new, old in enumerate(keep)}
        sub = evaluate_retrieval(images[keep], texts[kept_texts], np.array([remap[o] for o in owner[kept_texts]]))
        copy_free = {"samples": len(keep), "metrics": {k: sub[k] for k in ("i2t_r1", "t2i_r1", "mR")}, **info}
    sims = texts @ images.T
    examples = []
    for t in range(0, len(captions), max(1, len(captions) // 6))[:6]:
        top = np.argsort(-sims[t])[:5]
        examples.append(
            {
                "query": captions[t],
                "top": [str(records[i].image_path.resolve()) for i in top],
                "correct": [bool(i == owner[t]) for i in top],
            }
        )
    metrics = {k: v for k, v in report.items() if k not in ("n", "n_images", "n_texts") and isinstance(v, int | float)}
    return {"samples": len(records), "metrics": metrics, "copy_free": copy_free, "details": {"examples": examples}}


def run_golden(task: Any, ctx: Context) -> dict[str, Any]:
    from rsvlm.tasks.embeddings import AVERAGE, load_embedding_dir
    from rsvlm.tasks.zeroshot import evaluate_zeroshot

    emb = load_embedding_dir(ctx.data_root / task.data.path)
    report = evaluate_zeroshot(emb, AVERAGE, transductive=bool(task.options.get("transductive", False)))
    published = next((a.value for a in task.anchors if a.metric == "top1"), None)
    return {
        "samples": len(emb.labels),
        "metrics": {k: report[k] for k in ("top1", "top5", "mean_per_class") if k in report},
        "details": {"published": published, "reproduced": report["top1"]},
    }


# -- chat kinds ------------------------------------------------------------------------------------------------
def _flatten(metrics: dict[str, Any]) -> dict[str, float]:
    """Chat task metrics with per-type entries lifted: ``per_type.presence.accuracy`` → ``presence``."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and key != "n":
            flat[key] = float(value)
        elif key == "per_type" and isinstance(value, dict):
            for qtype, entry in value.items():
                if isinstance(entry, dict) and entry.get("accuracy") is not None:
                    flat[qtype] = float(entry["accuracy"])
                    if entry.get("mae") is not None:
                        flat[f"{qtype}_mae"] = float(entry["mae"])
    return flat


def _chat(
    task: Any, ctx: Context, dataset: Any, task_name: str, *, by_manifest: bool = True, **options: Any
) -> tuple[dict[str, Any], Any]:
    from rsvlm.models.chat.protocol import GenerationConfig
    from rsvlm.tasks.chat.registry import make_task
    from rsvlm.tasks.chat_eval import evaluate_chat

    if task.options.get("protocol"):
        options["protocol"] = task.options["protocol"]
    chat_task = make_task(task_name, dataset, **options)
    keep = manifest_files(task, ctx.data_root) if by_manifest else None
    subset = None if keep is None else {p.name for p in keep}
    config = GenerationConfig(max_new_tokens=int(task.options.get("max_new_tokens", 64)), batch_size=8)
    report = evaluate_chat(
        ctx.model, chat_task, dataset, ctx.work(task.id), limit=task.data.limit, subset=subset, config=config,
        progress=ctx.progress,
    )  # fmt: skip
    return report, chat_task


def _predictions(folder: Path) -> dict[str, str]:
    """The finished predictions of a chat run folder (``evaluate_chat`` wrote and checked them)."""
    from rsvlm.tasks.predictions import PREDICTIONS_FILE

    text = (folder / PREDICTIONS_FILE).read_text(encoding="utf-8")
    lines = [line for line in text.split("\n") if line.strip()]  # not splitlines: U+2028 inside a text is text
    return {str(r["id"]): str(r["prediction"]) for r in map(json.loads, lines)}


def run_caption(task: Any, ctx: Context) -> dict[str, Any]:
    dataset = open_task_dataset(task, ctx.data_root)
    report, _ = _chat(task, ctx, dataset, "caption")
    preds = _predictions(ctx.work(task.id))
    by_id = {r.id: r for r in dataset.records}
    examples = [
        {"image": str(by_id[i].image_path.resolve()), "prediction": p, "references": list(by_id[i].captions)}
        for i, p in list(preds.items())[:8]
        if i in by_id
    ]
    return {"samples": report["n"], "metrics": _flatten(report["metrics"]), "details": {"examples": examples}}


def run_vqa(task: Any, ctx: Context) -> dict[str, Any]:
    dataset = open_task_dataset(task, ctx.data_root)
    report, _ = _chat(task, ctx, dataset, "vqa")
    per_type = {t: e.get("accuracy") for t, e in report["metrics"].get("per_type", {}).items()}
    return {"samples": report["n"], "metrics": _flatten(report["metrics"]), "details": {"per_type": per_type}}


def run_counting(task: Any, ctx: Context) -> dict[str, Any]:
    from rsvlm.tasks.chat.counting import parse_count

    dataset = _box_tiles(task, ctx)
    object_name = str(task.options.get("object_name", "tree"))
    report, _ = _chat(task, ctx, dataset, "counting", by_manifest=False, object_name=object_name)
    preds = _predictions(ctx.work(task.id))
    pairs = [[len(r.boxes), parse_count(preds[r.id])] for r in dataset.records if r.id in preds and r.boxes is not None]
    return {"samples": report["n"], "metrics": _flatten(report["metrics"]), "details": {"pairs": pairs}}


def run_grounding(task: Any, ctx: Context) -> dict[str, Any]:
    dataset = _box_tiles(task, ctx, grounding=True)
    report, chat_task = _chat(task, ctx, dataset, "grounding", by_manifest=False)
    from PIL import Image

    from rsvlm.tasks.chat.box_parsing import parse_box
    from rsvlm.tasks.chat.grounding import target_box

    preds = _predictions(ctx.work(task.id))
    examples = []
    for r in dataset.records:
        if r.id not in preds or not chat_task.accepts(r) or r.image_path is None:
            continue
        with Image.open(r.image_path) as im:
            width, height = im.size
        box = parse_box(preds[r.id], ctx.model.box_format, width=width, height=height)
        truth = target_box(r)
        examples.append(
            {
                "image": str(r.image_path.resolve()),
                "expression": r.question,
                "truth": [truth.x1, truth.y1, truth.x2, truth.y2],
                "prediction": None if box is None else [box.x1, box.y1, box.x2, box.y2],
                "iou": None if box is None else _iou(box, truth),
            }
        )
    return {"samples": report["n"], "metrics": _flatten(report["metrics"]), "details": {"examples": examples[:6]}}


def _iou(a: Any, b: Any) -> float:
    w = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    h = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = w * h
    union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter
    return float(inter / union) if union > 0 else 0.0


def run_chat_classify(task: Any, ctx: Context) -> dict[str, Any]:
    dataset = open_task_dataset(task, ctx.data_root)
    report, _ = _chat(task, ctx, dataset, "chat-classify")
    metrics = report["metrics"]
    details = {k: metrics[k] for k in ("per_class", "confusion", "class_names") if k in metrics}
    return {"samples": report["n"], "metrics": _flatten(metrics), "details": details}


def _box_tiles(task: Any, ctx: Context, grounding: bool = False) -> Any:
    """Held-out tiles of a box set as a VOC folder in the run (written once, same tiling as the instruction data)."""
    from rsvlm.build.instructions import write_voc_tiles
    from rsvlm.data.raster import read_image
    from rsvlm.data.registry import open_dataset

    folder = ctx.run_dir / "data" / f"{task.id}-tiles"
    if not (folder / ".complete").is_file():
        tile = int(task.options.get("tile", 200))
        regions = set(task.options.get("regions", []))
        object_name = str(task.options.get("object_name", "tree"))
        for r in open_dataset(ctx.data_root / task.data.path).records:
            if r.image_path is None or r.boxes is None or (regions and r.image_path.name not in regions):
                continue
            write_voc_tiles(read_image(r.image_path), r.boxes, r.image_path.stem, folder, tile, object_name, grounding)
        atomic_write(folder / ".complete", "ok")
    return open_dataset(folder, format="voc")


KIND_RUNNERS: dict[str, Callable[[Any, Context], dict[str, Any]]] = {
    "zeroshot": run_zeroshot,
    "linear-probe": run_linear_probe,
    "retrieval": run_retrieval,
    "golden-zeroshot": run_golden,
    "caption": run_caption,
    "vqa": run_vqa,
    "counting": run_counting,
    "grounding": run_grounding,
    "chat-classify": run_chat_classify,
}
