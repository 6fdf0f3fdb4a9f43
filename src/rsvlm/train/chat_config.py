"""Chat-training configuration: a YAML/JSON file validated into typed sections; a typo is an error.

Example::

    model: {llm: gemma3-270m, alignment: mlp2x_gelu, lora_rank: 8}
    data: {train: runs/instructions/train.json, max_samples: 20000}
    optim: {steps: 3000, batch_size: 8, lr: 1.0e-3}
    output: runs/chat
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rsvlm.configfile import check_keys, read_config_file
from rsvlm.digests import json_digest as digest
from rsvlm.errors import RsvlmError
from rsvlm.models.chat.lite_chat import LiteChatConfig
from rsvlm.train.config import file_digest


@dataclass(frozen=True)
class ChatDataConfig:
    train: str = "runs/instructions/train.json"
    """A LLaVA-format instruction file (``rsvlm data instructions`` writes one)."""
    max_samples: int | None = None
    max_per_task: dict[str, int] = field(default_factory=dict)
    """At most this many conversations of each named task (``caption``, ``vqa``, …); unnamed tasks: all."""
    max_tokens: int = 192
    """Conversations longer than this (text + visual tokens) are skipped, so a batch stays bounded."""

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.max_per_task.items() if not isinstance(v, int) or v < 0}
        if bad:
            raise RsvlmError(f"data.max_per_task: counts must be integers >= 0, got {bad}")


@dataclass(frozen=True)
class ChatOptimConfig:
    steps: int = 2000
    batch_size: int = 8
    lr: float = 1e-3
    """Learning rate of the alignment layer."""
    lora_lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 50
    seed: int = 0
    checkpoint_every: int = 50
    """Steps between writes of ``last/`` (and lines of ``metrics.jsonl``)."""
    restrict_vocab: bool = True
    """Score only the token ids the training answers use (several times faster on CPU for Gemma)."""

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.checkpoint_every) < 1:
            raise RsvlmError("optim: steps, batch_size and checkpoint_every must be >= 1")


@dataclass(frozen=True)
class ChatTrainConfig:
    model: LiteChatConfig = field(default_factory=LiteChatConfig)
    data: ChatDataConfig = field(default_factory=ChatDataConfig)
    optim: ChatOptimConfig = field(default_factory=ChatOptimConfig)
    output: str = "runs/chat"
    cache_dir: str | None = None
    """Where frozen vision features are cached (default ``<output>/cache``)."""
    init: str | None = None
    """A saved lite chat folder whose trained tensors start this run (a second training stage, e.g. a
    different task mix); its ``model`` section must equal this config's. ``None``: fresh initialisation."""

    def fingerprint(self) -> str:
        """Hash of everything that changes the result (not how often it is checkpointed); resume must match.

        A second stage hashes its starting weights by content, not by path, so a retrained ``init`` folder
        is a different run."""
        data = asdict(self)
        data.pop("cache_dir")
        data.pop("output")
        data["optim"].pop("checkpoint_every")
        if self.init is None:
            data.pop("init")
        else:
            data["init"] = file_digest(Path(self.init) / "model.safetensors")
        return digest(data)


def _section(cls: Any, data: Any, where: str) -> Any:
    data = check_keys(cls, data, where)
    if cls is LiteChatConfig:
        return LiteChatConfig.from_dict(data, where)
    try:
        return cls(**data)
    except TypeError as exc:
        raise RsvlmError(f"{where}: {exc}") from None


def chat_config_from_dict(data: Any, where: str = "config") -> ChatTrainConfig:
    sections = {"model": LiteChatConfig, "data": ChatDataConfig, "optim": ChatOptimConfig}
    if not isinstance(data, dict):
        raise RsvlmError(f"{where}: expected a mapping, got {type(data).__name__}")
    values = {k: _section(sections[k], v, f"{where}.{k}") if k in sections else v for k, v in data.items()}
    return _section(ChatTrainConfig, values, where)  # type: ignore[no-any-return]


def load_chat_config(path: str | Path) -> ChatTrainConfig:
    """Read a chat-training config (``.yaml``/``.yml`` or ``.json``)."""
    return chat_config_from_dict(read_config_file(path), Path(path).name)
