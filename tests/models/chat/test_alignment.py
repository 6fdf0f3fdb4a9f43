from __future__ import annotations

import pytest
import torch

from rsvlm.errors import RsvlmError
from rsvlm.models.chat.alignment import ALIGNMENTS, AlignmentConfig, build_alignment


@pytest.mark.parametrize("kind", ["linear", "mlp2x_gelu"])
def test_per_patch_layers_keep_one_token_per_patch(kind: str) -> None:
    config = AlignmentConfig(kind, vision_dim=24, text_dim=40)
    out = build_alignment(config)(torch.randn(3, 17, 24))
    assert out.shape == (3, 17, 40) and config.output_tokens(17) == 17


@pytest.mark.parametrize("patches", [1, 16, 49])
def test_resampler_returns_the_configured_number_of_tokens(patches: int) -> None:
    config = AlignmentConfig("resampler", vision_dim=24, text_dim=40, num_queries=8, num_layers=2, num_heads=4)
    layer = build_alignment(config)
    out = layer(torch.randn(2, patches, 24))
    assert out.shape == (2, 8, 40) and config.output_tokens(patches) == 8
    assert torch.isfinite(out).all()


def test_resampler_width_and_gradients() -> None:
    config = AlignmentConfig("resampler", vision_dim=8, text_dim=12, num_queries=3, num_heads=2, width=16)
    layer = build_alignment(config)
    layer(torch.randn(1, 5, 8)).sum().backward()
    assert layer.queries.shape == (3, 16) and layer.queries.grad is not None


def test_mlp_keys_are_the_llava_projector_keys() -> None:
    layer = build_alignment(AlignmentConfig("mlp2x_gelu", 4, 6))
    assert list(layer.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert list(build_alignment(AlignmentConfig("linear", 4, 6)).state_dict()) == ["weight", "bias"]


def test_table_and_config_errors() -> None:
    assert set(ALIGNMENTS) == {"linear", "mlp2x_gelu", "resampler"}
    with pytest.raises(RsvlmError, match="known: linear, mlp2x_gelu, resampler"):
        AlignmentConfig("qformer9", 4, 4)
    with pytest.raises(RsvlmError, match="not divisible"):
        AlignmentConfig("resampler", 4, 10, num_heads=4)
