"""Video colorization metrics on uint8 RGB videos shaped T×H×W×3 (numpy arrays or torch tensors).

Every function returns a Python float for one video (FID: for two sets of frames); a data set's
figure is the mean over its videos, as the TCVC evaluation does. Work runs in chunks of frames on
the device the input is on (numpy inputs: CPU).

- `psnr`: RGB 0–255 per frame, mean over frames; a frame's PSNR is capped at `max_db` (100 dB),
  so identical frames give 100, not inf (the original's inf would swamp a data set's mean).
- `ssim`: torchmetrics' Gaussian SSIM (11×11, σ 1.5, data range 255) over RGB, averaged over the
  *valid* region (the map cropped by 5 pixels, as MATLAB's `ssim` and BasicSR do), mean over frames.
- `lpips`: the `lpips` package, AlexNet v0.1, mean over frames. The AlexNet trunk is the user's
  torchvision file `<torch hub>/checkpoints/alexnet-owt-7be5be79.pth` (never downloaded); without
  it the metric warns and returns nan.
- `colorfulness`: Hasler & Süsstrunk (2003) on 0–255 RGB, mean over frames.
- `cdc`: TCVC's colour distribution consistency (see `cdc`).
- `warp_error`: Lai et al. (ECCV 2018), see `warp_error`.
- `fid`: torchmetrics FID (2048-d Inception pool features). Needs `torch-fidelity` and the user's
  `<torch hub>/checkpoints/weights-inception-2015-12-05-6726825d.pth`; without them it warns and
  returns nan.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ops import resample2d

__all__ = [
    "ALEXNET_FILE",
    "INCEPTION_FILE",
    "cdc",
    "colorfulness",
    "fid",
    "lpips",
    "non_occlusion_mask",
    "psnr",
    "psnr_frames",
    "ssim",
    "warp_error",
]

Video = np.ndarray | Tensor
# flow_fn(frames_a, frames_b): B×3×H×W float RGB in [0, 1] each → B×2×H×W pixel flow from a's grid
# to b (x + u, y + v in b matches x, y in a), e.g. a FlowNet2 module.
FlowFn = Callable[[Tensor, Tensor], Tensor]

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
SSIM_KERNEL = 11
SSIM_SIGMA = 1.5


# -- inputs ------------------------------------------------------------------------------------


def _video(video: Video, name: str = "video") -> Tensor:
    """uint8 T×H×W×3 as a torch tensor on its own device (numpy: CPU, shared memory)."""
    tensor = (
        torch.from_numpy(np.ascontiguousarray(video)) if isinstance(video, np.ndarray) else video
    )
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(video).__name__}")
    if tensor.dtype != torch.uint8 or tensor.ndim != 4 or tensor.shape[-1] != 3:
        raise ValueError(
            f"{name} must be uint8 RGB shaped T×H×W×3, got {tuple(tensor.shape)} {tensor.dtype}"
        )
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} has no frames")
    return tensor


def _pair(pred: Video, gt: Video) -> tuple[Tensor, Tensor]:
    pred, gt = _video(pred, "pred"), _video(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must match, got {tuple(pred.shape)} and {tuple(gt.shape)}")
    return pred, gt.to(pred.device)


def _chunks(num_frames: int, batch_size: int) -> Iterator[slice]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, num_frames, batch_size):
        yield slice(start, min(start + batch_size, num_frames))


def _float(frames: Tensor, dtype: torch.dtype = torch.float64, scale: float = 1.0) -> Tensor:
    """uint8 N×H×W×3 → N×3×H×W float in [0, 255·scale]."""
    return frames.permute(0, 3, 1, 2).to(dtype) * scale


def _hub_checkpoint(file_name: str) -> Path:
    # Read at call time, so TORCH_HOME set after import is honoured.
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


# -- PSNR, SSIM --------------------------------------------------------------------------------


def psnr_frames(pred: Video, gt: Video, *, max_db: float = 100.0, batch_size: int = 32) -> Tensor:
    """PSNR of each frame on RGB 0–255 (float64), capped at `max_db`; T values (dB)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    pred, gt = _pair(pred, gt)
    values = []
    for part in _chunks(pred.shape[0], batch_size):
        values.append(
            peak_signal_noise_ratio(
                _float(pred[part]),
                _float(gt[part]),
                data_range=255.0,
                reduction="none",
                dim=(1, 2, 3),
            )
        )
    return torch.cat(values).clamp(max=max_db)


def psnr(pred: Video, gt: Video, *, max_db: float = 100.0, batch_size: int = 32) -> float:
    """Mean over frames of the per-frame RGB PSNR (dB, 0–255, each capped at `max_db`).

    Pass `max_db=math.inf` for the original's behaviour (any identical frame makes it inf).
    """
    return psnr_frames(pred, gt, max_db=max_db, batch_size=batch_size).mean().item()


def ssim(pred: Video, gt: Video, *, batch_size: int = 16) -> float:
    """Mean over frames of RGB SSIM (Gaussian 11×11, σ 1.5, range 255) over the valid region."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    pred, gt = _pair(pred, gt)
    if min(pred.shape[1:3]) < SSIM_KERNEL:
        raise ValueError(
            f"SSIM needs frames of at least {SSIM_KERNEL}×{SSIM_KERNEL}, got "
            f"{tuple(pred.shape[1:3])}"
        )
    border = SSIM_KERNEL // 2
    total = 0.0
    for part in _chunks(pred.shape[0], batch_size):
        _, ssim_map = structural_similarity_index_measure(
            _float(pred[part]),
            _float(gt[part]),
            gaussian_kernel=True,
            sigma=SSIM_SIGMA,
            kernel_size=SSIM_KERNEL,
            data_range=255.0,
            return_full_image=True,
        )
        # torchmetrics pads by reflection; the original convention scores real windows only.
        valid = ssim_map[..., border:-border, border:-border]
        total += valid.mean(dim=(1, 2, 3)).sum().item()
    return total / pred.shape[0]


# -- LPIPS -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _lpips_model(alexnet_path: str) -> nn.Module:
    """lpips' AlexNet v0.1 with its shipped linear layers and the user's torchvision trunk."""
    import lpips as lpips_package

    with warnings.catch_warnings():
        # pnet_rand builds an untrained trunk (torchvision's deprecated `pretrained=False`), so
        # nothing is downloaded; the trunk weights come from the user's file below.
        warnings.simplefilter("ignore")
        model = lpips_package.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
    trunk = torch.load(alexnet_path, map_location="cpu", weights_only=True)
    prefix = "features."
    features = {k.removeprefix(prefix): v for k, v in trunk.items() if k.startswith(prefix)}
    # lpips slices keep torchvision's layer indices ("slice2.3.weight" is "features.3.weight").
    state = {}
    for key in model.net.state_dict():
        index_and_param = key.split(".", 1)[1]
        if index_and_param not in features:
            raise ValueError(f"{alexnet_path} lacks features.{index_and_param}: not an AlexNet")
        state[key] = features[index_and_param]
    model.net.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)


def lpips(pred: Video, gt: Video, *, batch_size: int = 16) -> float:
    """Mean over frames of LPIPS (AlexNet, v0.1); nan with a warning without the AlexNet file."""
    pred, gt = _pair(pred, gt)
    path = _hub_checkpoint(ALEXNET_FILE)
    if not path.is_file():
        warnings.warn(
            f"LPIPS skipped: the AlexNet weights {path} are missing (put torchvision's "
            f"{ALEXNET_FILE} there or set TORCH_HOME); nothing is downloaded",
            stacklevel=2,
        )
        return math.nan
    model = _lpips_model(str(path)).to(pred.device)
    total = 0.0
    with torch.no_grad():
        for part in _chunks(pred.shape[0], batch_size):
            a = _float(pred[part], torch.float32, 2.0 / 255.0) - 1.0
            b = _float(gt[part], torch.float32, 2.0 / 255.0) - 1.0
            total += model(a, b).sum().item()
    return total / pred.shape[0]


# -- colourfulness, CDC ------------------------------------------------------------------------


def colorfulness(video: Video, *, batch_size: int = 32) -> float:
    """Hasler–Süsstrunk colourfulness, mean over frames.

    Per frame on 0–255 RGB: rg = R − G, yb = (R + G)/2 − B,
    M = sqrt(σ_rg² + σ_yb²) + 0.3 · sqrt(μ_rg² + μ_yb²) (σ: population std over pixels).
    """
    video = _video(video)
    total = 0.0
    for part in _chunks(video.shape[0], batch_size):
        frames = _float(video[part]).flatten(2)
        red, green, blue = frames.unbind(1)
        rg = red - green
        yb = 0.5 * (red + green) - blue
        spread = torch.sqrt(rg.var(dim=1, correction=0) + yb.var(dim=1, correction=0))
        offset = torch.sqrt(rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2)
        total += (spread + 0.3 * offset).sum().item()
    return total / video.shape[0]


def _histograms(video: Tensor, batch_size: int) -> Tensor:
    """T×3×256 float64: each channel's 256-bin histogram divided by H·W."""
    num_frames, height, width, _ = video.shape
    parts = []
    for part in _chunks(num_frames, batch_size):
        frames = video[part].permute(0, 3, 1, 2).reshape(-1, height * width).to(torch.int64)
        offsets = torch.arange(frames.shape[0], device=frames.device)[:, None] * 256
        counts = torch.bincount((frames + offsets).flatten(), minlength=frames.shape[0] * 256)
        parts.append(counts.reshape(-1, 3, 256))
    return torch.cat(parts).to(torch.float64) / (height * width)


def _js_divergence(p: Tensor, q: Tensor) -> Tensor:
    """Jensen–Shannon divergence (natural log) of distributions along the last dim; 0·log 0 = 0."""
    mean = 0.5 * (p + q)

    def kl_to_mean(a: Tensor) -> Tensor:
        # a > 0 implies mean > 0; the other branch's 0/0 is discarded by where.
        return torch.where(a > 0, a * torch.log(a / mean), torch.zeros_like(a)).sum(-1)

    return 0.5 * kl_to_mean(p) + 0.5 * kl_to_mean(q)


def cdc(video: Video, *, dilations: Sequence[int] = (1, 2, 4), batch_size: int = 16) -> float:
    """Colour distribution consistency (TCVC, `codes/compute_hist.py`); lower is steadier.

    For each RGB channel: 256-bin histograms normalised by H·W; JS divergence (natural log)
    between frames t and t + d, mean over t, for each d in `dilations`; the dilations averaged
    with equal weights (1/3 each for 1, 2, 4); then the mean over the three channels.
    The video needs more than max(dilations) frames.
    """
    video = _video(video)
    dilations = tuple(int(d) for d in dilations)
    if not dilations or min(dilations) < 1:
        raise ValueError(f"dilations must be positive integers, got {dilations}")
    if video.shape[0] <= max(dilations):
        raise ValueError(
            f"CDC with dilations {dilations} needs more than {max(dilations)} frames, got "
            f"{video.shape[0]} ({tuple(video.shape)})"
        )
    hist = _histograms(video, batch_size)
    per_channel = torch.zeros(3, dtype=torch.float64, device=hist.device)
    for d in dilations:
        per_channel += _js_divergence(hist[:-d], hist[d:]).mean(0) / len(dilations)
    return per_channel.mean().item()


# -- warp error --------------------------------------------------------------------------------


def _flow_gradient_energy(flow: Tensor) -> Tensor:
    """Σ over u, v of (forward difference along x)² + (along y)²; last column/row count 0."""
    dx = torch.zeros_like(flow)
    dy = torch.zeros_like(flow)
    dx[..., :, :-1] = flow[..., :, :-1] - flow[..., :, 1:]
    dy[..., :-1, :] = flow[..., :-1, :] - flow[..., 1:, :]
    return (dx**2 + dy**2).sum(1, keepdim=True)


def non_occlusion_mask(flow_forward: Tensor, flow_backward: Tensor) -> Tensor:
    """Lai et al.'s mask of pixels of frame a that frame b sees: B×1×H×W float, 1 = visible.

    flow_forward: B×2×H×W from a's grid to b; flow_backward: B×2×H×W from b's grid to a.
    A pixel is occluded where the two flows disagree,
        |F_fw + warp(F_bw, F_fw)|² > 0.01 (|F_fw|² + |warp(F_bw, F_fw)|²) + 0.5,
    or on a motion boundary of F_fw,
        |∂F_fw|² > 0.01 |F_fw|² + 0.002 (forward differences, summed over u, v and x, y).
    """
    shape = flow_forward.shape
    if flow_backward.shape != shape or len(shape) != 4 or shape[1] != 2:
        raise ValueError(
            f"flows must both be B×2×H×W, got {tuple(flow_forward.shape)} and "
            f"{tuple(flow_backward.shape)}"
        )
    backward_on_a = resample2d(flow_backward, flow_forward)
    magnitude_fw = (flow_forward**2).sum(1, keepdim=True)
    magnitude_bw = (backward_on_a**2).sum(1, keepdim=True)
    round_trip = ((flow_forward + backward_on_a) ** 2).sum(1, keepdim=True)
    inconsistent = round_trip > 0.01 * (magnitude_fw + magnitude_bw) + 0.5
    boundary = _flow_gradient_energy(flow_forward) > 0.01 * magnitude_fw + 0.002
    return (~(inconsistent | boundary)).to(flow_forward.dtype)


def warp_error(pred: Video, gt: Video, *, flow_fn: FlowFn, batch_size: int = 8) -> float:
    """Lai et al.'s warping error (ECCV 2018, `evaluate_WarpError.py`), the flicker measure.

    For t = 1 … T−1, flows between the *gt* frames t−1 and t (forward F(t−1→t), backward
    F(t→t−1), from `flow_fn`) give the non-occlusion mask M on frame t−1's grid; then
        E_t = Σ M · (warp(O_t, F(t−1→t)) − O_{t−1})² / (3 · Σ M)
    over pixels and RGB channels of the output O in [0, 1] (float32), i.e. the mean squared
    error per colour value over visible pixels (E_t = 0 if no pixel is visible). Returns the
    mean over the T−1 pairs. Lai report it ×10⁻³ or so; this is the raw value.
    """
    pred, gt = _pair(pred, gt)
    if pred.shape[0] < 2:
        raise ValueError(f"warp error needs at least 2 frames, got {tuple(pred.shape)}")
    total = 0.0
    with torch.no_grad():
        for part in _chunks(pred.shape[0] - 1, batch_size):
            later = slice(part.start + 1, part.stop + 1)
            gt_a = _float(gt[part], torch.float32, 1.0 / 255.0)
            gt_b = _float(gt[later], torch.float32, 1.0 / 255.0)
            flow_forward = flow_fn(gt_a, gt_b).to(torch.float32)
            flow_backward = flow_fn(gt_b, gt_a).to(torch.float32)
            if flow_forward.shape != (gt_a.shape[0], 2, *gt_a.shape[2:]):
                raise ValueError(
                    f"flow_fn must return B×2×H×W = {(gt_a.shape[0], 2, *gt_a.shape[2:])}, got "
                    f"{tuple(flow_forward.shape)}"
                )
            mask = non_occlusion_mask(flow_forward, flow_backward)
            warped = resample2d(_float(pred[later], torch.float32, 1.0 / 255.0), flow_forward)
            squared = mask * (warped - _float(pred[part], torch.float32, 1.0 / 255.0)) ** 2
            visible = 3.0 * mask.sum(dim=(1, 2, 3))
            error = squared.sum(dim=(1, 2, 3)) / visible.clamp(min=1.0)
            total += error.sum().item()
    return total / (pred.shape[0] - 1)


# -- FID ---------------------------------------------------------------------------------------


def _frames_of(videos: Video | Sequence[Video], name: str) -> list[Tensor]:
    if isinstance(videos, (np.ndarray, Tensor)):
        return [_video(videos, name)]
    return [_video(v, f"{name}[{i}]") for i, v in enumerate(videos)]


def fid(
    pred: Video | Sequence[Video],
    gt: Video | Sequence[Video],
    *,
    feature: nn.Module | None = None,
    batch_size: int = 32,
) -> float:
    """Fréchet Inception Distance between all frames of `pred` and all frames of `gt`.

    pred, gt: one uint8 T×H×W×3 video or a sequence of them (a data set's frames pooled).
    feature: a module mapping uint8 N×3×H×W to N×D features instead of Inception (tests, other
        backbones). Without it: torchmetrics' Inception (2048-d) from the user's weights file;
        nan with a warning if torch-fidelity or the file is missing.
    """
    pred_videos, gt_videos = _frames_of(pred, "pred"), _frames_of(gt, "gt")
    for name, videos in (("pred", pred_videos), ("gt", gt_videos)):
        if sum(v.shape[0] for v in videos) < 2:
            raise ValueError(f"FID needs at least 2 {name} frames")
    from torchmetrics.image.fid import FrechetInceptionDistance

    if feature is None:
        path = _hub_checkpoint(INCEPTION_FILE)
        missing = []
        if importlib.util.find_spec("torch_fidelity") is None:
            missing.append("the torch-fidelity package")
        if not path.is_file():
            missing.append(f"the Inception weights {path}")
        if missing:
            warnings.warn(
                f"FID skipped: {' and '.join(missing)} missing; nothing is downloaded", stacklevel=2
            )
            return math.nan
        metric = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(path))
    else:
        metric = FrechetInceptionDistance(feature=feature)
    metric = metric.to(pred_videos[0].device)
    with torch.no_grad():
        for real, videos in ((False, pred_videos), (True, gt_videos)):
            for video in videos:
                for part in _chunks(video.shape[0], batch_size):
                    frames = video[part].to(metric.device).permute(0, 3, 1, 2).contiguous()
                    metric.update(frames, real=real)
        return metric.compute().item()
