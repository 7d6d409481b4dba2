"""tcvc.metrics against independent computations: formulas by hand, a second SSIM, the original's
CDC loop, Lai et al.'s warp error on scenes with known motion, LPIPS/FID skip paths."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tcvc import metrics
from tcvc.metrics import (
    ALEXNET_FILE,
    cdc,
    colorfulness,
    fid,
    lpips,
    non_occlusion_mask,
    psnr,
    psnr_frames,
    ssim,
    warp_error,
)


@pytest.fixture(scope="module")
def clip_pair(decode_video) -> tuple[np.ndarray, np.ndarray]:
    """(distorted, pristine): the same 8 frames of carphone, 144×176, before/after compression."""
    return decode_video("carphone_distorted.mp4", 8), decode_video("carphone_pristine.mp4", 8)


# -- input checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("video", "match"),
    [
        (np.zeros((2, 8, 8, 3), dtype=np.float32), "uint8 RGB shaped T×H×W×3"),
        (np.zeros((8, 8, 3), dtype=np.uint8), "uint8 RGB shaped T×H×W×3"),
        (np.zeros((2, 8, 8, 4), dtype=np.uint8), "uint8 RGB shaped T×H×W×3"),
        (np.zeros((0, 8, 8, 3), dtype=np.uint8), "no frames"),
    ],
)
def test_bad_videos_raise(video, match):
    with pytest.raises(ValueError, match=match):
        colorfulness(video)


def test_mismatched_pair_raises():
    with pytest.raises(ValueError, match="pred and gt must match"):
        psnr(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 8, 8, 3), np.uint8))


# -- PSNR --------------------------------------------------------------------------------------


def test_psnr_equals_the_formula_on_real_frames(clip_pair):
    pred, gt = clip_pair
    mse = ((pred.astype(np.float64) - gt.astype(np.float64)) ** 2).mean(axis=(1, 2, 3))
    per_frame = 10 * np.log10(255.0**2 / mse)
    # torchmetrics takes log(255) in float32: agreement to ~1e-6 dB, not to float64 precision.
    np.testing.assert_allclose(psnr_frames(pred, gt).numpy(), per_frame, rtol=1e-7)
    assert psnr(pred, gt) == pytest.approx(per_frame.mean(), rel=1e-7)
    assert 20 < psnr(pred, gt) < 30  # a heavily compressed copy
    # Torch input (and chunking) gives the same number.
    assert psnr(torch.from_numpy(pred), torch.from_numpy(gt), batch_size=3) == pytest.approx(
        per_frame.mean(), rel=1e-7
    )


def test_psnr_identical_frames_are_capped(clip_pair):
    pred, gt = clip_pair
    assert psnr(gt, gt) == 100.0
    assert psnr(gt, gt, max_db=math.inf) == math.inf
    mixed = pred.copy()
    mixed[0] = gt[0]
    per_frame = psnr_frames(mixed, gt)
    assert per_frame[0].item() == 100.0
    assert psnr(mixed, gt) == pytest.approx(per_frame.mean().item())


# -- SSIM --------------------------------------------------------------------------------------


def reference_ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """Wang et al.'s SSIM written out in numpy: 11×11 Gaussian window σ 1.5, valid windows only,
    C1 = (0.01·255)², C2 = (0.03·255)², per channel, mean over pixels, channels, frames."""
    offsets = np.arange(11) - 5
    g = np.exp(-(offsets**2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def filt(image):  # H×W → (H−10)×(W−10), correlation with the window over valid positions
        patches = np.lib.stride_tricks.sliding_window_view(image, (11, 11))
        return np.einsum("ijkl,kl->ij", patches, window)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for a_frame, b_frame in zip(pred.astype(np.float64), gt.astype(np.float64), strict=True):
        for c in range(3):
            a, b = a_frame[..., c], b_frame[..., c]
            mu_a, mu_b = filt(a), filt(b)
            var_a = filt(a * a) - mu_a**2
            var_b = filt(b * b) - mu_b**2
            cov = filt(a * b) - mu_a * mu_b
            ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
                (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
            )
            scores.append(ssim_map.mean())
    return float(np.mean(scores))


def test_ssim_matches_a_second_implementation(clip_pair):
    pred, gt = (v[:3, 30:102, 40:128] for v in clip_pair)  # 72×88 crops keep the numpy fast
    expected = reference_ssim(pred, gt)
    assert 0.5 < expected < 0.999
    assert ssim(pred, gt, batch_size=2) == pytest.approx(expected, abs=1e-9)
    assert ssim(gt, gt) == pytest.approx(1.0, abs=1e-12)


def test_ssim_rejects_tiny_frames():
    with pytest.raises(ValueError, match="at least 11×11"):
        ssim(np.zeros((1, 10, 20, 3), np.uint8), np.zeros((1, 10, 20, 3), np.uint8))


# -- LPIPS -------------------------------------------------------------------------------------


def test_lpips_without_weights_warns_and_returns_nan(tmp_path, monkeypatch, clip_pair):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch cache
    pred, gt = clip_pair
    with pytest.warns(UserWarning, match="LPIPS skipped"):
        value = lpips(pred[:2], gt[:2])
    assert math.isnan(value)
    assert not any(tmp_path.rglob("*.pth"))  # nothing was downloaded


# The lpips package builds its trunk with torchvision's deprecated `pretrained=True`.
@pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")
def test_lpips_with_a_trunk_file_matches_the_lpips_package(tmp_path, monkeypatch, clip_pair):
    import lpips as lpips_package
    import torchvision

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)  # a stand-in trunk of the real file's layout (the real one is not here)
    torch.save(torchvision.models.alexnet().state_dict(), checkpoints / ALEXNET_FILE)

    pred, gt = clip_pair
    ours = lpips(pred[:3], gt[:3], batch_size=2)
    # The package's own path: it loads the trunk through torchvision from the same cache file.
    reference = lpips_package.LPIPS(net="alex", verbose=False).eval()

    def to_unit(video: np.ndarray) -> torch.Tensor:  # uint8 T×H×W×3 → T×3×H×W in [−1, 1]
        return torch.from_numpy(video).permute(0, 3, 1, 2).float() / 127.5 - 1

    with torch.no_grad():
        expected = reference(to_unit(pred[:3]), to_unit(gt[:3])).mean().item()
    assert ours == pytest.approx(expected, rel=1e-5)
    assert ours > 0
    assert lpips(gt[:2], gt[:2]) == pytest.approx(0.0, abs=1e-7)


# -- colourfulness -----------------------------------------------------------------------------


def test_colorfulness_hand_computed_and_gray():
    frame = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    frame[0, 0] = (255, 0, 0)  # top row red
    frame[0, 1] = (0, 0, 255)  # bottom row blue
    # rg: 255 (red), 0 (blue) → μ 127.5, σ 127.5; yb: 127.5 (red), −255 (blue) → μ −63.75,
    # σ 191.25.
    expected = math.hypot(127.5, 191.25) + 0.3 * math.hypot(127.5, 63.75)
    assert colorfulness(frame) == pytest.approx(expected, rel=1e-12)
    gray = np.repeat(np.arange(48, dtype=np.uint8).reshape(1, 4, 12, 1), 3, axis=3)
    assert colorfulness(gray) == 0.0


def test_colorfulness_on_real_frames_matches_numpy(clip_pair):
    _, gt = clip_pair
    rgb = gt.astype(np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    per_frame = np.sqrt(rg.std(axis=(1, 2)) ** 2 + yb.std(axis=(1, 2)) ** 2) + 0.3 * np.sqrt(
        rg.mean(axis=(1, 2)) ** 2 + yb.mean(axis=(1, 2)) ** 2
    )
    assert colorfulness(gt, batch_size=3) == pytest.approx(per_frame.mean(), rel=1e-10)


# -- CDC ---------------------------------------------------------------------------------------


def test_cdc_disjoint_histograms_give_log2():
    video = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    video[1] = 1  # every channel moves all its mass from bin 0 to bin 1
    assert cdc(video, dilations=(1,)) == pytest.approx(math.log(2), rel=1e-12)


def test_cdc_hand_computed_partial_overlap():
    video = np.full((2, 2, 2, 3), 7, dtype=np.uint8)  # G and B constant: JS 0
    video[0, ..., 0] = [[0, 0], [1, 1]]  # R histogram p = (½ at 0, ½ at 1)
    video[1, ..., 0] = [[0, 0], [0, 2]]  # q = (¾ at 0, ¼ at 2); M = (5/8, 1/4, 1/8)
    kl_p = 0.5 * math.log(0.5 / 0.625) + 0.5 * math.log(0.5 / 0.25)
    kl_q = 0.75 * math.log(0.75 / 0.625) + 0.25 * math.log(0.25 / 0.125)
    js = 0.5 * kl_p + 0.5 * kl_q
    assert cdc(video, dilations=(1,)) == pytest.approx(js / 3, rel=1e-12)


def original_cdc(video: np.ndarray, dilations=(1, 2, 4)) -> float:
    """The original's recipe (compute_hist.py) with scipy's entropy, loop by loop."""
    stats = pytest.importorskip("scipy.stats")
    num_frames, height, width, _ = video.shape
    per_channel = []
    for c in range(3):
        hists = [
            np.histogram(frame[..., c], bins=256, range=(0, 256))[0] / (height * width)
            for frame in video
        ]
        value = 0.0
        for d in dilations:
            js = []
            for t in range(num_frames - d):
                p, q = hists[t], hists[t + d]
                m = (p + q) / 2
                js.append(0.5 * stats.entropy(p, m) + 0.5 * stats.entropy(q, m))
            value += np.mean(js) / len(dilations)
        per_channel.append(value)
    return float(np.mean(per_channel))


def test_cdc_matches_the_original_recipe_on_real_frames(clip_pair):
    pred, gt = clip_pair
    for video in (pred, gt):
        expected = original_cdc(video)
        assert expected > 0
        assert cdc(video, batch_size=3) == pytest.approx(expected, rel=1e-10)


def test_cdc_static_video_is_zero_and_short_video_raises(clip_pair):
    _, gt = clip_pair
    assert cdc(np.repeat(gt[:1], 6, axis=0)) == 0.0
    with pytest.raises(ValueError, match="more than 4 frames"):
        cdc(gt[:4])


# -- warp error --------------------------------------------------------------------------------


def zero_flow(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.zeros(a.shape[0], 2, *a.shape[2:])


def test_warp_error_static_video_is_zero(clip_pair):
    _, gt = clip_pair
    static = np.repeat(gt[:1], 5, axis=0)
    assert warp_error(static, static, flow_fn=zero_flow) == 0.0


def test_warp_error_flicker_with_zero_flow_is_the_mean_squared_change(clip_pair):
    pred, gt = clip_pair
    frames = pred.astype(np.float64) / 255.0
    expected = np.mean([((frames[t] - frames[t - 1]) ** 2).mean() for t in range(1, 8)])
    assert warp_error(pred, gt, flow_fn=zero_flow, batch_size=3) == pytest.approx(
        expected, rel=1e-5
    )


def test_warp_error_flows_come_from_gt_pairs_both_ways(clip_pair):
    pred, gt = clip_pair
    calls = []

    def recording_flow(a, b):
        calls.append((a.clone(), b.clone()))
        return zero_flow(a, b)

    warp_error(pred[:4], gt[:4], flow_fn=recording_flow, batch_size=8)
    gt_float = torch.from_numpy(gt[:4]).permute(0, 3, 1, 2).float() / 255.0
    (fw_a, fw_b), (bw_a, bw_b) = calls
    torch.testing.assert_close(fw_a, gt_float[:3])
    torch.testing.assert_close(fw_b, gt_float[1:])
    torch.testing.assert_close(bw_a, gt_float[1:])
    torch.testing.assert_close(bw_b, gt_float[:3])


def test_warp_error_translation_with_true_flow_is_zero(clip_pair):
    # Frames cut from a canvas moving right 3 px a frame: frame_t(x) = frame_{t−1}(x − 3), so the
    # forward flow from t−1's grid to t is u = +3; the canvas' right part is constant, which is
    # what the border clamp fills in at the right edge.
    _, gt = clip_pair
    num_frames, shift, width = 5, 3, 120
    canvas = gt[0].copy()
    canvas[:, width - 1 :] = (90, 140, 30)
    starts = [(num_frames - 1 - t) * shift for t in range(num_frames)]
    video = np.stack([canvas[:, s : s + width] for s in starts])

    def true_flow(a, b):
        flow = torch.zeros(a.shape[0], 2, *a.shape[2:])
        # Forward pairs (a = t−1, b = t) move +3, backward pairs −3; tell them apart by content.
        forward = (b[:, :, :, shift:] - a[:, :, :, :-shift]).abs().amax() < 1e-6
        flow[:, 0] = shift if forward else -shift
        return flow

    assert warp_error(video, video, flow_fn=true_flow) == pytest.approx(0.0, abs=1e-12)
    assert warp_error(video, video, flow_fn=zero_flow) > 1e-3


def test_non_occlusion_forward_backward_threshold():
    fw = torch.zeros(1, 2, 4, 6)
    assert non_occlusion_mask(fw, torch.zeros(1, 2, 4, 6)).min() == 1.0
    # |fw + warp(bw)|² against 0.01 (|fw|² + |bw|²) + 0.5: 0.49 is consistent, 0.64 is not.
    bw = torch.zeros(1, 2, 4, 6)
    bw[:, 0] = 0.7
    assert non_occlusion_mask(fw, bw).min() == 1.0
    bw[:, 0] = 0.8
    assert non_occlusion_mask(fw, bw).max() == 0.0
    # Large consistent motion passes (relative tolerance): fw = +10, bw = −10.
    assert (
        non_occlusion_mask(torch.full((1, 2, 4, 6), 10.0), torch.full((1, 2, 4, 6), -10.0)).min()
        == 1.0
    )


def test_non_occlusion_marks_motion_boundaries():
    # u = 0 left of column 4, 1 from it on; bw is consistent with it (−1 where the motion lands).
    fw = torch.zeros(1, 2, 3, 8)
    fw[:, 0, :, 4:] = 1.0
    bw = torch.zeros(1, 2, 3, 8)
    bw[:, 0, :, 5:] = -1.0
    mask = non_occlusion_mask(fw, bw)[0, 0]
    expected = torch.ones(3, 8)
    expected[:, 3] = 0.0  # forward difference u(3) − u(4) = −1: a motion boundary
    torch.testing.assert_close(mask, expected)


def test_warp_error_ignores_occluded_pixels(clip_pair):
    pred, gt = clip_pair

    def inconsistent(a, b):
        return torch.full((a.shape[0], 2, *a.shape[2:]), 3.0)  # fw = bw = +3: all occluded

    assert warp_error(pred[:3], gt[:3], flow_fn=inconsistent) == 0.0


def test_warp_error_checks_flow_shape(clip_pair):
    pred, gt = clip_pair
    with pytest.raises(ValueError, match="flow_fn must return"):
        warp_error(pred[:2], gt[:2], flow_fn=lambda a, b: torch.zeros(1, 2, 8, 8))


# -- FID ---------------------------------------------------------------------------------------


def test_fid_without_inception_warns_and_returns_nan(tmp_path, monkeypatch, clip_pair):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    pred, gt = clip_pair
    with pytest.warns(UserWarning, match="FID skipped"):
        value = fid(pred, gt)
    assert math.isnan(value)


class MeanColour(torch.nn.Module):
    """uint8 N×3×H×W → N×3 mean colour: a tiny stand-in feature for checking the FID formula."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().mean(dim=(2, 3))


def test_fid_formula_with_a_custom_feature(clip_pair):
    pred, gt = clip_pair
    feats_pred = pred.astype(np.float64).mean(axis=(1, 2))
    feats_gt = gt.astype(np.float64).mean(axis=(1, 2))
    mu1, mu2 = feats_gt.mean(0), feats_pred.mean(0)
    s1, s2 = np.cov(feats_gt, rowvar=False), np.cov(feats_pred, rowvar=False)
    trace_sqrt = np.sqrt(np.linalg.eigvals(s1 @ s2).real.clip(min=0)).sum()
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    value = fid([pred[:5], pred[5:]], gt, feature=MeanColour(), batch_size=3)
    assert value == pytest.approx(expected, rel=1e-4)
    assert fid(gt, gt, feature=MeanColour()) == pytest.approx(0.0, abs=1e-3)
    with pytest.raises(ValueError, match="at least 2"):
        fid(pred[:1], gt, feature=MeanColour())


def test_public_names():
    assert set(metrics.__all__) >= {
        "psnr",
        "ssim",
        "lpips",
        "colorfulness",
        "cdc",
        "warp_error",
        "fid",
    }


# -- SSIM against torchmetrics, warp_errors, FrechetDistance -----------------------------------


def test_ssim_matches_torchmetrics_valid_region(clip_pair):
    from torchmetrics.functional.image import structural_similarity_index_measure

    pred, gt = clip_pair

    def to_float(video):
        return torch.from_numpy(video).permute(0, 3, 1, 2).double()

    _, ssim_map = structural_similarity_index_measure(
        to_float(pred[:2]),
        to_float(gt[:2]),
        gaussian_kernel=True,
        sigma=1.5,
        kernel_size=11,
        data_range=255.0,
        return_full_image=True,
    )
    expected = ssim_map[..., 5:-5, 5:-5].mean().item()  # torchmetrics pads: score real windows
    assert ssim(pred[:2], gt[:2], batch_size=1) == pytest.approx(expected, abs=1e-10)


def test_warp_errors_of_several_outputs_share_the_flows(clip_pair):
    pred, gt = clip_pair
    calls = []

    def counting_flow(a, b):
        calls.append(1)
        return torch.full((a.shape[0], 2, *a.shape[2:]), 0.25)

    outputs = {"pred": pred[:5], "gt": gt[:5], "flipped": pred[:5, :, ::-1].copy()}
    together = metrics.warp_errors(outputs, gt[:5], flow_fn=counting_flow, batch_size=2)
    assert len(calls) == 2 * 2  # 4 pairs in chunks of 2, forward and backward: not per output
    for name, video in outputs.items():
        alone = warp_error(video, gt[:5], flow_fn=counting_flow, batch_size=3)
        assert together[name] == pytest.approx(alone, rel=1e-6)
    assert len(set(together.values())) == 3


def test_frechet_distance_accumulated_video_by_video_equals_fid(clip_pair):
    pred, gt = clip_pair
    distance = metrics.FrechetDistance(feature=MeanColour(), batch_size=3)
    distance.add("gt", gt[:4])
    distance.add("gt", gt[4:])
    distance.add("pred", pred)
    distance.add("same", gt)
    assert distance.count("gt") == 8
    assert distance.distance("pred", "gt") == pytest.approx(
        fid(pred, gt, feature=MeanColour()), rel=1e-9
    )
    assert distance.distance("same", "gt") == pytest.approx(0.0, abs=1e-6)
    assert distance.distance("pred", "gt") > 0.5  # compression shifts the mean colours a little


def inception_weights_file(path: Path) -> Path:
    """A stand-in for torch-fidelity's `weights-inception-2015-12-05-6726825d.pth`: the layout of
    its FeatureExtractorInceptionV3 (read off the module itself), synthetic values."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from tcvc.testing import synthetic_state_dict

    empty = path.with_name("empty.pth")
    torch.save({}, empty)
    load = FeatureExtractorInceptionV3.load_state_dict
    FeatureExtractorInceptionV3.load_state_dict = lambda self, state, **kwargs: None
    try:  # build the module without its weights, to learn their names and shapes
        module = FeatureExtractorInceptionV3("layout", ["2048"], str(empty))
    finally:
        FeatureExtractorInceptionV3.load_state_dict = load
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    torch.save(synthetic_state_dict(shapes, seed=5), path)
    return path


def test_fid_with_an_inception_file_matches_torchmetrics(tmp_path, monkeypatch, clip_pair):
    """The Inception path (torch-fidelity's network from the user's file, never downloaded):
    FrechetDistance accumulated video by video equals torchmetrics' FrechetInceptionDistance."""
    import torch_fidelity.feature_extractor_inceptionv3 as inception
    from torchmetrics.image.fid import FrechetInceptionDistance

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(inception, "load_state_dict_from_url", no_download)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    weights = inception_weights_file(checkpoints / metrics.INCEPTION_FILE)
    pred, gt = clip_pair
    pred, gt = pred[:6], gt[:6]
    ours = fid([pred[:3], pred[3:]], gt, batch_size=4)
    reference = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(weights))
    reference.update(torch.from_numpy(gt).permute(0, 3, 1, 2), real=True)
    reference.update(torch.from_numpy(pred).permute(0, 3, 1, 2), real=False)
    expected = reference.compute().item()
    assert ours == pytest.approx(expected, rel=1e-3, abs=1e-3)
    assert ours > 0
