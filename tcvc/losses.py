"""Training objective of TCVC: self-regularisation (SRL) plus an optional pixel loss on ab.

SRL (the paper's Sec. 3.3, the released `video_colorization_model_warploss2` + `TCVC_IDC_arch`):
for every step k in `steps` and every frame t with t + k < T,

    w     = F(t + k, t)                                   (flow from frame t+k's grid to frame t)
    m     = exp(−alpha · (Σ_c (L_{t+k} − warp(L_t, w)))²)   (1 where the warp explains L)
    SRL_k = mean over B, t, c, y, x of (m · ab_{t+k} − m · warp(ab_t, w))²

`warp` is Resample2d (`ops.resample2d`: bilinear, border clamp). Both sides of the difference
carry gradients (as in the original); flows and mask carry none (FlowNet2 is frozen, L is input).
No ground truth is needed, so the released model trains with the pixel loss off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ops import resample2d

__all__ = ["FlowSource", "PixelLoss", "SRLoss", "TCVCLoss", "srl_flow_pairs"]

# Flows keyed by (target, source) = (t + k, t): the flow from frame t+k's grid into frame t,
# B×2×H×W in pixels; or a function giving that flow for (target index, source index).
FlowSource = Mapping[tuple[int, int], Tensor] | Callable[[int, int], Tensor]


def _check_steps(steps: Iterable[int]) -> tuple[int, ...]:
    steps = tuple(int(k) for k in steps)
    if not steps or any(k < 1 for k in steps) or len(set(steps)) != len(steps):
        raise ValueError(f"SRL steps must be distinct positive integers, got {steps}")
    return steps


def srl_flow_pairs(num_frames: int, steps: Iterable[int]) -> list[tuple[int, int]]:
    """Every (t + k, t) flow pair SRL needs for a clip of `num_frames`, each once, k-major.

    E.g. T = 4, steps (1, 2): [(1, 0), (2, 1), (3, 2), (2, 0), (3, 1)].
    """
    steps = _check_steps(steps)
    return [(t + k, t) for k in steps for t in range(num_frames - k)]


class SRLoss(nn.Module):
    """Self-regularisation loss: masked MSE between ab_{t+k} and ab_t warped onto frame t+k.

    Args:
        steps: the frame distances k (paper: 1 and 2).
        alpha: sharpness of the warp-validity mask exp(−alpha · ΔL²) on normalised L (paper: 50).

    Forward:
        ab: B×T×2×H×W predicted ab, normalised (ab/110).
        L: B×T×1×H×W input lightness, normalised ((L − 50)/100).
        flows: `FlowSource`, at least every pair of `srl_flow_pairs(T, steps)`.
    Returns:
        {"srl_<k>": scalar} for each k, in the order of `steps`.
    """

    def __init__(self, *, steps: Iterable[int] = (1, 2), alpha: float = 50.0) -> None:
        super().__init__()
        self.steps = _check_steps(steps)
        if alpha < 0:
            raise ValueError(f"SRL alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def extra_repr(self) -> str:
        return f"steps={self.steps}, alpha={self.alpha}"

    def forward(self, ab: Tensor, L: Tensor, flows: FlowSource) -> dict[str, Tensor]:
        _check_clip(ab, L)
        batch, num_frames, _, height, width = ab.shape
        if num_frames <= max(self.steps):
            raise ValueError(
                f"SRL steps {self.steps} need clips longer than {max(self.steps)} frames, "
                f"got T = {num_frames} (ab {tuple(ab.shape)})"
            )
        flow_of = _checked(flows, (batch, 2, height, width))
        terms = {}
        for k in self.steps:
            count = num_frames - k
            with torch.no_grad():
                flow = torch.stack([flow_of(t + k, t) for t in range(count)], dim=1)
                flow = flow.to(ab.device)  # its own dtype: resample2d warps in the wider one
                flow = flow.reshape(batch * count, 2, height, width)
                L_target = L[:, k:].reshape(batch * count, 1, height, width)
                L_warped = resample2d(L[:, :count].reshape(batch * count, 1, height, width), flow)
                mask = torch.exp(-self.alpha * (L_target - L_warped).sum(1, keepdim=True) ** 2)
            ab_target = ab[:, k:].reshape(batch * count, 2, height, width)
            ab_warped = resample2d(ab[:, :count].reshape(batch * count, 2, height, width), flow)
            terms[f"srl_{k}"] = F.mse_loss(mask * ab_target, mask * ab_warped)
        return terms


class PixelLoss(nn.Module):
    """L1 or MSE between predicted and ground-truth ab (equal shapes), mean over all elements."""

    def __init__(self, *, kind: Literal["l1", "mse"] = "mse") -> None:
        super().__init__()
        if kind not in ("l1", "mse"):
            raise ValueError(f"pixel loss kind must be 'l1' or 'mse', got {kind!r}")
        self.kind = kind

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"

    def forward(self, ab: Tensor, ab_target: Tensor) -> Tensor:
        if ab.shape != ab_target.shape:
            raise ValueError(
                f"ab and ab_target must match, got {tuple(ab.shape)} and {tuple(ab_target.shape)}"
            )
        if self.kind == "l1":
            return F.l1_loss(ab, ab_target)
        return F.mse_loss(ab, ab_target)


class TCVCLoss(nn.Module):
    """pixel_weight · pixel(ab, ab_gt) + srl_weight · Σ_k SRL_k (config `model.loss.*`).

    The released model: srl_weight 1, steps (1, 2), alpha 50, pixel_weight 0 (the original's
    pixel term is an MSE, hence the default `pixel_type`).

    Forward:
        ab: B×T×2×H×W predicted, L: B×T×1×H×W input, flows: see `SRLoss`.
        ab_target: B×T×2×H×W ground truth or None; required when pixel_weight > 0. When given,
            "pixel" is reported even with weight 0 (a free measure of colour fidelity).
    Returns:
        {"loss": total, "srl_<k>": ... for each k, "pixel": ... (if ab_target is given)}.
    """

    def __init__(
        self,
        *,
        srl_weight: float = 1.0,
        srl_steps: Iterable[int] = (1, 2),
        srl_alpha: float = 50.0,
        pixel_weight: float = 0.0,
        pixel_type: Literal["l1", "mse"] = "mse",
    ) -> None:
        super().__init__()
        if srl_weight < 0 or pixel_weight < 0:
            raise ValueError(
                f"loss weights must be >= 0, got srl_weight={srl_weight}, "
                f"pixel_weight={pixel_weight}"
            )
        self.srl_weight = float(srl_weight)
        self.pixel_weight = float(pixel_weight)
        self.srl = SRLoss(steps=srl_steps, alpha=srl_alpha)
        self.pixel = PixelLoss(kind=pixel_type)

    @property
    def srl_steps(self) -> tuple[int, ...]:
        return self.srl.steps

    def extra_repr(self) -> str:
        return f"srl_weight={self.srl_weight}, pixel_weight={self.pixel_weight}"

    def forward(
        self, ab: Tensor, L: Tensor, flows: FlowSource, *, ab_target: Tensor | None = None
    ) -> dict[str, Tensor]:
        if self.pixel_weight > 0 and ab_target is None:
            raise ValueError(
                f"pixel_weight is {self.pixel_weight} but no ab_target was given; set "
                "model.loss.pixel_weight=0 to train without colour ground truth"
            )
        terms = self.srl(ab, L, flows)
        total = self.srl_weight * torch.stack(list(terms.values())).sum()
        if ab_target is not None:
            terms["pixel"] = self.pixel(ab, ab_target)
            if self.pixel_weight > 0:
                total = total + self.pixel_weight * terms["pixel"]
        return {"loss": total, **terms}


def _check_clip(ab: Tensor, L: Tensor) -> None:
    if ab.ndim != 5 or ab.shape[2] != 2:
        raise ValueError(f"ab must be B×T×2×H×W, got {tuple(ab.shape)}")
    expected = (*ab.shape[:2], 1, *ab.shape[3:])
    if tuple(L.shape) != expected:
        raise ValueError(f"L must be B×T×1×H×W = {expected} to match ab, got {tuple(L.shape)}")


def _checked(flows: FlowSource, shape: tuple[int, ...]) -> Callable[[int, int], Tensor]:
    """`flows` as a function of (target, source) that says which pair is missing or misshaped."""

    def flow_of(target: int, source: int) -> Tensor:
        if callable(flows):
            flow = flows(target, source)
        else:
            try:
                flow = flows[(target, source)]
            except KeyError:
                raise ValueError(
                    f"no flow for frame pair ({target}, {source}); SRL needs every pair of "
                    f"srl_flow_pairs(T, steps), got keys {sorted(flows)}"
                ) from None
        if tuple(flow.shape) != shape:
            raise ValueError(
                f"the flow for frame pair ({target}, {source}) must be B×2×H×W = {shape}, "
                f"got {tuple(flow.shape)}"
            )
        return flow

    return flow_of
