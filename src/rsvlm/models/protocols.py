"""The contracts tasks rely on. A task never imports a model class, only these protocols."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

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
