"""File-system helpers every layer shares: reading user text, atomic writes, run-folder locks, file names.

Each turns the operating system's failures (a full disk, a directory where a file belongs, bytes that are
not UTF-8, a second process on the same run folder) into one-line errors that name the path and the fix,
and none leaves a half-written or temporary file behind.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rsvlm.errors import DataError, RsvlmError


def os_problem(exc: OSError) -> str:
    """A short, user-facing description of an OS error (``disk full``, ``is a directory`` …)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the device"
    if exc.errno == errno.EFBIG:
        return "file too large for this file system or limit"
    return (exc.strerror or type(exc).__name__).lower()


def read_text(path: str | Path, what: str = "text file") -> str:
    """The UTF-8 text of a user-supplied file, or a one-line error naming the file and what was expected."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, f"{what} not found") from None
    except IsADirectoryError:
        raise DataError(path, f"is a directory, expected a {what}") from None
    except OSError as exc:
        raise DataError(path, f"cannot read the {what} ({os_problem(exc)})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(path, f"{what} is not UTF-8 text (byte {exc.start}, line {line})", "save it as UTF-8") from None


def write_error(path: Path, exc: OSError) -> RsvlmError:
    """The one-line error for a failed write under ``path``."""
    fix = "free some space or choose another output folder" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else None
    return DataError(path, f"cannot write ({os_problem(exc)})", fix)


@functools.cache
def _file_mode() -> int:
    """The mode ``open()`` would give a new file (0666 less the umask), read once per process."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that needs a file name (parquet, FAISS); renamed onto ``path``
    when the block ends without error, removed otherwise: readers see all or nothing. OS failures are one line."""
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name[:80]}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        yield tmp
        tmp.chmod(_file_mode())  # mkstemp makes 0600; results and caches are meant to be shared
        tmp.replace(path)
        tmp = None
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write through a unique temporary file in the same folder, then rename: readers see all or nothing.

    On failure (disk full, read-only folder) the temporary file is removed and a one-line error raised.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def atomic_write_json(path: str | Path, value: Any, **dumps: Any) -> None:
    """``atomic_write`` of ``json.dumps(value, **dumps)`` plus a final newline (indent 2 unless given)."""
    dumps.setdefault("indent", 2)
    atomic_write(path, json.dumps(value, **dumps) + "\n")


_HELD: set[Path] = set()


@contextmanager
def run_lock(folder: str | Path, what: str = "run folder") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` for the block, or refuse at once if another process holds it.

    The lock is an ``flock`` on ``folder/.lock``: the kernel drops it when the holder exits, so a run
    killed with ``kill -9`` never leaves a stale lock behind. Re-entrant within one process, so a command
    can hold the folder across several steps that each lock it.
    """
    import fcntl

    folder = Path(folder)
    key = folder.resolve()
    if key in _HELD:
        yield folder
        return
    lock_path = folder / ".lock"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = lock_path.open("a+")
    except OSError as exc:
        raise DataError(folder, f"cannot use this {what} ({os_problem(exc)})") from None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise DataError(
                folder, f"this {what} is in use by {holder}", "wait for it to finish or choose another --out"
            ) from None
        try:  # who holds it, for the refusal message of a second process; cosmetic, so a full disk is fine
            handle.seek(0)
            handle.truncate()
            handle.write(f"rsvlm process {os.getpid()}")
            handle.flush()
        except OSError:
            pass
        _HELD.add(key)
        try:
            yield folder
        finally:
            _HELD.discard(key)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


_NOT_NAME = re.compile(r"[^\w.-]+")


def slug(text: str, fallback: str = "item", max_len: int = 48) -> str:
    """A readable file-name part: Unicode letters and digits kept (``森林`` stays ``森林``), the rest ``-``.

    Text that keeps nothing readable (only punctuation) becomes ``fallback`` plus a short digest, so two
    different texts never share a name through this function alone; see ``unique_slugs`` for sets.
    """
    name = _NOT_NAME.sub("-", text.strip().lower()).strip("-.")[:max_len].strip("-.")
    if not name:
        return f"{fallback}-{digest_text(text)}"
    return name


def digest_text(text: str, length: int = 8) -> str:
    """A short, stable hex digest of a string (for names that must differ when their texts differ)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()[:length]


def unique_slugs(texts: Iterable[str], fallback: str = "item", keys: Iterable[str] | None = None) -> list[str]:
    """One file-name part per text, all distinct: texts that slug alike get a short digest of their key.

    ``keys`` (default: the texts) identify the items, e.g. full paths when the texts are file stems, so
    ``a/scene.tif`` and ``b/scene.tif`` become ``scene-<digest a>`` and ``scene-<digest b>``.
    """
    texts = list(texts)
    ids = list(keys) if keys is not None else texts
    if len(ids) != len(texts):
        raise ValueError("unique_slugs: texts and keys differ in length")
    if len(set(ids)) != len(ids):
        repeated = sorted({k for k in ids if ids.count(k) > 1})
        raise RsvlmError(f"given more than once: {', '.join(repeated)} (name each only once)")
    names = [slug(t, fallback) for t in texts]
    counts = {n: names.count(n) for n in names}
    return [f"{n}-{digest_text(k)}" if counts[n] > 1 else n for n, k in zip(names, ids, strict=True)]
