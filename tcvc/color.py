"""Lab conversions in the normalisation IDC and TCVC use (kornia does the colour science).

Normalised Lab: `L_norm = (L − 50) / 100` in [−0.5, 0.5] and `ab_norm = ab / 110` (about [−1, 1]).
RGB is sRGB in [0, 1] (kornia linearises it before going to XYZ, D65 white).

Also the two trips between the uint8 frames of files (H×W×3, numpy) and the float tensors the
networks see (3×H×W in [0, 1]).
"""

from __future__ import annotations

import numpy as np
import torch
from kornia.color import lab_to_rgb, rgb_to_lab

__all__ = [
    "AB_SCALE",
    "L_CENTER",
    "L_SCALE",
    "gray_to_L",
    "lab_normalized_to_rgb",
    "lab_normalized_to_rgb_unclipped",
    "rgb_float_to_uint8",
    "rgb_float_to_uint8_tensor",
    "rgb_to_lab_normalized",
    "rgb_uint8_to_float",
]

L_CENTER = 50.0
L_SCALE = 100.0
AB_SCALE = 110.0


def rgb_to_lab_normalized(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB ...×3×H×W in [0, 1] → (L ...×1×H×W = (L − 50)/100, ab ...×2×H×W = ab/110)."""
    if rgb.ndim < 3 or rgb.shape[-3] != 3:
        raise ValueError(f"expected RGB shaped ...×3×H×W, got {tuple(rgb.shape)}")
    lab = rgb_to_lab(rgb)
    L = (lab[..., :1, :, :] - L_CENTER) / L_SCALE
    ab = lab[..., 1:, :, :] / AB_SCALE
    return L, ab


def _lab(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Normalised (L, ab) checked and joined as Lab ...×3×H×W (L* in [0, 100], ab in units)."""
    if (
        L.ndim < 3
        or ab.ndim != L.ndim
        or L.shape[-3] != 1
        or ab.shape[-3] != 2
        or L.shape[:-3] != ab.shape[:-3]
        or L.shape[-2:] != ab.shape[-2:]
    ):
        raise ValueError(
            f"expected L ...×1×H×W and ab ...×2×H×W of one size, got {tuple(L.shape)} and "
            f"{tuple(ab.shape)}"
        )
    return torch.cat([L * L_SCALE + L_CENTER, ab * AB_SCALE], dim=-3)


def lab_normalized_to_rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(L ...×1×H×W, ab ...×2×H×W), normalised → RGB ...×3×H×W in [0, 1] (clipped).

    Predicted ab can leave the sRGB gamut; clipping there is what saving an image would do anyway.
    """
    lab = _lab(L, ab)
    return lab_to_rgb(lab, clip=True)


def lab_normalized_to_rgb_unclipped(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(L ...×1×H×W, ab ...×2×H×W), normalised → sRGB ...×3×H×W ≥ 0, *not* clipped at 1.

    The original's ``lab2rgb`` (``codes/data/util.py``): negative linear RGB is set to 0 before
    the sRGB curve, values above 1 are kept. Its multi-sampling averages these before clipping.
    Where it is in [0, 1] it equals ``lab_normalized_to_rgb``.
    """
    lab = _lab(L, ab)
    # linear RGB < 0 is exactly sRGB < 0 (the curve is 12.92·x there): the original's max(x, 0)
    return lab_to_rgb(lab, clip=False).clamp(min=0.0)


def gray_to_L(gray: torch.Tensor) -> torch.Tensor:
    """A gray frame in [0, 1] (any shape) taken as L/100 → L_norm = (100·gray − 50)/100.

    The original's rule for inputs without colour ground truth: the gray value *is* lightness,
    not an sRGB value to be linearised.
    """
    return (gray * L_SCALE - L_CENTER) / L_SCALE


def rgb_uint8_to_float(
    frames: np.ndarray | torch.Tensor, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """uint8 RGB ...×H×W×3 (numpy or torch) → float32 tensor ...×3×H×W in [0, 1]."""
    tensor = torch.as_tensor(frames)
    if tensor.dtype != torch.uint8 or tensor.ndim < 3 or tensor.shape[-1] != 3:
        raise ValueError(
            f"expected uint8 RGB frames shaped ...×H×W×3, got {tuple(tensor.shape)} {tensor.dtype}"
        )
    tensor = tensor.to(device) if device is not None else tensor
    return tensor.movedim(-1, -3).to(torch.float32) / 255.0


def rgb_float_to_uint8_tensor(rgb: torch.Tensor) -> torch.Tensor:
    """Float RGB ...×3×H×W in [0, 1] → uint8 tensor ...×H×W×3 on its device (clipped, rounded
    to nearest)."""
    if rgb.ndim < 3 or rgb.shape[-3] != 3:
        raise ValueError(f"expected RGB shaped ...×3×H×W, got {tuple(rgb.shape)}")
    scaled = (rgb.detach().float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return scaled.movedim(-3, -1)


def rgb_float_to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """Float RGB ...×3×H×W in [0, 1] → uint8 numpy ...×H×W×3 (clipped, rounded to nearest)."""
    return rgb_float_to_uint8_tensor(rgb).cpu().numpy()
