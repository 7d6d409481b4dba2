"""Segments (tcvc.inference.segments): a video coloured segment by segment gives every frame the
colours of one run over the whole video, with scene cuts, both samplings and batched clips."""

from __future__ import annotations

import itertools

import pytest
import torch
from helpers.nets import clip_net

from tcvc.inference import InferenceOptions, KnownCuts, anchor_clips, colorize_video
from tcvc.inference.segments import Segment, plan_segments, scan_cuts

CASES = [
    # num_frames, intervals, cuts, min_frames
    (250, (17,), (100,), 60),
    (40, (17,), (), 1),  # every clip its own segment
    (40, (17,), (), 1000),  # one segment
    (61, (2,), (3, 4, 30), 5),  # a one-frame shot between two cuts
    (200, (17, 19), (), 30),  # multi sampling: the passes share an anchor every 180 frames
    (120, (5, 7), (50, 51), 10),
    (1, (17,), (), 5),
]


@pytest.mark.parametrize(("num_frames", "intervals", "cuts", "min_frames"), CASES)
def test_segments_tile_the_video_at_clip_starts_of_every_pass(
    num_frames, intervals, cuts, min_frames
):
    segments = plan_segments(num_frames, intervals, cuts=cuts, min_frames=min_frames)
    outputs = list(itertools.chain.from_iterable(s.output for s in segments))
    assert outputs == list(range(num_frames))
    assert [s.index for s in segments] == list(range(len(segments)))
    for interval in intervals:
        clips = anchor_clips(num_frames, interval, cuts=cuts)
        starts = {clip.start for clip in clips}
        for segment in segments:
            assert segment.start in starts
            # the segment's own clips are the whole run's clips inside it
            local = anchor_clips(segment.stop - segment.start, interval, cuts=segment.local_cuts())
            inside = [c for c in clips if segment.start <= c.start and c.stop <= segment.stop]
            assert [range(c.start + segment.start, c.stop + segment.start) for c in local] == inside
    for before, after in itertools.pairwise(segments):
        assert after.start - before.start >= min_frames
        assert after.shares_anchor == (after.start not in cuts)
        assert before.stop == after.start + after.shares_anchor
    inner_cuts = list(itertools.chain.from_iterable(s.cuts for s in segments))
    starts = [s.start for s in segments]
    assert sorted(inner_cuts + [c for c in cuts if c in starts]) == sorted(cuts)


def test_multi_sampling_segments_start_where_both_passes_have_an_anchor():
    segments = plan_segments(400, (17, 19), min_frames=60)
    assert [s.start for s in segments] == [0, 180, 360]  # 18 and 20 frames a clip: every 180


def test_guided_segments_start_only_at_cuts():
    """only_at_cuts (a guided run): segments start at 0 and at cuts at least min_frames on, none
    shares an anchor, and their outputs still tile the video; without cuts, one segment."""
    segments = plan_segments(250, (17,), cuts=(30, 40, 100, 230), min_frames=35, only_at_cuts=True)
    assert [(s.start, s.stop, s.cuts) for s in segments] == [
        (0, 40, (30,)),
        (40, 100, ()),
        (100, 230, ()),
        (230, 250, ()),  # the last may be shorter
    ]
    assert not any(s.shares_anchor for s in segments)
    assert [s.start for s in plan_segments(250, (17,), min_frames=35, only_at_cuts=True)] == [0]
    multi = plan_segments(120, (5, 7), cuts=(50, 51), min_frames=10, only_at_cuts=True)
    assert [(s.start, s.stop, s.cuts) for s in multi] == [(0, 50, ()), (50, 120, (51,))]


def colour(frames, options, **kwargs):
    return torch.stack(list(colorize_video(clip_net, frames, options, **kwargs)))


@pytest.mark.parametrize(("num_frames", "intervals", "cuts", "min_frames"), CASES[:6])
@pytest.mark.parametrize("clips_per_batch", [1, 3])
def test_colouring_segment_by_segment_equals_one_run(
    num_frames, intervals, cuts, min_frames, clips_per_batch
):
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (num_frames, 8, 12, 3), dtype=torch.uint8)
    options = InferenceOptions(
        interval=intervals[:1], resolution="native", clips_per_batch=clips_per_batch
    )
    whole = colour(frames, options, intervals=intervals, detector=KnownCuts(cuts))
    segments = plan_segments(num_frames, intervals, cuts=cuts, min_frames=min_frames)
    parts = [
        colour(
            frames[s.start : s.stop],
            options,
            intervals=intervals,
            detector=KnownCuts(s.local_cuts()),
            starts_at_shared_anchor=s.shares_anchor,
        )
        for s in segments
    ]
    assert [len(p) for p in parts] == [len(s.output) for s in segments]
    assert torch.equal(torch.cat(parts), whole)


def test_a_segment_of_only_its_shared_anchor_outputs_nothing():
    frames = torch.randint(0, 256, (1, 8, 12, 3), dtype=torch.uint8)
    out = list(colorize_video(clip_net, frames, InferenceOptions(), starts_at_shared_anchor=True))
    assert out == []


def test_scan_cuts_finds_what_the_detector_finds_in_a_run():
    torch.manual_seed(1)
    shots = [torch.full((1, 16, 16), value) for value in (-0.4, 0.3, -0.1)]
    L = [shots[0]] * 5 + [shots[1]] * 7 + [shots[2]] * 3
    L = [frame + 0.01 * torch.rand_like(frame) for frame in L]
    assert scan_cuts(iter(L), threshold=0.12) == (15, [5, 12])
    assert scan_cuts(iter(L), threshold=None) == (15, [])


def test_bad_plans_raise():
    with pytest.raises(ValueError, match="at least one frame"):
        plan_segments(0, (17,), min_frames=10)
    with pytest.raises(ValueError, match="min_frames"):
        plan_segments(10, (17,), min_frames=0)
    assert Segment(0, 0, 5, False).output == range(5)
