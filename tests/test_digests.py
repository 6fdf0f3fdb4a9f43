"""Identity is content: a copied or touched weights file is the same model, a rewritten one is not.

Before, open_clip models were identified by path, size and mtime, and rsvlm-lite by content; the feature cache
and fitted heads key on that identity, so the same weights under two paths computed and cached everything twice.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from rsvlm.digests import file_digest, files_digest, json_digest
from rsvlm.features.cache import file_hash
from rsvlm.models.openclip import load_contrastive
from rsvlm.models.registry import get_spec
from rsvlm.pipeline import model_cache_key
from tests.models.tiny import source_model, tiny_spec, write_checkpoint


def test_file_digest_is_the_content_hash(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * (3 << 20) + b"tail")  # more than one read block
    assert file_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_digest(path, 16) == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert file_hash(path) == hashlib.blake2b(path.read_bytes(), digest_size=20).hexdigest()  # cache keys kept


def test_files_and_json_digests_name_what_they_cover(tmp_path: Path) -> None:
    a, b = tmp_path / "a.safetensors", tmp_path / "config.json"
    a.write_bytes(b"weights")
    b.write_bytes(b"{}")
    assert files_digest([a, b]) == hashlib.sha256(b"a.safetensors\0weights" + b"config.json\0{}").hexdigest()
    assert files_digest([a, b]) != files_digest([b, a])
    assert json_digest({"b": 1, "a": [1, 2]}) == json_digest({"a": [1, 2], "b": 1})
    assert json_digest({"a": 1}) != json_digest({"a": 2})


def test_open_clip_weights_identity_is_their_content(tmp_path: Path) -> None:
    spec = tiny_spec(get_spec("openai-vit-b-32"))
    path = write_checkpoint(source_model(spec), "state_dict", tmp_path / "release")
    first = load_contrastive(spec, path)
    copy = tmp_path / "elsewhere" / "copy.pt"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    os.utime(copy, ns=(1, 1))  # another path and mtime: the same weights
    second = load_contrastive(spec, copy)
    assert second.weights_id == first.weights_id == file_digest(path, 16)
    assert model_cache_key(second) == model_cache_key(first)  # so the feature cache is shared
    other = write_checkpoint(source_model(spec, seed=1), "state_dict", tmp_path / "retrained")
    assert load_contrastive(spec, other).weights_id != first.weights_id
