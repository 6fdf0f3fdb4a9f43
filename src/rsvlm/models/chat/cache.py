"""Where converted chat-model folders live, how they are named, and how they appear atomically.

A converted folder is named after its source and a fingerprint of everything the conversion reads
(file names, sizes and modification times of the source folders, plus the conversion parameters), so
editing or replacing the source makes a new conversion while an unchanged source is converted once.
The folder is built under a temporary name and renamed into place: a crash never leaves a folder that
looks finished.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rsvlm.errors import DataError
from rsvlm.fileio import os_problem, write_error

DONE_MARKER = "rsvlm_chat.json"
"""Written last into a converted folder; it records how the folder was made."""
_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)
"""Failures of a conversion that are the cache folder's, not the source's: reported as one line."""


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
    """True for a finished conversion: its marker is there and readable (a damaged one means rebuild)."""
    return read_record(folder) is not None


def build_once(target: Path, build: Callable[[Path], dict[str, Any]]) -> Path:
    """``target`` if already built; otherwise ``build(tmp)`` fills a temporary folder that is renamed.

    A conversion that cannot be written (disk full, a cache folder that is a file) is one line naming the
    folder, and leaves no temporary folder. When two processes convert at once, the first rename wins and
    the other drops its copy: a finished folder is never deleted under a process that may be loading it.
    """
    if is_done(target):
        return target
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as exc:
        raise DataError(
            target.parent,
            f"cannot be used as the model cache folder ({_folder_problem(exc)})",
            "set RSVLM_CACHE_DIR to a writable folder",
        ) from None
    try:
        record = build(tmp)
        (tmp / DONE_MARKER).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _publish(tmp, target)
    except OSError as exc:
        if exc.errno not in _WRITE_ERRORS:
            raise
        raise write_error(target, exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _folder_problem(exc: OSError) -> str:
    """What is wrong with a folder that could not be created (a file in its place reads ``file exists``)."""
    return "not a directory" if isinstance(exc, FileExistsError) else os_problem(exc)


def _publish(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``, unless another process finished ``target`` first."""
    for _ in range(2):
        try:
            tmp.rename(target)  # fails when target is a non-empty folder
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
        if is_done(target):  # another process won: keep its folder, drop ours
            return
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)  # an unfinished leftover without the marker
        else:
            target.unlink(missing_ok=True)
    tmp.rename(target)


def read_record(folder: Path) -> dict[str, Any] | None:
    """The marker of a converted folder, or None for any other folder (and for a damaged marker)."""
    try:
        record = json.loads((folder / DONE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent, a directory, unreadable, not UTF-8 or not JSON
        return None
    return record if isinstance(record, dict) else None
