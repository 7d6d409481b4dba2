"""Scoring a test video: the metrics of every output of one video, and the warp error's flows.

The metrics (``tcvc.metrics``) score uint8 videos on the device they are on; an output named
``GROUND_TRUTH`` is scored only by the metrics of a video on its own (``VIDEO_ONLY_METRICS``),
the natural level the methods are compared with. The warp error's flows come from FlowNet2 on
the ground-truth RGB frames at the working size (``flow_at_resolution``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from tcvc import metrics
from tcvc.inference import Resolution, network_size
from tcvc.inference.resolution import to_network_size

__all__ = [
    "GROUND_TRUTH",
    "LOWER_IS_BETTER",
    "METRICS",
    "VIDEO_ONLY_METRICS",
    "flow_at_resolution",
    "score_video",
]

METRICS = ("psnr", "ssim", "lpips", "colorfulness", "cdc", "warp_error", "fid")
LOWER_IS_BETTER = frozenset({"lpips", "cdc", "warp_error", "fid"})
# Metrics of one video on its own (the warp error uses gt flows but scores the output alone):
# the ground truth's values are the natural level a method is compared with.
VIDEO_ONLY_METRICS = frozenset({"colorfulness", "cdc", "warp_error"})
GROUND_TRUTH = "gt"
CDC_DILATIONS = (1, 2, 4)


def flow_at_resolution(flownet: nn.Module, *, resolution: Resolution = 256) -> metrics.FlowFn:
    """A ``flow_fn`` for ``metrics.warp_error``: FlowNet2 at the working size, flow at full size.

    Frames B×3×H×W RGB in [0, 1] are resized to the working size as L is for the network
    (bilinear; ``"native"``: padded to multiples of 64), FlowNet2 runs there (it takes RGB in
    [0, 1], ``rgb_max = 1``), and the flow is resized back with its u, v scaled by W/w, H/h.
    """

    def flow_fn(frames_a: Tensor, frames_b: Tensor) -> Tensor:
        height, width = frames_a.shape[-2:]
        size = network_size(height, width, resolution)
        a, b = (to_network_size(x, size, resolution) for x in (frames_a, frames_b))
        flow = flownet(a, b).float()
        if resolution == "native":
            return flow[..., :height, :width]
        if size == (height, width):
            return flow
        flow = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
        scale = flow.new_tensor([width / size[1], height / size[0]]).view(1, 2, 1, 1)
        return flow * scale

    return flow_fn


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
