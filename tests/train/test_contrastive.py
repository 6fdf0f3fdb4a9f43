"""The trainer on a tiny configuration: real loading path, real images, a few steps."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rsvlm.train.config import CaptionSource, DataConfig, OptimConfig, SceneSource, TrainConfig
from rsvlm.train.contrastive import Run, clip_loss, train_contrastive

TINY_MODEL = {"embed_dim": 32, "image_size": 64, "image_trainable_blocks": 2, "text_trainable_layers": 1}


def fixture_config(fixtures: Path, out: Path, **optim: Any) -> TrainConfig:
    data = DataConfig(
        captions=(CaptionSource(str(fixtures / "rsicd"), images=str(fixtures / "rsicd_images")),),
        scenes=(SceneSource(str(fixtures / "rsicd_images")), SceneSource(str(fixtures / "scene_folder"))),
        exclude=(CaptionSource(str(fixtures / "rsicd"), images=str(fixtures / "rsicd_images"), split="test"),),
        val_fraction=0.0,
        views=2,
    )
    settings = {"epochs": 2, "batch_size": 4, "warmup_steps": 1, "lr": 1e-2, "tower_lr": 1e-3, **optim}
    return TrainConfig(model=TINY_MODEL, data=data, optim=OptimConfig(**settings), output=str(out))


def test_pairs_merge_sources_and_exclude_test_images(fixtures: Path, tmp_path: Path) -> None:
    run = Run(fixture_config(fixtures, tmp_path / "run"), log=lambda _m: None)
    train = {str(it.path.relative_to(fixtures)): it for it in run.pairs.train}
    # rsicd_images is both the caption set's image folder and a labelled scene set (as AID is for RSICD):
    # its test images are excluded, its train images get captions AND a class; scene_folder adds 7 more
    assert "rsicd_images/Airport/airport_3.jpg" not in train and "rsicd_images/Beach/beach_7.jpg" not in train
    assert len(train) == 9 and run.pairs.excluded == 2
    first = train["rsicd_images/Airport/airport_1.jpg"]
    assert len(first.captions) == 5 and first.label == "airport"
    assert sum(bool(it.captions) for it in run.pairs.train) == 2


def test_cached_prefixes_equal_inference_features(fixtures: Path, tmp_path: Path) -> None:
    """The trainer's cached prefixes must be what the deployed model computes (no train-mode BN/dropout)."""
    from rsvlm.data.raster import read_image
    from rsvlm.models.lite import to_lite_pixels

    run = Run(fixture_config(fixtures, tmp_path / "run"), log=lambda _m: None)
    run.prepare()
    item = run.pairs.train[0]
    fresh = type(run.net)(run.net.config)
    fresh.eval()
    with torch.no_grad():
        pixels = to_lite_pixels(read_image(item.path), run.net.config.image_size, "t")[None]
        expected = fresh.image_prefix(pixels)[0]
        torch.testing.assert_close(run.train_img[0, 0].float(), expected, atol=2e-2, rtol=1e-2)
        text = item.captions[0] if item.captions else "a photo"
        batch = fresh.tokenize([text])
        hidden = fresh.text_prefix(**batch)[0]
        from rsvlm.train.contrastive import _text_batch

        cached, _ = _text_batch(run.text_cache, np.array([run.text_index[text]]))
        torch.testing.assert_close(cached[0], hidden, atol=2e-2, rtol=1e-2)


def test_loss_decreases_on_a_fixed_batch(fixtures: Path, tmp_path: Path) -> None:
    run = Run(fixture_config(fixtures, tmp_path / "run"), log=lambda _m: None)
    run.prepare()
    rows = np.arange(len(run.pairs.train))
    views, text_ids, groups = run._sample(np.random.default_rng(0), rows)
    opt = run._optimizer()
    from rsvlm.train.contrastive import _text_batch

    losses = []
    run.net.train()
    for _ in range(6):
        img = run.net.image_suffix(run.train_img[torch.from_numpy(rows), torch.from_numpy(views)].float())
        hidden, mask = _text_batch(run.text_cache, text_ids)
        loss = clip_loss(img, run.net.text_suffix(hidden, mask), run.net.logit_scale, torch.from_numpy(groups))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05, losses


def test_clip_loss_by_hand() -> None:
    img = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    txt = img.clone()
    scale = torch.tensor(0.0)  # exp(0) = 1
    expected = -torch.log_softmax(torch.tensor([1.0, 0.0]), 0)[0]
    assert torch.allclose(clip_loss(img, txt, scale), expected)
    # same group: the off-diagonal pair is not a negative, so the loss vanishes
    assert float(clip_loss(img, txt, scale, torch.tensor([3, 3]))) == pytest.approx(0.0, abs=1e-6)


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_interrupted_run_resumes_to_the_same_weights(
    fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = train_contrastive(fixture_config(fixtures, tmp_path / "a", epochs=3), log=lambda _m: None)
    assert len(straight["history"]) == 3
    lines = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]

    calls = {"n": 0}
    original = Run.validate

    def crash_in_epoch_two(self: Run) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Run, "validate", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train_contrastive(fixture_config(fixtures, tmp_path / "b", epochs=3), log=lambda _m: None)
    monkeypatch.setattr(Run, "validate", original)
    messages: list[str] = []
    resumed = train_contrastive(fixture_config(fixtures, tmp_path / "b", epochs=3), log=messages.append)
    assert any("resuming after epoch 1" in m for m in messages)
    assert [h["epoch"] for h in resumed["history"]] == [2, 3]
    a, b = _tensors(tmp_path / "a" / "last"), _tensors(tmp_path / "b" / "last")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


def test_other_config_in_the_same_folder_is_refused(fixtures: Path, tmp_path: Path) -> None:
    from rsvlm.errors import RsvlmError

    train_contrastive(fixture_config(fixtures, tmp_path / "r", epochs=1), log=lambda _m: None)
    with pytest.raises(RsvlmError, match="different config"):
        train_contrastive(fixture_config(fixtures, tmp_path / "r", epochs=2, lr=0.5), log=lambda _m: None)


def test_trained_model_loads_and_scores(fixtures: Path, tmp_path: Path) -> None:
    from rsvlm.models.openclip import load_contrastive
    from rsvlm.models.registry import get_spec
    from rsvlm.pipeline import embed_scene_dataset
    from rsvlm.tasks.zeroshot import evaluate_zeroshot

    train_contrastive(fixture_config(fixtures, tmp_path / "r", epochs=1), log=lambda _m: None)
    model = load_contrastive(get_spec("rsvlm-lite"), tmp_path / "r" / "best")
    emb, _ = embed_scene_dataset(
        None, fixtures / "scene_folder", model=model, cache_dir=tmp_path / "c", show_progress=False
    )
    assert evaluate_zeroshot(emb)["n"] == 7


def test_few_real_images_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    data = DataConfig(
        captions=(CaptionSource(str(shared_data / "rsicd"), images=str(shared_data / "aid"), split="train"),),
        scenes=(SceneSource(str(shared_data / "aid")),),
        exclude=(CaptionSource(str(shared_data / "rsicd"), images=str(shared_data / "aid"), split="test"),),
        val_fraction=0.25,
        views=2,
        max_images=16,
    )
    cfg = TrainConfig(
        model=TINY_MODEL,
        data=data,
        optim=OptimConfig(epochs=2, batch_size=6, warmup_steps=1),
        output=str(tmp_path / "real"),
    )
    result = train_contrastive(cfg, log=lambda _m: None)
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    assert {"mR", "i2t_r1", "loss"} <= set(result["history"][-1])
    assert (tmp_path / "real" / "best" / "model.safetensors").is_file()


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None, reason="torchrun missing")
def test_ddp_two_processes_match_one(fixtures: Path, tmp_path: Path) -> None:
    """Two gloo processes with gathered embeddings compute the same loss as one process on the batch."""
    config = fixture_config(fixtures, tmp_path / "x", epochs=1)
    as_dict = dataclasses.asdict(config)
    paths = {}
    for name in ("single", "ddp"):
        as_dict["output"] = str(tmp_path / name)
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(as_dict))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [sys.executable, "-m", "rsvlm", "train", "contrastive", "--config", paths["single"]],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    torchrun = str(Path(sys.executable).parent / "torchrun")
    ddp = subprocess.run(
        [
            torchrun,
            "--nproc_per_node=2",
            "--master_port=29561",
            "-m",
            "rsvlm",
            "train",
            "contrastive",
            "--config",
            paths["ddp"],
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = json.loads((tmp_path / "single" / "metrics.jsonl").read_text().splitlines()[0])
    two = json.loads((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()[0])
    assert two["step"] == one["step"] == 2
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-4)
