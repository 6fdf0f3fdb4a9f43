"""Quality of a contrastive model on held-out real data, printed beside published references.

Protocols (all on images the default model never trained on):
- RSICD test retrieval: the 1,027 test images that are AID images (150 px downsamples), 5,135 captions;
  I2T/T2I R@1/5/10 and mR (published numbers use all 1,093 test images at full resolution).
- Zero-shot AID classification of the same 1,027 test images (30 AID classes, rs-default templates).
- Zero-shot rural/urban on the 50 Sentinel-2 10 m images of the RSVQA-LR demo subset (answers from the
  release), a different sensor and resolution than training.

Usage: python benchmarks/lite_quality.py [--model rsvlm-lite] [--weights FOLDER] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

PUBLISHED_RSICD_MR = {
    "CLIP zero-shot (ViT-B/32)": 15.74,
    "RemoteCLIP ViT-L/14": 36.35,
    "GeoRSCLIP fine-tuned": 38.87,
}


def aid_test_zeroshot(model: Any, cache: Path | None) -> dict[str, Any]:
    from rsvlm.data.registry import open_dataset
    from rsvlm.pipeline import class_text_embeddings, embed_images
    from rsvlm.tasks.embeddings import EmbeddingSet
    from rsvlm.tasks.templates import load_templates
    from rsvlm.tasks.zeroshot import evaluate_zeroshot

    test_names = {
        r.image_path.name
        for r in open_dataset(SHARED / "rsicd", images=SHARED / "aid", split="test").records
        if r.image_path is not None
    }
    aid = open_dataset(SHARED / "aid")
    records = [r for r in aid.records if r.image_path is not None and r.image_path.name in test_names]
    classes = aid.classes
    labels = np.array([classes.index(r.label or "") for r in records])
    vectors = embed_images(model, [r.image_path for r in records if r.image_path is not None], cache_dir=cache)
    names = [aid.class_names[c] for c in classes]
    texts = class_text_embeddings(model, names, load_templates("rs-default"))
    return evaluate_zeroshot(EmbeddingSet(vectors, labels, texts, names))


def rsvqa_rural_urban(model: Any, cache: Path | None) -> dict[str, Any]:
    from rsvlm.data.registry import open_dataset
    from rsvlm.pipeline import class_text_embeddings, embed_images
    from rsvlm.tasks.embeddings import EmbeddingSet
    from rsvlm.tasks.templates import load_templates
    from rsvlm.tasks.zeroshot import evaluate_zeroshot

    ds = open_dataset(SHARED / "rsvqa" / "lr")
    records = [r for r in ds.records if r.question_type == "rural_urban" and r.image_path is not None]
    labels = np.array([0 if r.answer == "rural" else 1 for r in records])
    vectors = embed_images(model, [r.image_path for r in records if r.image_path is not None], cache_dir=cache)
    names = ["rural area|farmland|countryside", "urban area|city|residential area"]
    texts = class_text_embeddings(model, names, load_templates("rs-default"))
    result = evaluate_zeroshot(EmbeddingSet(vectors, labels, texts, ["rural", "urban"]))
    result["majority_baseline"] = float(100 * max(np.mean(labels == 0), np.mean(labels == 1)))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="registry name or spec file (default model if omitted)")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if not (SHARED / "README.md").is_file():
        sys.exit(f"real data not found at {SHARED}: this benchmark needs ../shared/data")

    from rsvlm.models.openclip import load_contrastive
    from rsvlm.pipeline import embed_caption_dataset
    from rsvlm.tasks.retrieval import evaluate_retrieval

    started = time.time()
    model = load_contrastive(args.model, args.weights)
    img, txt, owner, _ = embed_caption_dataset(
        None,
        SHARED / "rsicd",
        model=model,
        images=SHARED / "aid",
        split="test",
        cache_dir=args.cache_dir,
        show_progress=False,
    )
    retrieval = evaluate_retrieval(img, txt, owner)
    zeroshot = aid_test_zeroshot(model, args.cache_dir)
    rural = rsvqa_rural_urban(model, args.cache_dir)
    results = {
        "model": model.name,
        "retrieval": retrieval,
        "aid_test_zeroshot": {k: zeroshot[k] for k in ("top1", "top5", "n")},
        "rsvqa_lr_rural_urban": {k: rural[k] for k in ("top1", "n", "majority_baseline")},
        "seconds": round(time.time() - started, 1),
    }
    r = retrieval
    print(f"model: {model.name}  ({results['seconds']} s)")
    print("\nRSICD test retrieval (1,027 AID-matched test images at 150 px, 5,135 captions)")
    print("| model | I2T R@1 | R@5 | R@10 | T2I R@1 | R@5 | R@10 | mR |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {model.name} (measured) | {r['i2t_r1']:.2f} | {r['i2t_r5']:.2f} | {r['i2t_r10']:.2f} | {r['t2i_r1']:.2f} | "
        f"{r['t2i_r5']:.2f} | {r['t2i_r10']:.2f} | **{r['mR']:.2f}** |"
    )
    for name, mr in PUBLISHED_RSICD_MR.items():
        print(f"| {name} (published, full 1,093-image test set) | | | | | | | {mr:.2f} |")
    print("\nZero-shot scene classification")
    print("| set | n | top-1 | top-5 | note |")
    print("|---|---|---|---|---|")
    print(
        f"| AID classes of the RSICD test images | {zeroshot['n']} | {zeroshot['top1']:.2f} | {zeroshot['top5']:.2f} "
        "| same source and classes as training: not a generality test |"
    )
    print(
        f"| RSVQA-LR rural/urban, Sentinel-2 10 m | {rural['n']} | {rural['top1']:.2f} | - | majority baseline "
        f"{rural['majority_baseline']:.1f} |"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
