"""The models and the archive one server process loads once and shares between requests and jobs.

Torch modules answer concurrent forward passes, but tokenizers and some towers keep per-call state, so every
embedding call of the contrastive model goes through one lock (``LockedModel``), granted in arrival order
(``FairLock``). The lock is held per call, i.e. per batch of tiles for a scene job, so a classify request waits at
most one batch behind a running job rather than the whole job, and a busy service never starves the job. The chat
model loads on the first caption/ask (the default converts Gemma once, ~80 s) and generates under its own lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rsvlm.serve.config import ServeConfig
from rsvlm.serve.errors import ApiError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch

    from rsvlm.api import Chat, Model
    from rsvlm.data.sample import RasterImage
    from rsvlm.models.protocols import ContrastiveModel


TEXT_CACHE_SIZE = 64
"""Label sets whose prompt embeddings classify keeps (each ~2 KiB per label on a 512-d model)."""


class FairLock:
    """A lock granted in arrival order. ``threading.Lock`` is not fair: under a steady stream of requests the job
    worker never got it back (0 of 441 tiles in 20 s with 5 clients); with turns, a scene job and the requests
    alternate, each request waiting at most one tile batch."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._cond:
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                self._cond.wait()

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


class LockedModel:
    """A ``ContrastiveModel`` whose embedding calls take ``lock``: one model, shared safely by many threads."""

    def __init__(self, model: ContrastiveModel, lock: FairLock) -> None:
        self.inner = model
        self.lock = lock

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def embed_dim(self) -> int:
        return self.inner.embed_dim

    @property
    def preprocess_id(self) -> str:
        return self.inner.preprocess_id

    @property
    def weights_id(self) -> str:
        return self.inner.weights_id

    @property
    def logit_scale(self) -> float:
        return self.inner.logit_scale

    @property
    def in_bands(self) -> int | None:
        return self.inner.in_bands

    def preprocess(self, image: RasterImage) -> torch.Tensor:
        return self.inner.preprocess(image)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        with self.lock:
            return self.inner.encode_images(pixels)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        with self.lock:
            return self.inner.encode_texts(texts)


class Resources:
    """Models and archive of one server; ``load()`` at startup, so the first request is as fast as the next."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.lock = FairLock()
        """Held by every contrastive embedding call (requests and the job worker alike), in turn."""
        self._chat_lock = threading.Lock()
        self._chat: Chat | None = None
        self._texts: OrderedDict[tuple[str, ...], npt.NDArray[np.float32]] = OrderedDict()
        self._texts_lock = threading.Lock()
        self.model: Model | None = None
        self.archive: Any | None = None
        """The opened ``rsvlm.index.archive.Archive`` when the server has an index."""
        self.index_model: ContrastiveModel | None = None
        """The model the index was built with (its adapter applied for images), behind the same lock."""

    def load(self) -> None:
        """Open the index and load the contrastive model(s); a wrong index or model fails here, in one line."""
        from rsvlm.api import Model, load_model

        if self.config.index is not None:
            from rsvlm.index.archive import load_index_model, open_archive

            self.archive = open_archive(self.config.index)
            self.index_model = LockedModel(
                load_index_model(self.archive, self.config.model, self.config.weights), self.lock
            )
        raw = load_model(self.config.model, self.config.weights).model
        self.model = Model(LockedModel(raw, self.lock))

    def classify(self, image: Path, labels: list[str]) -> list[tuple[str, float]]:
        """``Model.classify``'s zero-shot probabilities, best first, with each label set's prompt embeddings
        computed once and kept (LRU): a page classifying image after image with one label list pays the text tower
        once, not per image (~0.1 s of 0.11 s per request for five labels on rsvlm-lite, one CPU thread)."""
        import numpy as np

        from rsvlm.api import check_images, check_labels
        from rsvlm.pipeline import class_text_embeddings, embed_images
        from rsvlm.tasks.embeddings import average_normalised

        model = self.classifier().model
        readable, prompts = check_labels(labels)
        key = tuple(readable)
        with self._texts_lock:
            texts = self._texts.get(key)
            if texts is not None:
                self._texts.move_to_end(key)
        if texts is None:
            texts = average_normalised(list(class_text_embeddings(model, readable, prompts).values()))
            with self._texts_lock:
                self._texts[key] = texts
                while len(self._texts) > TEXT_CACHE_SIZE:
                    self._texts.popitem(last=False)
        check_images([image])
        vectors = embed_images(model, [image], use_cache=False)
        logits = float(model.logit_scale) * vectors[0] @ texts.T
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        return [(labels[i], float(probs[i])) for i in np.argsort(-probs, kind="stable")]

    def classifier(self) -> Model:
        if self.model is None:
            raise ApiError(503, "the model is still loading: try again in a few seconds")
        return self.model

    def index(self) -> tuple[Any, ContrastiveModel]:
        """The archive and its model, or 404 when the server was started without ``--index``."""
        if self.archive is None or self.index_model is None:
            raise ApiError(404, "this server has no index (start it with --index DIR, built by `rsvlm index build`)")
        return self.archive, self.index_model

    @property
    def chat_name(self) -> str | None:
        return self.config.chat

    def chat(self) -> Chat:
        """The chat model, loaded on first use; 503 when the server runs without one or it cannot load."""
        name = self.config.chat
        if name is None:
            raise ApiError(
                503, "caption and ask are off: this server was started with --chat none (restart it without that)"
            )
        with self._chat_lock:
            if self._chat is None:
                from rsvlm.api import load_chat
                from rsvlm.errors import RsvlmError

                try:
                    self._chat = load_chat(name)
                except RsvlmError as exc:
                    raise ApiError(503, f"chat model {name} cannot be loaded: {exc}") from None
            return self._chat

    def ask(self, image: str, question: str) -> str:
        chat = self.chat()
        with self._chat_lock:
            return chat.ask(image, question)

    def caption(self, image: str) -> str:
        chat = self.chat()
        with self._chat_lock:
            return chat.caption([image])[0]
