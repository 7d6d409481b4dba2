"""From L and predicted ab to the uint8 frame written: gamut handling and the passes' ensemble.

``join_passes`` is the one place where the ab of one or more passes (the multi-sampling
ensemble) is joined with the frame's L:

- ``gamut="clip"``, the original's arithmetic. One pass: RGB clipped to [0, 1], ×255, rounded
  (``test_TCVC_onesampling.py``). Several: each pass's RGB unclipped above 1
  (``lab_normalized_to_rgb_unclipped``), ×255, averaged in float64, *then* clipped to
  [0, 255] and truncated (``np.clip(mean, 0, 255).astype(np.uint8)`` of
  ``test_TCVC_multisampling.py``), so the paper's multi-sampling numbers reproduce.
- ``gamut="keep_luminance"``: out-of-gamut colours lose chroma, not lightness
  (``lab_to_rgb_in_gamut``); several passes are averaged in RGB and the input's L is put back;
  rounded to uint8.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from kornia.color import lab_to_rgb
from torch import Tensor

from tcvc.color import (
    AB_SCALE,
    L_CENTER,
    L_SCALE,
    lab_normalized_to_rgb,
    lab_normalized_to_rgb_unclipped,
    rgb_float_to_uint8_tensor,
    rgb_to_lab_normalized,
)

__all__ = ["GAMUTS", "Gamut", "join_passes", "lab_to_rgb_in_gamut"]

Gamut = Literal["keep_luminance", "clip"]
GAMUTS = ("keep_luminance", "clip")
_GAMUT_TOLERANCE = 1e-4


def lab_to_rgb_in_gamut(L: Tensor, ab: Tensor, *, steps: int = 8) -> Tensor:
    """(L ...×1×H×W, ab ...×2×H×W), normalised -> RGB ...×3×H×W in [0, 1] with L kept.

    Clipping an out-of-gamut colour to [0, 1] changes its lightness (bright saturated blue
    clips to a darker colour). Here such a pixel keeps its L and its hue, and its chroma is
    scaled down to the gamut's edge instead: the largest s in [0, 1] (bisection, ``steps``
    halvings) with Lab (L, s·ab) inside sRGB. In-gamut pixels are exactly
    ``lab_normalized_to_rgb``'s.
    """
    if L.shape[:-3] != ab.shape[:-3] or L.shape[-3] != 1 or ab.shape[-3] != 2:
        raise ValueError(
            f"expected L ...×1×H×W and ab ...×2×H×W, got {tuple(L.shape)} and {tuple(ab.shape)}"
        )
    lightness = L * L_SCALE + L_CENTER
    rgb = lab_to_rgb(torch.cat([lightness, ab * AB_SCALE], dim=-3), clip=False)
    outside = ((rgb < -_GAMUT_TOLERANCE) | (rgb > 1 + _GAMUT_TOLERANCE)).any(dim=-3)
    if outside.any():
        # the out-of-gamut pixels as one 3×N×1 "image" (kornia wants ...×3×H×W)
        pixel_L = lightness.movedim(-3, -1)[outside]  # N×1
        pixel_ab = (ab * AB_SCALE).movedim(-3, -1)[outside]  # N×2
        low = torch.zeros_like(pixel_L)  # s = 0 (gray) is inside for every L in [0, 100]
        high = torch.ones_like(pixel_L)
        for _ in range(steps):
            middle = (low + high) / 2
            inside = _inside_gamut(pixel_L, pixel_ab * middle)
            low = torch.where(inside, middle, low)
            high = torch.where(inside, high, middle)
        fixed = lab_to_rgb(torch.cat([pixel_L, pixel_ab * low], dim=1).T[:, :, None], clip=False)
        rgb = rgb.movedim(-3, -1).clone()
        rgb[outside] = fixed[:, :, 0].T
        rgb = rgb.movedim(-1, -3)
    return rgb.clamp(0.0, 1.0)


def _inside_gamut(pixel_L: Tensor, pixel_ab: Tensor) -> Tensor:
    rgb = lab_to_rgb(torch.cat([pixel_L, pixel_ab], dim=1).T[:, :, None], clip=False)[:, :, 0].T
    return ((rgb >= -_GAMUT_TOLERANCE) & (rgb <= 1 + _GAMUT_TOLERANCE)).all(dim=1, keepdim=True)


def join_passes(
    L: Tensor, abs_: Sequence[Tensor], *, gamut: Gamut, saturation: float = 1.0
) -> Tensor:
    """L 1×H×W and one ab 2×H×W per pass (normalised) -> the H×W×3 uint8 RGB frame, on L's
    device (see the module docstring for the arithmetic of each ``gamut``).

    ``saturation``: a chroma gain on each pass's predicted ab before the gamut (1: as
    predicted, 0: gray, > 1 more colourful; with ``keep_luminance`` the gamut caps it)."""
    if gamut not in GAMUTS:
        raise ValueError(f"gamut must be one of {', '.join(GAMUTS)}, got {gamut!r}")
    if not abs_:
        raise ValueError("need the ab of at least one pass")
    if saturation < 0:
        raise ValueError(f"saturation must be ≥ 0, got {saturation}")
    abs_ = [ab.to(L.dtype) for ab in abs_]
    if saturation != 1:
        abs_ = [ab * saturation for ab in abs_]
    if gamut == "clip":
        if len(abs_) == 1:
            return rgb_float_to_uint8_tensor(lab_normalized_to_rgb(L, abs_[0]))
        scaled = [(lab_normalized_to_rgb_unclipped(L, ab) * 255.0).double() for ab in abs_]
        mean = torch.stack(scaled).sum(dim=0) / len(scaled)
        return mean.clamp(0.0, 255.0).to(torch.uint8).permute(1, 2, 0)  # truncates, as astype
    rgb = [lab_to_rgb_in_gamut(L, ab) for ab in abs_]
    if len(rgb) == 1:
        return rgb_float_to_uint8_tensor(rgb[0])
    # the mean of colours of one L has a slightly different L: put the input's back
    _, ab = rgb_to_lab_normalized(torch.stack(rgb).mean(dim=0))
    return rgb_float_to_uint8_tensor(lab_to_rgb_in_gamut(L, ab))
