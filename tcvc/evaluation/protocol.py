"""The test protocol: every compared run colours a test video, every output is scored.

What the original test scripts do (``test_TCVC_onesampling.py`` / ``_multisampling.py``): the L
of the ground-truth frames is coloured clip by clip with shared anchors (interval 17: clips
0–18, 18–36, ...) at a 256×256 working size; the ab is upsampled to the frame size and joined
with the full-resolution L (``tcvc.inference.colorize_video`` with ``conf/inference/paper.yaml``).
The baselines run under the same protocol (``tcvc.evaluation.methods``). ``colorize_and_score``
does that for one video; ``mean_scores`` averages the videos (FID: over the data set).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from tcvc.evaluation.methods import Networks, Run, TestVideo
from tcvc.evaluation.scoring import GROUND_TRUTH, score_video
from tcvc.inference import InferenceOptions

__all__ = ["Entry", "colorize_and_score", "mean_scores", "sync"]


@dataclass(frozen=True)
class Entry:
    """A compared run and the method object that produces it."""

    method: object
    run: Run


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (so a timing measures it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def colorize_and_score(
    video: TestVideo,
    entries: Sequence[Entry],
    networks: Networks,
    options: InferenceOptions,
    *,
    metric_names: Sequence[str],
    flow_fn,
    batch_size: int,
    step: Callable[[], None],
    method_under_test: object,
) -> tuple[dict[str, Tensor], dict[str, dict[str, float]], dict[str, float]]:
    """({run name: uint8 T×H×W×3}, {run name: {metric: value}}, timings) of one test video.

    ``inference_s`` times the runs of ``method_under_test``, ``baselines_s`` the others,
    ``metrics_s`` the scoring.
    """
    outputs: dict[str, Tensor] = {}
    timing = {"inference_s": 0.0, "baselines_s": 0.0}
    with torch.no_grad():
        for entry in entries:
            start = time.perf_counter()
            outputs[entry.run.name] = entry.method.colorize(
                entry.run, video, networks, options, batch_size=batch_size, step=step
            )
            sync(options.device)
            key = "inference_s" if entry.method is method_under_test else "baselines_s"
            timing[key] += time.perf_counter() - start
        start = time.perf_counter()
        scores = score_video(
            outputs, video.gt, metric_names=metric_names, flow_fn=flow_fn, batch_size=batch_size
        )
        sync(options.device)
        timing["metrics_s"] = time.perf_counter() - start
    return outputs, scores, timing


def mean_scores(
    videos: Mapping[str, Mapping],
    names: Sequence[str],
    metric_names: Sequence[str],
    *,
    fid=None,
) -> dict[str, dict[str, float]]:
    """{run name: {metric: mean over the videos}}; FID from ``fid`` (a ``FrechetDistance`` fed
    every video) for the coloured runs."""
    mean: dict[str, dict[str, float]] = {}
    for name in names:
        row = {}
        for metric in metric_names:
            if metric == "fid":
                continue
            values = [info["scores"][name].get(metric) for info in videos.values()]
            values = [v for v in values if v is not None]
            if values:
                row[metric] = float(np.mean(values))
        if fid is not None and name != GROUND_TRUTH:
            row["fid"] = fid.distance(name, GROUND_TRUTH) if fid.available else math.nan
        mean[name] = row
    return mean
