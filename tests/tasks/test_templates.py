"""Prompt-template files: each template has exactly one ``{}`` for the class; anything else is a one-line
error naming the file and the line (it used to surface as an IndexError deep inside the text encoder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsvlm.errors import DataError, RsvlmError
from rsvlm.tasks.templates import load_templates, template_name


def _file(tmp_path: Path, text: str, name: str = "prompts.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_sets_and_the_file_conventions(tmp_path: Path) -> None:
    assert len(load_templates("rs-transclip-106")) == 106
    assert all(t.count("{}") == 1 for t in load_templates("rs-transclip-106"))
    path = _file(tmp_path, "# comment\n\na photo of a {}.\nan aerial view of\n{{braces}} around a {}\n")
    assert load_templates(str(path)) == ["a photo of a {}.", "an aerial view of {}.", "{{braces}} around a {}"]
    assert [t.format("forest") for t in load_templates(str(path))][-1] == "{braces} around a forest"
    assert template_name("a photo of a {}.") == "a photo of a"


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("the {0} next to the {1}", "{0}, {1}"),
        ("a {} and a {}", "{}, {}"),
        ("a {name}", "{name}"),
        ("a {:>12}", "{:>12}"),
        ("a {!r}", "{!r}"),
    ],
)
def test_wrong_placeholders_name_file_and_line(tmp_path: Path, line: str, shown: str) -> None:
    path = _file(tmp_path, f"a photo of a {{}}.\n# note\n{line}\n")
    with pytest.raises(DataError) as info:
        load_templates(str(path))
    message = str(info.value)
    assert str(path) in message and "line 3" in message and shown in message
    assert "exactly one {}" in message


def test_malformed_braces(tmp_path: Path) -> None:
    path = _file(tmp_path, "a photo of a {\n")
    with pytest.raises(DataError, match=r"line 1: template 'a photo of a \{' is malformed"):
        load_templates(str(path))


def test_unreadable_files(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("une photo de {} à Orléans\n".encode("latin-1"))
    with pytest.raises(DataError, match="template file is not UTF-8 text"):
        load_templates(str(latin1))
    with pytest.raises(DataError, match="is a directory, expected a template file"):
        load_templates(str(tmp_path))
    with pytest.raises(DataError, match="template file not found"):
        load_templates(str(tmp_path / "missing.txt"))
    with pytest.raises(RsvlmError, match="unknown template set 'rs-defualt'"):
        load_templates("rs-defualt")
    with pytest.raises(DataError, match="no templates in the file"):
        load_templates(str(_file(tmp_path, "# only a comment\n")))
