"""Augmentations applied alike to every frame of a clip (T×C×H×W tensors), and to its flows."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "Augmentation",
    "center_augmentation",
    "center_crop",
    "random_augmentation",
    "random_crop_and_flip",
]


@dataclass(frozen=True)
class Augmentation:
    """A square crop (``top``, ``left``, ``size``), then optional horizontal flip, vertical flip
    and transpose, in that order. ``apply`` transforms frames, ``apply_to_flow`` pixel flows
    (B×2×H×W or T×2×H×W, channel 0 = u along x, 1 = v along y) so that they stay the flows of
    the transformed frames: a flip negates the matching component, a transpose swaps them."""

    top: int
    left: int
    size: int
    hflip: bool = False
    vflip: bool = False
    transpose: bool = False

    def apply(self, clip: torch.Tensor) -> torch.Tensor:
        """...×H×W -> ...×size×size."""
        clip = clip[..., self.top : self.top + self.size, self.left : self.left + self.size]
        if self.hflip:
            clip = clip.flip(-1)
        if self.vflip:
            clip = clip.flip(-2)
        if self.transpose:
            clip = clip.transpose(-1, -2)
        return clip.contiguous()

    def apply_to_flow(self, flow: torch.Tensor) -> torch.Tensor:
        """...×2×H×W pixel flow -> ...×2×size×size (the crop does not change flow values)."""
        u, v = self.apply(flow).unbind(-3)
        if self.hflip:
            u = -u
        if self.vflip:
            v = -v
        if self.transpose:
            u, v = v, u
        return torch.stack((u, v), dim=-3)


def random_augmentation(height: int, width: int, size: int) -> Augmentation:
    """One random size×size crop of an H×W frame; each flip and the transpose with probability 1/2."""
    top = int(torch.randint(0, height - size + 1, ()).item())
    left = int(torch.randint(0, width - size + 1, ()).item())
    hflip, vflip, transpose = (torch.rand(3) < 0.5).tolist()
    return Augmentation(top, left, size, hflip, vflip, transpose)


def center_crop(clip: torch.Tensor, size: int) -> torch.Tensor:
    """The central size×size window of every frame of a T×C×H×W clip."""
    return center_augmentation(*clip.shape[-2:], size).apply(clip)


def center_augmentation(height: int, width: int, size: int) -> Augmentation:
    """The central size×size crop, no flips (validation)."""
    return Augmentation((height - size) // 2, (width - size) // 2, size)


def random_crop_and_flip(clip: torch.Tensor, size: int) -> torch.Tensor:
    """One random size×size crop, then horizontal flip, vertical flip and transpose, each with
    probability 1/2, the same for every frame of the T×C×H×W clip.

    The vertical flip mirrors rows (the original code's "vertical flip" was a rotation).
    """
    return random_augmentation(*clip.shape[-2:], size).apply(clip)
