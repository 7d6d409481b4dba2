"""The methods eval.py compares: config objects (``_target_``) that colour a test video.

``conf/method/{tcvc,idc}.yaml`` choose the method under test (``method=idc``: IDC alone);
``eval.baselines`` name further ones from ``conf/eval.yaml``'s ``methods``. Each method:

- ``load(weights)`` -> ``Networks`` (the method under test loads what it and the baselines use);
- ``runs(options)`` -> its ``Run``s (TCVC: one per interval of a sweep; the others: one);
- ``steps(run, num_frames, options, batch_size)``: network calls, for the progress bar;
- ``colorize(run, video, networks, options, batch_size, step)`` -> T×H×W×3 uint8 on the device.

Every output is joined with the video's L by ``tcvc.inference.join_passes`` (the same gamut
arithmetic for TCVC, IDC and the gray input).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from tcvc.color import rgb_to_lab_normalized, rgb_uint8_to_float
from tcvc.errors import UserError
from tcvc.evaluation.scoring import GROUND_TRUTH
from tcvc.inference import (
    FrameGuidance,
    InferenceOptions,
    anchor_clips,
    colorize_video,
    join_passes,
    load_net,
    network_fn,
    run_at_resolution,
)
from tcvc.inference.resolution import Resolution

__all__ = [
    "TCVC",
    "GrayInput",
    "GroundTruth",
    "IDCFrames",
    "Networks",
    "Run",
    "TestVideo",
    "Weights",
    "idc_ab",
]


@dataclass(frozen=True)
class Weights:
    """The weight files given: ``ckpt`` and the model config's backbone files."""

    ckpt: str | Path | None = None
    flownet: str | Path | None = None
    idc: str | Path | None = None


@dataclass
class Networks:
    """The networks of an evaluation, in eval mode on its device (None: not available)."""

    tcvc: nn.Module | None = None
    idc: nn.Module | None = None
    flownet: nn.Module | None = None

    def to(self, device: torch.device) -> Networks:
        for module in (self.tcvc, self.idc, self.flownet):
            if module is not None:
                module.to(device).eval()
        return self


@dataclass(frozen=True)
class Run:
    """One scored output of a method: its key in metrics.json, its label in tables and plots,
    and (TCVC) the intervals of its passes."""

    name: str
    label: str
    intervals: tuple[int, ...] = field(default=())


@dataclass
class TestVideo:
    """A test video: its name, ground truth T×H×W×3 uint8 and normalised L T×1×H×W, on the
    evaluation's device."""

    name: str
    gt: Tensor
    L: Tensor


Step = Callable[[], None]


REFERENCES = ("first", "first_last")


class TCVC:
    """TCVC through ``tcvc.inference.colorize_video``: clips with shared anchors, one pass or
    the multi-sampling ensemble, one run per interval of ``inference.interval``.

    ``references``: the exemplar protocols, each test video's ground-truth colours given as
    references (dense hints for IDC on that anchor, carried along the video): ``first`` (frame
    0, ColorMNet's protocol), ``first_last`` (frames 0 and T − 1, BiSTNet's); None: automatic.
    """

    def __init__(self, *, references: str | None = None) -> None:
        if references is not None and references not in REFERENCES:
            raise UserError(
                f"references must be one of {', '.join(REFERENCES)} or null, got {references!r}"
            )
        self.references = references

    def load(self, weights: Weights) -> Networks:
        net = load_net(weights.ckpt, flownet_weights=weights.flownet, idc_weights=weights.idc)
        return Networks(tcvc=net, idc=net.idc, flownet=net.flownet)

    def runs(self, options: InferenceOptions) -> list[Run]:
        return [
            Run(
                name="tcvc_" + "+".join(map(str, intervals)) + self._suffix(),
                label=f"TCVC (interval {'+'.join(map(str, intervals))}{self._given()})",
                intervals=intervals,
            )
            for intervals in options.runs
        ]

    def steps(self, run: Run, num_frames: int, options: InferenceOptions, batch_size: int) -> int:
        return sum(len(anchor_clips(num_frames, interval)) for interval in run.intervals)

    def colorize(self, run, video, networks, options, *, batch_size, step) -> Tensor:
        if networks.tcvc is None:
            raise UserError("the TCVC method needs the TCVC network: method=tcvc and ckpt=")
        net_fn = network_fn(networks.tcvc, options, on_call=step)
        frames = colorize_video(
            net_fn, video.gt, options, intervals=run.intervals, guidance=self.guidance(video)
        )
        return torch.stack(list(frames))

    def guidance(self, video: TestVideo) -> dict[int, FrameGuidance]:
        """The ground truth's ab as dense hints on the reference frames (none: automatic)."""
        if self.references is None:
            return {}
        last = len(video.gt) - 1
        frames = [0] if self.references == "first" else sorted({0, last})
        guidance = {}
        for index in frames:
            _, ab = rgb_to_lab_normalized(rgb_uint8_to_float(video.gt[index : index + 1]))
            mask = torch.ones_like(ab[0, :1])
            guidance[index] = FrameGuidance(ab=ab[0], mask=mask, source=f"{video.name} {index}")
        return guidance

    def _suffix(self) -> str:
        return "" if self.references is None else f"_ref_{self.references}"

    def _given(self) -> str:
        given = {"first": "first frame given", "first_last": "first and last frames given"}
        return "" if self.references is None else f", {given[self.references]}"


def idc_ab(
    idc: nn.Module, L: Tensor, *, resolution: Resolution = 256, batch_size: int = 8, step=None
) -> Tensor:
    """IDC frame by frame under the protocol: T×1×H×W normalised L -> T×2×H×W ab / 110 at the
    frame size (run on ``batch_size`` frames at a time at the working ``resolution``)."""

    def frame_by_frame(clip: Tensor) -> Tensor:
        frames = clip.flatten(0, 1)
        parts = []
        for start in range(0, len(frames), batch_size):
            parts.append(idc(frames[start : start + batch_size])[0].float())
            if step is not None:
                step()
        return torch.cat(parts).unflatten(0, clip.shape[:2])

    return run_at_resolution(frame_by_frame, L[None], resolution=resolution)[0]


def _join(L: Tensor, ab: Tensor, options: InferenceOptions) -> Tensor:
    """T×1×H×W L and T×2×H×W ab -> T×H×W×3 uint8, frame by frame through ``join_passes``."""
    return torch.stack([join_passes(L[t], [ab[t]], gamut=options.gamut) for t in range(len(L))])


class IDCFrames:
    """IDC alone, frame by frame at the working size (the image colouriser TCVC starts from).

    As the method under test (``method=idc``) its weights are ``model.idc_weights`` *or*
    ``ckpt`` (any file that holds IDC: ``siggraph17-df00044c.pth``, ``80000_G.pth``, a full
    project checkpoint), not both; FlowNet2 for the warp error from ``model.flownet_weights``,
    or ``ckpt`` when it holds one (else the warp error is skipped).
    """

    def load(self, weights: Weights) -> Networks:
        from tcvc.nets.checkpoints import load_backbone
        from tcvc.nets.flownet2 import FlowNet2
        from tcvc.nets.idc import IDC

        if weights.ckpt and weights.idc:
            raise UserError(
                f"method=idc takes its IDC weights from ckpt={weights.ckpt} or from "
                f"model.idc_weights={weights.idc}, not both"
            )
        if not (weights.ckpt or weights.idc):
            raise UserError(
                "method=idc needs IDC weights: model.idc_weights=siggraph17-df00044c.pth, or "
                "ckpt= a file that holds them (80000_G.pth, a full project checkpoint)"
            )
        idc = load_backbone(weights.ckpt or weights.idc, "idc", IDC())
        flownet = None
        if weights.flownet:
            flownet = load_backbone(weights.flownet, "flownet", FlowNet2())
        elif weights.ckpt:
            flownet = load_backbone(weights.ckpt, "flownet", FlowNet2(), required=False)
        return Networks(idc=idc, flownet=flownet)

    def runs(self, options: InferenceOptions) -> list[Run]:
        return [Run(name="idc", label="IDC")]

    def steps(self, run: Run, num_frames: int, options: InferenceOptions, batch_size: int) -> int:
        return math.ceil(num_frames / batch_size)

    def colorize(self, run, video, networks, options, *, batch_size, step) -> Tensor:
        if networks.idc is None:
            raise UserError("the IDC baseline needs IDC weights (model.idc_weights=...)")
        with options.numerics():
            ab = idc_ab(
                networks.idc,
                video.L,
                resolution=options.resolution,
                batch_size=batch_size,
                step=step,
            )
        return _join(video.L, ab.float(), options)


class GrayInput:
    """The gray input itself as an output (ab = 0): the floor every colouriser must beat."""

    def load(self, weights: Weights) -> Networks:
        raise UserError("the gray input is a baseline, not a method to evaluate")

    def runs(self, options: InferenceOptions) -> list[Run]:
        return [Run(name="gray", label="gray")]

    def steps(self, run: Run, num_frames: int, options: InferenceOptions, batch_size: int) -> int:
        return 0

    def colorize(self, run, video, networks, options, *, batch_size, step) -> Tensor:
        return _join(video.L, torch.zeros_like(video.L).expand(-1, 2, -1, -1), options)


class GroundTruth:
    """The ground truth as an output, scored only by the metrics of a video on its own
    (colourfulness, CDC, warp error): the natural level of those."""

    def load(self, weights: Weights) -> Networks:
        raise UserError("the ground truth is a baseline, not a method to evaluate")

    def runs(self, options: InferenceOptions) -> list[Run]:
        return [Run(name=GROUND_TRUTH, label="ground truth")]

    def steps(self, run: Run, num_frames: int, options: InferenceOptions, batch_size: int) -> int:
        return 0

    def colorize(self, run, video, networks, options, *, batch_size, step) -> Tensor:
        return video.gt
