"""Name-keyed table of dataset formats, with detection in order of specificity.

Entries point at ``module:Class`` strings and are imported only when used, so listing formats or
showing ``--help`` costs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from rsvlm.data.dataset import Dataset, read_json
from rsvlm.errors import FormatError

# Order matters for detection: specific annotation files first, bare image folders last.
FORMATS: dict[str, str] = {
    "rsvqa": "rsvlm.data.formats.rsvqa:RsvqaDataset",
    "rsicd-precomp": "rsvlm.data.formats.rsicd_precomp:RsicdPrecompDataset",
    "caption-json": "rsvlm.data.formats.caption_json:CaptionJsonDataset",
    "llava": "rsvlm.data.formats.llava:LlavaDataset",
    "voc": "rsvlm.data.formats.voc:VocDataset",
    "loveda-patches": "rsvlm.data.formats.loveda_patches:LoveDAPatchesDataset",
    "sen1floods11": "rsvlm.data.formats.sen1floods11:Sen1Floods11Dataset",
    "sen1floods11-ms": "rsvlm.data.formats.sen1floods11:Sen1Floods11BandsDataset",
    "rsvqa-scene": "rsvlm.data.formats.rsvqa_scene:RsvqaSceneDataset",
    "scene-folder": "rsvlm.data.formats.scene_folder:SceneFolderDataset",
    "scene-prefix": "rsvlm.data.formats.scene_prefix:ScenePrefixDataset",
}


def format_class(name: str) -> type[Dataset]:
    try:
        target = FORMATS[name]
    except KeyError:
        raise FormatError(f"unknown dataset format {name!r}; known formats: {', '.join(FORMATS)}") from None
    module_name, _, class_name = target.partition(":")
    cls: type[Dataset] = getattr(importlib.import_module(module_name), class_name)
    return cls


def detect_format(path: str | Path) -> str:
    """The first format whose ``detect`` accepts ``path``."""
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path}: not found (check the path)")
    for name in FORMATS:
        if format_class(name).detect(path):
            return name
    if path.is_file() and path.suffix.lower() == ".json":
        read_json(path)  # a malformed file deserves its own error, not "unknown format"
    raise FormatError(f"{path}: no known dataset format recognised; name one with --format ({', '.join(FORMATS)})")


def open_dataset(
    path: str | Path,
    *,
    format: str | None = None,
    images: str | Path | None = None,
    split: str | None = None,
    class_names: Mapping[str, str] | None = None,
) -> Dataset:
    """Open any supported dataset; ``format`` is detected from the path when not given."""
    name = format or detect_format(path)
    return format_class(name)(path, images=images, split=split, class_names=class_names)
