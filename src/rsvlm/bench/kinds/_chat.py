"""What the chat kinds share: one chat evaluation in the run's work folder, its predictions, held-out box tiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsvlm.bench.kind import Context, manifest_files
from rsvlm.fileio import atomic_write

if TYPE_CHECKING:
    from rsvlm.bench.spec import TaskSpec
    from rsvlm.data.dataset import Dataset
    from rsvlm.tasks.chat.base import ChatTask


def evaluate(
    task: TaskSpec, ctx: Context, dataset: Dataset, task_name: str, *, by_manifest: bool = True, **options: Any
) -> tuple[dict[str, Any], ChatTask]:
    """``evaluate_chat`` of the task's chat task on ``dataset``, resumable in ``ctx.work(task.id)``."""
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
        ctx.chat(), chat_task, dataset, ctx.work(task.id), limit=task.data.limit, subset=subset, config=config,
        progress=ctx.progress,
    )  # fmt: skip
    return report, chat_task


def predictions(folder: Path) -> dict[str, str]:
    """The finished predictions of a chat run folder, read back by the log ``evaluate_chat`` wrote them with."""
    from rsvlm.tasks.predictions import RUN_FILE, PredictionLog

    header = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    return {str(i): str(r["prediction"]) for i, r in PredictionLog(folder, header).records.items()}


def box_tiles(task: TaskSpec, ctx: Context, grounding: bool = False) -> Dataset:
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


def chat_options(protocol: str, max_new_tokens: int, **more: tuple[str, Any]) -> dict[str, tuple[str, Any]]:
    """The options every chat kind has (its protocol, the answer length), plus its own."""
    return {"protocol": ("str", protocol), "max_new_tokens": ("int", max_new_tokens), **more}


BOX_OPTIONS: dict[str, tuple[str, Any]] = {
    "object_name": ("str", "trees"),
    "tile": ("int", 200),
    "regions": ("list[str]", ()),
}
"""Options of the kinds scored on tiles of held-out box regions."""
