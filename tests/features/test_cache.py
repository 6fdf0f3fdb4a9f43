from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rsvlm.features.cache import FeatureCache, file_hash


def test_round_trip_and_hit_counting(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, "m", 4)
    vec = np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32)
    assert cache.get("ab12") is None
    cache.put("ab12", vec)
    np.testing.assert_array_equal(cache.get("ab12"), vec)
    assert (cache.hits, cache.misses, cache.corrupt) == (1, 1, 0)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_entry_is_detected_and_dropped(tmp_path: Path, damage: str) -> None:
    cache = FeatureCache(tmp_path, "m", 4)
    cache.put("cd34", np.ones(4, dtype=np.float32))
    path = next(tmp_path.rglob("*.emb"))
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[-1] ^= 0x01
        path.write_bytes(bytes(blob))
    else:
        path.write_bytes(bytes(blob[:-3]))
    assert cache.get("cd34") is None
    assert cache.corrupt == 1 and not path.exists()


def test_wrong_dimension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cache expects 4"):
        FeatureCache(tmp_path, "m", 4).put("x", np.ones(3, dtype=np.float32))


def test_file_hash_follows_content_not_name(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"same")
    (tmp_path / "b.jpg").write_bytes(b"same")
    (tmp_path / "c.jpg").write_bytes(b"other")
    assert file_hash(tmp_path / "a.jpg") == file_hash(tmp_path / "b.jpg") != file_hash(tmp_path / "c.jpg")
