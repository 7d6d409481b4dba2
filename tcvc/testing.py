"""Synthetic weights in a given checkpoint layout, for tests and reference tensors.

The released files (`80000_G.pth`, `FlowNet2_checkpoint.pth.tar`, `siggraph17-df00044c.pth`) cannot
be downloaded here, so tests build files of the same layout: the same key names and shapes, with
deterministic values that keep activations in a sane range through deep stacks of convolutions.
The same recipe is used by the scripts that run the original code to make reference tensors, so a
test can rebuild the exact weights those tensors came from.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import torch

__all__ = ["ZeroFlow", "synthetic_state_dict", "synthetic_tensor"]


def synthetic_tensor(key: str, shape: Sequence[int], *, seed: int) -> torch.Tensor:
    """One deterministic tensor for `key` of `shape`.

    The values depend only on (seed, key, shape), never on the order keys are generated in:
    - conv / linear weights (ndim >= 2): normal with std sqrt(2 / fan_in), He's scale, so signals neither vanish nor explode
      through ReLU stacks (fan_in = shape[1] × kernel
      area; for transposed convs the layout is in×out×k×k, and shape[1] is still a fair scale);
    - BatchNorm `running_var`: uniform in [0.5, 1.5]; `weight` of a 1-D tensor (BN gamma): uniform in
      [0.8, 1.2]; `num_batches_tracked`: an int64 scalar;
    - other 1-D tensors (biases, BN beta, running_mean): uniform in [-0.1, 0.1].
    """
    shape = tuple(int(s) for s in shape)
    if key.endswith("num_batches_tracked"):
        return torch.tensor(1000, dtype=torch.int64).reshape(shape)
    generator = torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(key.encode())) % 2**63)
    if len(shape) >= 2:
        fan_in = shape[1] * (torch.Size(shape[2:]).numel() if len(shape) > 2 else 1)
        return torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
    uniform = torch.rand(shape, generator=generator)
    if key.endswith("running_var"):
        return 0.5 + uniform
    if key.endswith("weight"):
        return 0.8 + 0.4 * uniform
    return 0.2 * uniform - 0.1


def synthetic_state_dict(
    shapes: Mapping[str, Sequence[int]], *, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A state dict with the keys and shapes of `shapes` (e.g. a released checkpoint's layout)."""
    return {key: synthetic_tensor(key, shape, seed=seed) for key, shape in shapes.items()}


class ZeroFlow(torch.nn.Module):
    """A stand-in flow network: ``(image1, image2)`` B×3×H×W -> zero B×2×H×W flow (no motion).

    For tests and quick pipeline checks, e.g. ``model.flownet._target_=tcvc.testing.ZeroFlow``.
    """

    def forward(self, image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
        return image1.new_zeros((image1.shape[0], 2, *image1.shape[2:]))
