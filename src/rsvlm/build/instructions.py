"""Instruction data for chat models, built from real labelled sets (the survey's "combined dataset").

Each source says which task its labels teach: captions (RSICD), VQA (RSVQA), scene classification
(AID), counting and grounding (tree boxes). Prompts come from the same versioned task protocols the
evaluation uses, so a model is trained on exactly the wording it is scored with. Held-out material is
split by IMAGE (VQA) or by REGION (box sets: whole source images are held out, then tiled), never by
question, and written in forms the evaluation commands read directly:

- ``train.json``: LLaVA conversation JSON (``rsvlm data info`` and the llava reader read it);
- ``heldout/<source>.txt``: image file names held out of a source, for ``rsvlm eval … --subset``;
- ``heldout/<source>-count/`` and ``heldout/<source>-grounding/``: tiles of held-out regions as VOC XML
  (boxes; referring expressions as ``<description>``) for ``rsvlm eval counting|grounding``;
- ``manifest.json``: the config, the seed, the split of every source and the counts per task.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rsvlm.configfile import check_keys, read_config_file
from rsvlm.data.sample import Boxes, Sample
from rsvlm.data.tiling import boxes_in_tile, tiles
from rsvlm.errors import RsvlmError
from rsvlm.fileio import atomic_write_json
from rsvlm.train.config import CaptionSource

TaskName = str


@dataclass(frozen=True)
class InstructionSource:
    task: TaskName
    """``caption``, ``vqa``, ``chat-classify``, ``counting`` or ``grounding``."""
    path: str
    name: str | None = None
    """Short name used for held-out files (default: the folder name)."""
    images: str | None = None
    split: str | None = None
    format: str | None = None
    test_fraction: float = 0.0
    """VQA: share of images held out (seeded)."""
    test_images: tuple[str, ...] = ()
    """Box sets: source image file names held out as a region."""
    max_per_class: int | None = None
    """Scene sets: cap per class, so one task does not swamp the mix."""
    max_samples: int | None = None
    tile: int = 200
    """Box sets: tile size in pixels; training tiles overlap by half, held-out tiles do not."""
    object_name: str = "trees"


@dataclass(frozen=True)
class InstructionConfig:
    sources: tuple[InstructionSource, ...]
    seed: int = 0
    box_format: str = "unit"
    """How grounding answers write boxes (``rsvlm.models.chat.protocol.BOX_FORMATS``)."""
    family: str = "default"
    """Which protocol wording the prompts use (the family of the model to be trained)."""
    exclude: tuple[CaptionSource, ...] = ()
    """Sets whose images must never appear in the training data, matched by file content (e.g. the RSICD
    test split: its images are AID images, so AID scene labels would otherwise leak them)."""


def load_instruction_config(path: str | Path) -> InstructionConfig:
    """Read a YAML/JSON build config strictly: an unknown key is an error, not a silent default."""
    path = Path(path)
    data = read_config_file(path)
    top = check_keys(InstructionConfig, data, path.name)
    excludes = top.pop("exclude", None) or []
    top["exclude"] = tuple(
        CaptionSource(**check_keys(CaptionSource, e, f"{path.name}.exclude[{i}]")) for i, e in enumerate(excludes)
    )
    sources = top.pop("sources", None)
    if not isinstance(sources, list) or not sources:
        raise RsvlmError(f"{path.name}: 'sources' must be a non-empty list")
    parsed = []
    for i, s in enumerate(sources):
        kw = check_keys(InstructionSource, s, f"{path.name}.sources[{i}]")
        if "test_images" in kw:
            kw["test_images"] = tuple(kw["test_images"])
        if kw.get("task") not in BUILDERS:
            raise RsvlmError(f"{path.name}.sources[{i}]: task must be one of {', '.join(BUILDERS)}")
        parsed.append(InstructionSource(**kw))
    return InstructionConfig(sources=tuple(parsed), **top)


@dataclass
class Built:
    """What one source contributed."""

    conversations: list[dict[str, Any]]
    split: dict[str, list[str]]
    """``train`` / ``test`` image names."""


class _Context:
    def __init__(self, config: InstructionConfig, out: Path) -> None:
        from rsvlm.data.registry import open_dataset
        from rsvlm.features.cache import file_hash

        self.config = config
        self.out = out
        self.rng = random.Random(config.seed)
        self.excluded: set[str] = set()
        for e in config.exclude:
            ds = open_dataset(e.path, format=e.format, images=e.images, split=e.split)
            self.excluded |= {file_hash(r.image_path) for r in ds.records if r.image_path is not None}
        self.dropped = 0

    def usable(self, sample: Sample) -> bool:
        """Has an image that no excluded set contains."""
        from rsvlm.features.cache import file_hash

        if sample.image_path is None:
            return False
        if self.excluded and file_hash(sample.image_path) in self.excluded:
            self.dropped += 1
            return False
        return True

    def image_ref(self, path: Path) -> str:
        """Image path as written in train.json: relative to the output folder, so both can move together."""
        return os.path.relpath(path.resolve(), self.out.resolve())


def _conversation(ctx: _Context, cid: str, image: Path, prompt: str, answer: str, task: str) -> dict[str, Any]:
    return {
        "id": cid,
        "image": ctx.image_ref(image),
        "task": task,
        "conversations": [{"from": "human", "value": f"<image>\n{prompt}"}, {"from": "gpt", "value": answer}],
    }


def _open(src: InstructionSource) -> Any:
    from rsvlm.data.registry import open_dataset

    return open_dataset(src.path, format=src.format, images=src.images, split=src.split)


def _limit(ctx: _Context, items: list[Any], n: int | None) -> list[Any]:
    if n is None or len(items) <= n:
        return items
    return sorted(ctx.rng.sample(items, n), key=items.index)


# -- one builder per task ----------------------------------------------------------------------------------
def _captions(ctx: _Context, src: InstructionSource, name: str) -> Built:
    from rsvlm.tasks.chat.registry import make_task

    task = make_task("caption")
    records = [r for r in _open(src).records if r.captions and ctx.usable(r)]
    convs = [
        _conversation(ctx, f"{name}-{r.id}-{k}", r.image_path, task.prompt(r, ctx.config.family), c, "caption")
        for r in records
        for k, c in enumerate(r.captions)
    ]
    return Built(_limit(ctx, convs, src.max_samples), {"train": sorted({r.image_path.name for r in records})})


def _vqa(ctx: _Context, src: InstructionSource, name: str) -> Built:
    from rsvlm.tasks.chat.registry import make_task

    task = make_task("vqa")
    records = [r for r in _open(src).records if task.accepts(r) and ctx.usable(r)]
    images = sorted({r.image_path.name for r in records})
    held = set(random.Random(f"{ctx.config.seed}-{name}").sample(images, round(len(images) * src.test_fraction)))
    convs = [
        _conversation(ctx, f"{name}-{r.id}", r.image_path, task.prompt(r, ctx.config.family), r.answer, "vqa")
        for r in records
        if r.image_path.name not in held and r.answer is not None
    ]
    split = {"train": [i for i in images if i not in held], "test": sorted(held)}
    return Built(_limit(ctx, convs, src.max_samples), split)


def _classify(ctx: _Context, src: InstructionSource, name: str) -> Built:
    from rsvlm.tasks.chat.registry import make_task

    ds = _open(src)
    task = make_task("chat-classify", ds)
    per_class: dict[str, list[Sample]] = {}
    for r in ds.records:
        if r.label is not None and ctx.usable(r):
            per_class.setdefault(r.label, []).append(r)
    convs = []
    for label in sorted(per_class):
        for r in _limit(ctx, per_class[label], src.max_per_class):
            readable = ds.class_names[label]
            convs.append(
                _conversation(
                    ctx, f"{name}-{r.id}", r.image_path, task.prompt(r, ctx.config.family), readable, "classify"
                )
            )
    return Built(convs, {"train": sorted({Path(c["image"]).name for c in convs})})


def referring_expressions(boxes: Boxes, object_name: str, margin: float = 1.25) -> list[tuple[str, int]]:
    """Expressions that pick out exactly one box by a clear margin: the largest one, and the northernmost /
    westernmost one (imagery north-up). Each is kept only when the runner-up is clearly behind."""
    import numpy as np

    if len(boxes) < 2:
        return [(f"the {object_name.rstrip('s')}", 0)] if len(boxes) == 1 else []
    xy = boxes.xyxy
    area = (xy[:, 2] - xy[:, 0]) * (xy[:, 3] - xy[:, 1])
    singular = object_name.rstrip("s")
    out = []
    order = np.argsort(-area)
    if area[order[0]] >= margin * area[order[1]]:
        out.append((f"the largest {singular}", int(order[0])))
    size = float(np.median(np.maximum(xy[:, 2] - xy[:, 0], xy[:, 3] - xy[:, 1])))
    for what, key in (("northernmost", (xy[:, 1] + xy[:, 3]) / 2), ("westernmost", (xy[:, 0] + xy[:, 2]) / 2)):
        first, second = np.argsort(key)[:2]
        if key[second] - key[first] >= size / 2:
            out.append((f"the {what} {singular}", int(first)))
    return out


def _box_source(ctx: _Context, src: InstructionSource, name: str, task_name: str) -> Built:
    from rsvlm.data.raster import read_image
    from rsvlm.tasks.chat.box_parsing import format_box
    from rsvlm.tasks.chat.geometry import PixelBox
    from rsvlm.tasks.chat.registry import make_task

    ds = _open(src)
    names = [r.image_path.name for r in ds.records if r.image_path is not None]
    missing = sorted(set(src.test_images) - set(names))
    if missing:
        raise RsvlmError(f"{src.path}: test_images {missing} are not in this set (it has {', '.join(names)})")
    counting = make_task("counting", object_name=src.object_name)
    grounding = make_task("grounding")
    convs: list[dict[str, Any]] = []
    for r in ds.records:
        if r.image_path is None or r.boxes is None:
            continue
        image = read_image(r.image_path)
        if r.image_path.name in src.test_images:
            folder, wants_text = ctx.out / "heldout" / f"{name}-{task_name}", task_name == "grounding"
            write_voc_tiles(image, r.boxes, r.image_path.stem, folder, src.tile, src.object_name, wants_text)
            continue
        for window in tiles(image.height, image.width, src.tile, src.tile // 2):
            x, y, w, h = window
            inside = boxes_in_tile(r.boxes, window)
            tile_id = f"{r.image_path.stem}_{x}_{y}"
            tile_path = _write_tile(image.data[:, y : y + h, x : x + w], ctx.out / "images" / name / f"{tile_id}.png")
            expressions = referring_expressions(inside, src.object_name)
            if task_name == "counting":
                tile_sample = Sample(id=tile_id, boxes=inside)
                prompt = counting.prompt(tile_sample, ctx.config.family)
                convs.append(_conversation(ctx, f"{name}-{tile_id}", tile_path, prompt, str(len(inside)), "counting"))
            else:
                for text, k in expressions:
                    bx = inside.xyxy[k]
                    answer = format_box(PixelBox(*map(float, bx)), ctx.config.box_format, width=w, height=h)
                    prompt = grounding.prompt(Sample(id=tile_id, question=text), ctx.config.family)
                    convs.append(_conversation(ctx, f"{name}-{tile_id}-{k}", tile_path, prompt, answer, "grounding"))
    split = {"train": sorted(set(names) - set(src.test_images)), "test": sorted(src.test_images)}
    return Built(_limit(ctx, convs, src.max_samples), split)


def write_voc_tiles(
    image: Any, boxes: Boxes, stem: str, folder: Path, tile: int, object_name: str, grounding: bool
) -> None:
    """Non-overlapping ``tile`` px tiles of one held-out image as PNG + Pascal-VOC XML, the layout
    ``rsvlm eval counting|grounding`` reads; for grounding each kept box carries its referring expression."""
    for window in tiles(image.height, image.width, tile, tile):
        x, y, w, h = window
        inside = boxes_in_tile(boxes, window)
        tile_id = f"{stem}_{x}_{y}"
        png = _write_tile(image.data[:, y : y + h, x : x + w], folder / f"{tile_id}.png")
        expressions = referring_expressions(inside, object_name) if grounding else []
        _write_voc(folder / f"{tile_id}.xml", png.name, w, h, inside, expressions)


def _write_tile(pixels: Any, path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels[:3].transpose(1, 2, 0)).save(path)
    return path


def _write_voc(
    path: Path, image_name: str, width: int, height: int, boxes: Boxes, expressions: list[tuple[str, int]]
) -> None:
    from xml.sax.saxutils import escape

    described = dict((k, t) for t, k in expressions)
    objects = []
    for k, (x1, y1, x2, y2) in enumerate(boxes.xyxy.tolist()):
        if expressions and k not in described:
            continue
        text = f"<description>{escape(described[k])}</description>" if k in described else ""
        objects.append(
            f"<object><name>{escape(boxes.labels[k])}</name><bndbox><xmin>{x1:.1f}</xmin><ymin>{y1:.1f}</ymin>"
            f"<xmax>{x2:.1f}</xmax><ymax>{y2:.1f}</ymax></bndbox>{text}</object>"
        )
    path.write_text(
        f"<annotation><filename>{escape(image_name)}</filename><size><width>{width}</width>"
        f"<height>{height}</height><depth>3</depth></size>{''.join(objects)}</annotation>\n",
        encoding="utf-8",
    )


BUILDERS: dict[str, Callable[[_Context, InstructionSource, str], Built]] = {
    "caption": _captions,
    "vqa": _vqa,
    "chat-classify": _classify,
    "counting": lambda ctx, src, name: _box_source(ctx, src, name, "counting"),
    "grounding": lambda ctx, src, name: _box_source(ctx, src, name, "grounding"),
}


def build_instructions(config: InstructionConfig, out: str | Path) -> dict[str, Any]:
    """Write the instruction set of ``config`` into ``out``; returns the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = _Context(config, out)
    conversations: list[dict[str, Any]] = []
    sources = []
    for src in config.sources:
        name = src.name or Path(src.path).name
        built = BUILDERS[src.task](ctx, src, name)
        conversations.extend(built.conversations)
        if built.split.get("test"):
            (out / "heldout").mkdir(exist_ok=True)
            (out / "heldout" / f"{name}.txt").write_text("\n".join(built.split["test"]) + "\n", encoding="utf-8")
        sources.append({**asdict(src), "name": name, "conversations": len(built.conversations), "split": built.split})
    random.Random(config.seed).shuffle(conversations)
    atomic_write_json(out / "train.json", conversations, ensure_ascii=False, indent=1)
    per_task: dict[str, int] = {}
    for c in conversations:
        per_task[c["task"]] = per_task.get(c["task"], 0) + 1
    manifest = {
        "config": asdict(config),
        "conversations": len(conversations),
        "per_task": per_task,
        "excluded_images_dropped": ctx.dropped,
        "sources": sources,
    }
    atomic_write_json(out / "manifest.json", manifest, default=str)
    return manifest
