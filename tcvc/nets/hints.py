"""Colour hints for IDC: the ``Hints`` pair and SIGGRAPH'17's random training hints.

A hint is a colour given at some pixels: ``Hints(ab, mask)`` with ab = ab / 110 (0 where there
is no hint) and mask 1 at a hinted pixel, 0 elsewhere, IDC's input convention (``tcvc.nets.idc``).

``HintSampler`` draws hints from ground-truth colours as SIGGRAPH'17's regression stage did
(richzhang/colorization-pytorch, ``util/util.py`` ``get_colorization_data`` and
``add_color_patches_rand_gt``; ``scripts/train_siggraph.sh``: ``--sample_p .125``;
``options/base_options.py``: ``--sample_Ps 1 … 9``), for each image:

- images that are nearly gray get none: the original keeps an image when
  ``Σ_c (max ab_c − min ab_c) ≥ ab_thresh / ab_norm`` on ab / 110, ``ab_thresh`` = 5 in Lab ab
  units (the a range plus the b range; the original drops the other images from the batch);
- a geometric number of points: draw a point while ``rand() < 1 − p`` (mean (1 − p) / p: 7 at
  p = 1/8);
- each point a square patch of side P, uniform in 1 … ``max_patch``, its top-left corner
  ``int(clip(N((H − P + 1) / 2, (H − P + 1) / 4), 0, H − P))`` (likewise in W);
- the patch's hint is the ground truth's mean ab over the patch (per channel), the mask 1 over
  it; a later patch overwrites an earlier one where they overlap.

Random numbers come from the ``generator`` given (a CPU ``torch.Generator``; ``None``: torch's
global one), so a seed gives the same hints; the patches are painted on the ab's device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from tcvc.color import AB_SCALE  # ab / 110: the network's ab units (the original's ab_norm)

__all__ = ["HintSampler", "Hints", "Patch", "draw_patches", "is_colourful", "paint_hints"]


class Hints(NamedTuple):
    """Colour hints: ``ab`` …×2×H×W (ab / 110, 0 where there is no hint) and ``mask`` …×1×H×W
    (1 at a hinted pixel, 0 elsewhere; values in [0, 1] are soft hints). For IDC: B×2×H×W and
    B×1×H×W; for TCVCNet's two anchors: B×2×2×H×W and B×2×1×H×W (frame 0, then frame T−1)."""

    ab: Tensor
    mask: Tensor


class Patch(NamedTuple):
    """A square hint patch: rows ``top … top + size − 1``, columns ``left … left + size − 1``."""

    top: int
    left: int
    size: int


def _uniform(generator: torch.Generator | None) -> float:
    return torch.rand((), generator=generator).item()


def _corner(extent: int, size: int, generator: torch.Generator | None) -> int:
    """``int(clip(N((extent − size + 1) / 2, (extent − size + 1) / 4), 0, extent − size))``."""
    span = extent - size + 1
    value = span / 2 + span / 4 * torch.randn((), generator=generator).item()
    return int(min(max(value, 0.0), float(extent - size)))


def draw_patches(
    height: int,
    width: int,
    *,
    p: float = 0.125,
    max_patch: int = 9,
    generator: torch.Generator | None = None,
) -> list[Patch]:
    """The patches of one image: a geometric number (mean (1 − p) / p), sides 1 … ``max_patch``,
    corners normal around the centre (see the module docstring). Every patch lies inside the
    ``height``×``width`` image."""
    _check_settings(p, max_patch)
    if min(height, width) < max_patch:
        raise ValueError(
            f"hint patches up to {max_patch}×{max_patch} need an image at least that large, got "
            f"H×W = {height}×{width}"
        )
    patches = []
    while _uniform(generator) < 1 - p:
        size = int(torch.randint(1, max_patch + 1, (), generator=generator).item())
        top = _corner(height, size, generator)
        left = _corner(width, size, generator)
        patches.append(Patch(top, left, size))
    return patches


def paint_hints(ab: Tensor, patches: Sequence[Sequence[Patch]]) -> Hints:
    """Hints of the given patches: each patch's mean ab of ``ab``, mask 1 over it.

    Args:
        ab: B×2×H×W ground truth, ab / 110.
        patches: B lists of patches, image by image, painted in order (a later patch overwrites
            an earlier one where they overlap).

    Returns:
        ``Hints`` B×2×H×W, B×1×H×W on ab's device and dtype.
    """
    if ab.dim() != 4 or ab.shape[1] != 2:
        raise ValueError(f"ab must be B×2×H×W, got shape {tuple(ab.shape)}")
    if len(patches) != ab.shape[0]:
        raise ValueError(f"{len(patches)} lists of patches for ab of shape {tuple(ab.shape)}")
    hint_ab = torch.zeros_like(ab)
    mask = ab.new_zeros(ab.shape[0], 1, *ab.shape[2:])
    for image, image_patches in enumerate(patches):
        for top, left, size in image_patches:
            rows, columns = slice(top, top + size), slice(left, left + size)
            patch = ab[image, :, rows, columns]
            hint_ab[image, :, rows, columns] = patch.mean(dim=(1, 2), keepdim=True)
            mask[image, :, rows, columns] = 1
    return Hints(hint_ab, mask)


def is_colourful(ab: Tensor, *, min_ab_range: float = 5.0) -> Tensor:
    """B bools: the image has colour enough for hints (SIGGRAPH'17's gray-image test).

    Args:
        ab: B×2×H×W, ab / 110.
        min_ab_range: in Lab ab units (the original's ``ab_thresh``, 5): an image is colourful
            when its a range plus its b range, ``Σ_c (max − min)``, is at least this.
    """
    spread = ab.flatten(2).amax(dim=2) - ab.flatten(2).amin(dim=2)  # B×2
    return spread.sum(dim=1) >= min_ab_range / AB_SCALE


@dataclass(frozen=True, kw_only=True)
class HintSampler:
    """SIGGRAPH'17's random training hints from ground-truth colours (module docstring).

    ``sampler(ab, generator=g)``: B×2×H×W ab / 110 -> ``Hints`` (B×2×H×W, B×1×H×W), or ``None``
    when ``enabled`` is false (nothing drawn: the anchors get no hints, the released TCVC's
    training). The fields mirror ``model.hints`` in ``conf/model/tcvc_idc.yaml``.

    Args:
        enabled: draw hints at all.
        p: the geometric distribution's stop probability, 0 < p ≤ 1 (1: no points); the
            original's ``sample_p`` (0.125).
        max_patch: patch sides are uniform in 1 … ``max_patch`` (the original's 9).
        min_ab_range: nearly gray images (a range + b range below this, Lab ab units; the
            original's 5) get no hints.
    """

    enabled: bool = True
    p: float = 0.125
    max_patch: int = 9
    min_ab_range: float = 5.0

    def __post_init__(self) -> None:
        _check_settings(self.p, self.max_patch)
        if self.min_ab_range < 0:
            raise ValueError(f"hints: min_ab_range must be ≥ 0, got {self.min_ab_range}")

    def __call__(self, ab: Tensor, *, generator: torch.Generator | None = None) -> Hints | None:
        if ab.dim() != 4 or ab.shape[1] != 2:
            raise ValueError(f"HintSampler: ab must be B×2×H×W, got shape {tuple(ab.shape)}")
        if not self.enabled:
            return None
        height, width = ab.shape[-2:]
        colourful = is_colourful(ab, min_ab_range=self.min_ab_range).tolist()
        patches = [
            draw_patches(height, width, p=self.p, max_patch=self.max_patch, generator=generator)
            if keep
            else []
            for keep in colourful
        ]
        return paint_hints(ab, patches)


def _check_settings(p: float, max_patch: int) -> None:
    if not 0 < p <= 1:
        raise ValueError(f"hints: p must be in (0, 1], got {p}")
    if isinstance(max_patch, bool) or not isinstance(max_patch, int) or max_patch < 1:
        raise ValueError(f"hints: max_patch must be an integer ≥ 1, got {max_patch!r}")
