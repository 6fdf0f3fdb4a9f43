"""The vector index's file: FAISS's own bytes, then a JSON metadata record and a trailer with a CRC-32.

FAISS reads whatever bytes it is given and may crash or allocate wildly on a truncated or damaged file, so the
trailer lets rsvlm refuse such a file in one line before FAISS sees it. The file is written beside its place and
renamed when whole (``rsvlm.fileio.atomic_path``).
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

from rsvlm.errors import DataError
from rsvlm.fileio import atomic_path

REBUILD = "rebuild it with `rsvlm index build`"
_MAGIC = b"RSVLMVX1"
_TRAILER = struct.Struct("<QQI8s")  # FAISS bytes, metadata bytes, CRC-32 of the FAISS bytes, magic


def write_faiss(path: Path, index: Any, meta: dict[str, Any]) -> None:
    import faiss

    with atomic_path(path) as tmp:
        try:
            faiss.write_index(index, str(tmp))
        except RuntimeError as exc:  # FAISS reports its own write failures (disk full) this way
            raise DataError(path, f"cannot write the vector index ({str(exc).splitlines()[-1][:200]})") from None
        size = tmp.stat().st_size
        encoded = json.dumps(meta, sort_keys=True).encode()
        with tmp.open("ab") as f:
            f.write(encoded + _TRAILER.pack(size, len(encoded), _crc32(tmp, size), _MAGIC))


def read_faiss(path: Path, *, verify: bool = True) -> tuple[Any, dict[str, Any]]:
    """The FAISS index and the metadata ``write_faiss`` stored; ``verify`` checks the CRC first."""
    import faiss

    try:
        with path.open("rb") as f:
            total = f.seek(0, os.SEEK_END)
            if total < _TRAILER.size:
                raise DataError(path, "not an rsvlm vector index (too short)", REBUILD)
            f.seek(total - _TRAILER.size)
            size, meta_size, crc, magic = _TRAILER.unpack(f.read(_TRAILER.size))
            if magic != _MAGIC or size + meta_size + _TRAILER.size != total:
                raise DataError(path, "not an rsvlm vector index, or a truncated one", REBUILD)
            f.seek(size)
            meta: dict[str, Any] = json.loads(f.read(meta_size))
    except FileNotFoundError:
        raise DataError(path, "vector index not found", "build it with `rsvlm index build`") from None
    except IsADirectoryError:
        raise DataError(path, "is a directory, expected a vector index file") from None
    except (ValueError, UnicodeDecodeError):
        raise DataError(path, "vector index metadata is corrupt", REBUILD) from None
    if verify and _crc32(path, size) != crc:
        raise DataError(path, "vector index is corrupt (checksum mismatch)", REBUILD)
    try:
        index = faiss.read_index(str(path))
    except (RuntimeError, MemoryError) as exc:
        raise DataError(path, f"vector index is corrupt ({str(exc).splitlines()[-1][:120]})", REBUILD) from None
    return index, meta


def _crc32(path: Path, size: int) -> int:
    crc = 0
    with path.open("rb") as f:
        remaining = size
        while remaining > 0:
            block = f.read(min(remaining, 1 << 24))
            if not block:
                break
            crc = zlib.crc32(block, crc)
            remaining -= len(block)
    return crc
