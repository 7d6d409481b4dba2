"""Inference helpers: running the network on videos of any size.

TCVCNet needs H and W that are multiples of 64 (FlowNet2). ``run_at_resolution`` runs it either
at a fixed working resolution (the original test scripts: L resized to 256×256, whatever the
aspect ratio) or at the video's own resolution padded to multiples of 64, and returns ab at the
full frame size. As in the original, the result is joined with the *full-resolution* L, e.g.

    ab = run_at_resolution(net.colorize_clip, L, resolution=256)
    rgb = tcvc.color.lab_normalized_to_rgb(L, ab)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from kornia.color import lab_to_rgb
from torch import Tensor

from tcvc.color import (
    AB_SCALE,
    L_CENTER,
    L_SCALE,
    gray_to_L,
    lab_normalized_to_rgb,
    rgb_float_to_uint8,
    rgb_to_lab_normalized,
    rgb_uint8_to_float,
)

__all__ = [
    "Resolution",
    "SceneCutDetector",
    "anchor_clips",
    "colorize_frames",
    "colorize_stream",
    "frame_to_L",
    "is_gray_frame",
    "lab_to_rgb_in_gamut",
    "network_size",
    "run_at_resolution",
    "stream_ab",
]

Resolution = Literal["native"] | int | tuple[int, int]
SIZE_MULTIPLE = 64  # FlowNet2's


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def network_size(height: int, width: int, resolution: Resolution) -> tuple[int, int]:
    """The H×W the network runs at for a height×width video.

    ``"native"``: the frame size rounded up to multiples of 64 (padding, no resizing);
    ``n``: n×n; ``(h, w)``: h×w. Fixed sizes must be positive multiples of 64.
    """
    if resolution == "native":
        return _round_up(height, SIZE_MULTIPLE), _round_up(width, SIZE_MULTIPLE)
    size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if (
        len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in size)
        or any(s <= 0 or s % SIZE_MULTIPLE for s in size)
    ):
        raise ValueError(
            f"resolution must be 'native', an int or (h, w), positive multiples of "
            f"{SIZE_MULTIPLE}; got {resolution!r}"
        )
    return size


def run_at_resolution(
    net_fn: Callable[[Tensor], Tensor], L: Tensor, *, resolution: Resolution = 256
) -> Tensor:
    """ab at the frame size, from the network run at a working resolution.

    Args:
        net_fn: B×T×1×h×w normalised L -> B×T×2×h×w ab / 110 (``net.colorize_clip`` or ``net``).
        L: B×T×1×H×W normalised L, (L − 50) / 100, at the full frame size.
        resolution: ``256`` (default, the original's), any n or (h, w) multiple of 64: L is resized
            bilinearly (align_corners=False, no antialiasing, as the original) and ab is resized
            back; ``"native"``: L is padded at the bottom and right by edge replication to
            multiples of 64 and ab is cropped back (no resampling at all).

    Returns:
        B×T×2×H×W ab / 110, to join with the full-resolution L.
    """
    if L.dim() != 5 or L.shape[2] != 1:
        raise ValueError(f"L must be B×T×1×H×W, got shape {tuple(L.shape)}")
    batch, num_frames, _, height, width = L.shape
    size = network_size(height, width, resolution)
    frames = L.flatten(0, 1)
    if resolution == "native":
        padded = F.pad(frames, (0, size[1] - width, 0, size[0] - height), mode="replicate")
        ab = _call(net_fn, padded, batch, num_frames, size)
        return ab[..., :height, :width]
    resized = F.interpolate(frames, size=size, mode="bilinear", align_corners=False)
    ab = _call(net_fn, resized, batch, num_frames, size)
    if size == (height, width):
        return ab
    return F.interpolate(
        ab.flatten(0, 1), size=(height, width), mode="bilinear", align_corners=False
    ).unflatten(0, (batch, num_frames))


def _call(
    net_fn: Callable[[Tensor], Tensor],
    frames: Tensor,
    batch: int,
    num_frames: int,
    size: tuple[int, int],
) -> Tensor:
    ab = net_fn(frames.unflatten(0, (batch, num_frames)))
    expected = (batch, num_frames, 2, *size)
    if tuple(ab.shape) != expected:
        raise ValueError(f"net_fn returned ab of shape {tuple(ab.shape)}, expected {expected}")
    return ab


def anchor_clips(num_frames: int, interval: int, *, cuts: Iterable[int] = ()) -> list[range]:
    """The clips a video of ``num_frames`` is coloured in: ``interval`` frames between anchors.

    Consecutive clips share their anchor frame (the original test protocol: interval 17 gives
    clips 0–18, 18–36, ...). A cut at frame c (the first frame of a new shot) ends the clip
    before it: clips never span a cut, and the shots do not share an anchor. The last clip of
    a shot is shorter when the frames run out; a one-frame shot is a one-frame clip.

    Returns:
        ranges of frame indices; together they cover 0 … num_frames − 1, each frame once except
        the shared anchors.
    """
    if num_frames < 0 or interval < 1:
        raise ValueError(f"need num_frames ≥ 0 and interval ≥ 1, got {num_frames}, {interval}")
    bounds = sorted({0, *(int(c) for c in cuts if 0 < int(c) < num_frames), num_frames})
    clips = []
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        first = start
        while True:
            last = min(first + interval + 1, stop - 1)
            clips.append(range(first, last + 1))
            if last == stop - 1:
                break
            first = last
    return clips


def colorize_frames(
    net_fn: Callable[[Tensor], Tensor],
    L: Tensor,
    *,
    interval: int = 17,
    resolution: Resolution = 256,
    cuts: Iterable[int] = (),
) -> Tensor:
    """ab of a whole (in-memory) video, clip by clip with shared anchors (``anchor_clips``).

    The same code path as streaming (``stream_ab``, which ``colorize.py`` uses), over the frames
    of a tensor: ``eval.py`` and ``colorize.py`` colour a video identically.

    Args:
        net_fn: B×T×1×h×w -> B×T×2×h×w (``net.colorize_clip``), T ≥ 2.
        L: T×1×H×W normalised L of the video, at full size.
        interval, cuts: see ``anchor_clips``; resolution: see ``run_at_resolution``.

    Returns:
        T×2×H×W ab / 110. A shared anchor takes the ab of the clip it ends (both clips give IDC's
        ab for it). A one-frame shot is coloured as a two-frame clip of that frame repeated.
    """
    if L.dim() != 4 or L.shape[1] != 1:
        raise ValueError(f"L must be T×1×H×W, got shape {tuple(L.shape)}")
    if L.shape[0] == 0:
        return L.new_zeros((0, 2, *L.shape[-2:]))
    frames = stream_ab(net_fn, L, interval=interval, resolution=resolution, cuts=cuts)
    return torch.stack([ab for _, ab in frames])


# ---- streaming: videos of any length in constant memory ------------------------------------------

Cuts = Callable[[int, Tensor], bool] | Iterable[int]


def _to_network_size(L: Tensor, size: tuple[int, int], resolution: Resolution) -> Tensor:
    """One frame's 1×H×W L at the working size, exactly as ``run_at_resolution`` prepares it."""
    height, width = L.shape[-2:]
    if resolution == "native":
        return F.pad(L[None], (0, size[1] - width, 0, size[0] - height), mode="replicate")[0]
    return F.interpolate(L[None], size=size, mode="bilinear", align_corners=False)[0]


def _to_frame_size(ab: Tensor, height: int, width: int, resolution: Resolution) -> Tensor:
    """One frame's 2×h×w ab back at the frame size, exactly as ``run_at_resolution`` returns it."""
    if resolution == "native":
        return ab[..., :height, :width]
    if tuple(ab.shape[-2:]) == (height, width):
        return ab
    return F.interpolate(ab[None], size=(height, width), mode="bilinear", align_corners=False)[0]


class SceneCutDetector:
    """Decides, as frames arrive, whether a frame starts a new shot (a hard cut).

    The score of frame t is the mean absolute difference between the L of frames t − 1 and t,
    both area-averaged to ``size``×``size`` (so noise and small motion average out), in units of
    L*/100: 0 for equal frames, 1 between black and white. A frame whose score exceeds
    ``threshold`` is a cut. Within a shot, motion scores about 0.01–0.05; cuts between unrelated
    shots typically 0.1–0.4. ``threshold`` None or 0 disables detection.

    ``detector(t, L)`` (L: 1×H×W normalised L of frame t, frames in order) -> bool, so it plugs
    into ``stream_ab(cuts=...)``; ``cuts`` lists the cuts seen so far, ``scores`` keeps nothing
    beyond the last frame (constant memory).
    """

    def __init__(self, *, threshold: float | None, size: int = 32) -> None:
        if threshold is not None and threshold < 0:
            raise ValueError(f"scene_cut_threshold must be ≥ 0 or None, got {threshold}")
        self.threshold = threshold or None
        self.size = size
        self.cuts: list[int] = []
        self._previous: Tensor | None = None

    def score(self, L: Tensor) -> float | None:
        """The score of ``L`` (1×H×W) against the previous frame given; None for the first."""
        small = F.adaptive_avg_pool2d(L.float()[None], self.size)[0]
        previous, self._previous = self._previous, small
        return None if previous is None else float((small - previous).abs().mean())

    def __call__(self, index: int, L: Tensor) -> bool:
        if self.threshold is None:
            return False
        score = self.score(L)
        is_cut = score is not None and score > self.threshold
        if is_cut:
            self.cuts.append(index)
        return is_cut


class _ClipStream:
    """One pass of ``anchor_clips`` over frames pushed one at a time (see ``stream_ab``).

    Holds the current clip's L at the working size and the full-size L of its frames not yet
    returned: at most ``interval + 2`` frames of each, whatever the video's length.
    """

    def __init__(
        self, net_fn: Callable[[Tensor], Tensor], *, interval: int, resolution: Resolution
    ) -> None:
        if interval < 1:
            raise ValueError(f"need interval ≥ 1, got {interval}")
        self.net_fn = net_fn
        self.interval = interval
        self.resolution = resolution
        self.size: tuple[int, int] | None = None
        self.frame_size: tuple[int, int] | None = None
        self.work: list[Tensor] = []  # the clip so far, working size
        self.full: list[tuple[int, Tensor]] = []  # (index, full-size L) of frames not yet returned
        self.shares_anchor = False  # work[0] is the previous clip's last frame, already returned
        self.next_index = 0

    def push(self, L: Tensor, *, cut: bool) -> list[tuple[int, Tensor, Tensor]]:
        """Add the next frame (1×H×W); returns (index, full-size L, working-size ab) of the
        frames a completed clip coloured, in order (``frame_ab`` brings ab to the frame size)."""
        if L.dim() != 3 or L.shape[0] != 1:
            raise ValueError(f"a frame's L must be 1×H×W, got shape {tuple(L.shape)}")
        if self.frame_size is None:
            self.frame_size = (L.shape[1], L.shape[2])
            self.size = network_size(*self.frame_size, self.resolution)
        elif tuple(L.shape[1:]) != self.frame_size:
            raise ValueError(
                f"frame {self.next_index} is {tuple(L.shape[1:])}, the first was {self.frame_size}"
            )
        done = []
        if cut and self.next_index > 0:
            done += self._run()
            self.work, self.shares_anchor = [], False
        self.work.append(_to_network_size(L, self.size, self.resolution))
        self.full.append((self.next_index, L))
        self.next_index += 1
        if len(self.work) == self.interval + 2:
            done += self._run()
            self.work, self.shares_anchor = self.work[-1:], True  # the next clip's first anchor
        return done

    def finish(self) -> list[tuple[int, Tensor, Tensor]]:
        """The frames of the last, shorter clip."""
        done = self._run()
        self.work, self.shares_anchor = [], False
        return done

    def _run(self) -> list[tuple[int, Tensor, Tensor]]:
        if not self.full:  # nothing new: the clip is only the anchor already returned
            return []
        frames = torch.stack(self.work)
        if len(frames) == 1:  # a one-frame shot: a two-frame clip of that frame repeated
            frames = frames.expand(2, -1, -1, -1)
        ab = _call(self.net_fn, frames, 1, len(frames), self.size)[0]
        ab = ab[1:] if self.shares_anchor else ab
        done = [(index, L, ab[k]) for k, (index, L) in enumerate(self.full)]
        self.full = []
        return done

    def frame_ab(self, ab: Tensor) -> Tensor:
        """A returned 2×h×w ab at the frame size (done frame by frame: a clip of full-size ab
        at once would cost interval + 2 frames of it)."""
        return _to_frame_size(ab, *self.frame_size, self.resolution)


def stream_ab(
    net_fn: Callable[[Tensor], Tensor],
    frames: Iterable[Tensor],
    *,
    interval: int = 17,
    resolution: Resolution = 256,
    cuts: Cuts = (),
) -> Iterator[tuple[Tensor, Tensor]]:
    """ab of a stream of frames, clip by clip with shared anchors, in constant memory.

    The clips are ``anchor_clips(num_frames, interval, cuts=...)``'s, found as the frames arrive:
    frames are read from ``frames`` one at a time; when a clip of ``interval + 2`` frames is
    complete (or a cut or the end arrives) it is coloured at the working ``resolution``
    (``run_at_resolution``'s resizing or padding, frame by frame) and its frames are yielded.
    Only one clip of L at the working size and the full-size L of frames not yet yielded are
    held. ``colorize_frames`` is this over the frames of a tensor.

    Args:
        net_fn: B×T×1×h×w -> B×T×2×h×w (``net.colorize_clip``).
        frames: 1×H×W normalised L of each frame, in order (any iterable; a generator is read
            lazily).
        interval: frames between anchors (``anchor_clips``); resolution: see
            ``run_at_resolution``.
        cuts: frame indices that start a new shot, or a function ``cut(t, L)`` -> bool called
            once per frame in order (``SceneCutDetector``), decided before that frame's clip runs.

    Yields:
        (L 1×H×W, ab 2×H×W ab / 110) per frame, in order. A shared anchor takes the ab of the
        clip it ends; a one-frame shot is coloured as a two-frame clip of that frame repeated.
    """
    if callable(cuts):
        is_cut = cuts
    else:
        cut_set = frozenset(int(c) for c in cuts)

        def is_cut(index: int, _L: Tensor) -> bool:
            return index in cut_set

    stream = _ClipStream(net_fn, interval=interval, resolution=resolution)
    for index, L in enumerate(frames):
        for _, L_done, ab in stream.push(L, cut=bool(is_cut(index, L))):
            yield L_done, stream.frame_ab(ab)
    for _, L_done, ab in stream.finish():
        yield L_done, stream.frame_ab(ab)


# ---- frames in, frames out ---------------------------------------------------------------------

InputKind = Literal["auto", "gray", "color"]
Gamut = Literal["keep_luminance", "clip"]
_GAMUT_TOLERANCE = 1e-4


def is_gray_frame(frame: np.ndarray | Tensor) -> bool:
    """True when an H×W×3 frame has three equal channels (a gray frame as readers give it)."""
    frame = torch.as_tensor(frame)
    return bool((frame[..., 0] == frame[..., 1]).all() and (frame[..., 1] == frame[..., 2]).all())


def frame_to_L(
    frame: np.ndarray | Tensor, *, gray: bool, device: torch.device | str | None = None
) -> Tensor:
    """An H×W×3 uint8 RGB frame -> 1×H×W normalised L on ``device``.

    ``gray``: the frame's (first) channel is taken as L/100, the original's rule for inputs
    without colour (``gray_to_L``); otherwise the L of the frame's Lab (the colour is dropped).
    """
    rgb = torch.as_tensor(frame).to(device)
    if rgb.dtype != torch.uint8 or rgb.dim() != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected an H×W×3 uint8 frame, got {tuple(rgb.shape)} {rgb.dtype}")
    if gray:
        return gray_to_L(rgb[None, :, :, 0].float() / 255.0)
    L, _ = rgb_to_lab_normalized(rgb_uint8_to_float(rgb))
    return L


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


def colorize_stream(
    net_fn: Callable[[Tensor], Tensor],
    frames: Iterable[np.ndarray | Tensor],
    *,
    interval: int | Sequence[int] = 17,
    resolution: Resolution = 256,
    scene_cut_threshold: float | None = None,
    input_kind: InputKind = "auto",
    gamut: Gamut = "keep_luminance",
    device: torch.device | str | None = None,
    detector: SceneCutDetector | None = None,
) -> Iterator[np.ndarray]:
    """Colour a stream of frames: H×W×3 uint8 in, H×W×3 uint8 RGB out, one by one, in order.

    The network sees each clip at ``resolution`` (``stream_ab``); its ab is joined with the
    frame's own full-size L, so the output's lightness is the input's.

    Args:
        net_fn: B×T×1×h×w -> B×T×2×h×w (``net.colorize_clip``, on ``device``).
        frames: H×W×3 uint8 RGB frames (``VideoReader``); read lazily, one at a time.
        interval: frames between anchors; a sequence (e.g. ``(17, 19)``, the paper's
            multi-sampling) colours the video once per interval and averages the RGB results.
            The passes run side by side on the same stream (memory: a clip per pass).
        scene_cut_threshold: ``SceneCutDetector``'s threshold (None / 0: no detection); a cut
            starts new clips in every pass, so colours do not carry across shots.
        input_kind: "gray": L = first channel / 100·100 (the original's reading of gray
            frames); "color": L of the frame's Lab; "auto": gray when the first frame's three
            channels are equal.
        gamut: "keep_luminance": out-of-gamut colours lose chroma, not lightness
            (``lab_to_rgb_in_gamut``); "clip": RGB clipped to [0, 1] (the original's output).
        device: where L, ab and the RGB conversions live (the network's device).
        detector: a ``SceneCutDetector`` to use (its ``cuts`` record what was found); default
            one from ``scene_cut_threshold``.

    Yields:
        H×W×3 uint8 RGB numpy frames, one per input frame.
    """
    if input_kind not in ("auto", "gray", "color"):
        raise ValueError(f"input_kind must be 'auto', 'gray' or 'color', got {input_kind!r}")
    if gamut not in ("keep_luminance", "clip"):
        raise ValueError(f"gamut must be 'keep_luminance' or 'clip', got {gamut!r}")
    intervals = (interval,) if isinstance(interval, int) else tuple(interval)
    if not intervals:
        raise ValueError("need at least one interval")
    if detector is None:
        detector = SceneCutDetector(threshold=scene_cut_threshold)
    passes = [_ClipStream(net_fn, interval=i, resolution=resolution) for i in intervals]
    # working-size ab each pass has finished, by frame index, until every pass has the frame
    finished: list[dict[int, Tensor]] = [{} for _ in passes]
    lightness: dict[int, Tensor] = {}
    next_out = 0
    gray = None if input_kind == "auto" else input_kind == "gray"

    def collect(index: int, L: Tensor, ab: Tensor, which: int) -> None:
        lightness.setdefault(index, L)
        finished[which][index] = ab

    def ready() -> Iterator[np.ndarray]:
        nonlocal next_out
        while all(next_out in done for done in finished):
            L = lightness.pop(next_out)
            abs_ = [
                stream.frame_ab(done.pop(next_out))
                for stream, done in zip(passes, finished, strict=True)
            ]
            yield rgb_float_to_uint8(_join(L, abs_, gamut=gamut))
            next_out += 1

    for index, frame in enumerate(frames):
        if gray is None:
            gray = is_gray_frame(frame)
        L = frame_to_L(frame, gray=gray, device=device)
        cut = detector(index, L)
        for which, stream in enumerate(passes):
            for done in stream.push(L, cut=cut):
                collect(*done, which)
        yield from ready()
    for which, stream in enumerate(passes):
        for done in stream.finish():
            collect(*done, which)
    yield from ready()


def _join(L: Tensor, abs_: Sequence[Tensor], *, gamut: Gamut) -> Tensor:
    """L 1×H×W and one ab 2×H×W per pass -> RGB 3×H×W in [0, 1] (passes averaged in RGB)."""
    to_rgb = lab_to_rgb_in_gamut if gamut == "keep_luminance" else lab_normalized_to_rgb
    rgb = [to_rgb(L, ab.to(L.dtype)) for ab in abs_]
    if len(rgb) == 1:
        return rgb[0]
    mean = torch.stack(rgb).mean(dim=0)
    if gamut == "clip":
        return mean
    # the mean of colours of one L has a slightly different L: put the input's back
    _, ab = rgb_to_lab_normalized(mean)
    return lab_to_rgb_in_gamut(L, ab)
