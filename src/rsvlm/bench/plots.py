"""Plots as inline SVG strings written by hand, and images as base64 thumbnails, for a report that opens from disk.

No matplotlib (a heavy import for a few rectangles), no JavaScript and nothing fetched: every function returns an
HTML fragment. SVGs omit ``xmlns`` (inline SVG in HTML5 needs none) so the report holds no URL at all, and define
no ids, so any number of them can share a page. A missing or unreadable image becomes a grey placeholder with its
name, never an exception: a report of a finished run must not fail because a data folder moved.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from rsvlm.htmlkit import esc, image_uri

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
"""One colour per model (Tableau 10 less cyan), in column order."""
GOOD, BAD, GREY = "#2e7d32", "#c62828", "#9e9e9e"
FONT = 11
THUMB_PX = 160


def number(value: object) -> float | None:
    """A finite float from a JSON value, else None (results may hold null, NaN or a stray string)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _text_width(text: str, size: float = FONT) -> float:
    """A generous width estimate for sans-serif text (no font metrics without a renderer)."""
    return 0.62 * size * len(text)


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg(width: float, height: float, body: str, label: str) -> str:
    w, h = math.ceil(width), math.ceil(height)
    return (
        f'<svg class="plot" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{esc(label)}" '
        f'font-family="system-ui,sans-serif" font-size="{FONT}"><title>{esc(label)}</title>{body}</svg>'
    )


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``top``: steps of 1, 2 or 5 times a power of ten."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _blue(t: float) -> str:
    """White to dark blue, ``t`` in [0, 1]."""
    t = min(1.0, max(0.0, t))
    lo, hi = (247, 251, 255), (8, 48, 107)
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(lo, hi, strict=True))


# -- charts -------------------------------------------------------------------------------------------------------
def confusion_svg(class_names: Sequence[str], confusion: Sequence[Sequence[int]], title: str = "confusion") -> str:
    """Heatmap of a confusion matrix, rows normalised (each row's shares sum to 100 %), class names on both axes.

    Cells shrink with the class count but not below 14 px, so 30 or 45 classes keep 11 px labels legible;
    every cell has a tooltip with its count, and counts are printed in the cells when they fit.
    """
    n = len(class_names)
    if n == 0 or len(confusion) != n:
        return _svg(300, 30, f'<text x="4" y="18">{esc(title)}: no confusion matrix</text>', title)
    cell = max(14, min(40, 640 // n))
    labels = [_short(str(c)) for c in class_names]
    label_w = max(_text_width(s) for s in labels) + 10
    left, top = label_w + 18, 26
    grid = cell * n
    drop = label_w * math.sin(math.radians(60)) + 10
    parts = [
        f'<text x="4" y="16" font-weight="600">{esc(title)}</text>',
        f'<text transform="translate(12,{top + grid / 2}) rotate(-90)" text-anchor="middle">true class</text>',
        f'<text x="{left + grid / 2}" y="{top + grid + drop + 16}" text-anchor="middle">predicted class</text>',
    ]
    show_counts = cell >= 24
    for i, row in enumerate(confusion):
        total = sum(int(v) for v in row) or 1
        y = top + i * cell
        parts.append(
            f'<text x="{left - 4}" y="{y + cell / 2 + 4}" text-anchor="end">{esc(labels[i])}'
            f"<title>{esc(class_names[i])}</title></text>"
        )
        for j, value in enumerate(row):
            share = int(value) / total
            x = left + j * cell
            tip = f"{class_names[i]} → {class_names[j] if j < n else j}: {int(value)} ({share:.0%})"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{_blue(share)}" stroke="#fff" '
                f'stroke-width="0.5"><title>{esc(tip)}</title></rect>'
            )
            if show_counts and int(value):
                ink = "#fff" if share > 0.5 else "#222"
                cx, cy = x + cell / 2, y + cell / 2 + 4
                parts.append(f'<text x="{cx}" y="{cy}" text-anchor="middle" fill="{ink}">{int(value)}</text>')
    for j, name in enumerate(labels):
        x, y = left + j * cell + cell / 2 + 4, top + grid + 6
        parts.append(f'<text transform="translate({x},{y}) rotate(-60)" text-anchor="end">{esc(name)}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{grid}" height="{grid}" fill="none" stroke="#888"/>')
    # a discrete colour key (gradients would need ids, which collide between inline SVGs)
    key_x = left + grid + 12
    for k, share in enumerate((1.0, 0.75, 0.5, 0.25, 0.0)):
        ky = top + k * 16
        parts.append(f'<rect x="{key_x}" y="{ky}" width="14" height="14" fill="{_blue(share)}" stroke="#888"/>')
        parts.append(f'<text x="{key_x + 18}" y="{ky + 11}">{share:.0%}</text>')
    width = max(key_x + 60, _text_width(title) + 8)
    return _svg(width, top + grid + drop + 24, "".join(parts), title)


def bar_chart(
    categories: Sequence[str],
    series: Mapping[str, Mapping[str, float | None]],
    title: str,
    max_value: float | None = 100.0,
    unit: str = "",
) -> str:
    """Horizontal bars, one group per category and one bar per series (model), values printed at the bar ends.

    Used for per-class accuracy, VQA accuracy per question type and published-vs-reproduced numbers. A value
    of None (a class without test samples) is written ``n/a`` rather than drawn as a zero bar.
    """
    names = list(series)
    values = [v for s in series.values() for v in s.values() if v is not None]
    top = max_value if max_value is not None else max([*values, 0.0]) * 1.05 or 1.0
    ticks = nice_ticks(top) if max_value is None else [top * i / 4 for i in range(5)]
    top = ticks[-1]
    labels = [_short(str(c), 32) for c in categories]
    left = max([_text_width(s) for s in labels] + [40.0]) + 12
    plot_w, bar_h = 360.0, 12.0 if len(names) > 1 else 14.0
    group_h = bar_h * len(names) + 6
    legend_h = 18.0 * math.ceil(len(names) / 3) if len(names) > 1 else 0.0
    head = 22 + legend_h
    height = head + group_h * len(categories) + 24
    parts = [f'<text x="{left}" y="14" font-weight="600">{esc(title)}</text>']
    for k, name in enumerate(names if len(names) > 1 else []):
        lx, ly = left + (k % 3) * 150, 22 + (k // 3) * 18
        parts.append(f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{color(k)}"/>')
        parts.append(f'<text x="{lx + 16}" y="{ly + 10}">{esc(_short(name, 20))}</text>')
    axis_y = head + group_h * len(categories)
    for t in ticks:
        x = left + plot_w * t / top
        parts.append(f'<line x1="{x:.1f}" y1="{head}" x2="{x:.1f}" y2="{axis_y}" stroke="#e0e0e0"/>')
        parts.append(f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#555">{_n(t)}{esc(unit)}</text>')
    for i, category in enumerate(categories):
        gy = head + i * group_h
        parts.append(
            f'<text x="{left - 6}" y="{gy + group_h / 2 + 3}" text-anchor="end">{esc(labels[i])}'
            f"<title>{esc(category)}</title></text>"
        )
        for k, name in enumerate(names):
            value = series[name].get(category)
            y = gy + 3 + k * bar_h
            if value is None:
                parts.append(f'<text x="{left + 4}" y="{y + bar_h - 3}" fill="#777">n/a</text>')
                continue
            w = plot_w * max(0.0, min(value, top)) / top
            parts.append(
                f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 1}" fill="{color(k)}">'
                f"<title>{esc(f'{name} · {category}: {value:.1f}{unit}')}</title></rect>"
            )
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 3}">{value:.1f}</text>')
    parts.append(f'<line x1="{left}" y1="{head}" x2="{left}" y2="{axis_y}" stroke="#888"/>')
    return _svg(left + plot_w + 50, height, "".join(parts), title)


def per_class_svg(per_class: Mapping[str, Mapping[str, float | None]], title: str = "accuracy per class") -> str:
    """Per-class accuracy (percent) of one or several models, classes in the first model's order."""
    classes = list(dict.fromkeys(c for s in per_class.values() for c in s))
    return bar_chart(classes, per_class, title, 100.0, "%")


def scatter_svg(
    pairs: Mapping[str, Sequence[Sequence[float | None]]], title: str = "counts: truth vs prediction"
) -> str:
    """Counting results: true count (x) against predicted count (y), one colour per model, and the y = x line.

    Answers without a number cannot be placed; their count is given in the legend instead of being drawn at 0.
    """
    size, left, top, bottom = 320.0, 46.0, 26.0, 40.0
    points: dict[str, list[tuple[float, float]]] = {}
    missing: dict[str, int] = {}
    for name, rows in pairs.items():
        good = [(float(r[0]), float(r[1])) for r in rows if len(r) == 2 and r[0] is not None and r[1] is not None]
        points[name] = good
        missing[name] = len(rows) - len(good)
    extent = max([v for pts in points.values() for p in pts for v in p] + [1.0])
    ticks = nice_ticks(extent)
    hi = ticks[-1]

    def sx(v: float) -> float:
        return left + size * v / hi

    def sy(v: float) -> float:
        return top + size - size * v / hi

    parts = [f'<text x="{left}" y="14" font-weight="600">{esc(title)}</text>']
    for t in ticks:
        parts.append(f'<line x1="{sx(t):.1f}" y1="{top}" x2="{sx(t):.1f}" y2="{top + size}" stroke="#eee"/>')
        parts.append(f'<line x1="{left}" y1="{sy(t):.1f}" x2="{left + size}" y2="{sy(t):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{sx(t):.1f}" y="{top + size + 14}" text-anchor="middle" fill="#555">{_n(t)}</text>')
        parts.append(f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" text-anchor="end" fill="#555">{_n(t)}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#888"/>')
    parts.append(
        f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(hi)}" y2="{sy(hi)}" stroke="#555" stroke-dasharray="4 3">'
        "<title>y = x (perfect count)</title></line>"
    )
    for k, (name, pts) in enumerate(points.items()):
        for x, y in pts[:3000]:
            parts.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(min(y, hi)):.1f}" r="3" fill="{color(k)}" fill-opacity="0.55">'
                f"<title>{esc(f'{name}: truth {_n(x)}, predicted {_n(y)}')}</title></circle>"
            )
    parts.append(f'<text x="{left + size / 2}" y="{top + size + 32}" text-anchor="middle">true count</text>')
    parts.append(
        f'<text transform="translate(12,{top + size / 2}) rotate(-90)" text-anchor="middle">predicted count</text>'
    )
    lx = left + size + 16
    for k, name in enumerate(points):
        ly = top + k * 34
        parts.append(f'<circle cx="{lx + 5}" cy="{ly + 5}" r="5" fill="{color(k)}"/>')
        parts.append(f'<text x="{lx + 14}" y="{ly + 9}">{esc(_short(name, 24))}</text>')
        parts.append(f'<text x="{lx + 14}" y="{ly + 22}" fill="#666">{missing[name]} without a number</text>')
    parts.append(f'<text x="{lx}" y="{top + len(points) * 34 + 10}" fill="#555">- - - y = x</text>')
    return _svg(lx + 180, top + size + bottom + 4, "".join(parts), title)


def _stroke(k: int, width: float) -> str:
    return f'stroke="{color(k)}" stroke-width="{width}"'


def line_chart(
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    title: str,
    *,
    spread: Mapping[str, Sequence[float | None]] | None = None,
    references: Mapping[str, float | None] | None = None,
    x_title: str = "shots per class",
    y_title: str = "top-1 (%)",
) -> str:
    """Lines over evenly spaced categories (shot counts 1, 2, 4, 8, 16), one colour per series, ± ``spread``
    as error bars, and ``references`` (zero-shot) as dashed horizontal lines.

    The y axis spans the values (not 0–100), so differences of a point stay visible; a missing value (a shot
    count not run) breaks the line instead of being drawn as zero.
    """
    spread = spread or {}
    refs = {k: f for k, v in (references or {}).items() if (f := number(v)) is not None}
    values = [f for s in series.values() for v in s if (f := number(v)) is not None] + list(refs.values())
    for name, s in series.items():
        pairs = [(number(v), number(e)) for v, e in zip(s, spread.get(name, ()), strict=False)]
        values += [v + e * sign for v, e in pairs if v is not None and e is not None for sign in (-1, 1)]
    if not x_labels or not values:
        return _svg(300, 30, f'<text x="4" y="18">{esc(title)}: nothing to plot</text>', title)
    step = 5.0 if max(values) - min(values) > 10 else 1.0
    lo = math.floor(min(values) / step) * step
    hi = max(math.ceil(max(values) / step) * step, lo + step)
    ticks = [lo + t for t in nice_ticks(hi - lo)]
    hi = ticks[-1]
    left, top, plot_w, plot_h = 52.0, 26.0, 420.0, 240.0
    gap = plot_w / max(len(x_labels), 1)

    def sx(i: int) -> float:
        return left + gap * (i + 0.5)

    def sy(v: float) -> float:
        return top + plot_h - plot_h * (v - lo) / (hi - lo)

    parts = [f'<text x="{left}" y="16" font-weight="600">{esc(title)}</text>']
    for t in ticks:
        parts.append(f'<line x1="{left}" y1="{sy(t):.1f}" x2="{left + plot_w}" y2="{sy(t):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{sy(t) + 4:.1f}" text-anchor="end" fill="#555">{_n(t)}</text>')
    base_y = top + plot_h
    parts += [f'<text x="{sx(i):.1f}" y="{base_y + 14}" text-anchor="middle" fill="#555">{esc(label)}</text>'
              for i, label in enumerate(x_labels)]  # fmt: skip
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{base_y + 32}" text-anchor="middle">{esc(x_title)}</text>')
    parts.append(f'<text transform="translate(12,{top + plot_h / 2}) rotate(-90)" text-anchor="middle">'
                 f"{esc(y_title)}</text>")  # fmt: skip
    names = [*series, *refs]
    for name, value in refs.items():
        k, y = names.index(name), sy(value)
        tip = esc(f"{name}: {value:.2f}")
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" {_stroke(k, 1.5)} '
                     f'stroke-dasharray="6 4"><title>{tip}</title></line>')  # fmt: skip
    for k, (name, ys) in enumerate(series.items()):
        errors = list(spread.get(name, ()))
        points = [(i, f) for i, v in enumerate(ys[: len(x_labels)]) if (f := number(v)) is not None]
        for (i, v), (j, w) in itertools.pairwise(points):
            if j == i + 1:  # a shot count not run breaks the line
                parts.append(
                    f'<line x1="{sx(i):.1f}" y1="{sy(v):.1f}" x2="{sx(j):.1f}" y2="{sy(w):.1f}" {_stroke(k, 2)}/>'
                )
        for i, v in points:
            e = number(errors[i]) if i < len(errors) else None
            if e:
                bar = f'x1="{sx(i):.1f}" y1="{sy(v - e):.1f}" x2="{sx(i):.1f}" y2="{sy(v + e):.1f}"'
                parts.append(f"<line {bar} {_stroke(k, 1)}/>")
            tip = esc(f"{name} · {x_labels[i]}: {v:.2f}" + (f" ± {e:.2f}" if e else ""))
            parts.append(
                f'<circle cx="{sx(i):.1f}" cy="{sy(v):.1f}" r="3.5" fill="{color(k)}"><title>{tip}</title></circle>'
            )
    lx = left + plot_w + 16
    for k, name in enumerate(names):
        ly = top + k * 18
        dash = ' stroke-dasharray="6 4"' if name in refs else ""
        parts.append(f'<line x1="{lx}" y1="{ly + 6}" x2="{lx + 22}" y2="{ly + 6}" {_stroke(k, 2)}{dash}/>')
        parts.append(f'<text x="{lx + 28}" y="{ly + 10}">{esc(_short(name, 30))}</text>')
    width = max(lx + 36 + max(_text_width(_short(n, 30)) for n in names), _text_width(title) + left)
    return _svg(width, max(top + plot_h + 44, top + 18 * len(names) + 8), "".join(parts), title)


# -- images -------------------------------------------------------------------------------------------------------
def resolve(path: str | Path, base: Path | None = None) -> Path:
    """An image path from a result file: absolute as is, relative to the run folder first, then to the cwd."""
    p = Path(path)
    if p.is_absolute() or base is None or not (base / p).exists():
        return p
    return base / p


@functools.lru_cache(maxsize=1024)
def _thumbnail(path: str, max_px: int) -> tuple[str, int, int, int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            size = im.size
            im.draft("RGB", (max_px, max_px))  # JPEG: decode at reduced scale, much faster for big scenes
            rgb = im.convert("RGB")  # no EXIF rotation: boxes are in the stored pixel grid
            rgb.thumbnail((max_px, max_px))
            uri = image_uri(rgb, jpeg=True, quality=85)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return uri, rgb.width, rgb.height, size[0], size[1]


def thumbnail(path: str | Path, max_px: int = THUMB_PX) -> tuple[str, int, int, int, int] | None:
    """``(data URI, width, height, original width, original height)`` of a JPEG thumbnail, None if unreadable."""
    return _thumbnail(str(path), max_px)


def placeholder_svg(name: str, width: float = THUMB_PX, height: float = THUMB_PX, why: str = "missing") -> str:
    """A grey box with the file name, standing in for an image that cannot be read."""
    body = (
        f'<rect width="{width}" height="{height}" fill="#e0e0e0" stroke="#9e9e9e"/>'
        f'<text x="{width / 2}" y="{height / 2 - 4}" text-anchor="middle" fill="#555">{esc(why)} image</text>'
        f'<text x="{width / 2}" y="{height / 2 + 12}" text-anchor="middle" fill="#555">{esc(_short(name, 24))}</text>'
    )
    return _svg(width, height, body, f"{why} image {name}").replace('class="plot"', 'class="placeholder"', 1)


def image_html(
    path: str | Path, base: Path | None = None, border: str | None = None, max_px: int = THUMB_PX, alt: str = ""
) -> str:
    """An ``<img>`` with the thumbnail as a data URI (optional coloured border), or the grey placeholder."""
    target = resolve(path, base)
    style = f' style="border:3px solid {border}"' if border else ""
    thumb = thumbnail(target, max_px)
    if thumb is None:
        why = "missing" if not target.exists() else "unreadable"
        return f'<span class="thumb"{style}>{placeholder_svg(target.name, max_px, max_px, why)}</span>'
    uri, w, h, _, _ = thumb
    return f'<img class="thumb" src="{uri}" width="{w}" height="{h}" alt="{esc(alt or target.name)}"{style}>'


def retrieval_html(query: str, top: Sequence[str], correct: Sequence[bool], base: Path | None = None) -> str:
    """A text query and its top-5 images, framed green (the query's own image) or red, ✓/✗ for colour-blind readers."""
    cells = []
    for rank, path in enumerate(top[:5], start=1):
        hit = bool(correct[rank - 1]) if rank - 1 < len(correct) else False
        mark = "✓" if hit else "✗"
        img = image_html(path, base, GOOD if hit else BAD, alt=f"rank {rank}: {Path(path).name}")
        cells.append(
            f'<figure class="rank">{img}<figcaption>{rank}. {mark} {esc(Path(path).name)}</figcaption></figure>'
        )
    return f'<div class="retrieval"><p class="query">“{esc(query)}”</p><div class="row">{"".join(cells)}</div></div>'


def caption_html(image: str, prediction: str, references: Sequence[str], base: Path | None = None) -> str:
    """An image with the model's caption beside the reference captions."""
    refs = "".join(f"<li>{esc(r)}</li>" for r in references)
    return (
        f'<div class="pair">{image_html(image, base)}<div><p><b>model:</b> {esc(prediction)}</p>'
        f'<p class="muted">references:</p><ol>{refs}</ol></div></div>'
    )


def grounding_svg(
    image: str,
    truth: Sequence[float] | None,
    prediction: Sequence[float] | None,
    base: Path | None = None,
    max_px: int = 240,
) -> str:
    """The image with the true box in green and the predicted box in red (SVG rects over an embedded image).

    Boxes are pixel ``[x1, y1, x2, y2]`` of the original image; without the image, they are drawn on a grey
    placeholder sized to the boxes' extent, so a wrong prediction is still visible.
    """
    target = resolve(image, base)
    thumb = thumbnail(target, max_px)
    boxes = [b for b in (truth, prediction) if b is not None and len(b) == 4]
    if thumb is not None:
        uri, w, h, ow, _ = thumb
        scale = w / ow if ow else 1.0
        backdrop = f'<image href="{uri}" x="0" y="0" width="{w}" height="{h}"/>'
    else:
        extent = max([float(v) for b in boxes for v in b] + [1.0]) * 1.1
        scale = max_px / extent
        w = h = max_px
        why = "missing" if not target.exists() else "unreadable"
        backdrop = (
            f'<rect width="{w}" height="{h}" fill="#e0e0e0"/>'
            f'<text x="4" y="{h - 6}" fill="#555">{esc(why)}: {esc(_short(target.name, 30))}</text>'
        )
    parts = [backdrop]
    for box, stroke, label in ((truth, GOOD, "truth"), (prediction, BAD, "prediction")):
        if box is None or len(box) != 4:
            continue
        x1, y1, x2, y2 = (float(v) * scale for v in box)
        parts.append(
            f'<rect x="{x1:.1f}" y="{y1:.1f}" width="{max(x2 - x1, 1):.1f}" height="{max(y2 - y1, 1):.1f}" fill="none" '
            f'stroke="{stroke}" stroke-width="2"><title>{label}</title></rect>'
        )
    return _svg(w, h, "".join(parts), f"grounding on {target.name}")
