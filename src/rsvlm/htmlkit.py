"""HTML building blocks of rsvlm's self-contained reports (the scene demo, the benchmark run).

Both reports are single files that open from disk with nothing fetched: text is escaped with URL schemes
dropped (a report links nowhere), and images travel inline as base64 data URIs.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

_URL = re.compile(r"(?i)\bhttps?://")


def esc(value: object) -> str:
    """HTML-escaped text with URL schemes dropped (``https://a.org/x`` → ``a.org/x``)."""
    return html.escape(_URL.sub("", str(value)), quote=True)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], raw: bool = False, numeric: Sequence[int] = ()) -> str:
    """A table; cells are escaped unless ``raw`` (then the caller escaped them); ``numeric`` columns align right."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    num = ' class="num"'
    body = "".join(
        "<tr>"
        + "".join(f"<td{num if i in numeric else ''}>{c if raw else esc(c)}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image_uri(image: Image.Image, *, jpeg: bool, quality: int = 88) -> str:
    """A base64 data URI: JPEG for photographs (about 10x smaller), PNG for maps and masks (exact colours)."""
    buffer = io.BytesIO()
    if jpeg:
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format="PNG", optimize=True)
    kind = "jpeg" if jpeg else "png"
    return f"data:image/{kind};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def bytes_uri(data: bytes, kind: str = "png") -> str:
    """A data URI of already-encoded image bytes."""
    return f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")
