"""``colorize_video``: the one path from uint8 frames in to uint8 colour frames out.

eval.py and colorize.py both colour through it, with ``InferenceOptions``:

    frames --frame_to_L--> L --SceneCutDetector--> cuts
    L --ClipStream (one per pass: interval, or interval + each multi offset)--> ab per pass
    (L, ab of every pass) --join_passes (gamut)--> uint8 RGB

The video is read lazily, one frame at a time, and each pass holds one clip, or
``clips_per_batch`` clips coloured in one network call (``ClipStream``), so memory does not grow
with the video's length. ``network_fn`` wraps the network as the passes
call it (flow batch, bf16 autocast, float32 ab).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from tcvc.errors import UserError
from tcvc.inference.clips import ClipStream, KnownCuts, SceneCutDetector, over
from tcvc.inference.guidance import FrameGuidance, carry_guidance, carry_pairs
from tcvc.inference.lightness import frame_to_L
from tcvc.inference.options import InferenceOptions
from tcvc.inference.output import join_passes
from tcvc.nets.hints import Hints

__all__ = ["NetFn", "NetworkFn", "colorize_video", "load_net", "network_fn"]

NetFn = Callable[[Tensor], Tensor]  # B×T×1×h×w normalised L -> B×T×2×h×w ab / 110


def load_net(
    ckpt: str | Path | None,
    *,
    flownet_weights: str | Path | None = None,
    idc_weights: str | Path | None = None,
) -> nn.Module:
    """The ``TCVCNet`` for inference (eval, colorize), in eval mode on the CPU.

    ``ckpt`` is a project ``.ckpt`` / state dict or the original ``80000_G.pth``. A project
    checkpoint of a run with backbones from files stores only the head: the backbones then come
    from ``flownet_weights`` / ``idc_weights`` or the paths the run recorded (see
    ``TCVCNet.from_pretrained``). Raises ``UserError`` when there is no ``ckpt``.
    """
    from tcvc.nets import TCVCNet

    if ckpt is None:
        raise UserError(
            "no weights: set ckpt=PATH (a project .ckpt or the original 80000_G.pth); a network "
            "with random weights gives meaningless colours"
        )
    return TCVCNet.from_pretrained(ckpt, flownet=flownet_weights, idc=idc_weights).eval()


class NetworkFn:
    """``net.colorize_clip`` as the passes call it (``network_fn``): B×T×1×h×w L ->
    B×T×2×h×w float32 ab, under ``options.numerics()``, ``options.flow_batch`` FlowNet2 pairs a
    call; ``guided`` colours one clip with hints on its anchors. ``on_call`` (if given) is
    called after each network call (eval's progress)."""

    def __init__(
        self, net: nn.Module, options: InferenceOptions, *, on_call: Callable[[], None] | None
    ) -> None:
        self.net, self.options, self.on_call = net, options, on_call

    def __call__(self, L: Tensor) -> Tensor:
        with self.options.numerics():
            ab = self.net.colorize_clip(L, flow_batch=self.options.flow_batch).float()
        if self.on_call is not None:
            self.on_call()
        return ab

    @torch.no_grad()
    def guided(
        self,
        L: Tensor,
        *,
        first: tuple[Tensor, Tensor] | None,
        last: tuple[Tensor, Tensor] | None,
        carry: bool,
    ) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        """One clip (L 1×T×1×h×w) with hints on its anchors: ``first`` / ``last`` (ab 2×h×w,
        mask 1×h×w, or None). With ``carry``, ``first`` is carried along the clip's flows to
        frame T − 1 (``carry_guidance``: the flows propagation computes, plus F(T−1, T−2) and
        F(0, 1)) and ``last`` goes over it. Returns the ab (1×T×2×h×w) and the hints the last
        anchor got (carried on to the next clip; None: none)."""
        net, options = self.net, self.options
        num_frames = L.shape[1]
        pairs = net.propagation_pairs(num_frames)
        steps = range(1, num_frames)
        if carry and first is not None:
            pairs = pairs + carry_pairs(steps)
        with options.numerics():
            flows = net.compute_flows(L, pairs, flow_batch=options.flow_batch)
            if carry and first is not None:
                ab, mask = carry_guidance(
                    first[0][None].float(),
                    first[1][None].float(),
                    flows,
                    steps=steps,
                    decay=options.guidance_decay,
                )
                carried = (ab[0], mask[0]) if mask.any() else None
                last = over(last, carried)
            zeros = (L.new_zeros((2, *L.shape[-2:])), L.new_zeros((1, *L.shape[-2:])))
            ends = [first or zeros, last or zeros]
            hints = Hints(
                ab=torch.stack([g[0] for g in ends])[None].to(L.dtype),
                mask=torch.stack([g[1] for g in ends])[None].to(L.dtype),
            )
            ab = net.propagate(L, flows, anchor_hints=hints).float()
        if self.on_call is not None:
            self.on_call()
        return ab, last


def network_fn(
    net: nn.Module, options: InferenceOptions, *, on_call: Callable[[], None] | None = None
) -> NetworkFn:
    """``net`` as the passes call it (``NetworkFn``), set up as ``options`` say: FlowNet2 in
    float32 with ``options.flownet_fp32`` (it sets ``net.flownet_fp32``); the heads and IDC in
    channels-last layout with ``options.channels_last``; the head's recurrent step compiled in
    ``options.compile``'s mode (the step's shapes are fixed within a video)."""
    net.flownet_fp32 = options.flownet_fp32
    if options.compile is not None:
        net.compile_for_inference(modules=("head",), mode=options.compile, dynamic=False)
    # the heads' and IDC's convolutions in NHWC (faster convolutions on tensor cores); the
    # network's outputs are the same up to float round-off (FlowNet2's ops take any layout)
    layout = torch.channels_last if options.channels_last else torch.contiguous_format
    for name in ("head", "idc"):
        module = getattr(net, name, None)
        if module is not None:
            module.to(memory_format=layout)
    return NetworkFn(net, options, on_call=on_call)


def colorize_video(
    net_fn: NetFn,
    frames: Iterable[np.ndarray | Tensor],
    options: InferenceOptions,
    *,
    intervals: Iterable[int] | None = None,
    detector: SceneCutDetector | KnownCuts | None = None,
    starts_at_shared_anchor: bool = False,
    saturation: float = 1.0,
    side_by_side: bool = False,
    guidance: Mapping[int, FrameGuidance] | None = None,
) -> Iterator[Tensor]:
    """Colour a stream of frames: H×W×3 uint8 in, H×W×3 uint8 RGB tensors on
    ``options.device`` out, one per frame, in order.

    Args:
        net_fn: B×T×1×h×w -> B×T×2×h×w (``network_fn(net, options)``, on ``options.device``).
        frames: H×W×3 uint8 RGB frames (a ``VideoReader``, a tensor); read lazily.
        options: interval and sampling, resolution, gamut, lightness, scene cuts, device.
        intervals: the passes of this run (default ``options.intervals``: one run); several are
            averaged (``join_passes``). The passes run side by side on the same stream.
        detector: a ``SceneCutDetector`` to use (its ``cuts`` record what was found), or the
            ``KnownCuts`` of a scan; default a detector with ``options.scene_cut_threshold``.
            A cut starts new clips in every pass.
        starts_at_shared_anchor: the first frame is the last anchor of clips coloured before
            (a segment of a video, ``tcvc.inference.segments``): it anchors the first clips and
            is not yielded.
        saturation: the chroma gain on the predicted ab (``join_passes``).
        side_by_side: yield H×2W×3 frames, the input's L as gray on the left (ab = 0, what the
            network sees), the colour frame on the right.
        guidance: colour hints by frame index (counted in ``frames``; ``FrameGuidance`` at the
            frame size, ``tcvc.inference.guidance``): a guided frame is an anchor of every pass,
            IDC gets its hints, and with ``options.guidance_carry`` they are carried along the
            shot (``ClipStream``). ``net_fn`` must then be a ``NetworkFn``.

    Yields:
        H×W×3 uint8 RGB tensors, one per input frame (but the first, with
        ``starts_at_shared_anchor``).
    """
    intervals = tuple(options.intervals if intervals is None else intervals)
    if not intervals:
        raise ValueError("need at least one interval")
    if detector is None:
        detector = SceneCutDetector(threshold=options.scene_cut_threshold)
    passes = [
        ClipStream(
            net_fn,
            interval=i,
            resolution=options.resolution,
            clips_per_batch=options.clips_per_batch,
            starts_at_shared_anchor=starts_at_shared_anchor,
            carry=options.guidance_carry,
        )
        for i in intervals
    ]
    guidance = guidance or {}
    # working-size ab each pass has finished, by frame index, until every pass has the frame
    finished: list[dict[int, Tensor]] = [{} for _ in passes]
    lightness: dict[int, Tensor] = {}
    next_out = 1 if starts_at_shared_anchor else 0

    def collect(index: int, L: Tensor, ab: Tensor, which: int) -> None:
        lightness.setdefault(index, L)
        finished[which][index] = ab

    def ready() -> Iterator[Tensor]:
        nonlocal next_out
        while all(next_out in done for done in finished):
            L = lightness.pop(next_out)
            abs_ = [
                stream.frame_ab(done.pop(next_out))
                for stream, done in zip(passes, finished, strict=True)
            ]
            colour = join_passes(L, abs_, gamut=options.gamut, saturation=saturation)
            if side_by_side:
                gray = join_passes(L, [torch.zeros_like(abs_[0])], gamut=options.gamut)
                colour = torch.cat([gray, colour], dim=1)
            yield colour
            next_out += 1

    for index, frame in enumerate(frames):
        L = frame_to_L(frame, lightness=options.lightness, device=options.device)
        cut = detector(index, L)
        guide = guidance.get(index)
        for which, stream in enumerate(passes):
            for done in stream.push(L, cut=cut, guide=guide):
                collect(*done, which)
        yield from ready()
    for which, stream in enumerate(passes):
        for done in stream.finish():
            collect(*done, which)
    yield from ready()
