"""The working resolution: running the network on videos of any size.

TCVCNet needs H and W that are multiples of 64 (FlowNet2's ``SIZE_MULTIPLE``).
``run_at_resolution`` runs it either at a fixed working resolution (the original test scripts:
L resized to 256×256, whatever the aspect ratio) or at the video's own resolution padded to
multiples of 64, and returns ab at the full frame size. As in the original, the result is joined
with the *full-resolution* L, e.g.

    ab = run_at_resolution(net.colorize_clip, L, resolution=256)
    rgb = tcvc.color.lab_normalized_to_rgb(L, ab)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from tcvc.nets.flownet2 import SIZE_MULTIPLE

__all__ = [
    "Resolution",
    "network_size",
    "run_at_resolution",
    "to_frame_size",
    "to_network_size",
]

Resolution = Literal["native"] | int | tuple[int, int]


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def network_size(height: int, width: int, resolution: Resolution) -> tuple[int, int]:
    """The H×W the network runs at for a height×width video.

    ``"native"``: the frame size rounded up to multiples of 64 (padding, no resizing);
    ``n``: n×n; ``(h, w)``: h×w. Fixed sizes must be positive multiples of 64.
    """
    if resolution == "native":
        return _round_up(height, SIZE_MULTIPLE), _round_up(width, SIZE_MULTIPLE)
    size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if (
        len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in size)
        or any(s <= 0 or s % SIZE_MULTIPLE for s in size)
    ):
        raise ValueError(
            f"resolution must be 'native', an int or (h, w), positive multiples of "
            f"{SIZE_MULTIPLE}; got {resolution!r}"
        )
    return size


def run_at_resolution(
    net_fn: Callable[[Tensor], Tensor], L: Tensor, *, resolution: Resolution = 256
) -> Tensor:
    """ab at the frame size, from the network run at a working resolution.

    Args:
        net_fn: B×T×1×h×w normalised L -> B×T×2×h×w ab / 110 (``net.colorize_clip`` or ``net``).
        L: B×T×1×H×W normalised L, (L − 50) / 100, at the full frame size.
        resolution: ``256`` (default, the original's), any n or (h, w) multiple of 64: L is resized
            bilinearly (align_corners=False, no antialiasing, as the original) and ab is resized
            back; ``"native"``: L is padded at the bottom and right by edge replication to
            multiples of 64 and ab is cropped back (no resampling at all).

    Returns:
        B×T×2×H×W ab / 110, to join with the full-resolution L.
    """
    if L.dim() != 5 or L.shape[2] != 1:
        raise ValueError(f"L must be B×T×1×H×W, got shape {tuple(L.shape)}")
    batch, num_frames, _, height, width = L.shape
    size = network_size(height, width, resolution)
    frames = to_network_size(L.flatten(0, 1), size, resolution)
    ab = call_network(net_fn, frames.unflatten(0, (batch, num_frames)), size)
    return to_frame_size(ab.flatten(0, 1), height, width, resolution).unflatten(
        0, (batch, num_frames)
    )


def call_network(net_fn: Callable[[Tensor], Tensor], L: Tensor, size: tuple[int, int]) -> Tensor:
    """``net_fn(L)`` for B×T×1×h×w L, its ab checked to be B×T×2×h×w."""
    ab = net_fn(L)
    expected = (*L.shape[:2], 2, *size)
    if tuple(ab.shape) != expected:
        raise ValueError(f"net_fn returned ab of shape {tuple(ab.shape)}, expected {expected}")
    return ab


def to_network_size(L: Tensor, size: tuple[int, int], resolution: Resolution) -> Tensor:
    """N×1×H×W L at the working size h×w: resized bilinearly, or padded for ``"native"``."""
    height, width = L.shape[-2:]
    if resolution == "native":
        return F.pad(L, (0, size[1] - width, 0, size[0] - height), mode="replicate")
    return F.interpolate(L, size=size, mode="bilinear", align_corners=False)


def to_frame_size(ab: Tensor, height: int, width: int, resolution: Resolution) -> Tensor:
    """N×2×h×w ab back at the frame size H×W: resized bilinearly, or cropped for ``"native"``."""
    if resolution == "native":
        return ab[..., :height, :width]
    if tuple(ab.shape[-2:]) == (height, width):
        return ab
    return F.interpolate(ab, size=(height, width), mode="bilinear", align_corners=False)
