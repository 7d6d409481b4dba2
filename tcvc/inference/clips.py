"""Clips with shared anchors: which frames are coloured together, found as frames arrive.

A video is coloured clip by clip: ``interval`` frames between two anchors, consecutive clips
sharing their anchor frame (the original test protocol), no clip spanning a scene cut.
``anchor_clips`` lists the clips of a video of known length; ``ClipStream`` finds them in a stream
of frames and runs the network on each, holding one clip at a time; ``stream_ab`` and
``colorize_frames`` are that over an iterable and over a tensor; ``SceneCutDetector`` finds the
cuts as the frames arrive.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tcvc.inference.guidance import FrameGuidance, guidance_at_network_size
from tcvc.inference.resolution import (
    Resolution,
    call_network,
    network_size,
    to_frame_size,
    to_network_size,
)

__all__ = [
    "ClipStream",
    "Cuts",
    "KnownCuts",
    "SceneCutDetector",
    "anchor_clips",
    "colorize_frames",
    "stream_ab",
]


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
    for start, stop in itertools.pairwise(bounds):
        first = start
        while True:
            last = min(first + interval + 1, stop - 1)
            clips.append(range(first, last + 1))
            if last == stop - 1:
                break
            first = last
    return clips


Cuts = Callable[[int, Tensor], bool] | Iterable[int]


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


class KnownCuts:
    """Cuts known in advance (a scan of the whole video: ``tcvc.inference.segments``), asked
    like a ``SceneCutDetector``: ``known(t, L)`` -> whether frame t starts a new shot; ``cuts``
    lists those met so far, as the detector's does."""

    def __init__(self, cuts: Iterable[int]) -> None:
        self.known = frozenset(int(c) for c in cuts)
        self.cuts: list[int] = []

    def __call__(self, index: int, _L: Tensor) -> bool:
        is_cut = index in self.known
        if is_cut:
            self.cuts.append(index)
        return is_cut


# a frame's guidance at the working size: (ab 2×h×w ab / 110, mask 1×h×w in [0, 1])
AnchorGuide = tuple[Tensor, Tensor]


@dataclass
class _Clip:
    """A complete clip waiting for the network."""

    L: Tensor  # T×1×h×w, working size
    new: list[tuple[int, Tensor]]  # (index, full-size L) of its frames to return
    shares_anchor: bool  # its first frame is the previous clip's last, already returned
    first_guide: AnchorGuide | None = None  # the guidance given for its first frame
    last_guide: AnchorGuide | None = None  # ... and for its last


def over(top: AnchorGuide | None, bottom: AnchorGuide | None) -> AnchorGuide | None:
    """``top``'s hints where it has any (mask > 0), ``bottom``'s elsewhere."""
    if top is None or bottom is None:
        return top if bottom is None else bottom
    inside = top[1] > 0
    return torch.where(inside, top[0], bottom[0]), torch.where(inside, top[1], bottom[1])


class ClipStream:
    """One pass of ``anchor_clips`` over frames pushed one at a time (see ``stream_ab``).

    Holds the current clip's L at the working size and the full-size L of its frames not yet
    returned, and up to ``clips_per_batch`` complete clips waiting for one network call (B
    clips of equal length as one B×T batch): at most ``(clips_per_batch + 1)·(interval + 2)``
    frames of each, whatever the video's length. The colours do not depend on the batching.

    ``starts_at_shared_anchor``: the first frame pushed is the last anchor of a clip coloured
    before (a segment of a video: ``tcvc.inference.segments``): it starts the first clip as an
    anchor, and is not returned again.

    Guidance (``push(guide=...)``, ``tcvc.inference.guidance``): a guided frame is an anchor;
    within a clip it ends the clip there, the next one starting from it (a shared anchor), and
    the anchor grid goes on from it. IDC gets its hints. With ``carry``, the hints of a clip's
    first anchor are carried along the clip's flows to its last anchor (``net_fn.guided``) and
    on from clip to clip, under the hints a later anchor is given itself, until a cut. Guided
    clips run one at a time (each waits for the hints the one before carries); the others are
    batched as usual.
    """

    def __init__(
        self,
        net_fn: Callable[[Tensor], Tensor],
        *,
        interval: int,
        resolution: Resolution,
        clips_per_batch: int = 1,
        starts_at_shared_anchor: bool = False,
        carry: bool = True,
    ) -> None:
        if interval < 1:
            raise ValueError(f"need interval ≥ 1, got {interval}")
        if clips_per_batch < 1:
            raise ValueError(f"need clips_per_batch ≥ 1, got {clips_per_batch}")
        self.net_fn = net_fn
        self.interval = interval
        self.resolution = resolution
        self.clips_per_batch = clips_per_batch
        self.carry = carry
        self.size: tuple[int, int] | None = None
        self.frame_size: tuple[int, int] | None = None
        self.work: list[Tensor] = []  # the clip so far, working size
        self.guides: dict[int, AnchorGuide] = {}  # guidance of frames of work, by position
        self.full: list[tuple[int, Tensor]] = []  # (index, full-size L) of frames not yet returned
        self.shares_anchor = False  # work[0] is the previous clip's last frame, already returned
        self.starts_at_shared_anchor = starts_at_shared_anchor
        self.next_index = 0
        self.pending: list[_Clip] = []  # complete clips not yet coloured
        self.carried: AnchorGuide | None = None  # hints the last coloured clip ended with

    def push(
        self, L: Tensor, *, cut: bool, guide: FrameGuidance | None = None
    ) -> list[tuple[int, Tensor, Tensor]]:
        """Add the next frame (1×H×W) and its guidance (or None); returns (index, full-size L,
        working-size ab) of the frames that completed clips coloured, in order (``frame_ab``
        brings ab to the frame size)."""
        if L.dim() != 3 or L.shape[0] != 1:
            raise ValueError(f"a frame's L must be 1×H×W, got shape {tuple(L.shape)}")
        if self.frame_size is None:
            self.frame_size = (L.shape[1], L.shape[2])
            self.size = network_size(*self.frame_size, self.resolution)
        elif tuple(L.shape[1:]) != self.frame_size:
            raise ValueError(
                f"frame {self.next_index} is {tuple(L.shape[1:])}, the first was {self.frame_size}"
            )
        if cut and self.next_index > 0:
            self._close_clip()
            self._start_clip(shares_anchor=False)
        self.work.append(to_network_size(L[None], self.size, self.resolution)[0])
        if guide is not None:
            ab, mask = guidance_at_network_size(guide, self.size, self.resolution)
            self.guides[len(self.work) - 1] = (ab.to(L.device), mask.to(L.device))
        if self.next_index == 0 and self.starts_at_shared_anchor:
            self.shares_anchor = True  # returned with the clip it ends, before this stream
        else:
            self.full.append((self.next_index, L))
        self.next_index += 1
        if len(self.work) == self.interval + 2 or (guide is not None and len(self.work) > 1):
            self._close_clip()  # a full clip, or a guided frame: an anchor the next clip shares
            self._start_clip(shares_anchor=True)
        return self._run() if len(self.pending) >= self.clips_per_batch else []

    def finish(self) -> list[tuple[int, Tensor, Tensor]]:
        """The frames of the clips still waiting and of the last, shorter clip."""
        self._close_clip()
        self._start_clip(shares_anchor=False)
        return self._run()

    def _start_clip(self, *, shares_anchor: bool) -> None:
        """The next clip: from the last frame of the clip just closed (shared), or empty."""
        last = len(self.work) - 1
        self.work = self.work[-1:] if shares_anchor else []
        guide = self.guides.get(last) if shares_anchor else None
        self.guides = {} if guide is None else {0: guide}
        self.shares_anchor = shares_anchor

    def _close_clip(self) -> None:
        """The clip so far is complete: it waits in ``pending`` for a network call."""
        if not self.full:  # nothing new: the clip is only the anchor already returned
            return
        frames = torch.stack(self.work)
        last = len(self.work) - 1
        if len(frames) == 1:  # a one-frame shot: a two-frame clip of that frame repeated
            frames = frames.expand(2, -1, -1, -1)
        self.pending.append(
            _Clip(
                L=frames,
                new=self.full,
                shares_anchor=self.shares_anchor,
                first_guide=self.guides.get(0),
                last_guide=self.guides.get(last),
            )
        )
        self.full = []

    def _run(self) -> list[tuple[int, Tensor, Tensor]]:
        """Colour the pending clips in order: guided ones one at a time, the others batched,
        those of one length in one call; their frames in order."""
        abs_: list[Tensor | None] = [None] * len(self.pending)
        plain: list[int] = []
        for k, clip in enumerate(self.pending):
            carried = self.carried if clip.shares_anchor and self.carry else None
            first = over(clip.first_guide, carried)
            if first is None and clip.last_guide is None:
                plain.append(k)
                self.carried = None
                continue
            guided = getattr(self.net_fn, "guided", None)
            if guided is None:
                raise ValueError("guidance needs a network that takes hints (network_fn)")
            ab, self.carried = guided(
                clip.L[None], first=first, last=clip.last_guide, carry=self.carry
            )
            abs_[k] = ab[0]
        for length in dict.fromkeys(len(self.pending[k].L) for k in plain):
            which = [k for k in plain if len(self.pending[k].L) == length]
            batch = torch.stack([self.pending[k].L for k in which])
            ab = call_network(self.net_fn, batch, self.size)
            for row, k in enumerate(which):
                abs_[k] = ab[row]
        done = []
        for clip, ab in zip(self.pending, abs_, strict=True):
            ab = ab[1:] if clip.shares_anchor else ab
            done += [(index, L, ab[k]) for k, (index, L) in enumerate(clip.new)]
        self.pending = []
        return done

    def frame_ab(self, ab: Tensor) -> Tensor:
        """A returned 2×h×w ab at the frame size (done frame by frame: a clip of full-size ab
        at once would cost interval + 2 frames of it)."""
        return to_frame_size(ab[None], *self.frame_size, self.resolution)[0]


def stream_ab(
    net_fn: Callable[[Tensor], Tensor],
    frames: Iterable[Tensor],
    *,
    interval: int = 17,
    resolution: Resolution = 256,
    cuts: Cuts = (),
    clips_per_batch: int = 1,
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
        clips_per_batch: complete clips coloured in one network call (``ClipStream``).

    Yields:
        (L 1×H×W, ab 2×H×W ab / 110) per frame, in order. A shared anchor takes the ab of the
        clip it ends; a one-frame shot is coloured as a two-frame clip of that frame repeated.
    """
    is_cut = cuts if callable(cuts) else KnownCuts(cuts)

    stream = ClipStream(
        net_fn, interval=interval, resolution=resolution, clips_per_batch=clips_per_batch
    )
    for index, L in enumerate(frames):
        for _, L_done, ab in stream.push(L, cut=bool(is_cut(index, L))):
            yield L_done, stream.frame_ab(ab)
    for _, L_done, ab in stream.finish():
        yield L_done, stream.frame_ab(ab)
