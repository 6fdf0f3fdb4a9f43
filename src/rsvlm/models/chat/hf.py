"""The transformers back-end: chat models in Hugging Face format (LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, and
LLaVA-repository checkpoints once converted), loaded only from local folders.

Prompts come from the folder's chat template, or from a named template (``templates``) when the folder
has none or the family needs its own. Images go through the model's own processor after
``images.to_pil``; processors run on their Pillow back-end, the one the models were evaluated with.
Decoding is greedy. Requests are encoded one by one and batched only as ``batching`` allows
(``exact``: identical shapes, no padding; ``padded``: left padding with a zero attention mask), so a
batch never changes an answer the way GeoChat's batching does (its evaluation scripts left-pad token
ids with 0 and pass no attention mask; its model then right-pads the embeddings). Weights run in float32
unless asked otherwise (``HALF_PRECISION_NOTE``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsvlm.errors import RsvlmError
from rsvlm.models.chat.batching import BATCHING, batch_key, collate, plan_batches
from rsvlm.models.chat.formats import read_model_config
from rsvlm.models.chat.images import to_pil
from rsvlm.models.chat.protocol import ChatRequest, GenerationConfig
from rsvlm.models.chat.templates import LLAVA_IMAGE, TEMPLATES, render, to_messages

if TYPE_CHECKING:
    import torch

MODEL_CLASSES = {
    "llava": "LlavaForConditionalGeneration",
    "llava_next": "LlavaNextForConditionalGeneration",
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
}
"""``model_type`` of a folder's config.json → the transformers class that runs it."""

FALLBACK_TEMPLATES = {
    ("llava", None): "llava-1.5",
    ("llava_next", "mistral"): "mistral-instruct",
    ("llava_next", "llama"): "llava_v1",
    ("llava_next", "qwen2"): "chatml",
    ("qwen2_vl", None): "chatml",
}
"""(model_type, language-model type) → documented template, for folders without a chat template."""

HALF_PRECISION_NOTE = """Models load in float32 by default because that keeps the protocol's promise that a
batch answers exactly as its requests would alone. GPU kernels in float16/bfloat16 pick different
reduction orders for different batch sizes, so even unpadded batches drift: on an H200 with tiny random
models, 0 of 32 answers changed in float32, but 2 (float16) and 14 (bfloat16) of 32 changed for
GeoChat-style 1300-token prompts. ``dtype="bfloat16"`` halves memory and speeds decoding; use it when
that trade is acceptable, or with batch_size=1."""

SUPPRESSED_CONFIG_IDS = ("image_token_id", "image_token_index", "video_token_id")
"""Placeholder tokens a model must never generate (their output rows were never trained)."""


class HFChatModel:
    """``ChatModel`` over a transformers vision-language model and its processor."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        name: str,
        family: str,
        box_format: str,
        template: str | None = None,
        encoding: str = "processor",
        batching: str = "exact",
    ) -> None:
        if template is not None and template not in TEMPLATES:
            raise RsvlmError(f"unknown conversation template {template!r} (known: {', '.join(TEMPLATES)})")
        if encoding not in ENCODERS:
            raise RsvlmError(f"unknown prompt encoding {encoding!r} (known: {', '.join(ENCODERS)})")
        if batching not in BATCHING:
            raise RsvlmError(f"unknown batching {batching!r} (known: {', '.join(BATCHING)})")
        self.model = model
        self.processor = processor
        self.name = name
        self.family = family
        self.box_format = box_format
        self.template = template
        self.encoding = encoding
        self.batching = batching
        tokenizer = processor.tokenizer
        gen = model.generation_config
        eos = [gen.eos_token_id, tokenizer.eos_token_id]
        self.stop_ids = {int(i) for e in eos if e is not None for i in (e if isinstance(e, list) else [e])}
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else gen.pad_token_id
        self.pad_id = int(pad if pad is not None else min(self.stop_ids))
        ids = (getattr(model.config, attr, None) for attr in SUPPRESSED_CONFIG_IDS)
        self.suppressed = sorted({int(i) for i in ids if i is not None})

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device  # type: ignore[no-any-return]

    def prompt(self, request: ChatRequest) -> str:
        """The prompt text for one request, image placeholders unexpanded."""
        n_images = len(request.images)
        if self.template is not None:
            return render(self.template, request.turns, n_images)
        messages = to_messages(request.turns, n_images)
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return str(text)

    def encode(self, request: ChatRequest) -> dict[str, torch.Tensor]:
        """Model inputs for one request (batch dimension 1)."""
        return ENCODERS[self.encoding](self, request)

    def generate(self, requests: Sequence[ChatRequest], config: GenerationConfig | None = None) -> list[str]:
        config = config or GenerationConfig()
        encodings = [self.encode(r) for r in requests]
        keys = [batch_key(e, self.batching) for e in encodings]
        lengths = [int(e["input_ids"].shape[-1]) for e in encodings]
        answers = [""] * len(requests)
        for members in plan_batches(keys, lengths, config.batch_size):
            for index, text in zip(members, self._run([encodings[i] for i in members], config), strict=True):
                answers[index] = text
        return answers

    def _run(self, encodings: Sequence[dict[str, torch.Tensor]], config: GenerationConfig) -> list[str]:
        import torch
        from transformers import GenerationConfig as HFGenerationConfig

        device, dtype = self.device, self.model.dtype
        inputs = {
            k: v.to(device, dtype=dtype if v.is_floating_point() else v.dtype)
            for k, v in collate(encodings, self.pad_id).items()
        }
        settings = HFGenerationConfig(
            max_new_tokens=config.max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=sorted(self.stop_ids),
            pad_token_id=self.pad_id,
            suppress_tokens=self.suppressed or None,
        )
        with torch.inference_mode():
            output = self.model.generate(**inputs, generation_config=settings)
        new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
        return [self._decode(row) for row in new_tokens]

    def _decode(self, ids: list[int]) -> str:
        end = next((i for i, t in enumerate(ids) if t in self.stop_ids), len(ids))
        return str(self.processor.tokenizer.decode(ids[:end], skip_special_tokens=True)).strip()


def _encode_with_processor(chat: HFChatModel, request: ChatRequest) -> dict[str, torch.Tensor]:
    import torch

    images = [to_pil(image) for image in request.images] or None
    text, bos = chat.prompt(request), chat.processor.tokenizer.bos_token
    if bos and text.startswith(bos):  # the tokenizer adds BOS itself; a template that writes it would double it
        text = text[len(bos) :]
    encoded = chat.processor(text=[text], images=images, return_tensors="pt")
    return {k: v for k, v in encoded.items() if isinstance(v, torch.Tensor)}


def _encode_llava_repo(chat: HFChatModel, request: ChatRequest) -> dict[str, torch.Tensor]:
    """The LLaVA repository's ``tokenizer_image_token``: the prompt is split at ``<image>``, each chunk is
    tokenised on its own (only the first keeps BOS), and each placeholder becomes the image's tokens."""
    import torch

    processor, tokenizer = chat.processor, chat.processor.tokenizer
    chunks = chat.prompt(request).split(LLAVA_IMAGE)
    if len(chunks) - 1 != len(request.images):
        raise RsvlmError(
            f"{chat.name}: the prompt has {len(chunks) - 1} image placeholders for {len(request.images)} images"
        )
    ids: list[int] = list(tokenizer(chunks[0]).input_ids)
    encoded: dict[str, torch.Tensor] = {}
    if request.images:
        pixels = processor.image_processor([to_pil(i) for i in request.images], return_tensors="pt")["pixel_values"]
        height, width = pixels.shape[-2:]
        per_image = (height // processor.patch_size) * (width // processor.patch_size)
        per_image += processor.num_additional_image_tokens
        per_image -= 1 if processor.vision_feature_select_strategy == "default" else 0  # CLS dropped
        image_id = tokenizer.convert_tokens_to_ids(LLAVA_IMAGE)
        for chunk in chunks[1:]:
            ids += [image_id] * per_image + list(tokenizer(chunk, add_special_tokens=False).input_ids)
        encoded["pixel_values"] = pixels
    encoded["input_ids"] = torch.tensor([ids], dtype=torch.long)
    encoded["attention_mask"] = torch.ones_like(encoded["input_ids"])
    return encoded


ENCODERS: dict[str, Callable[[HFChatModel, ChatRequest], dict[str, torch.Tensor]]] = {
    "processor": _encode_with_processor,
    "llava-repo": _encode_llava_repo,
}


def _resolve_dtype(dtype: str | None) -> torch.dtype:
    """float32 unless asked otherwise: see ``HALF_PRECISION_NOTE``."""
    import torch

    if dtype is None:
        return torch.float32
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise RsvlmError(f"unknown dtype {dtype!r} (e.g. float32, float16, bfloat16)")
    return resolved


def _load_processor(folder: Path) -> Any:
    from transformers import AutoImageProcessor, AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # transformers raises OSError, ValueError, TypeError … for incomplete folders
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise RsvlmError(f"{folder}: cannot load the processor/tokenizer ({detail}); is the folder complete?") from None
    # the Pillow back-end reproduces the preprocessing the models were evaluated with; keep the default
    # back-end where a processor has no Pillow variant
    with contextlib.suppress(Exception):
        processor.image_processor = AutoImageProcessor.from_pretrained(
            str(folder), local_files_only=True, backend="pil"
        )
    return processor


def load_hf_chat(
    folder: str | Path,
    *,
    family: str,
    box_format: str,
    name: str | None = None,
    template: str | None = None,
    encoding: str = "processor",
    batching: str = "exact",
    device: str | None = None,
    dtype: str | None = None,
) -> HFChatModel:
    """A chat model from a local Hugging Face folder (``local_files_only``: nothing is downloaded).

    ``device``: ``cuda`` when available, else ``cpu``. ``dtype``: ``float32`` unless given (``HALF_PRECISION_NOTE``).
    """
    import torch
    import transformers

    from rsvlm.models.chat.shards import weight_files

    folder = Path(folder)
    config = read_model_config(folder)
    model_type = str(config.get("model_type"))
    if model_type not in MODEL_CLASSES:
        raise RsvlmError(
            f"{folder}: model_type {model_type!r} is not a supported chat model (known: {', '.join(MODEL_CLASSES)})"
        )
    weight_files(folder)
    processor = _load_processor(folder)
    if template is None and getattr(processor, "chat_template", None) is None:
        text_type = (config.get("text_config") or {}).get("model_type")
        template = FALLBACK_TEMPLATES.get((model_type, text_type)) or FALLBACK_TEMPLATES.get((model_type, None))
        if template is None:
            raise RsvlmError(f"{folder}: no chat template in the folder and none known for {model_type}/{text_type}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    cls = getattr(transformers, MODEL_CLASSES[model_type])
    try:
        model = cls.from_pretrained(str(folder), local_files_only=True, dtype=_resolve_dtype(dtype))
    except (OSError, ValueError, RuntimeError) as exc:
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise RsvlmError(f"{folder}: cannot load the model weights ({detail})") from None
    model.to(device).eval()
    return HFChatModel(
        model,
        processor,
        name=name or folder.resolve().name,
        family=family,
        box_format=box_format,
        template=template,
        encoding=encoding,
        batching=batching,
    )
