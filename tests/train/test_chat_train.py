"""``rsvlm train chat`` end to end: a tiny random Gemma-3, the real rsvlm-lite tower, real AID images."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from rsvlm.errors import RsvlmError
from rsvlm.models.chat.protocol import ChatRequest
from rsvlm.models.chat.registry import load_chat
from rsvlm.train.chat import ChatRun, train_chat
from rsvlm.train.chat_config import ChatTrainConfig, chat_config_from_dict, load_chat_config
from rsvlm.train.chat_data import select_records
from tests.models.chat.tiny_gemma import write_instructions, write_tiny_gemma


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("chat-train")
    return {
        "model": {"llm": str(write_tiny_gemma(root / "gemma")), "alignment": "mlp2x_gelu", "lora_rank": 2},
        "data": {"train": str(write_instructions(root / "data", shared_data / "aid"))},
        "optim": {"steps": 4, "batch_size": 3, "lr": 1e-2, "lora_lr": 1e-2, "warmup_steps": 1, "checkpoint_every": 2},
        "cache_dir": str(root / "cache"),
    }


def _config(setup: dict[str, Any], output: Path) -> ChatTrainConfig:
    return chat_config_from_dict({**setup, "output": str(output)})


def test_trains_end_to_end_and_loads(setup: dict[str, Any], tmp_path: Path, shared_data: Path) -> None:
    result = train_chat(_config(setup, tmp_path / "run"), log=lambda _m: None)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4] and all(x["loss"] > 0 for x in lines)
    final = Path(result["final"])
    assert {p.name for p in final.iterdir()} == {"config.json", "model.safetensors"}
    model = load_chat(final)
    from rsvlm.data.raster import read_image

    answer = model.generate([ChatRequest.ask(read_image(shared_data / "aid/Beach/beach_1.jpg"), "Describe it.")])
    assert isinstance(answer[0], str)


def test_resume_after_interruption_gives_the_same_weights(setup: dict[str, Any], tmp_path: Path) -> None:
    straight = train_chat(_config(setup, tmp_path / "straight"), log=lambda _m: None)

    def interrupt(message: str) -> None:
        if message.startswith("step 2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_chat(_config(setup, tmp_path / "resumed"), log=interrupt)
    assert json.loads((tmp_path / "resumed" / "last" / "state.json").read_text()) == {"step": 2}
    messages: list[str] = []
    resumed = train_chat(_config(setup, tmp_path / "resumed"), log=messages.append)
    assert "resuming after step 2" in messages
    a = load_file(str(Path(straight["final"]) / "model.safetensors"))
    b = load_file(str(Path(resumed["final"]) / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_taken_in_slices_exports_each_slice_and_ends_as_one_unbroken_run(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    straight = train_chat(_config(setup, tmp_path / "straight"), log=lambda _m: None)
    first = train_chat(_config(setup, tmp_path / "sliced"), log=lambda _m: None, until_step=3)
    assert Path(first["final"]).name == "step-3" and first["steps"] == 3
    assert json.loads((tmp_path / "sliced" / "last" / "state.json").read_text()) == {"step": 3}
    assert json.loads((Path(first["final"]) / "config.json").read_text())["steps"] == 3
    load_chat(Path(first["final"]))
    with pytest.raises(RsvlmError, match="already at step 3, past until_step 2"):
        train_chat(_config(setup, tmp_path / "sliced"), log=lambda _m: None, until_step=2)
    with pytest.raises(RsvlmError, match=r"until_step 5: must be between 1 and the config's optim.steps \(4\)"):
        train_chat(_config(setup, tmp_path / "sliced"), log=lambda _m: None, until_step=5)
    rest = train_chat(_config(setup, tmp_path / "sliced"), log=lambda _m: None)
    a = load_file(str(Path(straight["final"]) / "model.safetensors"))
    b = load_file(str(Path(rest["final"]) / "model.safetensors"))
    assert Path(rest["final"]).name == "final"
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_config_typos_and_changed_runs_are_errors(setup: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(RsvlmError, match=r"optim: unknown key\(s\) stepz"):
        chat_config_from_dict({"optim": {"stepz": 3}})
    with pytest.raises(RsvlmError, match=r"model: unknown key\(s\) alignmnet"):
        chat_config_from_dict({"model": {"alignmnet": "linear"}})
    with pytest.raises(RsvlmError, match="unknown alignment"):
        train_chat(chat_config_from_dict({**setup, "model": {**setup["model"], "alignment": "mlp3"}}))
    path = tmp_path / "c.yaml"
    path.write_text("outptu: x\n")
    with pytest.raises(RsvlmError, match=r"c.yaml: unknown key\(s\) outptu"):
        load_chat_config(path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"fingerprint": "other"}))
    with pytest.raises(RsvlmError, match="different config"):
        train_chat(_config(setup, tmp_path / "run"), log=lambda _m: None)


def test_cli_trains_from_a_config_file(setup: dict[str, Any], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rsvlm.cli.train import app

    path = tmp_path / "chat.json"
    optim = {**setup["optim"], "steps": 2}
    path.write_text(json.dumps({**setup, "optim": optim, "output": str(tmp_path / "run")}))
    result = CliRunner().invoke(app, ["chat", "--config", str(path), "--until-step", "1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "step-1" / "model.safetensors").is_file()
    assert not (tmp_path / "run" / "final").exists()
    result = CliRunner().invoke(app, ["chat", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_two_steps_on_a_fixed_batch_lower_its_loss(setup: dict[str, Any], tmp_path: Path) -> None:
    run = ChatRun(_config(setup, tmp_path / "run"), log=lambda _m: None)
    run.prepare()
    batch = run.batch([0, 1, 2])  # real AID images and captions
    opt = run.optimizer()
    run.net.train()
    losses = []
    for _ in range(3):
        loss = run.net.loss(batch)
        losses.append(loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert losses[0] > losses[1] > losses[2], losses


def test_max_per_task_keeps_the_first_conversations_of_each_task(setup: dict[str, Any], tmp_path: Path) -> None:
    from rsvlm.data.registry import open_dataset

    records = open_dataset(setup["data"]["train"], format="llava").records
    assert {r.meta["task"] for r in records} == {"caption"}  # the builder's task tag survives reading
    kept = select_records(records, None, {"caption": 2})
    assert [r.id for r in kept] == [r.id for r in records[:2]]
    assert select_records(records, 1, {}) == records[:1]
    assert select_records(records, None, {"vqa": 0}) == records  # a cap on another task changes nothing
    run = ChatRun(
        chat_config_from_dict(
            {**setup, "data": {**setup["data"], "max_per_task": {"caption": 2}}, "output": str(tmp_path / "capped")}
        ),
        log=lambda _m: None,
    )
    run.prepare()
    assert len(run.examples) == 2
    with pytest.raises(RsvlmError, match="max_per_task"):
        chat_config_from_dict({"data": {"max_per_task": {"caption": -1}}})
    typo = {**setup, "data": {**setup["data"], "max_per_task": {"captions": 2}}, "output": str(tmp_path / "typo")}
    with pytest.raises(RsvlmError, match=r"no captions conversations .*tasks: \['caption'\]"):
        ChatRun(chat_config_from_dict(typo), log=lambda _m: None).prepare()


def test_a_second_stage_starts_from_the_first_stages_weights(setup: dict[str, Any], tmp_path: Path) -> None:
    first = Path(train_chat(_config(setup, tmp_path / "first"), log=lambda _m: None)["final"])
    stage2 = {**setup, "init": str(first), "optim": {**setup["optim"], "steps": 1}}
    run = ChatRun(chat_config_from_dict({**stage2, "output": str(tmp_path / "second")}), log=lambda _m: None)
    run.prepare()
    start = load_file(str(first / "model.safetensors"))
    now = run.net.trainable_state_dict()
    assert all(torch.equal(start[k], now[k]) for k in start if k != "vocab_subset")
    assert set(start["vocab_subset"].tolist()) <= set(now["vocab_subset"].tolist())
    assert run.config.fingerprint() != _config(setup, tmp_path / "x").fingerprint()

    other = {**setup, "init": str(first), "model": {**setup["model"], "lora_rank": 4}}
    with pytest.raises(RsvlmError, match="model section differs"):
        ChatRun(chat_config_from_dict({**other, "output": str(tmp_path / "third")}), log=lambda _m: None).prepare()
    with pytest.raises(RsvlmError, match="not found"):
        chat_config_from_dict({**setup, "init": str(tmp_path / "nothing"), "output": "x"}).fingerprint()
