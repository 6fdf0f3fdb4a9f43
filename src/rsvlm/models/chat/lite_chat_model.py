"""``LiteChatNet`` in the ``ChatModel`` protocol: batched greedy answers equal to batch-size-1 answers.

Requests share a forward pass only when their prompts have the same length and image count
(``batching.plan_batches`` with ``exact`` keys), so no row is ever padded; each image is encoded on its
own, so the vision tower never sees a batch either. Boxes are written in [0, 1] (``unit``), the format
rsvlm's instruction builder teaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from rsvlm.models.chat.batching import plan_batches
from rsvlm.models.chat.lite_chat import LiteChatNet, load_lite_chat_net
from rsvlm.models.chat.lite_prompt import Encoded, encode_turns, stop_ids
from rsvlm.models.chat.protocol import ChatRequest, GenerationConfig

FAMILY = "rsvlm"


class LiteChatModel:
    family = FAMILY
    box_format = "unit"

    def __init__(self, net: LiteChatNet, name: str) -> None:
        self.net = net.eval()
        self.name = name
        self.stops = stop_ids(net.tokenizer)

    def _encode(self, request: ChatRequest) -> tuple[Encoded, torch.Tensor | None]:
        encoded = encode_turns(
            self.net.tokenizer, request.turns, len(request.images), self.net.tokens_per_image, generation_prompt=True
        )
        if not request.images:
            return encoded, None
        device = self.net.device
        with torch.inference_mode():
            features = [
                self.net.vision(self.net.vision.pixels(image, self.name).unsqueeze(0).to(device))
                for image in request.images
            ]
        return encoded, torch.cat(features)

    def generate(self, requests: Sequence[ChatRequest], config: GenerationConfig | None = None) -> list[str]:
        config = config or GenerationConfig()
        encoded = [self._encode(r) for r in requests]
        keys = [(len(e.ids), len(r.images)) for (e, _), r in zip(encoded, requests, strict=True)]
        answers = [""] * len(requests)
        device = self.net.device
        for members in plan_batches(keys, [k[0] for k in keys], config.batch_size):
            ids = torch.tensor([encoded[i][0].ids for i in members], device=device)
            slots = torch.tensor([encoded[i][0].image_slots for i in members], device=device)
            parts = [f for i in members if (f := encoded[i][1]) is not None]
            features = torch.cat(parts) if parts else None
            rows = self.net.greedy(ids, slots, features, config.max_new_tokens, self.stops)
            for index, row in zip(members, rows, strict=True):
                end = next((i for i, t in enumerate(row) if t in self.stops), len(row))
                answers[index] = str(self.net.tokenizer.decode(row[:end], skip_special_tokens=True)).strip()
        return answers


def load_lite_chat(folder: str | Path, *, name: str | None = None, device: str | None = None) -> LiteChatModel:
    """A saved lite chat model (``save_lite_chat``) as a ``ChatModel``."""
    folder = Path(folder)
    return LiteChatModel(load_lite_chat_net(folder, device), name or folder.resolve().name)
