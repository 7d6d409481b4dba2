"""The L the network sees: one frame's lightness, read from its uint8 RGB.

``lightness="lab"`` (the default): the L* of the frame's Lab, for colour and gray frames alike,
so a pixel left uncoloured (ab = 0) comes back as it went in (within one level of rounding).
``lightness="gray_value"``: the original's reading of inputs without colour ground truth
(``test_TCVC_onesampling_noGT.py``): a gray frame's value taken as L*/100, so gray 128 is
L* 50.2 (its Lab L* is 53.6); decided frame by frame (three equal channels), colour frames
keep the L of their Lab. It reproduces the original's outputs; the colours come back darker
(gray 128 -> 119 with ab = 0).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from tcvc.color import gray_to_L, rgb_to_lab_normalized, rgb_uint8_to_float

__all__ = ["LIGHTNESS", "Lightness", "frame_to_L", "frames_to_L", "is_gray_frame"]

Lightness = Literal["lab", "gray_value"]
LIGHTNESS = ("lab", "gray_value")


def is_gray_frame(frame: np.ndarray | Tensor) -> bool:
    """True when an H×W×3 frame has three equal channels (a gray frame as readers give it)."""
    frame = torch.as_tensor(frame)
    return bool((frame[..., 0] == frame[..., 1]).all() and (frame[..., 1] == frame[..., 2]).all())


def frame_to_L(
    frame: np.ndarray | Tensor,
    *,
    lightness: Lightness = "lab",
    device: torch.device | str | None = None,
) -> Tensor:
    """An H×W×3 uint8 RGB frame -> 1×H×W normalised L, (L* − 50)/100, on ``device``."""
    if lightness not in LIGHTNESS:
        raise ValueError(f"lightness must be one of {', '.join(LIGHTNESS)}, got {lightness!r}")
    rgb = torch.as_tensor(frame).to(device)
    if rgb.dtype != torch.uint8 or rgb.dim() != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an H×W×3 uint8 frame, got {tuple(rgb.shape)} {rgb.dtype}")
    if lightness == "gray_value" and is_gray_frame(rgb):
        return gray_to_L(rgb[None, :, :, 0].float() / 255.0)
    L, _ = rgb_to_lab_normalized(rgb_uint8_to_float(rgb))
    return L


def frames_to_L(frames: Tensor, *, lightness: Lightness = "lab", chunk: int = 32) -> Tensor:
    """T×H×W×3 uint8 frames -> T×1×H×W normalised L on their device, ``frame_to_L`` of each
    (computed ``chunk`` frames at a time: kornia's Lab holds a few float copies)."""
    if frames.dim() != 4:
        raise ValueError(f"expected T×H×W×3 uint8 frames, got {tuple(frames.shape)}")
    if lightness == "gray_value":
        return torch.stack([frame_to_L(f, lightness=lightness) for f in frames])
    parts = [
        rgb_to_lab_normalized(rgb_uint8_to_float(frames[start : start + chunk]))[0]
        for start in range(0, frames.shape[0], chunk)
    ]
    return (
        torch.cat(parts)
        if parts
        else frames.new_zeros((0, 1, *frames.shape[1:3]), dtype=torch.float32)
    )
