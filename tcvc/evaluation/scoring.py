"""The TCVC test protocol: colour a test video every way compared, score every output.

What the original test scripts do (``test_TCVC_onesampling.py`` / ``_multisampling.py``):
L of the ground-truth frames (kornia Lab, ``tcvc.color``) is coloured clip by clip with shared
anchors (interval 17: clips 0–18, 18–36, ...) at a 256×256 working size; the ab is upsampled to
the frame size and joined with the full-resolution L:

    ab = colorize_frames(net.colorize_clip, L, interval=17, resolution=256)
    rgb = lab_normalized_to_rgb(L, ab)

Multi-sampling averages the RGB results of several intervals (17 and 19) before rounding to
uint8. The baselines run under the same protocol: IDC frame by frame (the same working size and
upsampling), and the gray input itself (ab = 0). The metrics (``tcvc.metrics``) score uint8
videos on the device they are on; the warp error's flows come from FlowNet2 on the ground-truth
RGB frames at the working size (see ``flow_at_resolution``).

Layer 3: nets, inference, metrics, colour; no Hydra, no files (``tcvc.tasks.evaluate`` has those).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tcvc import metrics
from tcvc.color import lab_normalized_to_rgb
from tcvc.inference import Resolution, colorize_frames, network_size, run_at_resolution

__all__ = [
    "GROUND_TRUTH",
    "LOWER_IS_BETTER",
    "METRICS",
    "VIDEO_ONLY_METRICS",
    "flow_at_resolution",
    "gray_rgb",
    "idc_rgb",
    "score_video",
    "tcvc_rgb",
    "to_uint8",
]

METRICS = ("psnr", "ssim", "lpips", "colorfulness", "cdc", "warp_error", "fid")
LOWER_IS_BETTER = frozenset({"lpips", "cdc", "warp_error", "fid"})
# Metrics of one video on its own (the warp error uses gt flows but scores the output alone):
# the ground truth's values are the natural level a method is compared with.
VIDEO_ONLY_METRICS = frozenset({"colorfulness", "cdc", "warp_error"})
GROUND_TRUTH = "gt"
CDC_DILATIONS = (1, 2, 4)


# -- colouring -----------------------------------------------------------------------------------


def to_uint8(rgb: Tensor) -> Tensor:
    """T×3×H×W float RGB in [0, 1] -> T×H×W×3 uint8 on the same device (clipped, rounded)."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must be T×3×H×W, got {tuple(rgb.shape)}")
    return (rgb.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def gray_rgb(L: Tensor) -> Tensor:
    """The gray input as an output: T×1×H×W normalised L -> T×3×H×W RGB in [0, 1] (ab = 0)."""
    return lab_normalized_to_rgb(L, L.new_zeros((L.shape[0], 2, *L.shape[2:])))


def tcvc_rgb(
    net_fn: Callable[[Tensor], Tensor],
    L: Tensor,
    *,
    intervals: Sequence[int],
    resolution: Resolution = 256,
) -> Tensor:
    """TCVC's colours of a whole video: T×1×H×W normalised L -> T×3×H×W RGB in [0, 1].

    net_fn: B×T×1×h×w -> B×T×2×h×w ab/110 (``net.colorize_clip``). One interval is one sampling;
    several are the multi-sampling ensemble (the mean of their RGB results, as the original).
    """
    if not intervals:
        raise ValueError("intervals must name at least one interval")
    total = None
    for interval in intervals:
        ab = colorize_frames(net_fn, L, interval=interval, resolution=resolution)
        rgb = lab_normalized_to_rgb(L, ab)
        total = rgb if total is None else total + rgb
    return total / len(intervals)


def idc_rgb(
    idc: Callable[[Tensor], tuple[Tensor, Tensor]],
    L: Tensor,
    *,
    resolution: Resolution = 256,
    batch_size: int = 8,
) -> Tensor:
    """IDC frame by frame under the same protocol: T×1×H×W normalised L -> T×3×H×W RGB [0, 1].

    idc(L B×1×h×w) -> (ab B×2×h×w, feature); run on ``batch_size`` frames at a time at the
    working ``resolution``, ab upsampled and joined with the full-resolution L.
    """

    def frame_by_frame(clip: Tensor) -> Tensor:
        frames = clip.flatten(0, 1)
        ab = torch.cat(
            [idc(frames[i : i + batch_size])[0] for i in range(0, len(frames), batch_size)]
        )
        return ab.unflatten(0, clip.shape[:2])

    ab = run_at_resolution(frame_by_frame, L[None], resolution=resolution)[0]
    return lab_normalized_to_rgb(L, ab)


def flow_at_resolution(flownet: nn.Module, *, resolution: Resolution = 256) -> metrics.FlowFn:
    """A ``flow_fn`` for ``metrics.warp_error``: FlowNet2 at the working size, flow at full size.

    Frames B×3×H×W RGB in [0, 1] are resized to the working size as L is for the network
    (bilinear; ``"native"``: padded to multiples of 64), FlowNet2 runs there (it takes RGB in
    [0, 1], ``rgb_max = 1``), and the flow is resized back with its u, v scaled by W/w, H/h.
    """

    def flow_fn(frames_a: Tensor, frames_b: Tensor) -> Tensor:
        height, width = frames_a.shape[-2:]
        size = network_size(height, width, resolution)
        if resolution == "native":
            pad = (0, size[1] - width, 0, size[0] - height)
            a, b = (F.pad(x, pad, mode="replicate") for x in (frames_a, frames_b))
            return flownet(a, b)[..., :height, :width].float()
        a, b = (
            F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            for x in (frames_a, frames_b)
        )
        flow = flownet(a, b).float()
        if size == (height, width):
            return flow
        flow = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
        scale = flow.new_tensor([width / size[1], height / size[0]]).view(1, 2, 1, 1)
        return flow * scale

    return flow_fn


# -- scoring -------------------------------------------------------------------------------------


def score_video(
    outputs: Mapping[str, Tensor],
    gt: Tensor,
    *,
    metric_names: Sequence[str] = METRICS,
    flow_fn: metrics.FlowFn | None = None,
    batch_size: int = 8,
) -> dict[str, dict[str, float]]:
    """{output name: {metric: value}} for one video (FID is a data set's, see FrechetDistance).

    outputs: uint8 T×H×W×3 videos, each the size of ``gt`` (uint8 T×H×W×3), on its device; an
        output named ``GROUND_TRUTH`` gets only ``VIDEO_ONLY_METRICS``. Metrics a video is too
        short for (CDC: more than 4 frames; warp error: 2) and the warp error without ``flow_fn``
        are nan.
    """
    unknown = sorted(set(metric_names) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {list(METRICS)}")
    num_frames = gt.shape[0]
    scores: dict[str, dict[str, float]] = {name: {} for name in outputs}
    for name, video in outputs.items():
        compared = name != GROUND_TRUTH
        row = scores[name]
        if compared and "psnr" in metric_names:
            row["psnr"] = metrics.psnr(video, gt, batch_size=4 * batch_size)
        if compared and "ssim" in metric_names:
            row["ssim"] = metrics.ssim(video, gt, batch_size=batch_size)
        if compared and "lpips" in metric_names:
            row["lpips"] = metrics.lpips(video, gt, batch_size=batch_size)
        if "colorfulness" in metric_names:
            row["colorfulness"] = metrics.colorfulness(video, batch_size=4 * batch_size)
        if "cdc" in metric_names:
            row["cdc"] = (
                metrics.cdc(video, dilations=CDC_DILATIONS, batch_size=2 * batch_size)
                if num_frames > max(CDC_DILATIONS)
                else math.nan
            )
    if "warp_error" in metric_names:
        if flow_fn is not None and num_frames >= 2:
            values = metrics.warp_errors(outputs, gt, flow_fn=flow_fn, batch_size=batch_size)
        else:
            values = dict.fromkeys(outputs, math.nan)
        for name, value in values.items():
            scores[name]["warp_error"] = value
    if num_frames <= max(CDC_DILATIONS) and "cdc" in metric_names:
        warnings.warn(
            f"CDC needs more than {max(CDC_DILATIONS)} frames, the video has {num_frames}: nan",
            stacklevel=2,
        )
    return scores
