"""Synthetic weights in a given checkpoint layout, for tests and reference tensors.

The released files (`80000_G.pth`, `FlowNet2_checkpoint.pth.tar`, `siggraph17-df00044c.pth`) cannot
be downloaded here, so tests build files of the same layout: the same key names and shapes, with
deterministic values that keep activations in a sane range through deep stacks of convolutions.
The same recipe is used by the scripts that run the original code to make reference tensors, so a
test can rebuild the exact weights those tensors came from.

Also stand-ins with the calls of TCVCNet's parts, whose outputs are known without weights:
``ZeroFlow`` and ``FixedFlow`` (FlowNet2's), ``HintEchoIDC`` (IDC's: colours with its hints) and
``ForwardCopyHead`` (the propagation head's: carries the first anchor's feature forward), e.g.
``TCVCNet(idc=HintEchoIDC(), flownet=FixedFlow(), head=ForwardCopyHead())`` colours every frame
of a clip with the first anchor's hints.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import torch

__all__ = [
    "FixedFlow",
    "ForwardCopyHead",
    "HintEchoIDC",
    "ZeroFlow",
    "synthetic_state_dict",
    "synthetic_tensor",
]


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


class FixedFlow(torch.nn.Module):
    """A stand-in flow network: ``(image1, image2)`` B×3×H×W -> the constant B×2×H×W flow
    (``dx``, ``dy``) pixels everywhere, whatever the images (``ZeroFlow`` with a motion).

    Every pair gets the same flow, F(a, b) and F(b, a) alike: a clip whose frames are shifted
    by it is not what the flow says backward (the forward–backward check fails where the motion
    is large).
    """

    def __init__(self, *, dx: float = 0.0, dy: float = 0.0) -> None:
        super().__init__()
        self.dx = float(dx)
        self.dy = float(dy)

    def forward(self, image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
        flow = image1.new_empty((image1.shape[0], 2, *image1.shape[2:]))
        flow[:, 0] = self.dx
        flow[:, 1] = self.dy
        return flow

    def extra_repr(self) -> str:
        return f"dx={self.dx}, dy={self.dy}"


class _FirstChannels(torch.nn.Module):
    """B×C×H×W -> its first ``channels`` channels (``HintEchoIDC.model_out``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return feature[:, : self.channels]


class HintEchoIDC(torch.nn.Module):
    """A stand-in colouriser with IDC's call that colours with its hints (no parameters).

    ``idc(L, ab_hint=..., hint_mask=...)`` (L B×1×H×W; hints B×2×H×W ab / 110 and B×1×H×W, or
    neither) -> (ab, feature): ab = ab_hint·hint_mask (0 without hints), B×2×H×W; feature the
    same ab, padded with zero channels to ``channels`` (C ≥ 2). ``model_out(feature)`` gives
    back its first 2 channels, so a propagated feature is a propagated ab.
    """

    def __init__(self, *, channels: int = 2) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"HintEchoIDC: channels must be ≥ 2, got {channels}")
        self.channels = channels
        self.model_out = _FirstChannels(2)

    def features(
        self,
        L: torch.Tensor,
        *,
        ab_hint: torch.Tensor | None = None,
        hint_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """B×C×H×W: cat[ab_hint·hint_mask, zeros] (zeros without hints)."""
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"HintEchoIDC: L must be B×1×H×W, got shape {tuple(L.shape)}")
        if (ab_hint is None) != (hint_mask is None):
            raise ValueError("HintEchoIDC: give both ab_hint and hint_mask, or neither")
        batch, _, height, width = L.shape
        if ab_hint is None:
            return L.new_zeros((batch, self.channels, height, width))
        for name, tensor, channels in (("ab_hint", ab_hint, 2), ("hint_mask", hint_mask, 1)):
            if tuple(tensor.shape) != (batch, channels, height, width):
                raise ValueError(
                    f"HintEchoIDC: {name} must be {(batch, channels, height, width)}, got "
                    f"{tuple(tensor.shape)}"
                )
        ab = ab_hint * hint_mask
        padding = ab.new_zeros((batch, self.channels - 2, height, width))
        return torch.cat([ab, padding], dim=1)

    def forward(
        self,
        L: torch.Tensor,
        *,
        ab_hint: torch.Tensor | None = None,
        hint_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.features(L, ab_hint=ab_hint, hint_mask=hint_mask)
        return self.model_out(feature), feature


class ForwardCopyHead(torch.nn.Module):
    """A stand-in propagation head (``PropagationHead``'s calls, no parameters): each forward
    step returns ``warped_forward``, so frame i gets the first anchor's feature carried to it
    along the flows, f[i] = warp(f[i−1], F(i, i−1)), and the last anchor has no say.

    ``l_features(L)`` is L itself (1 channel), ``context`` the three frames' L, ``reduce`` the
    detached feature; the step checks that ``warped_forward`` has ``backward``'s shape.
    """

    def l_features(self, L: torch.Tensor) -> torch.Tensor:
        return L

    def context(
        self, L_prev: torch.Tensor, L_current: torch.Tensor, L_next: torch.Tensor
    ) -> torch.Tensor:
        return torch.cat([L_prev, L_current, L_next], dim=1)

    def reduce(self, feature: torch.Tensor) -> torch.Tensor:
        return feature.detach()

    def forward(
        self,
        *,
        context: torch.Tensor,
        backward: torch.Tensor,
        warped_forward: torch.Tensor,
        reduced_backward_next: torch.Tensor,
        reduced_forward_prev: torch.Tensor,
    ) -> torch.Tensor:
        if warped_forward.shape != backward.shape:
            raise ValueError(
                f"ForwardCopyHead: warped_forward {tuple(warped_forward.shape)} and backward "
                f"{tuple(backward.shape)} differ"
            )
        return warped_forward
