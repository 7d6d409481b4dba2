"""Clip scheduling for whole videos: shared anchors, scene cuts, the colour of every frame once."""

from __future__ import annotations

import pytest
import torch

from tcvc.inference import anchor_clips, colorize_frames


@pytest.mark.parametrize(
    ("num_frames", "interval", "cuts", "expected"),
    [
        (40, 17, (), [(0, 18), (18, 36), (36, 39)]),  # the original protocol, shared anchors
        (19, 17, (), [(0, 18)]),
        (20, 17, (), [(0, 18), (18, 19)]),
        (1, 17, (), [(0, 0)]),
        (0, 17, (), []),
        (10, 3, (5,), [(0, 4), (5, 9)]),  # no anchor shared across the cut
        (12, 2, (3, 4), [(0, 2), (3, 3), (4, 7), (7, 10), (10, 11)]),
        (6, 3, (0, 6, 99), [(0, 4), (4, 5)]),  # cuts at the ends mean nothing
    ],
)
def test_anchor_clips(num_frames, interval, cuts, expected):
    clips = anchor_clips(num_frames, interval, cuts=cuts)
    assert [(c.start, c.stop - 1) for c in clips] == expected
    assert all(len(c) <= interval + 2 for c in clips)
    covered = sorted({i for c in clips for i in c})
    assert covered == list(range(num_frames))


def test_anchor_clips_rejects_bad_arguments():
    with pytest.raises(ValueError, match="interval ≥ 1"):
        anchor_clips(10, 0)


def test_colorize_frames_runs_each_clip_and_keeps_each_frame_once():
    calls = []

    def fake_net(L):  # ab = (L, position of the frame in its clip): shows which clip coloured it
        calls.append(L.shape[1])
        position = torch.arange(L.shape[1], dtype=L.dtype).view(1, -1, 1, 1, 1).expand_as(L)
        return torch.cat([L, position], dim=2)

    L = torch.linspace(-0.5, 0.5, 12).view(12, 1, 1, 1).expand(12, 1, 64, 64).contiguous()
    ab = colorize_frames(fake_net, L, interval=3, resolution="native", cuts=[9])
    assert calls == [5, 5, 3]  # clips 0–4, 4–8 (ends before the cut), 9–11
    assert ab.shape == (12, 2, 64, 64)
    assert torch.equal(ab[:, :1], L)  # every frame, in order, once
    # a shared anchor keeps the colour of the clip it ends; the cut starts a new clip at 0
    expected_position = [0, 1, 2, 3, 4, 1, 2, 3, 4, 0, 1, 2]
    assert ab[:, 1, 0, 0].tolist() == expected_position


def test_colorize_frames_one_frame_shot():
    L = torch.rand(1, 1, 64, 64) - 0.5
    ab = colorize_frames(
        lambda x: torch.cat([x, -x], dim=2), L, interval=17, resolution="native"
    )
    assert torch.equal(ab, torch.cat([L, -L], dim=1))
    with pytest.raises(ValueError, match="T×1×H×W"):
        colorize_frames(lambda x: x, L[None])
