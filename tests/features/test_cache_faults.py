"""The feature cache under attack and under faults: entries moved to other keys, entries that are not files,
a full disk, a file-size limit, and cache folders that cannot be folders. The cache only saves time: a run
never fails because of it and never trusts an entry that is not its own."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rsvlm.errors import DataError
from rsvlm.features.cache import CacheWarning, FeatureCache
from tests.clihelp import assert_one_line_error, rsvlm
from tests.fsfaults import fill, rsvlm_limited, small_tmpfs, temporary_files

WARNING = "feature cache not written, going on without it"
ENV = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _vector(seed: int, dim: int = 4) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.random.default_rng(seed).random(dim).astype(np.float32)


# -- entries that are not what their name says ----------------------------------------------------------------
def test_entry_copied_to_another_key_is_recomputed(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, "m", 4)
    cache.put("aa11", _vector(1))
    entry = next(tmp_path.rglob("aa11.emb"))
    forged = tmp_path / "m" / "bb" / "bb22.emb"
    forged.parent.mkdir(parents=True)
    forged.write_bytes(entry.read_bytes())  # a valid entry, but of another image
    assert cache.get("bb22") is None and cache.corrupt == 1 and not forged.exists()
    np.testing.assert_array_equal(cache.get("aa11"), _vector(1))  # the original stays valid


def test_entry_copied_to_another_model_is_recomputed(tmp_path: Path) -> None:
    FeatureCache(tmp_path, "model-a", 4).put("aa11", _vector(1))
    other = FeatureCache(tmp_path, "model-b", 4)
    target = tmp_path / "model-b" / "aa" / "aa11.emb"
    target.parent.mkdir(parents=True)
    target.write_bytes((tmp_path / "model-a" / "aa" / "aa11.emb").read_bytes())
    assert other.get("aa11") is None and other.corrupt == 1


def test_entry_of_the_former_format_is_not_trusted(tmp_path: Path) -> None:
    """Entries written before the digest covered the keys (digest of the vector alone) are recomputed."""
    payload = _vector(2).tobytes()
    entry = tmp_path / "m" / "cc" / "cc33.emb"
    entry.parent.mkdir(parents=True)
    entry.write_bytes(hashlib.blake2b(payload, digest_size=16).digest() + payload)
    cache = FeatureCache(tmp_path, "m", 4)
    assert cache.get("cc33") is None and cache.corrupt == 1
    assert cache.put("cc33", _vector(2))
    np.testing.assert_array_equal(cache.get("cc33"), _vector(2))


def _plant(kind: str, entry: Path, valid: Path) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlink loop":
        entry.symlink_to(entry.name)
    elif kind == "symlink to a valid entry":
        entry.symlink_to(valid)
    elif kind == "dangling symlink":
        entry.symlink_to(entry.parent / "nowhere")
    elif kind == "fifo":
        os.mkfifo(entry)  # opening it for reading the usual way would block for ever
    elif kind == "empty directory":
        entry.mkdir()
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["symlink loop", "symlink to a valid entry", "dangling symlink", "fifo", "empty directory"]
)
def test_entry_that_is_not_a_file_is_a_miss_and_is_replaced(tmp_path: Path, kind: str) -> None:
    cache = FeatureCache(tmp_path, "m", 4)
    cache.put("aa11", _vector(1))
    entry = tmp_path / "m" / "dd" / "dd44.emb"
    _plant(kind, entry, tmp_path / "m" / "aa" / "aa11.emb")
    assert cache.get("dd44") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert cache.put("dd44", _vector(4))
    assert entry.is_file() and not entry.is_symlink()
    np.testing.assert_array_equal(cache.get("dd44"), _vector(4))


def test_entry_that_is_a_full_directory_warns_once_and_goes_on(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, "m", 4)
    entry = tmp_path / "m" / "ee" / "ee55.emb"
    (entry / "keep").mkdir(parents=True)  # someone's folder: the cache does not delete it
    assert cache.get("ee55") is None
    with pytest.warns(CacheWarning, match=re.escape(f"{WARNING}: {entry}: cannot write (is a directory)")):
        assert not cache.put("ee55", _vector(5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert not cache.put("ff66", _vector(6))  # one warning; later entries are not tried
    assert (entry / "keep").is_dir() and temporary_files(tmp_path) == []


@pytest.mark.parametrize("where", ["a file", "/proc"])
def test_named_cache_folder_that_cannot_be_a_folder_is_one_line(tmp_path: Path, where: str) -> None:
    root = Path("/proc") if where == "/proc" else tmp_path / "cache.txt"
    if where == "a file":
        root.write_text("not a folder")
    with pytest.raises(DataError) as caught:
        FeatureCache(root, "m", 4)
    assert str(caught.value).startswith(f"{root}: cannot be used as the feature cache folder (")
    assert "\n" not in str(caught.value)


# -- through the real command -----------------------------------------------------------------------------------
def _zeroshot(fixtures: Path, *args: str | Path) -> list[str | Path]:
    return ["eval", "zeroshot", "--data", fixtures / "scene_folder", "--json", *args]


def _warnings(stderr: str) -> list[str]:
    """The cache warnings on stderr; each must be one ``warning:`` line, with no source-code line after it."""
    found = [line for line in stderr.splitlines() if WARNING in line]
    assert all(line.startswith(f"warning: {WARNING}") for line in found), stderr
    assert "CacheWarning" not in stderr and "warnings.warn" not in stderr, stderr
    return found


@pytest.fixture(scope="module")
def reference(fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The scores of a run whose cache works."""
    done = rsvlm(*_zeroshot(fixtures, "--cache-dir", tmp_path_factory.mktemp("cache")), env=ENV)
    assert done.returncode == 0 and not _warnings(done.stderr), done.stderr
    return dict(json.loads(done.stdout))


def _same_scores(result: subprocess.CompletedProcess[str], reference: dict[str, Any]) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    for key in ("top1", "top5", "mean_per_class"):
        assert report[key] == pytest.approx(reference[key], abs=1e-9)
    assert report["confusion"] == reference["confusion"] and report["n"] == reference["n"] == 7


def test_disk_filling_up_mid_run_warns_once_and_scores_as_usual(
    fixtures: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    """A 12 KiB tmpfs holds a few of the seven entries (one 4 KiB page each), then the disk is full."""
    with small_tmpfs(tmp_path / "disk", "12k") as disk:
        result = rsvlm(*_zeroshot(fixtures, "--cache-dir", disk), env=ENV)
        _same_scores(result, reference)
        assert len(_warnings(result.stderr)) == 1, result.stderr
        assert "no space left on the device" in _warnings(result.stderr)[0]
        kept = sorted(disk.rglob("*.emb"))
        assert 1 <= len(kept) < 7 and temporary_files(disk) == []
        again = rsvlm(*_zeroshot(fixtures, "--cache-dir", disk), env=ENV)  # the entries that fit are hits
        _same_scores(again, reference)
        assert sorted(disk.rglob("*.emb")) == kept and temporary_files(disk) == []


def test_full_disk_from_the_start_warns_once(fixtures: Path, tmp_path: Path, reference: dict[str, Any]) -> None:
    with small_tmpfs(tmp_path / "disk", "16k") as disk:
        (disk / "features").mkdir()
        fill(disk)
        result = rsvlm(*_zeroshot(fixtures, "--cache-dir", disk / "features"), env=ENV)
        _same_scores(result, reference)
        assert len(_warnings(result.stderr)) == 1, result.stderr
        assert not list(disk.rglob("*.emb")) and temporary_files(disk) == []


def test_file_size_limit_warns_once_and_leaves_no_temporary_files(
    fixtures: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    """Under a 1 KiB file-size limit every 2 KiB entry fails with EFBIG (needs no root, runs everywhere)."""
    cache = tmp_path / "cache"
    result = rsvlm_limited(1024, *_zeroshot(fixtures, "--cache-dir", cache), env=ENV)
    _same_scores(result, reference)
    assert len(_warnings(result.stderr)) == 1, result.stderr
    assert "file too large" in _warnings(result.stderr)[0]
    assert not list(cache.rglob("*.emb")) and temporary_files(cache) == []


def test_cache_dir_that_is_a_file_is_a_one_line_error(fixtures: Path, tmp_path: Path) -> None:
    """A folder the user named that cannot be one is a mistake worth stopping for, not a slow silent run."""
    not_a_folder = tmp_path / "features.txt"
    not_a_folder.write_text("notes")
    result = rsvlm(*_zeroshot(fixtures, "--cache-dir", not_a_folder), env=ENV)
    assert_one_line_error(result, str(not_a_folder), "cannot be used as the feature cache folder (not a directory)")


def test_unusable_default_cache_warns_and_goes_on(fixtures: Path, tmp_path: Path, reference: dict[str, Any]) -> None:
    """The default cache (not named on the command line) being unusable costs time, never the run."""
    home_cache = tmp_path / "rsvlm-cache"
    home_cache.write_text("a file where the cache folder should be")
    result = rsvlm(*_zeroshot(fixtures), env={**ENV, "RSVLM_CACHE_DIR": str(home_cache)})
    _same_scores(result, reference)
    assert len(_warnings(result.stderr)) == 1 and "not a directory" in result.stderr, result.stderr
