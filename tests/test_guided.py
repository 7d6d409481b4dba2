"""Guided colourisation through the clip stream: guided frames are anchors, IDC gets their hints,
and the hints are carried along the shot to the next anchors, stopping at a cut.

The network is a stand-in (``tcvc.testing``): IDC returns its hints as colours (ab·mask), the
head copies the warped forward feature (pure forward propagation), and the flows are known: zero,
a shift that both directions agree on, or one they do not. So every frame's ab is known exactly.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tcvc.inference import ClipStream, FrameGuidance, InferenceOptions, network_fn
from tcvc.nets import TCVCNet
from tcvc.testing import FixedFlow, ForwardCopyHead, HintEchoIDC

SIZE = 64
REFERENCE_AB = (0.3, -0.2)


class IndexShiftFlow(nn.Module):
    """Flows of a video whose content moves ``velocity`` px a frame: F(a, b) = (b − a)·velocity,
    the frame indices read from the images (each frame a different constant L)."""

    def __init__(self, levels: torch.Tensor, velocity: tuple[float, float]) -> None:
        super().__init__()
        self.levels = levels  # the image value (L + 0.5) of each frame
        self.velocity = velocity

    def index(self, image: torch.Tensor) -> torch.Tensor:
        means = image.mean(dim=(1, 2, 3))
        return (means[:, None] - self.levels[None]).abs().argmin(dim=1)

    def forward(self, image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
        frames = (self.index(image2) - self.index(image1)).to(image1.dtype)
        flow = image1.new_empty((image1.shape[0], 2, *image1.shape[2:]))
        flow[:, 0] = frames[:, None, None] * self.velocity[0]
        flow[:, 1] = frames[:, None, None] * self.velocity[1]
        return flow


def frames_L(count: int) -> torch.Tensor:
    """count×1×SIZE×SIZE normalised L, each frame a constant of its own."""
    return (-0.4 + 0.01 * torch.arange(count, dtype=torch.float32)).view(-1, 1, 1, 1).expand(
        count, 1, SIZE, SIZE
    )


def dense_reference(ab=REFERENCE_AB) -> FrameGuidance:
    colour = torch.tensor(ab).view(2, 1, 1).expand(2, SIZE, SIZE).clone()
    return FrameGuidance(ab=colour, mask=torch.ones(1, SIZE, SIZE), source="test")


def square_reference(top=10, left=10, side=10) -> FrameGuidance:
    ab = torch.zeros(2, SIZE, SIZE)
    mask = torch.zeros(1, SIZE, SIZE)
    ab[:, top : top + side, left : left + side] = torch.tensor(REFERENCE_AB).view(2, 1, 1)
    mask[:, top : top + side, left : left + side] = 1
    return FrameGuidance(ab=ab, mask=mask, source="test square")


def stand_in(flownet: nn.Module) -> TCVCNet:
    return TCVCNet(idc=HintEchoIDC(), flownet=flownet, head=ForwardCopyHead()).eval()


def stream(net, L, *, guides, cuts=(), interval=4, carry=True, clips_per_batch=1):
    """ab (working size) of every frame through one ClipStream, and the lengths of its calls."""
    options = InferenceOptions(resolution="native", clips_per_batch=clips_per_batch)
    fn = network_fn(net, options)
    calls = []
    guided = fn.guided

    def recording_guided(clip, **kwargs):
        calls.append(("guided", clip.shape[1]))
        return guided(clip, **kwargs)

    fn.guided = recording_guided
    clips = ClipStream(
        fn, interval=interval, resolution="native", clips_per_batch=clips_per_batch, carry=carry
    )
    out = {}
    for index, frame in enumerate(L):
        for done, _, ab in clips.push(frame, cut=index in cuts, guide=guides.get(index)):
            out[done] = ab
    for done, _, ab in clips.finish():
        out[done] = ab
    assert sorted(out) == list(range(len(L)))
    return torch.stack([out[i] for i in range(len(L))]), calls


@pytest.mark.parametrize("clips_per_batch", [1, 3])
def test_a_reference_colours_its_shot_and_stops_at_the_cut(clips_per_batch):
    """Zero flow, interval 4, a reference at frame 3 and a cut at 20. Frame 3 becomes an
    anchor (clips 0–3, 3–8, 8–13, 13–18, 18–19 | 20–24, ...); each anchor after it gets the
    reference's hints carried, their confidence 0.98 a frame (the stand-in IDC gives ab·mask),
    the inner frames copy the colours of their clip's first anchor; before the reference and
    after the cut, nothing."""
    L = frames_L(30)
    ab, _ = stream(
        stand_in(FixedFlow()),
        L,
        guides={3: dense_reference()},
        cuts=(20,),
        clips_per_batch=clips_per_batch,
    )
    reference = torch.tensor(REFERENCE_AB).view(2, 1, 1)
    anchors = [3, 8, 13, 18]
    for frame in range(30):
        if frame < 3 or frame >= 20:
            expected = torch.zeros(2, 1, 1)
        else:
            anchor = max(a for a in anchors if a <= frame)
            if frame == 19:  # the shot's last frame: the last anchor of clip 18–19
                anchor = 19
            expected = reference * 0.98 ** (anchor - 3)
        torch.testing.assert_close(
            ab[frame], expected.expand(2, SIZE, SIZE), atol=1e-6, rtol=0, msg=f"frame {frame}"
        )


def test_without_carrying_only_the_guided_anchor_has_its_colours():
    L = frames_L(14)
    ab, _ = stream(stand_in(FixedFlow()), L, guides={3: dense_reference()}, carry=False)
    assert ab[3:8].abs().amax() > 0.1  # frame 3 and the frames its clip propagates to
    torch.testing.assert_close(ab[3], dense_reference().ab)
    assert ab[8:].abs().amax() == 0 and ab[:3].abs().amax() == 0


def test_guidance_moves_with_a_known_shift():
    """Content moving 2 px a frame to the right (F(a, b) = 2(b − a), both directions agree):
    the reference square of frame 0 is at x + 2t on frame t, on the anchors (carried hints)
    and the frames between (propagated)."""
    L = frames_L(12)
    levels = (L[:, 0, 0, 0] + 0.5).clone()
    ab, _ = stream(stand_in(IndexShiftFlow(levels, (2.0, 0.0))), L, guides={0: square_reference()})
    for frame in range(12):
        anchor = 5 * (frame // 5) if frame < 10 else 10
        if frame == 11:
            anchor = 11
        confidence = 0.98**anchor
        expected = torch.zeros(2, SIZE, SIZE)
        left = 10 + 2 * frame
        expected[:, 10:20, left : left + 10] = torch.tensor(REFERENCE_AB).view(2, 1, 1) * confidence
        torch.testing.assert_close(ab[frame], expected, atol=1e-5, rtol=0, msg=f"frame {frame}")


def test_flows_that_disagree_drop_the_carried_hints():
    """A flow of 3 px both ways (F(a, b) = F(b, a)): the forward–backward check fails
    everywhere, so nothing reaches the next anchor (frame 5), though frames 1–4 still get the
    propagated colours of frame 0."""
    L = frames_L(8)
    ab, calls = stream(stand_in(FixedFlow(dx=3.0)), L, guides={0: dense_reference()})
    assert ab[5].abs().amax() == 0
    assert ab[1:5, :, :, :40].abs().amax() > 0.1  # shifted left by 3 px a frame, still there
    assert calls == [("guided", 6)]  # the second clip has no hints: the plain path


def test_a_guided_frame_ends_its_clip_and_restarts_the_grid():
    """A reference at frame 7 (interval 4: anchors 0, 5, then 7 instead of 10): clips 5–7 and
    7–12; frame 7 is exactly the reference (an anchor's own hints, mask 1)."""
    L = frames_L(16)
    ab, calls = stream(stand_in(FixedFlow()), L, guides={7: dense_reference()}, carry=False)
    torch.testing.assert_close(ab[7], dense_reference().ab)
    assert ab[6].abs().amax() == 0  # an inner frame of clip 5–7: propagated from frame 5 (none)
    assert calls == [("guided", 3), ("guided", 6)]


def test_guidance_needs_a_network_that_takes_hints():
    def plain(L):
        return torch.zeros(*L.shape[:2], 2, *L.shape[-2:])

    clips = ClipStream(plain, interval=4, resolution="native")
    clips.push(frames_L(1)[0], cut=False, guide=dense_reference())
    with pytest.raises(ValueError, match="guidance needs a network that takes hints"):
        clips.finish()
