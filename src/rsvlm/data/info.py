"""What is in a dataset, in numbers: counts per split, class and question type, image sizes and bands,
and what could not be paired. Behind ``rsvlm data info``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rsvlm.data.dataset import Dataset
from rsvlm.data.raster import RasterInfo, inspect_raster, verify_raster
from rsvlm.errors import DataError


def raster_summary(info: RasterInfo) -> dict[str, Any]:
    geo = info.geo
    return {
        "path": str(info.path),
        "format": "raster",
        "driver": info.driver,
        "width": info.width,
        "height": info.height,
        "bands": list(info.bands),
        "band_count": info.band_count,
        "dtype": info.dtype,
        "nodata": "nan" if info.nodata is not None and math.isnan(info.nodata) else info.nodata,
        "crs": geo.crs if geo else None,
        "transform": list(geo.transform) if geo and geo.transform else None,
        "resolution": list(geo.resolution) if geo and geo.resolution else None,
        "bounds": list(geo.bounds) if geo and geo.bounds else None,
    }


def _check_image(path: Path, verify: bool) -> tuple[Path, RasterInfo | None, str | None]:
    try:
        info = inspect_raster(path)
        if verify:
            verify_raster(path)
        return path, info, None
    except DataError as exc:
        return path, None, exc.problem


def dataset_summary(
    dataset: Dataset,
    *,
    inspect_images: bool = True,
    verify: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """A JSON-ready summary. ``verify`` decodes every image fully (finds truncated files; slower)."""
    records = dataset.records
    splits: dict[str, dict[str, int]] = {}
    for r in records:
        s = splits.setdefault(r.split or "all", Counter())
        s["samples"] += 1
        s["captions"] += len(r.captions)
        s["questions"] += r.question is not None
        s["boxes"] += len(r.boxes) if r.boxes is not None else 0
        s["turns"] += len(r.conversation)
    images_per_split: dict[str, set[Path]] = {}
    for r in records:
        if r.image_path is not None:
            images_per_split.setdefault(r.split or "all", set()).add(r.image_path)
    for u in dataset.unmatched:
        s = splits.setdefault(u.split or "all", Counter())
        s["unmatched_items"] += 1
        s["unmatched_annotations"] += u.annotations
    split_table = {
        name: {"images": len(images_per_split.get(name, ())), **{k: v for k, v in counts.items() if v}}
        for name, counts in sorted(splits.items())
    }

    unique_images = sorted({r.image_path for r in records if r.image_path is not None})
    sizes: Counter[tuple[int, int, int, str]] = Counter()
    unreadable: list[dict[str, str]] = []
    if inspect_images and unique_images:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for done, (path, info, error) in enumerate(
                pool.map(lambda p: _check_image(p, verify), unique_images), start=1
            ):
                if info is not None:
                    sizes[(info.width, info.height, info.band_count, info.dtype)] += 1
                else:
                    unreadable.append({"path": str(path), "error": str(error)})
                if progress is not None:
                    progress(done, len(unique_images))

    unmatched_groups: Counter[tuple[str, str]] = Counter()
    unmatched_annotations: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], list[str]] = {}
    for u in dataset.unmatched:
        key = (u.split or "all", u.reason)
        unmatched_groups[key] += 1
        unmatched_annotations[key] += u.annotations
        examples.setdefault(key, [])
        if len(examples[key]) < 5:
            examples[key].append(u.name)

    box_labels: Counter[str] = Counter()
    for r in records:
        if r.boxes is not None:
            box_labels.update(r.boxes.labels)

    return {
        "path": str(dataset.root),
        "format": dataset.format_name,
        "samples": len(records),
        "images": len(unique_images),
        "splits": split_table,
        "classes": dict(sorted(Counter(r.label for r in records if r.label is not None).items())),
        "class_names": dataset.class_names,
        "question_types": dict(
            sorted(Counter(r.question_type for r in records if r.question_type is not None).items())
        ),
        "box_labels": dict(sorted(box_labels.items())),
        "image_sizes": [
            {"width": w, "height": h, "bands": b, "dtype": d, "count": n} for (w, h, b, d), n in sizes.most_common()
        ],
        "unmatched": [
            {
                "split": split,
                "reason": reason,
                "items": n,
                "annotations": unmatched_annotations[(split, reason)],
                "examples": examples[(split, reason)],
            }
            for (split, reason), n in sorted(unmatched_groups.items())
        ],
        "unreadable": unreadable,
        "notes": dataset.notes,
    }
