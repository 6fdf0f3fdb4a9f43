"""User protocol files (``-o protocol=FILE``): unreadable or hostile files are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsvlm.errors import RsvlmError
from rsvlm.tasks.chat.protocols import load_protocol

BASE = """id: my-vqa/1
task: vqa
description: a protocol
prompts:
  default: "{prompt}"
matching:
  rule: exact
"""


def _write(tmp_path: Path, prompt: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(BASE.replace("{prompt}", prompt), encoding="utf-8")
    return path


def test_a_plain_placeholder_loads(tmp_path: Path) -> None:
    assert load_protocol(_write(tmp_path, "{question} Answer briefly.")).prompt("default", question="Q?") == (
        "Q? Answer briefly."
    )


@pytest.mark.parametrize("prompt", ["{question!r}", "{question:>99999999}"])
def test_conversion_or_format_spec_refused(tmp_path: Path, prompt: str) -> None:
    with pytest.raises(RsvlmError, match=r"placeholder \{question\} has a conversion or format spec"):
        load_protocol(_write(tmp_path, prompt))


def test_unreadable_files(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(BASE.replace("a protocol", "café").encode("latin-1"))
    with pytest.raises(RsvlmError, match="protocol file is not UTF-8 text"):
        load_protocol(latin1)
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(RsvlmError, match="is a directory, expected a protocol file"):
        load_protocol(folder)
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 50_000 + "]" * 50_000, encoding="utf-8")
    with pytest.raises(RsvlmError, match="malformed YAML"):
        load_protocol(deep)
