"""The contracts tasks rely on. A task never imports a model class, only these protocols."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from rsvlm.data.sample import RasterImage


@runtime_checkable
class ContrastiveModel(Protocol):
    """Embeds images and texts into one space (CLIP-style). Outputs are L2-normalised float32."""

    @property
    def name(self) -> str: ...

    @property
    def embed_dim(self) -> int: ...

    @property
    def preprocess_id(self) -> str:
        """Identifies the preprocessing exactly (size, resize mode, mean/std), e.g. for feature-cache keys."""
        ...

    @property
    def weights_id(self) -> str:
        """Digest of the weights' content (``rsvlm.digests``): with ``name`` and ``preprocess_id`` it keys the
        feature cache and ties fitted heads to the embeddings they saw."""
        ...

    @property
    def logit_scale(self) -> float:
        """Inverse temperature that turns cosine similarities into class probabilities (100 for CLIP)."""
        ...

    @property
    def in_bands(self) -> int | None:
        """Bands the model takes as they are (a multispectral adapter); None: it reduces any image to RGB."""
        ...

    def preprocess(self, image: RasterImage) -> torch.Tensor:
        """One image as the (3, H, W) float tensor the image tower expects."""
        ...

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) preprocessed pixels → (N, D) normalised embeddings."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """N strings → (N, D) normalised embeddings."""
        ...


@dataclass(frozen=True)
class TextTokens:
    """Texts as the text tower reads them: padded token ids with its start/end tokens, and where words begin."""

    ids: torch.Tensor
    """(N, L) int64 token ids, the tower's special tokens and padding included."""
    mask: torch.Tensor
    """(N, L) 1 for a token (special tokens included), 0 for padding."""
    start: int
    """Position of the first word token (after the start token): prompt learning writes its context from here."""


Tower = Literal["text", "image"]


@runtime_checkable
class TunableContrastive(ContrastiveModel, Protocol):
    """A contrastive model opened up for prompt learning and LoRA (``rsvlm.adapt.methods.coop``, ``.lora``).

    Everything here is differentiable and leaves this model as it is: prompt learning feeds its own word
    embeddings through the frozen text tower; LoRA tunes a copy of a tower (``tower_copy``) and scores with a
    new model that uses it (``with_towers``), so the base model's embeddings never change. Implemented by the
    open_clip families, rsvlm-lite and the spectral-adapted lite model.
    """

    @property
    def network(self) -> torch.nn.Module:
        """Every module holding weights of either tower, e.g. to switch their gradients off while tuning."""
        ...

    def tokenize(self, texts: Sequence[str]) -> TextTokens:
        """Token ids of ``texts`` as the text tower reads them (truncated to its context length, padded to the
        longest)."""
        ...

    def word_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) token ids → (N, L, W) the text tower's token-embedding layer (before position embeddings)."""
        ...

    def encode_word_embeddings(self, embeddings: torch.Tensor, tokens: TextTokens) -> torch.Tensor:
        """(N, L, W) word embeddings (e.g. with learned context in some slots) of ``tokens`` → (N, D) normalised
        text features, with gradients. ``encode_word_embeddings(word_embeddings(t.ids), t)`` equals ``encode_texts``
        (to float rounding)."""
        ...

    def image_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) preprocessed pixels → (N, D) normalised features, with gradients (``encode_images``)."""
        ...

    def tower_copy(self, tower: Tower) -> torch.nn.Module:
        """A tower as its own frozen module tree in eval mode, for LoRA to wrap: its weights share storage with
        this model's (tuning new modules inside it changes nothing here), and layers LoRA targets are exposed
        as ``Linear`` / ``Conv2d`` modules (e.g. a fused attention split into query, key and value)."""
        ...

    def lora_targets(self, tower: Tower, blocks: int) -> list[str]:
        """Names, inside ``tower_copy(tower)``, of the layers LoRA wraps in the last ``blocks`` blocks (0: all):
        the attention's query/key/value projections of a transformer, pointwise convolutions of a CNN.
        Empty when the tower cannot take LoRA."""
        ...

    def with_towers(self, towers: Mapping[Tower, torch.nn.Module], tag: str) -> TunableContrastive:
        """This model with towers replaced by (tuned) ``tower_copy`` results; everything else is shared. Its
        ``weights_id`` is this model's changed by ``tag`` (appended), so feature caches never mix the two."""
        ...
