"""RSICD test text→image retrieval through an index equals ``rsvlm eval retrieval`` with the same model.

The index is built from the same split (``rsvlm index build rsicd --format rsicd-precomp --split test``), every test
caption is a query (its text embedding, as ``rsvlm search`` makes it), and a caption scores a hit at k when its own
image is among the first k hits — the T2I half of the ``retrieval/1`` protocol. Both paths embed the same pixels
with the same model; the index's batches differ, so embeddings may differ in the last float bits (reported).

    python benchmarks/index_quality.py [--model rsvlm-lite] [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rsvlm-lite")
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "index_quality.md")
    args = parser.parse_args()

    from rsvlm.index.archive import open_archive
    from rsvlm.index.build import build_index
    from rsvlm.index.search import SearchQuery
    from rsvlm.index.sources import SourceOptions
    from rsvlm.models.openclip import load_contrastive
    from rsvlm.pipeline import embed_caption_dataset
    from rsvlm.tasks.retrieval import evaluate_retrieval

    rsicd, aid = args.shared / "rsicd", args.shared / "aid"
    model = load_contrastive(args.model, None)
    start = time.perf_counter()
    images, texts, owner, _ = embed_caption_dataset(
        None, rsicd, images=aid, split="test", model=model, show_progress=False
    )
    plain = evaluate_retrieval(images, texts, owner)
    plain_s = time.perf_counter() - start

    from rsvlm.data.registry import open_dataset

    dataset = open_dataset(rsicd, images=aid, split="test")
    records = [r for r in dataset.records if r.captions and r.image_path is not None]
    owner_path = [str(Path(str(records[i].image_path)).resolve()) for i in owner]
    with tempfile.TemporaryDirectory(prefix="rsvlm-index-quality-") as tmp:
        start = time.perf_counter()
        options = SourceOptions(data_format="rsicd-precomp", images=aid, split="test")
        report = build_index(Path(tmp) / "index", [rsicd], model, options=options)
        archive = open_archive(Path(tmp) / "index")
        build_s = time.perf_counter() - start
        ranks = np.full(len(texts), 10**9)
        start = time.perf_counter()
        for i, vector in enumerate(texts):
            hits = archive.search(SearchQuery(vector=vector, k=10), None).hits
            for hit in hits:
                if hit.path == owner_path[i]:
                    ranks[i] = hit.rank
                    break
        search_s = time.perf_counter() - start
        stored = {h: v for h, v in _stored(archive)}
    index_recall = {k: float(np.mean(ranks <= k) * 100) for k in (1, 5, 10)}
    order = {str(Path(str(r.image_path)).resolve()): j for j, r in enumerate(records)}
    diffs = [float(np.abs(stored[p] - images[j]).max()) for p, j in order.items() if p in stored]

    n_img, n_txt = len(records), len(texts)
    rows = [
        ("`rsvlm eval retrieval`", plain["t2i_r1"], plain["t2i_r5"], plain["t2i_r10"], f"{plain_s:.0f} s (embed)"),
        ("through the index (`rsvlm search`)", *(index_recall[k] for k in (1, 5, 10)),
         f"{build_s:.0f} s build, {search_s * 1000 / n_txt:.2f} ms/query"),
    ]  # fmt: skip
    lines = [
        f"# RSICD test text→image retrieval through the index ({args.model})",
        "",
        f"{n_img:,} test images (AID 150-px copies), {n_txt:,} captions as queries; flat (exact) index of "
        f"{report.count:,} entries. Recall in %.",
        "",
        "| path | T2I R@1 | T2I R@5 | T2I R@10 | time |",
        "|---|---:|---:|---:|---|",
        *(f"| {r[0]} | {r[1]:.2f} | {r[2]:.2f} | {r[3]:.2f} | {r[4]} |" for r in rows),
        f"| chance (k / images) | {100 / n_img:.2f} | {500 / n_img:.2f} | {1000 / n_img:.2f} | |",
        "",
        f"Largest difference between an image's embedding in the index and in `eval retrieval`: {max(diffs):.2e} "
        f"({len(diffs):,} images compared).",
        "Reproduce: `python benchmarks/index_quality.py`.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


def _stored(archive: object) -> list[tuple[str, np.ndarray]]:
    """(path, embedding) of every entry, read back from the index's parts."""
    from rsvlm.index.archive import Archive

    assert isinstance(archive, Archive)
    out: list[tuple[str, np.ndarray]] = []
    paths = dict(zip(archive.ids.tolist(), archive._table.column("path").to_pylist(), strict=True))
    for ids, vectors in archive.store.iter_vectors():
        out.extend((paths[int(i)], v) for i, v in zip(ids, vectors, strict=True))
    return out


if __name__ == "__main__":
    main()
