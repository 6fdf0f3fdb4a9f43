"""A self-contained HTML report: every image embedded (base64 PNG), so the file opens from disk anywhere."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rsvlm.geo.outputs import class_color, png_bytes
from rsvlm.htmlkit import bytes_uri, esc, image_uri, table

__all__ = ["Report", "data_uri", "esc", "figure", "file_links", "legend", "table"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
line-height:1.45;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
.muted{color:#666;font-size:.92rem} table{border-collapse:collapse;margin:.6rem 0}
td,th{border:1px solid #ddd;padding:.25rem .55rem;text-align:left;font-size:.92rem} th{background:#f4f4f4}
.grid{display:flex;flex-wrap:wrap;gap:1rem} figure{margin:0} figcaption{font-size:.88rem;color:#444;max-width:520px}
img.map{max-width:520px;width:100%;border:1px solid #ccc;image-rendering:pixelated}
img.tile{width:192px;height:192px;border:1px solid #ccc;image-rendering:pixelated}
.swatch{display:inline-block;width:.9rem;height:.9rem;border:1px solid #888;vertical-align:middle;margin-right:.3rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem;width:200px;font-size:.88rem}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5rem .8rem;margin:.8rem 0}
.ramp{display:inline-block;width:160px;height:.8rem;vertical-align:middle;
background:linear-gradient(90deg,#000004,#57106e,#bc3754,#f98e09,#fcffa4)}
"""


def data_uri(rgb: npt.NDArray[np.uint8] | bytes, *, photo: bool = False) -> str:
    """A base64 image URI; ``photo`` images (scene overlays, PNG bytes or arrays) go in as JPEG, 10x smaller."""
    from PIL import Image

    if isinstance(rgb, bytes):
        if not photo:
            return bytes_uri(rgb)
        rgb = np.asarray(Image.open(io.BytesIO(rgb)).convert("RGB"))
    return image_uri(Image.fromarray(rgb), jpeg=True) if photo else bytes_uri(png_bytes(rgb))


def figure(image: npt.NDArray[np.uint8] | bytes, caption: str, css: str = "map") -> str:
    alt = esc(re.sub(r"<[^>]+>", " ", caption).split(":")[0].strip())
    img = f'<img class="{css}" src="{data_uri(image, photo=css == "map")}" alt="{alt}">'
    return f"<figure>{img}<figcaption>{caption}</figcaption></figure>"


def legend(classes: Sequence[str], share: dict[str, float]) -> str:
    swatch = '<span class="swatch" style="background:rgb{}"></span>'
    items = [
        f"<div>{swatch.format(class_color(i))}{esc(c)} — {share.get(c, 0.0):.1%}</div>" for i, c in enumerate(classes)
    ]
    return "".join(items)


@dataclass
class Report:
    title: str
    intro: str
    sections: list[str] = field(default_factory=list)

    def add(self, heading: str, body: str) -> None:
        self.sections.append(f"<h2>{esc(heading)}</h2>{body}")

    def write(self, path: Path) -> Path:
        page = (
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(self.title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{esc(self.title)}</h1>{self.intro}{''.join(self.sections)}"
            "</body></html>"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
        return path


def file_links(files: dict[str, Path], root: Path) -> str:
    items = []
    for path in files.values():
        try:
            rel = path.resolve().relative_to(root.resolve())
        except ValueError:
            rel = path
        items.append(f'<li><a href="{esc(rel.as_posix())}">{esc(rel.as_posix())}</a></li>')
    return f"<ul>{''.join(items)}</ul>"
