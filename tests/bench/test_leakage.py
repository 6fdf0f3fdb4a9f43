"""Leakage flags from declared training data: one declaration per model, read by the flags and copy-free pools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rsvlm.bench.leakage import canonical_dataset, seen_in_training, training_data

# -- declarations ----------------------------------------------------------------------------------------------


def test_lite_model_flags() -> None:
    aid = seen_in_training("rsvlm-lite", "aid")
    assert aid.status == "seen" and "class names" in aid.reason and aid.label == "seen in training"
    test = seen_in_training("rsvlm-lite", "rsicd", "test")
    assert test.status == "test-split-excluded" and "file content" in test.reason
    assert seen_in_training("rsvlm-lite", "RSICD", "train").status == "seen"
    assert seen_in_training("rsvlm-lite", "rsicd").status == "seen"  # the whole set includes the train split
    whu = seen_in_training("rsvlm-lite", "golden/whurs19/results/WHURS19/RemoteCLIP/ViT-B-32")
    assert whu.status == "seen" and "630" in whu.reason
    assert seen_in_training("rsvlm-lite", "eurosat").status == "clean"
    assert seen_in_training("rsvlm-lite", "rsvqa/lr").status == "clean"


def test_chat_model_flags() -> None:
    assert seen_in_training("rsvlm-lite-chat", "rsvqa/lr", "test").status == "test-split-excluded"
    assert seen_in_training("rsvlm-lite-chat", "rsvqa/hr").status == "seen"
    assert seen_in_training("rsvlm-lite-chat", "neon_trees", "test").status == "test-split-excluded"
    assert seen_in_training("rsvlm-lite-chat", "aid").status == "seen"
    assert seen_in_training("rsvlm-lite-chat", "rsicd", "test").status == "test-split-excluded"


def test_published_and_unknown_models() -> None:
    unknown = seen_in_training("no-such-model", "aid")
    assert unknown.status == "not declared" and "no-such-model" in unknown.reason
    assert seen_in_training("openai-vit-b-32", "aid").status == "not declared"
    # RemoteCLIP trained on RSICD, whose class-named images are AID's: seen through the overlap.
    assert seen_in_training("remoteclip-vit-b-32", "aid").status == "seen"
    assert seen_in_training("remoteclip-vit-l-14", "WHU-RS19").status == "seen"
    assert seen_in_training("remoteclip-vit-b-32", "rsicd").status == "seen"
    assert seen_in_training("remoteclip-vit-b-32", "rsicd", "test").status == "not declared"  # split unstated
    assert seen_in_training("georsclip-vit-b-32", "aid").status == "not declared"  # RS5M is web-filtered
    assert seen_in_training("skyclip-vit-l-14", "skyscript").status == "seen"


def test_every_shipped_model_is_declared() -> None:
    from rsvlm.models.chat.registry import DEFAULT_CHAT
    from rsvlm.models.registry import MODELS

    assert all(training_data(m) is not None for m in [*MODELS, DEFAULT_CHAT])
    lite = training_data("rsvlm-lite")
    assert lite is not None and {"rsicd", "aid"} <= lite.datasets and "RSICD test" in lite.excluded
    assert training_data("llava-1.5-7b") is None


def test_spec_file_declarations(tmp_path: Path) -> None:
    spec = tmp_path / "mine.json"
    spec.write_text(
        json.dumps(
            {"name": "mine", "family": "openai", "arch": "ViT-B-32", "description": "x", "trained_on": ["UCM-train"]}
        )
    )
    assert seen_in_training(str(spec), "ucm", "train").status == "seen"
    assert seen_in_training(str(spec), "ucm-captions").status == "seen"  # same images
    assert seen_in_training(str(spec), "aid").status == "not declared"  # what it starts from is unknown


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("WHU_RS19", "whu-rs19"),
        ("rsvqa/lr", "rsvqa-lr"),
        ("neon_trees", "neon-trees"),
        ("/x/data/aid", "aid"),
        ("/x/aid/tiles/EuroSAT", "eurosat"),
        ("my_tiles", "my-tiles"),
    ],
)
def test_canonical_dataset(name: str, canonical: str) -> None:
    assert canonical_dataset(name) == canonical


def test_one_declaration_feeds_flags_copy_free_pools_and_the_model_list(tmp_path: Path) -> None:
    """What a model trained on is declared once, beside the model: the flag, the copy-free pool and
    ``rsvlm models``' trained_on all read it (no model name is hard-coded in the bench)."""
    from rsvlm.bench.kinds._scene import training_pool
    from rsvlm.models.chat.registry import CHAT_MODELS
    from rsvlm.models.registry import MODELS

    lite = MODELS["rsvlm-lite"]
    assert lite.training is not None and training_data("rsvlm-lite") == lite.training
    assert lite.trained_on == ("rsicd-train", "aid", "imagenet-1k")
    chat = CHAT_MODELS["rsvlm-lite-chat"].training
    assert chat is not None and training_data("rsvlm-lite-chat") == chat
    pool = training_pool("rsvlm-lite", tmp_path)
    assert pool is not None and pool == training_pool("rsvlm-lite-chat", tmp_path)
    assert len(pool) == 10000 - 1027 and all(p.is_relative_to(tmp_path / "aid") for p in pool)
    assert training_pool("openai-vit-b-32", tmp_path) is None and training_pool("no-such-model", tmp_path) is None
