"""Guard: every command of the ``rsvlm`` app, fed garbage, ends with a message and an error code, never a traceback.

Commands are enumerated from the typer app itself, so a new command is covered the day it is added. Each
gets argument sets built from its own parameters: paths that do not exist, a file that is not UTF-8, a
directory where a file belongs, an empty file, zero/negative/NaN numbers and junk strings (including
paths to the bad files, for options that take "a name or a file"). Every set runs in-process through
``rsvlm.cli.main.main`` (exactly what the console script runs); one set per command also runs through a
real ``python -m rsvlm`` subprocess.
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from rsvlm.cli.main import app, main
from tests.clihelp import rsvlm


@dataclass(frozen=True)
class Garbage:
    """One way of filling every parameter of a command with something wrong."""

    name: str
    path: str
    """Which bad path every path parameter gets: missing, not_utf8, directory or empty."""
    number: str | None
    """Value of every number parameter; None: a plausible one (1, or 0.5 for fractions)."""
    string: str | None
    """Value of every string parameter; None: only required strings are given (``x,y``)."""


BAD_NUMBER_VARIANTS = ("0", "-1", "nan")

VARIANTS = (
    Garbage("missing paths", "missing", None, None),
    Garbage("non-UTF-8 files", "not_utf8", None, None),
    Garbage("directories for files", "directory", None, None),
    Garbage("empty files", "empty", None, None),
    *(Garbage(f"number {n}", "missing", n, None) for n in BAD_NUMBER_VARIANTS),
    Garbage("strings naming a non-UTF-8 file", "directory", None, "not_utf8"),
    Garbage("strings naming a directory", "missing", None, "directory"),
    Garbage("junk strings", "not_utf8", None, "{0} {1} ../../x"),
    Garbage("empty strings", "missing", None, ""),
)


def leaf_commands() -> Iterator[tuple[tuple[str, ...], Any]]:
    """(words, command) of every runnable command of the app, found by walking its groups."""

    def walk(command: Any, words: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            yield words, command
            return
        for name, sub in sorted(subcommands.items()):
            yield from walk(sub, (*words, name))

    yield from walk(typer.main.get_command(app), ())


COMMANDS = dict(leaf_commands())


def _kind(command: Any, param: Any) -> type:
    """The Python type a parameter converts to, read from the command function's annotations
    (``Annotated[list[Path] | None, …]`` → Path)."""
    hint = typing.get_type_hints(command.callback, include_extras=True)[param.name]
    while True:
        if typing.get_origin(hint) is typing.Annotated:
            hint = typing.get_args(hint)[0]
        elif typing.get_origin(hint) in (list, types.UnionType, typing.Union):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        else:
            return hint if isinstance(hint, type) else str


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bad paths; suffixes are ones the commands branch on (``.yaml`` suites, protocols, configs)."""
    root = tmp_path_factory.mktemp("garbage")
    not_utf8 = root / "latin1.yaml"
    not_utf8.write_bytes(b"name: caf\xe9\n\xff\xfe{0}\n")
    directory = root / "folder.yaml"
    directory.mkdir()
    empty = root / "empty.json"
    empty.write_bytes(b"")
    return {"missing": root / "no" / "such.yaml", "not_utf8": not_utf8, "directory": directory, "empty": empty}


def garbage_argv(
    command: Any,
    garbage: Garbage,
    bad: dict[str, Path],
    omit: frozenset[str] = frozenset(),
    number_param: str | None = None,
) -> list[str] | None:
    """Arguments filling ``command``'s parameters (but ``omit``) as ``garbage`` says; None: nothing to fill.

    ``number_param`` names the one number parameter that gets the bad number (the others get plausible
    ones, so each number's own check is reached); None: all of them.
    """
    options: list[str] = []
    positional: list[str] = []
    filled = False
    for param in command.params:
        if getattr(param, "is_flag", False) or param.name in omit:
            continue
        kind = _kind(command, param)
        if kind is Path:
            value = str(bad[garbage.path])
        elif kind in (int, float):
            plausible = "0.5" if kind is float else "1"
            number = garbage.number if number_param in (None, param.name) else None
            value = (number if kind is float or number != "nan" else "-1") or plausible
        elif garbage.string is not None:
            value = str(bad[garbage.string]) if garbage.string in bad else garbage.string
        elif param.required:
            value = "x,y"
        else:
            continue
        filled = True
        if param.param_type_name == "argument":
            positional.append(value)
        else:
            options += [param.opts[0], value]
    return [*options, "--", *positional] if filled else None


def source_choices(command: Any) -> list[frozenset[str]]:
    """Parameters to leave out, one choice per run: commands that take either ``--embeddings`` or
    ``--data`` are also fed each source alone, so garbage reaches the checks behind "not both"."""
    names = {param.name for param in command.params}
    if not {"embeddings", "data"} <= names:
        return [frozenset()]
    return [frozenset(), frozenset({"embeddings"}), frozenset({"data", "model", "weights", "images"})]


def run_in_process(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """(exit code, stderr) of ``rsvlm ARGV`` run by the console script's own ``main``."""
    monkeypatch.setattr(sys, "argv", ["rsvlm", *argv])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:  # what would reach the user as a traceback
        pytest.fail(f"rsvlm {' '.join(argv)}: traceback ({type(exc).__name__}: {exc})")
    return code, capsys.readouterr().err


def test_every_command_is_enumerated() -> None:
    """The walk finds the commands of every group (so the guard below really covers them all)."""
    names = {" ".join(words) for words in COMMANDS}
    assert {"eval zeroshot", "eval linear-probe", "eval caption", "train chat", "bench", "data info"} <= names
    assert all(words for words in COMMANDS)


@pytest.mark.parametrize("words", list(COMMANDS), ids=" ".join)
def test_garbage_never_reaches_the_user_as_a_traceback(
    words: tuple[str, ...],
    bad_files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # whatever a command might write lands here
    monkeypatch.setenv("RSVLM_CACHE_DIR", str(tmp_path / "cache"))
    command = COMMANDS[words]
    numbers = [p.name for p in command.params if _kind(command, p) in (int, float)]
    filled = [
        garbage_argv(command, g, bad_files, omit, target)
        for g in VARIANTS
        for omit in source_choices(command)
        for target in (numbers if g.number is not None and numbers else [None])
    ]
    sets = [s for s in filled if s is not None] + [["--no-such-option-xyz"]]
    for argv in sets:
        code, err = run_in_process([*words, *argv], monkeypatch, capsys)
        shown = f"rsvlm {' '.join([*words, *argv])}"
        assert code != 0, f"{shown}: accepted garbage"
        assert err.strip(), f"{shown}: failed without a word on stderr"
        assert "Traceback" not in err, f"{shown}:\n{err}"


@pytest.mark.parametrize("words", list(COMMANDS), ids=" ".join)
def test_garbage_in_a_real_process(words: tuple[str, ...], bad_files: dict[str, Path], tmp_path: Path) -> None:
    """The same guard through ``python -m rsvlm``, with the non-UTF-8 set (or a bad option)."""
    argv = garbage_argv(COMMANDS[words], VARIANTS[1], bad_files) or ["--no-such-option-xyz"]
    result = rsvlm(*words, *argv, cwd=tmp_path, env={"RSVLM_CACHE_DIR": str(tmp_path / "cache")}, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2 and result.stderr.strip(), (result.returncode, result.stderr)
