"""Removing entries from an index: by file, scene, folder, or the source path they were added under."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rsvlm.errors import RsvlmError
from rsvlm.fileio import run_lock
from rsvlm.index.store import IndexStore


def remove_paths(index: str | Path, paths: list[Path]) -> tuple[int, int]:
    """Tombstone every entry whose file is one of ``paths`` or lies under one of them, or that was added under one
    of them as a source; then update the vectors and the metadata file. Returns (removed, remaining)."""
    from rsvlm.index.build import finish

    with run_lock(index, "index"):
        store = IndexStore.open(index)
        store.clean_temporary()
        table = store.metadata(("id", "path", "source"))
        ids = table.column("id").to_numpy()
        files = np.asarray(table.column("path").to_pylist(), dtype=object)
        sources = np.asarray(table.column("source").to_pylist(), dtype=object)
        hit = np.zeros(len(ids), dtype=bool)
        for path in paths:
            resolved = str(path.resolve())
            inside = resolved.rstrip("/") + "/"
            matched = np.array(
                [f == resolved or f.startswith(inside) for f in files], dtype=bool
            ) | (sources == str(path)) if len(ids) else np.zeros(0, bool)  # fmt: skip
            if not matched.any():
                raise RsvlmError(
                    f"{path}: no entry of the index {index} comes from it (`rsvlm index info` lists sources)"
                )
            hit |= matched
        removed = store.remove(ids[hit])
        gone = {str(p) for p in paths}
        store.save_manifest(
            sources=[s for s in store.manifest.get("sources", []) if s not in gone],
            scenes={k: v for k, v in store.manifest.get("scenes", {}).items() if not _under(k, paths)},
        )
        state = finish(store, None)
    return removed, int(state["count"])


def _under(file: str, paths: list[Path]) -> bool:
    return any(file == str(p.resolve()) or file.startswith(str(p.resolve()).rstrip("/") + "/") for p in paths)
