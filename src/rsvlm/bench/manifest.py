"""Data manifests: the exact files a benchmark task reads, by path and SHA-256, so "which 1,027 images?" has
one answer and a changed or missing file is caught before a number is produced.

A manifest is a text file: ``#`` comment lines (what the data is, who made the file), then one
``relative/path<TAB>sha256`` line per file, paths relative to the data root in POSIX form, sorted. Its
digest (SHA-256 of the file's bytes) goes into run metadata, so two runs with the same digest read the
same bytes. Shipped manifests live in ``rsvlm/bench/manifests`` and are rebuilt by
``scripts/make_manifests.py``; they carry paths and hashes only, never data.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType

from rsvlm.digests import file_digest
from rsvlm.errors import DataError, RsvlmError

MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"
"""Where the shipped manifests live (package data)."""

FORMAT_LINE = "format: relative/path<TAB>sha256 per line, paths relative to the data root"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest; iterating yields the relative paths in file order."""

    path: Path
    comments: tuple[str, ...]
    files: Mapping[str, str]
    """Relative POSIX path → SHA-256 hex digest."""
    digest: str
    """SHA-256 of the manifest file's bytes: what run metadata records."""

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


@dataclass(frozen=True)
class ManifestCheck:
    """Result of comparing a manifest with the files under a data root."""

    ok: bool
    missing: list[str]
    changed: list[str]
    digest: str
    files: int = 0

    def summary(self) -> str:
        """One line: ``1,027 files match`` or what differs, with a few examples."""
        if self.ok:
            return f"{self.files:,} files match"
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing (e.g. {', '.join(self.missing[:3])})")
        if self.changed:
            parts.append(f"{len(self.changed)} changed (e.g. {', '.join(self.changed[:3])})")
        return f"{'; '.join(parts)} of {self.files:,} files"


def manifest_names() -> list[str]:
    """File names of the shipped manifests."""
    return sorted(p.name for p in MANIFEST_DIR.glob("*.txt")) if MANIFEST_DIR.is_dir() else []


def manifest_path(name: str | Path) -> Path:
    """A shipped manifest by file name (``aid-smoke.txt``), else an existing manifest file path."""
    shipped = MANIFEST_DIR / str(name)
    if "/" not in str(name) and os.sep not in str(name) and shipped.is_file():
        return shipped
    path = Path(name)
    if path.is_file():
        return path
    raise RsvlmError(
        f"manifest {str(name)!r} not found: use a shipped one ({', '.join(manifest_names()) or 'none'}) "
        "or a manifest file path"
    )


def _relative(root: Path, path: str | Path) -> str:
    """``path`` (absolute under ``root``, or relative to it) as a normalised relative POSIX path."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(root)
        except ValueError:
            raise RsvlmError(f"{path}: not under the data root {root}; manifests hold paths inside it") from None
    rel = p.as_posix()
    if any(part in ("", "..") for part in PurePosixPath(rel).parts) or rel.startswith("/") or rel in (".", ""):
        raise RsvlmError(f"{path}: not a file path inside the data root {root}")
    if "\t" in rel or "\n" in rel or "\r" in rel:
        raise RsvlmError(f"{rel!r}: tabs and line breaks cannot be written to a manifest; rename the file")
    return rel


def hash_files(paths: Iterable[Path], workers: int | None = None) -> list[str | None]:
    """SHA-256 of each file (None when it is not a readable file), hashed by a thread pool: hashlib releases
    the GIL while it digests, so 10,000 small JPEGs take about a second."""

    def one(path: Path) -> str | None:
        try:
            return file_digest(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            return None

    items = list(paths)
    if len(items) < 64:
        return [one(p) for p in items]
    with ThreadPoolExecutor(max_workers=workers or min(8, 2 * (os.cpu_count() or 1))) as pool:
        return list(pool.map(one, items, chunksize=64))


def write_manifest(root: str | Path, paths: Iterable[str | Path], out: str | Path, comment: str) -> Manifest:
    """Hash ``paths`` (files under ``root``, absolute or relative to it) into the manifest ``out``.

    ``comment`` becomes the header (one ``#`` line per line of text); entries are sorted and unique, so the
    same files always give the same manifest bytes and digest.
    """
    base = Path(root).resolve()
    rels = sorted({_relative(base, p) for p in paths})
    if not rels:
        raise RsvlmError(f"{out}: no files to write into the manifest; check the data root {base}")
    digests = hash_files(base / r for r in rels)
    absent = [r for r, d in zip(rels, digests, strict=True) if d is None]
    if absent:
        raise DataError(base / absent[0], f"not a readable file ({len(absent)} of {len(rels)} listed)")
    header = [*(comment.strip().splitlines() if comment.strip() else []), FORMAT_LINE, f"files: {len(rels)}"]
    lines = [f"# {h}".rstrip() for h in header] + [f"{r}\t{d}" for r, d in zip(rels, digests, strict=True)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    tmp.replace(out)
    return read_manifest(out)


def read_manifest(path: str | Path) -> Manifest:
    """Parse a manifest strictly: every entry line is ``relative/path<TAB>sha256``, each path once."""
    path = Path(path)
    if not path.is_file():
        raise RsvlmError(f"{path}: manifest not found (build it with scripts/make_manifests.py)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(path, "not UTF-8 text; a manifest is a text file") from None
    comments: list[str] = []
    files: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.startswith("#"):
            comments.append(line[1:].strip())
            continue
        rel, sep, digest = line.partition("\t")
        if not sep or not _SHA256.match(digest) or not rel:
            raise DataError(
                path, f"line {number}: expected 'relative/path<TAB>sha256'", "rebuild it with scripts/make_manifests.py"
            )
        parts = PurePosixPath(rel).parts
        if (
            rel.startswith("/")
            or "\\" in rel
            or any(p in ("..", ".") for p in parts)
            or PurePosixPath(rel).as_posix() != rel
        ):
            raise DataError(path, f"line {number}: {rel!r} is not a normalised path relative to the data root")
        if rel in files:
            raise DataError(path, f"line {number}: {rel!r} is listed twice")
        files[rel] = digest
    if not files:
        raise DataError(path, "lists no files", "rebuild it with scripts/make_manifests.py")
    return Manifest(path, tuple(comments), MappingProxyType(files), hashlib.sha256(raw).hexdigest())


def verify_manifest(manifest: Manifest | str | Path, root: str | Path) -> ManifestCheck:
    """Compare every listed file under ``root`` with its recorded hash; nothing is raised for differences."""
    parsed = manifest if isinstance(manifest, Manifest) else read_manifest(manifest)
    base = Path(root)
    rels = list(parsed.files)
    digests = hash_files(base / r for r in rels)
    missing = [r for r, d in zip(rels, digests, strict=True) if d is None]
    changed = [r for r, d in zip(rels, digests, strict=True) if d is not None and d != parsed.files[r]]
    return ManifestCheck(not missing and not changed, missing, changed, parsed.digest, len(rels))


def require_manifest(manifest: Manifest | str | Path, root: str | Path) -> ManifestCheck:
    """``verify_manifest``, raising a one-line error when the data under ``root`` differs."""
    parsed = manifest if isinstance(manifest, Manifest) else read_manifest(manifest)
    check = verify_manifest(parsed, root)
    if not check.ok:
        raise RsvlmError(
            f"{Path(root)}: data differs from manifest {parsed.path.name}: {check.summary()}; restore the data or, "
            "if the change is intended, rebuild the manifest (scripts/make_manifests.py) and raise the suite version"
        )
    return check
