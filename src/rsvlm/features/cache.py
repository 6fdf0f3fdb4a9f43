"""On-disk cache of image embeddings, keyed by model, weights, preprocessing and image content.

One small file per (model key, image content hash): ``<root>/<model key>/<h[:2]>/<h>.emb``, holding a
16-byte BLAKE2b digest of the payload followed by the float32 vector. A torn or bit-flipped entry fails
the digest check and is recomputed; writes go to a temporary file renamed into place, so a crash never
leaves a half-written entry under the final name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

_DIGEST = 16


def default_cache_dir() -> Path:
    return Path(os.environ.get("RSVLM_CACHE_DIR", Path.home() / ".cache" / "rsvlm")) / "features"


def file_hash(path: Path) -> str:
    """Content hash of an image file (renaming or moving a file keeps its cache entries)."""
    h = hashlib.blake2b(digest_size=20)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FeatureCache:
    def __init__(self, root: Path | None, model_key: str, dim: int) -> None:
        self.root = (root or default_cache_dir()) / model_key
        self.dim = dim
        self.hits = 0
        self.misses = 0
        self.corrupt = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.emb"

    def get(self, key: str) -> npt.NDArray[np.float32] | None:
        path = self._path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            self.misses += 1
            return None
        payload = blob[_DIGEST:]
        if len(payload) != 4 * self.dim or hashlib.blake2b(payload, digest_size=_DIGEST).digest() != blob[:_DIGEST]:
            self.corrupt += 1
            self.misses += 1
            path.unlink(missing_ok=True)
            return None
        self.hits += 1
        return np.frombuffer(payload, dtype=np.float32).copy()

    def put(self, key: str, vector: npt.NDArray[np.float32]) -> None:
        payload = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        if len(payload) != 4 * self.dim:
            raise ValueError(f"embedding has {len(payload) // 4} values, cache expects {self.dim}")
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(hashlib.blake2b(payload, digest_size=_DIGEST).digest() + payload)
        tmp.replace(path)
