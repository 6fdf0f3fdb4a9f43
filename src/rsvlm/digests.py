"""Content digests: of files (images, weights, configs) and of JSON-able values.

One place decides how rsvlm names "the same bytes": identity is always content, never a path or an mtime, so a
copied or renamed file keeps its identity and a file rewritten in place does not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Hasher = Callable[[], Any]


def sha256() -> Any:
    return hashlib.sha256()


def file_digest(path: str | Path, length: int | None = None, algorithm: Hasher = sha256) -> str:
    """Hex digest of a file's bytes (streamed; hashlib releases the GIL), cut to ``length`` characters."""
    with Path(path).open("rb") as f:
        hexdigest: str = hashlib.file_digest(f, algorithm).hexdigest()
    return hexdigest[:length] if length is not None else hexdigest


def files_digest(paths: list[Path]) -> str:
    """One SHA-256 over several files, each as ``name NUL bytes``, in the order given."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def json_digest(value: Any, length: int = 16) -> str:
    """Short SHA-256 of a value's canonical JSON (sorted keys): equal settings give equal digests."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]
