"""Tiny random chat models written in each release layout rsvlm reads (the chat back-ends' fixtures).

Every tokenizer is trained here with the ``tokenizers`` library on a few sentences (byte-level BPE, so any
text round-trips) and carries the special tokens its family needs. Layouts:

- Hugging Face ``llava`` / ``llava_next`` / ``qwen2_vl`` folders (config, safetensors, tokenizer, processor
  config, chat template), written by transformers' own ``save_pretrained``;
- GeoChat's original LLaVA-repository layout: a LLaMA ``config.json`` with ``mm_*`` keys and
  ``model_type: geochat``, two ``pytorch_model-0000x-of-00002.bin`` shards (fp16 tensors saved with
  ``torch.save``) plus ``pytorch_model.bin.index.json``, the CLIP tower inside the checkpoint as
  ``model.vision_tower.vision_tower.vision_model.*`` with its position embeddings already interpolated to
  504 px (GeoChat saves the tower after interpolating it), an old-style ``rotary_emb.inv_freq`` buffer,
  and ``tokenizer.json`` + ``tokenizer_config.json`` + ``special_tokens_map.json``;
- a tiny CLIP folder at 336 px (full CLIP state dict with ``vision_model.*``/``text_model.*`` keys, as
  ``openai/clip-vit-large-patch14-336`` ships), for checkpoints that name their tower instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

SENTENCES = [
    "A chat between a curious human and an artificial intelligence assistant.",
    "The assistant gives helpful, detailed, and polite answers to the human's questions.",
    "USER: what is in this remote sensing image? ASSISTANT: an airport with two runways and planes.",
    "Describe the scene in detail: buildings, roads, trees, farmland, rivers and a harbour.",
    "How many storage tanks are there? There are 12 storage tanks near the port.",
    "[grounding] locate the bridge {<10><20><30><40>|0} over the river.",
]
LLAMA_SPECIALS = ["<unk>", "<s>", "</s>"]
QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
TINY_TEXT: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "initializer_range": 0.5,  # large random weights, so that answers depend visibly on the input
}
TINY_CLIP: dict[str, Any] = {
    "hidden_size": 64,  # one 64-wide head, the OpenAI CLIP convention the converter relies on
    "intermediate_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 1,
    "patch_size": 14,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "initializer_range": 0.5,
    "initializer_factor": 5.0,
}
LLAVA_HF_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].upper() + ': ' }}"
    "{% for item in message['content'] if item['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for item in message['content'] if item['type'] == 'text' %}{{ item['text'] }}{% endfor %}"
    "{% if message['role'] == 'user' %} {% else %}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
MISTRAL_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}[INST] "
    "{% for item in message['content'] if item['type'] == 'image' %}<image>\n{% endfor %}"
    "{% for item in message['content'] if item['type'] == 'text' %}{{ item['text'] }}{% endfor %} [/INST]"
    "{% else %} {% for item in message['content'] %}{{ item['text'] }}{% endfor %}</s>{% endif %}{% endfor %}"
)
CHATML_TEMPLATE = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ item['text'] }}{% endif %}{% endfor %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def train_tokenizer(specials: list[str], *, bos: str | None) -> Any:
    """A byte-level BPE trained on ``SENTENCES``; ``specials`` get the first ids; BOS prepended if given."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(SENTENCES, trainer)
    if bos is not None:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    return tok


def llama_tokenizer(*, image_token: bool) -> Any:
    """LLaMA/Vicuna-style specials (<unk> 0, <s> 1, </s> 2), BOS added; ``<image>`` as llava-hf adds it."""
    from transformers import PreTrainedTokenizerFast

    specials = LLAMA_SPECIALS + (["<image>", "<pad>"] if image_token else [])
    extra = {"extra_special_tokens": {"image_token": "<image>"}} if image_token else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(specials, bos="<s>"),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>" if image_token else "<unk>",
        **extra,
    )


def _text_config(tokenizer: Any, **extra: Any) -> dict[str, Any]:
    return {
        **TINY_TEXT,
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        **extra,
    }


def write_hf_llava(folder: Path, seed: int = 0) -> Path:
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    tokenizer = llama_tokenizer(image_token=True)
    config = LlavaConfig(
        vision_config={**TINY_CLIP, "image_size": 56, "model_type": "clip_vision_model"},
        text_config={**_text_config(tokenizer), "model_type": "llama"},
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=16,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(seed)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56})
    LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_HF_TEMPLATE,
    ).save_pretrained(folder)
    return folder


def write_hf_llava_next(folder: Path, seed: int = 0) -> Path:
    from transformers import (
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    tokenizer = llama_tokenizer(image_token=True)
    pinpoints = [[28, 28], [28, 56], [56, 28], [56, 56]]
    config = LlavaNextConfig(
        vision_config={**TINY_CLIP, "image_size": 28, "model_type": "clip_vision_model"},
        text_config={**_text_config(tokenizer), "model_type": "mistral", "sliding_window": None},
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(seed)
    LlavaNextForConditionalGeneration(config).save_pretrained(folder)
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}, image_grid_pinpoints=pinpoints
    )
    LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=MISTRAL_TEMPLATE,
    ).save_pretrained(folder)
    return folder


def write_hf_qwen2_vl(folder: Path, seed: int = 0, *, chat_template: bool = True) -> Path:
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    tok = train_tokenizer(QWEN_SPECIALS, bos=None)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = {s: tok.token_to_id(s) for s in QWEN_SPECIALS}
    text = {
        **_text_config(tokenizer, bos_token_id=None, num_key_value_heads=1),
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
    }
    config = Qwen2VLConfig(
        text_config=text,
        vision_config={"depth": 2, "embed_dim": 32, "hidden_size": 32, "num_heads": 2, "patch_size": 14},
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    Qwen2VLForConditionalGeneration(config).save_pretrained(folder)
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112, patch_size=14, merge_size=2)
    Qwen2VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHATML_TEMPLATE if chat_template else None,
    ).save_pretrained(folder)
    if not chat_template:
        (folder / "chat_template.jinja").unlink(missing_ok=True)
    return folder


def clip_model(seed: int = 1, image_size: int = 336) -> Any:
    from transformers import CLIPConfig, CLIPModel

    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**text, "vocab_size": 64, "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1},
        vision_config={**TINY_CLIP, "image_size": image_size},
        projection_dim=16,
    )
    torch.manual_seed(seed)
    return CLIPModel(config).eval()


def write_clip_folder(folder: Path, seed: int = 1) -> Path:
    """A tiny stand-in for ``openai/clip-vit-large-patch14-336``: config, fp32 safetensors, preprocessor."""
    from safetensors.torch import save_file
    from transformers import CLIPImageProcessor

    model = clip_model(seed)
    folder.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}).save_pretrained(folder)
    return folder


def interpolate_like_geochat(weight: torch.Tensor, size: int, patch: int) -> torch.Tensor:
    """What GeoChat's ``clip_interpolate_embeddings`` stores: CLS + the grid resized bicubically
    (``align_corners=True``) to ``size // patch`` per side."""
    old = int((weight.shape[0] - 1) ** 0.5)
    grid = weight[1:].T.reshape(1, -1, old, old)
    new = torch.nn.functional.interpolate(grid, size=size // patch, mode="bicubic", align_corners=True)
    return torch.cat([weight[:1], new.reshape(weight.shape[1], -1).T])


def write_llava_repo(
    folder: Path,
    *,
    model_type: str = "geochat",
    tower: str = "embedded",
    tower_name: str = "openai/clip-vit-large-patch14-336",
    projector: str = "mlp2x_gelu",
    aspect_ratio: str = "pad",
    seed: int = 2,
) -> Path:
    """A checkpoint as GeoChat (``model_type: geochat``) or LLaVA-1.5 (``llava``) release it.

    ``tower``: ``embedded`` (GeoChat: inside the checkpoint, already at 504 px) or ``named`` (LLaVA-1.5:
    left out, named by ``mm_vision_tower``).
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    from rsvlm.models.chat.alignment import AlignmentConfig, build_alignment

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = llama_tokenizer(image_token=False)
    tokenizer.save_pretrained(folder)
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>"})
    )
    torch.manual_seed(seed)
    llm = LlamaForCausalLM(LlamaConfig(**_text_config(tokenizer)))
    state: dict[str, torch.Tensor] = dict(llm.state_dict())
    state["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.rand(8)  # saved by transformers < 4.31
    layer = build_alignment(AlignmentConfig(projector, TINY_CLIP["hidden_size"], TINY_TEXT["hidden_size"]))
    state.update({f"model.mm_projector.{k}": v for k, v in layer.state_dict().items()})
    if tower == "embedded":
        clip = clip_model().state_dict()
        for key, value in clip.items():
            if key.startswith("vision_model."):
                if key.endswith("position_embedding.weight"):
                    value = interpolate_like_geochat(value, 504, TINY_CLIP["patch_size"])
                state[f"model.vision_tower.vision_tower.{key}"] = value
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in state.items()}

    first = {k: v for k, v in state.items() if k.startswith("model.layers.")}
    shards = {"pytorch_model-00001-of-00002.bin": first}
    shards["pytorch_model-00002-of-00002.bin"] = {k: v for k, v in state.items() if k not in first}
    weight_map = {}
    for name, tensors in shards.items():
        torch.save(tensors, folder / name)
        weight_map.update(dict.fromkeys(tensors, name))
    total = sum(v.numel() * v.element_size() for v in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2))

    config = {
        "_name_or_path": "tiny-vicuna",
        "architectures": ["LlavaLlamaForCausalLM"],
        "model_type": model_type,
        **_text_config(tokenizer),
        "hidden_act": "silu",
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "use_cache": True,
        "image_aspect_ratio": aspect_ratio,
        "mm_hidden_size": TINY_CLIP["hidden_size"],
        "mm_projector_type": projector,
        "mm_use_im_patch_token": False,
        "mm_use_im_start_end": False,
        "mm_vision_select_feature": "patch",
        "mm_vision_select_layer": -2,
        "mm_vision_tower": tower_name,
        "tune_mm_mlp_adapter": False,
        "use_mm_proj": True,
        "transformers_version": "4.31.0",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder
