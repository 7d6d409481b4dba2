"""Lab conversions in the normalisation IDC and TCVC use (kornia does the colour science).

Normalised Lab: `L_norm = (L − 50) / 100` in [−0.5, 0.5] and `ab_norm = ab / 110` (about [−1, 1]).
"""

from __future__ import annotations

import torch
from kornia.color import lab_to_rgb, rgb_to_lab

__all__ = [
    "AB_SCALE",
    "L_CENTER",
    "L_SCALE",
    "gray_to_L",
    "lab_normalized_to_rgb",
    "rgb_to_lab_normalized",
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


def lab_normalized_to_rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(L ...×1×H×W, ab ...×2×H×W), normalised → RGB ...×3×H×W in [0, 1] (clipped)."""
    if L.shape[-3] != 1 or ab.shape[-3] != 2 or L.shape[-2:] != ab.shape[-2:]:
        raise ValueError(
            f"expected L ...×1×H×W and ab ...×2×H×W of one size, got {tuple(L.shape)} and "
            f"{tuple(ab.shape)}"
        )
    lab = torch.cat([L * L_SCALE + L_CENTER, ab * AB_SCALE], dim=-3)
    return lab_to_rgb(lab, clip=True)


def gray_to_L(gray: torch.Tensor) -> torch.Tensor:
    """A gray frame in [0, 1] taken as L/100 (the original's rule without ground truth) → L_norm."""
    return (gray * L_SCALE - L_CENTER) / L_SCALE
