"""The HTML blocks both reports share: escaping that links nowhere, tables, inline images that decode back."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from rsvlm.htmlkit import bytes_uri, esc, image_uri, table


def test_text_is_escaped_and_links_nowhere() -> None:
    assert esc('<b>"x" & https://example.org/a</b>') == "&lt;b&gt;&quot;x&quot; &amp; example.org/a&lt;/b&gt;"


def test_table_escapes_cells_unless_raw_and_aligns_numeric_columns() -> None:
    html = table(["model", "mR"], [["<lite>", "24.5"]], numeric=[1])
    assert html == (
        "<table><thead><tr><th>model</th><th>mR</th></tr></thead>"
        '<tbody><tr><td>&lt;lite&gt;</td><td class="num">24.5</td></tr></tbody></table>'
    )
    assert "<td><i>x</i></td>" in table(["a"], [["<i>x</i>"]], raw=True)


def test_inline_images_decode_to_their_pixels() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    png = image_uri(Image.fromarray(rgb), jpeg=False)
    assert png.startswith("data:image/png;base64,")
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(png.split(",", 1)[1]))))
    assert np.array_equal(decoded, rgb)  # PNG: exact
    jpeg = image_uri(Image.fromarray(rgb).convert("L"), jpeg=True)
    back = Image.open(io.BytesIO(base64.b64decode(jpeg.split(",", 1)[1])))
    assert jpeg.startswith("data:image/jpeg;base64,") and back.mode == "RGB" and back.size == (20, 12)
    assert bytes_uri(b"\x89PNG") == "data:image/png;base64,iVBORw=="
