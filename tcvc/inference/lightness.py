"""The L the network sees: one frame's lightness, read from its uint8 RGB (or uint16 RGB, from a
source of more than 8 bits read at full depth: `VideoReader(..., bit_depth="full")`).

``lightness="lab"`` (the default): the L* of the frame's Lab, for colour and gray frames alike,
so a pixel left uncoloured (ab = 0) comes back as it went in (within one level of rounding).
``lightness="gray_value"``: the original's reading of inputs without colour ground truth
(``test_TCVC_onesampling_noGT.py``): a gray frame's value taken as L*/100, so gray 128 is
L* 50.2 (its Lab L* is 53.6); decided frame by frame (three equal channels), colour frames
keep the L of their Lab. It reproduces the original's outputs; the colours come back darker
(gray 128 -> 119 with ab = 0).

A uint16 frame is scaled by 65535 where a uint8 one is scaled by 255, then the same arithmetic:
257 × a uint8 frame gives its L (to float round-off), and a 10-bit source its finer steps.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from tcvc.color import gray_to_L, rgb_to_lab_normalized

__all__ = ["LIGHTNESS", "Lightness", "frame_to_L", "frames_to_L", "is_gray_frame"]

Lightness = Literal["lab", "gray_value"]
LIGHTNESS = ("lab", "gray_value")


# the integer frames a reader gives, and the value of their white
_WHITE = {torch.uint8: 255.0, torch.uint16: 65535.0}


def _to_unit(rgb: Tensor) -> Tensor:
    """uint8 or uint16 RGB ...×H×W×3 -> float32 ...×3×H×W in [0, 1]."""
    return rgb.movedim(-1, -3).to(torch.float32) / _WHITE[rgb.dtype]


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
    """An H×W×3 uint8 (or uint16) RGB frame -> 1×H×W normalised L, (L* − 50)/100, on
    ``device``."""
    if lightness not in LIGHTNESS:
        raise ValueError(f"lightness must be one of {', '.join(LIGHTNESS)}, got {lightness!r}")
    rgb = torch.as_tensor(frame)
    if rgb.dtype not in _WHITE or rgb.dim() != 3 or rgb.shape[-1] != 3:
        raise ValueError(
            f"expected an H×W×3 uint8 or uint16 frame, got {tuple(rgb.shape)} {rgb.dtype}"
        )
    if rgb.dtype == torch.uint16:  # few CUDA kernels take uint16: it becomes float before it moves
        unit = _to_unit(rgb).to(device)
    else:  # uint8 moves as it is (a quarter of the bytes), and becomes float there
        unit = _to_unit(rgb.to(device))
    # equal channels as integers are equal as floats: distinct levels stay distinct in float32
    if lightness == "gray_value" and bool((unit[0] == unit[1]).all() & (unit[1] == unit[2]).all()):
        return gray_to_L(unit[:1])
    L, _ = rgb_to_lab_normalized(unit)
    return L


def frames_to_L(frames: Tensor, *, lightness: Lightness = "lab", chunk: int = 32) -> Tensor:
    """T×H×W×3 uint8 (or uint16) frames -> T×1×H×W normalised L on their device, ``frame_to_L``
    of each (computed ``chunk`` frames at a time: kornia's Lab holds a few float copies)."""
    if frames.dim() != 4 or frames.dtype not in _WHITE or frames.shape[-1] != 3:
        raise ValueError(
            f"expected T×H×W×3 uint8 or uint16 frames, got {tuple(frames.shape)} {frames.dtype}"
        )
    if lightness == "gray_value":
        return torch.stack([frame_to_L(f, lightness=lightness) for f in frames])
    parts = [
        rgb_to_lab_normalized(_to_unit(frames[start : start + chunk]))[0]
        for start in range(0, frames.shape[0], chunk)
    ]
    return (
        torch.cat(parts)
        if parts
        else frames.new_zeros((0, 1, *frames.shape[1:3]), dtype=torch.float32)
    )
