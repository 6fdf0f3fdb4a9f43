"""A search's results as one self-contained HTML page: thumbnails, scores, labels, places and times, no network."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rsvlm.errors import RsvlmError
from rsvlm.htmlkit import bytes_uri, esc

if TYPE_CHECKING:
    from rsvlm.index.archive import Archive
    from rsvlm.index.search import SearchResult

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px}
figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:6px;background:#fafafa}
figure img{width:100%;height:auto;image-rendering:pixelated;display:block}
figcaption{font-size:12px;line-height:1.35;word-break:break-all}
.score{font-weight:600}.none{color:#888}
"""


def results_page(archive: Archive, result: SearchResult, title: str) -> str:
    cards = []
    for hit in result.hits:
        try:
            picture = f'<img alt="hit {hit.rank}" src="{bytes_uri(archive.thumbnail(hit.id, 256))}">'
        except RsvlmError as exc:
            picture = f'<p class="none">{esc(exc)}</p>'
        where = ""
        if hit.geometry is not None:
            ring = hit.geometry["coordinates"][0]
            lon = sum(p[0] for p in ring[:-1]) / max(len(ring) - 1, 1)
            lat = sum(p[1] for p in ring[:-1]) / max(len(ring) - 1, 1)
            where = f"<br>{lat:.5f}, {lon:.5f}"
        window = f" window {','.join(map(str, hit.window))}" if hit.window else ""
        label = f"<br>label {esc(hit.label)}" if hit.label else ""
        when = f"<br>{esc(hit.datetime)}" if hit.datetime else ""
        cards.append(
            f"<figure>{picture}<figcaption><span class='score'>#{hit.rank} · {hit.score:.4f}</span>"
            f"{label}<br>{esc(hit.path)}{esc(window)}{where}{when}</figcaption></figure>"
        )
    query = ", ".join(f"{k}={v}" for k, v in result.query.items())
    summary = (
        f"{len(result.hits)} hits of {result.candidates:,} candidates in {len(archive):,} entries; "
        f"{'exact' if result.exact else 'approximate'} search, {result.took_ms:.1f} ms"
    )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{esc(title)}</h1><p>{esc(query)}</p><p>{esc(summary)}</p>"
        f"<div class='grid'>{''.join(cards)}</div></body></html>"
    )
