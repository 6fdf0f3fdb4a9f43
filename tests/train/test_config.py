from __future__ import annotations

from pathlib import Path

import pytest

from rsvlm.errors import RsvlmError
from rsvlm.train.config import load_config


def test_yaml_config_is_typed(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "model: {embed_dim: 64}\n"
        "data:\n  captions: [{path: a, images: b, split: train}]\n  scenes: [{path: s, templates: rs-default}]\n"
        "optim: {epochs: 2, lr: 0.01}\noutput: out\n"
    )
    cfg = load_config(path)
    assert cfg.data.captions[0].split == "train" and cfg.data.scenes[0].templates == "rs-default"
    assert cfg.optim.epochs == 2 and cfg.optim.batch_size == 256 and cfg.output == "out"
    assert len(cfg.fingerprint()) == 16


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("optim: {epoch: 2}\n", r"c.yaml.optim: unknown key\(s\) epoch"),
        ("data: {captions: [{path: a, image: b}]}\n", r"captions\[0\]: unknown key\(s\) image"),
        ("modell: {}\n", r"unknown key\(s\) modell"),
        ("optim: [1, 2]\n", "expected a mapping"),
        ("optim: {epochs: 2\n", "cannot parse config"),
    ],
)
def test_config_errors(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(RsvlmError, match=fragment):
        load_config(path)
