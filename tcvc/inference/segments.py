"""Segments: a video cut into runs of whole clips, coloured independently, same frames as one go.

A resumable run (``colorize.py resume=true``) keeps its work in segments, and several workers
colour the segments of one film in parallel. A segment starts where a clip starts in every pass
of the run (the interval, or each interval of ``sampling=multi``): at frame 0, at a scene cut,
or at an anchor the passes share. So its clips are exactly the clips of a run over the whole
video (``anchor_clips``), and colouring the segments one by one (``colorize_video`` over each
segment's frames, ``KnownCuts`` for the cuts, ``starts_at_shared_anchor`` when its first frame
is the previous segment's last anchor) gives each frame the ab the whole run gives it. A guided
run (references, hints: ``tcvc.inference.guidance``) carries hints along a shot's anchors, so its
segments start only at scene cuts (``only_at_cuts``).

Finding the segments needs the whole video's cuts first: ``scan_cuts`` (the ``SceneCutDetector``
over every frame, a pass of decoding without the network).

    plan_segments(250, (17,), cuts=[100], min_frames=60): frames read 0–72, 72–136 (its clips
    72–90, 90–99 | 100–118, 118–136), 136–208, 208–249; frames output 0–72, 73–136, 137–208,
    209–249 (the shared anchors 72, 136, 208 with the clips they end).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from torch import Tensor

from tcvc.inference.clips import SceneCutDetector, anchor_clips

__all__ = ["Segment", "plan_segments", "scan_cuts"]


@dataclass(frozen=True)
class Segment:
    """Frames ``start`` … ``stop − 1`` of a video, a run of whole clips of every pass.

    ``shares_anchor``: frame ``start`` is the last anchor of the segment before, which outputs
    it; this segment reads it (its clips start there) but does not output it. ``cuts``: the
    scene cuts after ``start``, as frame indices of the video.
    """

    index: int
    start: int
    stop: int
    shares_anchor: bool
    cuts: tuple[int, ...] = ()

    @property
    def output(self) -> range:
        """The frames this segment outputs (the segments' outputs tile the video)."""
        return range(self.start + self.shares_anchor, self.stop)

    def local_cuts(self) -> list[int]:
        """``cuts`` counted from ``start`` (the frame indices of the segment's own frames)."""
        return [c - self.start for c in self.cuts]


def plan_segments(
    num_frames: int,
    intervals: Sequence[int],
    *,
    cuts: Iterable[int] = (),
    min_frames: int,
    only_at_cuts: bool = False,
) -> list[Segment]:
    """The segments of a video: each at least ``min_frames`` long (but the last), each
    starting where a clip starts in every pass (with ``only_at_cuts``, at a scene cut).

    Args:
        num_frames: frames of the video (≥ 1).
        intervals: the passes of the run (``InferenceOptions.intervals``).
        cuts: the scene cuts (``scan_cuts``): frame indices that start a new shot.
        min_frames: the least frames a segment spans; the boundaries are the first shared
            clip starts at least that far apart.
        only_at_cuts: start segments only at frame 0 and at scene cuts, where nothing of one
            shot reaches the next: a guided run's hints are carried along a shot's anchors, so
            its segments must not cut a shot (the film is one segment if it has no cuts).

    Returns:
        the segments in order; their ``output`` ranges cover 0 … num_frames − 1 once each.
    """
    if num_frames < 1:
        raise ValueError(f"need at least one frame, got {num_frames}")
    if min_frames < 1:
        raise ValueError(f"need min_frames ≥ 1, got {min_frames}")
    cut_set = sorted({int(c) for c in cuts if 0 < int(c) < num_frames})
    starts = None
    for interval in intervals:
        clip_starts = {clip.start for clip in anchor_clips(num_frames, interval, cuts=cut_set)}
        starts = clip_starts if starts is None else starts & clip_starts
    if starts is None:
        raise ValueError("need at least one interval")
    if only_at_cuts:
        starts = {0, *cut_set}
    bounds = [0]
    for frame in sorted(starts):
        if frame - bounds[-1] >= min_frames:
            bounds.append(frame)
    cut_lookup = frozenset(cut_set)
    segments = []
    for index, start in enumerate(bounds):
        following = bounds[index + 1] if index + 1 < len(bounds) else None
        # a shared anchor also ends this segment's last clip: read it here (and output it)
        if following is None:
            stop = num_frames
        else:
            stop = following if following in cut_lookup else following + 1
        segments.append(
            Segment(
                index=index,
                start=start,
                stop=stop,
                shares_anchor=start > 0 and start not in cut_lookup,
                cuts=tuple(c for c in cut_set if start < c < stop),
            )
        )
    return segments


def scan_cuts(frames: Iterable[Tensor], *, threshold: float | None) -> tuple[int, list[int]]:
    """Frames counted and scene cuts found over a whole video: ``(num_frames, cuts)``.

    ``frames``: 1×H×W normalised L of each frame in order (``frame_to_L`` of a reader's frames);
    the cuts are those a ``SceneCutDetector(threshold=threshold)`` finds as a run goes.
    """
    detector = SceneCutDetector(threshold=threshold)
    count = 0
    for index, L in enumerate(frames):
        detector(index, L)
        count = index + 1
    return count, list(detector.cuts)
