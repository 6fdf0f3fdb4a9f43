"""Embedding folders from elsewhere: unreadable, mismatched or non-finite files are one-line errors that
name the file, never a traceback or a silently meaningless score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from rsvlm.errors import DataError
from rsvlm.tasks.embeddings import EmbeddingSet, load_embedding_dir, load_retrieval_dir, save_embedding_dir
from tests.clihelp import assert_one_line_error, rsvlm


def _folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    texts = {"a photo of a": rng.normal(size=(3, 8)).astype(np.float32)}
    emb = EmbeddingSet(rng.normal(size=(6, 8)).astype(np.float32), np.array([0, 1, 2, 0, 1, 2]), texts, ["a", "b", "c"])
    folder = tmp_path / "emb"
    save_embedding_dir(folder, emb)
    return folder


def test_a_good_folder_loads(tmp_path: Path) -> None:
    emb = load_embedding_dir(_folder(tmp_path))
    assert emb.images.shape == (6, 8) and emb.class_names == ["a", "b", "c"]


def test_garbage_safetensors(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "images.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(DataError, match=r"images.safetensors: not a readable safetensors file"):
        load_embedding_dir(folder)


def test_non_finite_embeddings(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    images = np.ones((6, 8), dtype=np.float32)
    images[2, 3] = np.nan
    save_file({"images": images}, str(folder / "images.safetensors"))
    with pytest.raises(DataError, match="NaN or infinite"):
        load_embedding_dir(folder)


def test_text_files_disagree(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    save_file({"texts": np.ones((4, 8), dtype=np.float32)}, str(folder / "texts_an_aerial_view_of.safetensors"))
    with pytest.raises(DataError, match="disagree on the number of classes"):
        load_embedding_dir(folder)


def test_empty_labels(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    save_file({"images": np.ones((0, 8), dtype=np.float32)}, str(folder / "images.safetensors"))
    save_file({"classes": np.ones((0,), dtype=np.int64)}, str(folder / "classes.safetensors"))
    with pytest.raises(DataError, match="do not match"):
        load_embedding_dir(folder)


def test_class_names_not_utf8_through_the_cli(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "class_names.txt").write_bytes("for\xeat\nb\nc\n".encode("latin-1"))
    result = rsvlm("eval", "zeroshot", "--embeddings", folder)
    assert_one_line_error(result, "class_names.txt", "not UTF-8")


def test_retrieval_folder_mismatch(tmp_path: Path) -> None:
    folder = tmp_path / "ret"
    folder.mkdir()
    save_file({"images": np.ones((2, 8), dtype=np.float32)}, str(folder / "images.safetensors"))
    save_file({"captions": np.ones((4, 6), dtype=np.float32)}, str(folder / "captions.safetensors"))
    save_file({"caption_image": np.array([0, 0, 1, 1])}, str(folder / "caption_image.safetensors"))
    with pytest.raises(DataError, match=r"images \(2, 8\) and captions \(4, 6\)"):
        load_retrieval_dir(folder)
    with pytest.raises(DataError, match="embeddings folder not found"):
        load_retrieval_dir(tmp_path / "missing")
