"""Where converted chat-model folders live, how they are named, and how they appear atomically.

A converted folder is named after its source and a fingerprint of everything the conversion reads
(file names, sizes and modification times of the source folders, plus the conversion parameters), so
editing or replacing the source makes a new conversion while an unchanged source is converted once.
The folder is built under a temporary name and renamed into place: a crash never leaves a folder that
looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

DONE_MARKER = "rsvlm_chat.json"
"""Written last into a converted folder; it records how the folder was made."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("RSVLM_CACHE_DIR", Path.home() / ".cache" / "rsvlm")) / "chat"


def fingerprint(folders: Iterable[Path], params: dict[str, Any]) -> str:
    """Cheap identity of the inputs: no weights are hashed, only names, sizes and mtimes."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for folder in folders:
        h.update(str(folder.resolve()).encode())
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            stat = path.stat()
            h.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def is_done(folder: Path) -> bool:
    return (folder / DONE_MARKER).is_file()


def build_once(target: Path, build: Callable[[Path], dict[str, Any]]) -> Path:
    """``target`` if already built; otherwise ``build(tmp)`` fills a temporary folder that is renamed."""
    if is_done(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        record = build(tmp)
        (tmp / DONE_MARKER).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if is_done(target):  # another process finished first
            shutil.rmtree(tmp)
        else:
            shutil.rmtree(target, ignore_errors=True)  # an unfinished leftover without the marker
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_record(folder: Path) -> dict[str, Any] | None:
    """The marker of a converted folder, or None for any other folder."""
    path = folder / DONE_MARKER
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    return record if isinstance(record, dict) else None
