"""Augmentations applied alike to every frame of a clip (T×C×H×W tensors)."""

from __future__ import annotations

import torch

__all__ = ["center_crop", "random_crop_and_flip"]


def center_crop(clip: torch.Tensor, size: int) -> torch.Tensor:
    """The central size×size window of every frame of a T×C×H×W clip."""
    height, width = clip.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return clip[..., top : top + size, left : left + size]


def random_crop_and_flip(clip: torch.Tensor, size: int) -> torch.Tensor:
    """One random size×size crop, then horizontal flip, vertical flip and transpose, each with
    probability 1/2, the same for every frame of the T×C×H×W clip.

    The vertical flip mirrors rows (the original code's "vertical flip" was a rotation).
    """
    height, width = clip.shape[-2:]
    top = int(torch.randint(0, height - size + 1, ()).item())
    left = int(torch.randint(0, width - size + 1, ()).item())
    clip = clip[..., top : top + size, left : left + size]
    hflip, vflip, transpose = (torch.rand(3) < 0.5).tolist()
    if hflip:
        clip = clip.flip(-1)
    if vflip:
        clip = clip.flip(-2)
    if transpose:
        clip = clip.transpose(-1, -2)
    return clip.contiguous()
