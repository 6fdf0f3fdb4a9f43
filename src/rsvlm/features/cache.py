"""On-disk cache of image embeddings, keyed by model, weights, preprocessing and image content.

One small file per (model key, image content hash): ``<root>/<model key>/<h[:2]>/<h>.emb``, holding a
16-byte BLAKE2b digest followed by the float32 vector. The digest covers the model key and the content key
as well as the vector, so a torn or bit-flipped entry, an entry copied or renamed to another key, and an
entry of the older digest format all fail the check and are recomputed. Writes go through
``fileio.atomic_write``, so a crash never leaves a half-written entry under the final name.

The cache only saves time: it never fails a run. An entry that is a directory, a symlink or unreadable is
a miss; when an entry cannot be written (disk full, read-only folder) one ``CacheWarning`` says so and the
run goes on without writing more entries. Only a cache folder the caller named explicitly that cannot be a
folder at all (a file, a path under ``/proc``) is a one-line error, before any work is done.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rsvlm.digests import file_digest
from rsvlm.errors import DataError, RsvlmError, RsvlmWarning
from rsvlm.fileio import atomic_write, os_problem

_DIGEST = 16
_FORMAT = b"rsvlm-emb-v2"
"""BLAKE2b personalisation of the entry digest; entries of an older format fail the check and are redone."""
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class CacheWarning(RsvlmWarning):
    """The feature cache could not be written; the run goes on without it (slower, same results)."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("RSVLM_CACHE_DIR", Path.home() / ".cache" / "rsvlm")) / "features"


def _blake2b_160() -> hashlib.blake2b:
    return hashlib.blake2b(digest_size=20)


def file_hash(path: Path) -> str:
    """Content hash of an image file (renaming or moving a file keeps its cache entries)."""
    return file_digest(path, algorithm=_blake2b_160)


class FeatureCache:
    """Vectors of one model, by content key; ``root=None`` is the default cache folder."""

    def __init__(self, root: Path | None, model_key: str, dim: int) -> None:
        self.root = (root if root is not None else default_cache_dir()) / model_key
        self.model_key = model_key
        self.dim = dim
        self.hits = 0
        self.misses = 0
        self.corrupt = 0
        self.writable = True
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if root is not None and exc.errno not in _NO_SPACE:  # a named folder that cannot be one: say so now
                raise DataError(
                    root,
                    f"cannot be used as the feature cache folder ({_folder_problem(exc)})",
                    "choose a writable folder, or leave the cache folder option out",
                ) from None
            self._stop_writing(f"{self.root}: cannot create the folder ({_folder_problem(exc)})")

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.emb"

    def _digest(self, key: str, payload: bytes) -> bytes:
        h = hashlib.blake2b(digest_size=_DIGEST, person=_FORMAT)
        h.update(f"{self.model_key}\0{key}\0".encode())
        h.update(payload)
        return h.digest()

    def _read(self, path: Path) -> bytes | None:
        """The entry's bytes (at most one more than a valid entry has), or None when it is absent.

        Entries are never symlinks (``atomic_write`` renames a regular file into place), so a symlink is
        refused unread, as are directories, FIFOs and devices: none can hang or flood the reader.
        """
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            return None
        except OSError:  # a symlink (loop), a directory, an unreadable entry or folder
            return b""
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return b""
            with os.fdopen(fd, "rb", closefd=False) as f:
                return f.read(_DIGEST + 4 * self.dim + 1)
        except OSError:
            return b""
        finally:
            os.close(fd)

    def get(self, key: str) -> npt.NDArray[np.float32] | None:
        path = self._path(key)
        blob = self._read(path)
        if blob is None:
            self.misses += 1
            return None
        payload = blob[_DIGEST:]
        if len(payload) != 4 * self.dim or self._digest(key, payload) != blob[:_DIGEST]:
            self.corrupt += 1
            self.misses += 1
            _discard(path)
            return None
        self.hits += 1
        return np.frombuffer(payload, dtype=np.float32).copy()

    def put(self, key: str, vector: npt.NDArray[np.float32]) -> bool:
        """Store ``vector`` under ``key``; False (after one warning per cache) when the cache cannot be written."""
        payload = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        if len(payload) != 4 * self.dim:
            raise ValueError(f"embedding has {len(payload) // 4} values, cache expects {self.dim}")
        if not self.writable:
            return False
        try:
            atomic_write(self._path(key), self._digest(key, payload) + payload)
        except RsvlmError as exc:
            self._stop_writing(str(exc))
            return False
        return True

    def _stop_writing(self, reason: str) -> None:
        self.writable = False
        warnings.warn(f"feature cache not written, going on without it: {reason}", CacheWarning, stacklevel=3)


def _folder_problem(exc: OSError) -> str:
    """What is wrong with a folder that could not be created (a file in its place reads ``file exists``)."""
    return "not a directory" if isinstance(exc, FileExistsError) else os_problem(exc)


def _discard(path: Path) -> None:
    """Remove a bad entry so it is rewritten; a directory is left (the write then warns and names it)."""
    try:
        if path.is_dir() and not path.is_symlink():
            path.rmdir()  # only when empty: never delete what someone put there
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass
