"""Read the box a chat model wrote, in its family's convention, as PIXELS of the image it saw.

Conventions (``rsvlm.models.chat.protocol.BOX_FORMATS``):
- ``geochat-100``: ``{<x1><y1><x2><y2>|<θ>}`` on a 0–100 grid, θ in degrees (GeoChat scales x by the
  image width and y by its height, then rotates about the centre, counter-clockwise as displayed);
- ``unit``: four numbers in [0, 1] (LLaVA-1.5's ``[x1, y1, x2, y2]``);
- ``qwen-1000``: Qwen2-VL's ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` on a 0–1000 grid; the special
  tokens are often stripped on decoding, so ``(x1,y1),(x2,y2)`` or ``[x1, y1, x2, y2]`` are read too;
- ``pixel``: four numbers in pixels of the image the model was given.

Width and height are required arguments: a box cannot be scored before it is in pixels.
"""

from __future__ import annotations

import re

from rsvlm.errors import RsvlmError
from rsvlm.models.chat.protocol import BOX_FORMATS
from rsvlm.tasks.chat.geometry import PixelBox

_N = r"(-?\d+(?:\.\d+)?)"
_SEP = r"[\s,;:()\[\]<>]+"
_FOUR = re.compile(rf"{_N}{_SEP}{_N}{_SEP}{_N}{_SEP}{_N}")
_GEOCHAT = re.compile(rf"<\s*{_N}\s*>\s*<\s*{_N}\s*>\s*<\s*{_N}\s*>\s*<\s*{_N}\s*>\s*(?:\|\s*<?\s*{_N}\s*>?)?")
_QWEN = re.compile(rf"<\|box_start\|>\s*\(?\s*{_N}\s*,\s*{_N}\s*\)?\s*,?\s*\(?\s*{_N}\s*,\s*{_N}\s*\)?\s*<\|box_end\|>")
_GRID = {"geochat-100": 100.0, "qwen-1000": 1000.0, "unit": 1.0}


def check_box_format(box_format: str) -> None:
    if box_format not in BOX_FORMATS:
        raise RsvlmError(f"unknown box format {box_format!r}; known formats: {', '.join(BOX_FORMATS)}")


def box_spans(text: str, box_format: str) -> list[tuple[int, int]]:
    """Where every box of an answer lies: the format's own notation if it has any, else each run of four numbers.

    ``parse_box`` on each span reads that box exactly as it would read a one-box answer.
    """
    check_box_format(box_format)
    own = {"geochat-100": _GEOCHAT, "qwen-1000": _QWEN}.get(box_format)
    spans = [m.span() for m in own.finditer(text)] if own is not None else []
    return spans or [m.span() for m in _FOUR.finditer(text)]


def parse_box(text: str, box_format: str, *, width: float, height: float) -> PixelBox | None:
    """The first box in ``text`` as pixels of a ``width`` x ``height`` image; None when there is none.

    Out-of-range values (a ``unit`` number above 1, a grid value above its grid) make the answer
    unreadable rather than being guessed at.
    """
    check_box_format(box_format)
    if not (width > 0 and height > 0):
        raise RsvlmError(f"image size {width} x {height} is not positive; pass the size of the image the model saw")
    angle = 0.0
    match: re.Match[str] | None = None
    if box_format == "geochat-100":
        match = _GEOCHAT.search(text)
        if match and match.group(5) is not None:
            angle = float(match.group(5))
    elif box_format == "qwen-1000":
        match = _QWEN.search(text)
    if match is None:
        match = _FOUR.search(text)
    if match is None:
        return None
    values = [float(match.group(i)) for i in range(1, 5)]
    if box_format == "pixel":
        return PixelBox.from_corners(*values)
    grid = _GRID[box_format]
    if any(v < 0 or v > grid for v in values):
        return None
    return PixelBox.from_fractions(*(v / grid for v in values), width=width, height=height, angle=angle)


def parse_boxes(text: str, box_format: str, *, width: float, height: float) -> list[PixelBox]:
    """Every box in a chat answer, as pixels of the ``width`` x ``height`` image the model saw.

    ``parse_box`` reads the first box; this finds each box with the same
    patterns it uses (the format's own notation first, else any four numbers) and hands each to
    ``parse_box``, so both read answers identically. A box parse_box rejects (a value off its grid) is skipped.
    """
    spans = box_spans(text, box_format)
    boxes = [parse_box(text[s:e], box_format, width=width, height=height) for s, e in spans]
    return [box for box in boxes if box is not None]


def format_box(box: PixelBox, box_format: str, *, width: float, height: float) -> str:
    """Write a pixel box the way a ``box_format`` model answers (the inverse of ``parse_box``), e.g. for
    instruction data; rotated boxes keep their angle only where the convention has one (GeoChat)."""
    check_box_format(box_format)
    if box_format == "pixel":
        return f"[{box.x1:.0f}, {box.y1:.0f}, {box.x2:.0f}, {box.y2:.0f}]"
    grid = _GRID[box_format]
    x1, x2 = (min(grid, max(0.0, v / width * grid)) for v in (box.x1, box.x2))
    y1, y2 = (min(grid, max(0.0, v / height * grid)) for v in (box.y1, box.y2))
    if box_format == "geochat-100":
        return f"{{<{x1:.0f}><{y1:.0f}><{x2:.0f}><{y2:.0f}>|<{box.angle:.0f}>}}"
    if box_format == "qwen-1000":
        return f"<|box_start|>({x1:.0f},{y1:.0f}),({x2:.0f},{y2:.0f})<|box_end|>"
    return f"[{x1:.3f}, {y1:.3f}, {x2:.3f}, {y2:.3f}]"
