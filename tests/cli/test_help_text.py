"""Every option's help reaches ``--help`` whole: rich markup silently ate text in square brackets
(``[default: …]``), so the defaults users most need were invisible. Enumerated from the app, like the
garbage guard, so a new command is checked too."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from rsvlm.cli.main import app
from tests.cli.test_garbage_guard import COMMANDS


def _flat(text: str) -> str:
    """Rendered help without box borders and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.mark.parametrize("words", list(COMMANDS), ids=" ".join)
def test_option_help_is_shown_whole(words: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*words, "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})
    assert result.exit_code == 0, result.output
    shown = _flat(result.output)
    for param in COMMANDS[words].params:
        help_text = getattr(param, "help", None)
        if help_text:
            expected = " ".join(help_text.replace("\\[", "[").split())
            assert expected in shown, f"{' '.join(words)} {param.opts[0]}: help shown as\n{shown}"
