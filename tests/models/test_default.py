"""The model that ships inside the package: it must work offline on a fresh clone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rsvlm.models.openclip import load_contrastive
from rsvlm.models.registry import default_spec


def test_default_is_the_shipped_lite_model() -> None:
    spec = default_spec()
    assert spec.name == "rsvlm-lite" and spec.loader == "lite"
    from rsvlm.models.lite import packaged_weights

    folder = packaged_weights(spec.name)
    assert (folder / "model.safetensors").stat().st_size <= 25 * 1024 * 1024
    assert (folder / "MODEL_CARD.md").is_file() and (folder / "training_log.jsonl").is_file()


def test_classify_offline_without_model_flag(fixtures: Path) -> None:
    image = fixtures / "scene_folder/Airport/airport_1.jpg"
    result = subprocess.run(
        [sys.executable, "-m", "rsvlm", "classify", str(image), "--labels", "airport,forest,river", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["model"] == "rsvlm-lite"
    assert abs(sum(r["probability"] for r in out["labels"]) - 1.0) < 1e-3


def test_deterministic_embeddings(fixtures: Path) -> None:
    from rsvlm.data.raster import read_image

    model = load_contrastive()
    pixels = model.preprocess(read_image(fixtures / "scene_folder/BareLand/bareland_1.jpg"))[None]
    a = model.encode_images(pixels).numpy()
    b = model.encode_images(pixels).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.shape == (1, model.embed_dim)


@pytest.mark.parametrize(
    ("cls", "labels"), [("Beach", "beach,forest,parking lot"), ("Forest", "airport,forest,desert")]
)
def test_real_scenes_are_recognised(shared_data: Path, cls: str, labels: str) -> None:
    """Held-out RSICD test images (AID scenes the model never trained on), easy three-way choices."""
    from rsvlm.data.registry import open_dataset

    test = open_dataset(shared_data / "rsicd", images=shared_data / "aid", split="test")
    paths = [r.image_path for r in test.records if r.image_path is not None and r.image_path.parent.name == cls][:5]
    result = subprocess.run(
        [sys.executable, "-m", "rsvlm", "classify", *map(str, paths), "--labels", labels, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    tops = [json.loads(line)["labels"][0]["label"] for line in result.stdout.splitlines()]
    assert sum(t == cls.lower() for t in tops) >= 4, tops
