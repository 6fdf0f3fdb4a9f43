"""``rsvlm bench``: every (model, task) pair of a suite, resumable, into one run folder.

Layout of a run folder (the contract the leaderboard and report read)::

    run.json                       suite, models, environment, seeds, data manifests and their digests
    results/<model>/<task>.json    metrics, leakage flag, anchors, plot details and weights digest of one pair
    work/<model>/<task>/           per-sample predictions (chat) — an interrupted task resumes here
    features/                      embedding cache (contrastive) — an interrupted embedding resumes here

``--adapter DIR`` scores the contrastive models with a saved adapter (``rsvlm adapt fit``) under their own name,
``<model>+<method>``, so adapted and plain results never mix; kinds that do not apply adapters are recorded as
skipped for it, as is a task whose classes are not the adapter's. ``run.json`` records the adapter's digests.

A finished pair is not recomputed unless the model's own weights changed since (rsvlm's shipped models and
local folders are hashed); rerunning the same command after a kill continues where it
stopped, and the metrics equal those of an uninterrupted run (predictions are greedy and cached per
sample, embeddings are cached per image file). The runner only orchestrates: what a task computes is its
kind's ``run`` (``rsvlm.bench.kinds``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from rsvlm.bench.kind import Context, Family, KindResult, Log, SkippedError, model_slug, shipped_manifest
from rsvlm.errors import RsvlmError
from rsvlm.fileio import atomic_write_json, run_lock

if TYPE_CHECKING:
    from rsvlm.adapt.saved import Adapter
    from rsvlm.bench.spec import Suite, TaskSpec
    from rsvlm.models.protocols import ContrastiveModel

__all__ = ["Context", "environment", "load_model", "model_family", "run_suite", "weights_digest"]


def _jsonable(value: object) -> object:
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


def model_family(name: str) -> Family:
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


def load_model(name: str, family: Family) -> object:
    if family == "chat":
        from rsvlm.models.chat.registry import load_chat

        return load_chat(name)
    from rsvlm.models.openclip import load_contrastive

    if Path(name).is_dir():
        from rsvlm.models.lite import load_lite

        return load_lite(name)
    loaded: object = load_contrastive(name, None, download=False)
    return loaded


def weights_digest(name: str) -> str | None:
    """SHA-256 over a model's own weight files (a local folder or a model shipped in the package), or None.

    A result made by other weights than the ones named now must not be reused when a run resumes: rsvlm's
    shipped models change when they are retrained, and a folder can be overwritten. Third-party releases
    are fixed named tags and are not hashed.
    """
    from rsvlm.digests import files_digest
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
    return files_digest(sorted(folder.glob("*.safetensors")) + sorted(folder.glob("config.json")))


def _stale(target: Path, digest: str | None, out: Path, model: str, task_id: str, log: Log) -> bool:
    """True (after clearing the pair's result and per-sample work) when ``target`` came from other weights."""
    import shutil

    recorded = json.loads(target.read_text(encoding="utf-8")).get("weights_digest")
    if digest is None or recorded == digest:
        return False
    log(f"{model} · {task_id}: the saved result came from other weights than {model}'s now; redoing it")
    target.unlink()
    shutil.rmtree(out / "work" / model_slug(model) / task_id, ignore_errors=True)
    return True


def run_suite(
    suite: Suite,
    models: list[str],
    out: Path,
    data_root: Path,
    *,
    log: Log,
    progress: Callable[[str], Callable[[int, int], None]] | None = None,
    verify: bool = True,
    adapter: Path | None = None,
) -> Path:
    """Run (or resume) ``suite`` for ``models`` into ``out``; returns the run folder.

    The folder is locked for the run: a second ``rsvlm bench`` on it is refused at once rather than
    computing every pair twice and racing on the same result and prediction files. ``adapter``: an adapter
    folder applied to the contrastive models (each must be the one it was fitted on).
    """
    with run_lock(out, "bench run folder"):
        return _run_suite(suite, models, out, data_root, log=log, progress=progress, verify=verify, adapter=adapter)


def adapter_record(folder: Path) -> dict[str, Any]:
    """What ``run.json`` and each adapted result record of an adapter: folder, method, classes, base model, the
    digest of its JSON and of both its files (a refitted adapter makes its results stale)."""
    from rsvlm.adapt.saved import CONFIG_FILE, WEIGHTS_FILE, read_adapter_config
    from rsvlm.digests import files_digest, json_digest

    config = read_adapter_config(folder)
    return {
        "folder": str(folder),
        "method": str(config["method"]),
        "options": config.get("options"),
        "classes": config["classes"],
        "shots": config.get("shots"),
        "seed": config.get("seed"),
        "base": config["base"],
        "trained_on": config.get("trained_on") or {},
        "json_digest": json_digest(config),
        "digest": files_digest([folder / CONFIG_FILE, folder / WEIGHTS_FILE]),
    }


def adapted_name(model: str, method: str) -> str:
    """The leaderboard column of ``model`` scored with an adapter of ``method``."""
    return f"{model}+{method}"


def adapter_flag(record: dict[str, Any], task: TaskSpec, data_root: Path, flag: dict[str, str]) -> dict[str, str]:
    """``flag`` (the base model's), or "seen" when the adapter was fitted on the task's dataset and split."""
    from rsvlm.bench.leakage import HELD_OUT_MANIFESTS, canonical_dataset

    trained = record.get("trained_on") or {}
    data = trained.get("data")
    if not isinstance(data, str):
        return flag
    dataset, split = HELD_OUT_MANIFESTS.get(task.data.manifest or "", (task.data.path, task.data.split))
    same = Path(data).resolve() == (data_root / task.data.path).resolve() or (
        canonical_dataset(data) == canonical_dataset(dataset)
    )
    fitted_split = trained.get("split")
    disjoint = fitted_split not in (None, "all") and split is not None and fitted_split != split
    if not same or disjoint:
        return flag
    return {
        "status": "seen",
        "reason": f"the adapter was fitted on {trained.get('examples')} labelled images of this dataset "
        f"({data}, split {fitted_split})",
    }


def _run_suite(
    suite: Suite,
    models: list[str],
    out: Path,
    data_root: Path,
    *,
    log: Log,
    progress: Callable[[str], Callable[[int, int], None]] | None,
    verify: bool,
    adapter: Path | None = None,
) -> Path:
    from rsvlm.bench.kinds import KINDS
    from rsvlm.bench.leakage import result_flag
    from rsvlm.digests import json_digest

    record = adapter_record(adapter) if adapter is not None else None
    if record is not None:
        _check_adapter_models(adapter, record, models)
    families = {m: model_family(m) for m in models}
    names = {
        m: adapted_name(m, record["method"]) if record is not None and families[m] == "contrastive" else m
        for m in models
    }
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
        "models": sorted({*names.values(), *((previous or {}).get("models", []))}),
        "started": (previous or {}).get("started") or _now(),
        "finished": None,
        "environment": environment(),
        "seeds": {"linear_probe": [1, 2, 3], "generation": "greedy (deterministic)"},
        "data": data_manifests(suite, data_root, verify, log),
    }
    adapted = {names[m]: record for m in models if record is not None and names[m] != m}
    if adapted or (previous or {}).get("adapters"):
        run["adapters"] = {**(previous or {}).get("adapters", {}), **adapted}
    atomic_write_json(run_path, run, default=_jsonable)
    pairs: list[tuple[str, TaskSpec]] = []
    for model in models:
        pairs += [(model, t) for t in suite.tasks if KINDS[t.kind].family == families[model]]
    pairs += [("published", t) for t in suite.tasks if KINDS[t.kind].family == "embeddings"]
    loaded: dict[str, object] = {}
    adapters: dict[str, Adapter] = {}
    digests = {m: weights_digest(m) for m in models}
    for m in models:
        if record is not None and names[m] != m:  # a refitted adapter makes the adapted results stale
            digests[m] = json_digest({"weights": digests[m], "adapter": record["digest"]})
    for n, (model, task) in enumerate(pairs, start=1):
        name = names.get(model, model)
        target = out / "results" / model_slug(name) / f"{task.id}.json"
        if target.is_file() and not _stale(target, digests.get(model), out, name, task.id, log):
            log(f"[{n}/{len(pairs)}] {name} · {task.id}: done already")
            continue
        kind = KINDS[task.kind]
        if kind.family != "embeddings" and model not in loaded:
            log(f"loading {model}")
            loaded = {model: load_model(model, kind.family)}  # one model in memory at a time
            adapters = _apply(adapter, model, loaded[model], names)
        ctx = Context(
            data_root, out, model, loaded.get(model), log, progress(f"{name} · {task.id}") if progress else None,
            adapter=adapters.get(model),
        )  # fmt: skip
        log(f"[{n}/{len(pairs)}] {name} · {task.id} ({task.kind})")
        start = time.perf_counter()
        skipped = None
        try:
            if ctx.adapter is not None and not kind.adapts:
                raise SkippedError(f"kind {kind.name} does not apply adapters (the plain {model} measures it)")
            measured = kind.run(task, ctx)
        except SkippedError as exc:
            log(f"[{n}/{len(pairs)}] {name} · {task.id}: skipped, {exc}")
            skipped, measured = str(exc), KindResult(samples=0, metrics={})
        flag = result_flag(model, task)
        result = {
            "samples": measured.samples,
            "copy_free": measured.copy_free,
            "metrics": {k: v for k, v in measured.metrics.items() if isinstance(v, int | float)},
            "details": measured.details,
            "task": task.id,
            "kind": task.kind,
            "model": name,
            "family": kind.family,
            "seconds": round(time.perf_counter() - start, 2),
            "seen_in_training": adapter_flag(record, task, data_root, flag) if ctx.adapter and record else flag,
            "anchors": [a.__dict__ for a in task.anchors],
            "weights_digest": digests.get(model),
        }
        if skipped is not None:
            result["skipped"] = skipped
        if ctx.adapter is not None:
            result.update(base_model=model, adapter=record)
        atomic_write_json(target, result, default=_jsonable)
    run["finished"] = _now()
    atomic_write_json(run_path, run, default=_jsonable)
    return out


def _check_adapter_models(folder: Path | None, record: dict[str, Any], models: list[str]) -> None:
    """Before any work: an adapter fitted on embeddings, or named models other than its base, are refused."""
    from rsvlm.adapt.saved import FIT_HINT
    from rsvlm.models.registry import MODELS

    base = str(record["base"].get("name") if isinstance(record["base"], dict) else "")
    if base.startswith("embeddings:"):
        raise RsvlmError(
            f"{folder}: adapter was fitted on precomputed embeddings; rsvlm bench runs models ({FIT_HINT})"
        )
    other = [m for m in models if m in MODELS and m != base]
    if other:
        raise RsvlmError(
            f"{folder}: adapter was trained on {base}, not on {', '.join(other)}; give --models {base} (or {FIT_HINT})"
        )


def _apply(adapter: Path | None, model: str, loaded: object, names: dict[str, str]) -> dict[str, Adapter]:
    """The adapter bound to a just-loaded contrastive model (refused in one line when fitted on another)."""
    if adapter is None or names.get(model, model) == model:
        return {}
    from rsvlm.adapt.saved import load_adapter

    return {model: load_adapter(adapter, cast("ContrastiveModel", loaded))}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def data_manifests(suite: Suite, data_root: Path, verify: bool, log: Log) -> dict[str, Any]:
    """Per task its manifest, file count and (when verified) digest, for ``run.json``; refuses data that does not
    match its manifest, naming the first files that differ."""
    from rsvlm.bench.manifest import ManifestCheck, verify_manifest

    out: dict[str, Any] = {}
    checks: dict[str, ManifestCheck] = {}  # tasks sharing a manifest hash its files once
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
