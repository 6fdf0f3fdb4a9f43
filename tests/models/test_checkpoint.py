"""Saved small artefacts (regression heads, spectral adapters) share one folder rule: both files, right format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsvlm.errors import RsvlmError
from rsvlm.models.checkpoint import read_saved_config


def test_a_folder_missing_a_file_or_of_another_format_is_one_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "head"
    folder.mkdir()
    with pytest.raises(RsvlmError, match=r"head\.json: not found \(a regression head folder holds head\.json and w\."):
        read_saved_config(folder, "head.json", "w.safetensors", "rsvlm-head/1", "regression head")
    (folder / "head.json").write_text(json.dumps({"format": "rsvlm-adapter/1", "a": 1}))
    with pytest.raises(RsvlmError, match=r"w\.safetensors: not found"):
        read_saved_config(folder, "head.json", "w.safetensors", "rsvlm-head/1", "regression head")
    (folder / "w.safetensors").write_bytes(b"")
    with pytest.raises(RsvlmError, match=r"not a regression head \(format 'rsvlm-adapter/1' is not 'rsvlm-head/1'\)"):
        read_saved_config(folder, "head.json", "w.safetensors", "rsvlm-head/1", "regression head")
    (folder / "head.json").write_text(json.dumps({"format": "rsvlm-head/1", "a": 1}))
    assert read_saved_config(folder, "head.json", "w.safetensors", "rsvlm-head/1", "regression head")["a"] == 1
