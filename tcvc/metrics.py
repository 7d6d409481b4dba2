"""Video colorization metrics on uint8 RGB videos shaped T×H×W×3 (numpy arrays or torch tensors).

Every function returns a Python float for one video (FID: for two sets of frames); a data set's
figure is the mean over its videos, as the TCVC evaluation does. Work runs in chunks of frames on
the device the input is on (numpy inputs: CPU).

- `psnr`: RGB 0–255 per frame, mean over frames; a frame's PSNR is capped at `max_db` (100 dB),
  so identical frames give 100, not inf (the original's inf would swamp a data set's mean).
- `ssim`: Gaussian SSIM (11×11, σ 1.5, data range 255) over RGB, averaged over the *valid*
  region (as MATLAB's `ssim` and BasicSR do; torchmetrics' map cropped by 5 pixels), mean over
  frames.
- `lpips`: the `lpips` package, AlexNet v0.1, mean over frames. The AlexNet trunk is the user's
  torchvision file `<torch hub>/checkpoints/alexnet-owt-7be5be79.pth` (never downloaded); without
  it the metric warns and returns nan.
- `colorfulness`: Hasler & Süsstrunk (2003) on 0–255 RGB, mean over frames.
- `cdc`: TCVC's colour distribution consistency (see `cdc`).
- `warp_error`: Lai et al. (ECCV 2018), see `warp_error`.
- `fid`: FID on torchmetrics' Inception (2048-d pool features); `FrechetDistance` accumulates it
  video by video. Needs `torch-fidelity` and the user's
  `<torch hub>/checkpoints/weights-inception-2015-12-05-6726825d.pth`; without them it warns and
  returns nan.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ops import resample2d

__all__ = [
    "ALEXNET_FILE",
    "INCEPTION_FILE",
    "FrechetDistance",
    "cdc",
    "colorfulness",
    "fid",
    "lpips",
    "non_occlusion_mask",
    "psnr",
    "psnr_frames",
    "ssim",
    "warp_error",
    "warp_errors",
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


def _gaussian_window(device: torch.device) -> Tensor:
    offsets = torch.arange(SSIM_KERNEL, dtype=torch.float64, device=device) - SSIM_KERNEL // 2
    window = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return window / window.sum()


def _valid_filter(images: Tensor, window: Tensor) -> Tensor:
    """N×C×H×W float64 -> N×C×(H−10)×(W−10): the 11×11 Gaussian over valid windows only.

    Two 1-D passes (the 2-D window is their outer product), each a sum of 11 shifted copies:
    float64 convolutions have no fast CPU kernel, and this is ~5× quicker than conv2d.
    """
    taps = window.tolist()
    height, width = images.shape[-2] - len(taps) + 1, images.shape[-1] - len(taps) + 1
    rows = images[..., 0:height, :] * taps[0]
    for k, tap in enumerate(taps[1:], start=1):
        rows.add_(images[..., k : k + height, :], alpha=tap)
    out = rows[..., 0:width] * taps[0]
    for k, tap in enumerate(taps[1:], start=1):
        out.add_(rows[..., k : k + width], alpha=tap)
    return out


def ssim(pred: Video, gt: Video, *, batch_size: int = 16) -> float:
    """Mean over frames of RGB SSIM (Gaussian 11×11, σ 1.5, range 255) over the valid region.

    Wang et al.'s SSIM per channel with C1 = (0.01·255)², C2 = (0.03·255)², averaged over the
    windows that lie inside the frame (as MATLAB's `ssim` and BasicSR; torchmetrics' map cropped
    by 5 pixels gives the same), the channels, then the frames. Float64, filtered separably
    (torchmetrics' float64 2-D convolution is ~30× slower on CPU).
    """
    pred, gt = _pair(pred, gt)
    if min(pred.shape[1:3]) < SSIM_KERNEL:
        raise ValueError(
            f"SSIM needs frames of at least {SSIM_KERNEL}×{SSIM_KERNEL}, got "
            f"{tuple(pred.shape[1:3])}"
        )
    window = _gaussian_window(pred.device)
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    total = 0.0
    for part in _chunks(pred.shape[0], batch_size):
        x, y = _float(pred[part]), _float(gt[part])
        stats = _valid_filter(torch.cat([x, y, x * x, y * y, x * y], dim=1), window)
        mu_x, mu_y, xx, yy, xy = stats.chunk(5, dim=1)
        var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
            (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        )
        total += ssim_map.mean(dim=(1, 2, 3)).sum().item()
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
    return warp_errors({"pred": pred}, gt, flow_fn=flow_fn, batch_size=batch_size)["pred"]


def warp_errors(
    preds: Mapping[str, Video], gt: Video, *, flow_fn: FlowFn, batch_size: int = 8
) -> dict[str, float]:
    """`warp_error` of several outputs of one video: {name: value}.

    The flows and masks depend on `gt` only, so they are computed once for all outputs (an
    evaluation scores a method and its baselines against the same frames).
    """
    if not preds:
        raise ValueError("warp_errors needs at least one output video")
    pairs = {name: _pair(pred, gt) for name, pred in preds.items()}
    gt = next(iter(pairs.values()))[1]
    if gt.shape[0] < 2:
        raise ValueError(f"warp error needs at least 2 frames, got {tuple(gt.shape)}")
    totals = dict.fromkeys(pairs, 0.0)
    with torch.no_grad():
        for part in _chunks(gt.shape[0] - 1, batch_size):
            later = slice(part.start + 1, part.stop + 1)
            gt_a = _float(gt[part], torch.float32, 1.0 / 255.0)
            gt_b = _float(gt[later], torch.float32, 1.0 / 255.0)
            flow_forward = flow_fn(gt_a, gt_b).to(torch.float32)
            flow_backward = flow_fn(gt_b, gt_a).to(torch.float32)
            expected = (gt_a.shape[0], 2, *gt_a.shape[2:])
            for flow in (flow_forward, flow_backward):
                if tuple(flow.shape) != expected:
                    raise ValueError(
                        f"flow_fn must return B×2×H×W = {expected}, got {tuple(flow.shape)}"
                    )
            mask = non_occlusion_mask(flow_forward, flow_backward)
            visible = 3.0 * mask.sum(dim=(1, 2, 3))
            for name, (pred, _) in pairs.items():
                warped = resample2d(_float(pred[later], torch.float32, 1.0 / 255.0), flow_forward)
                squared = mask * (warped - _float(pred[part], torch.float32, 1.0 / 255.0)) ** 2
                error = squared.sum(dim=(1, 2, 3)) / visible.clamp(min=1.0)
                totals[name] += error.sum().item()
    return {name: total / (gt.shape[0] - 1) for name, total in totals.items()}


# -- FID ---------------------------------------------------------------------------------------


def _frames_of(videos: Video | Sequence[Video], name: str) -> list[Tensor]:
    if isinstance(videos, (np.ndarray, Tensor)):
        return [_video(videos, name)]
    return [_video(v, f"{name}[{i}]") for i, v in enumerate(videos)]


def _inception(path: Path) -> nn.Module | None:
    """torchmetrics' Inception (2048-d pool features) from the user's file; None with a warning
    if torch-fidelity or the file is missing."""
    missing = []
    if importlib.util.find_spec("torch_fidelity") is None:
        missing.append("the torch-fidelity package")
    if not path.is_file():
        missing.append(f"the Inception weights {path}")
    if missing:
        warnings.warn(
            f"FID skipped: {' and '.join(missing)} missing; nothing is downloaded", stacklevel=3
        )
        return None
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(
        feature=2048, feature_extractor_weights_path=str(path)
    ).inception


class FrechetDistance:
    """Fréchet distance between named sets of frames, accumulated video by video.

    `add(name, video)` runs the feature network on a uint8 T×H×W×3 video and adds its features
    to the set `name` (sums and outer-product sums in float64, so a data set's frames are never
    all in memory, and a ground truth added once serves every method). `distance(a, b)`:
        |μ_a − μ_b|² + tr(Σ_a) + tr(Σ_b) − 2 tr((Σ_a Σ_b)^½)
    with unbiased covariances, the trace of the root from the eigenvalues of Σ_a Σ_b.

    feature: a module mapping uint8 N×3×H×W to N×D, or None for torchmetrics' Inception (FID)
        from the user's weights file; without that file (or torch-fidelity) `available` is False
        and every distance is nan (one warning at construction).
    """

    def __init__(
        self,
        *,
        feature: nn.Module | None = None,
        batch_size: int = 32,
        device: torch.device | str | None = None,
    ) -> None:
        self.feature = (
            feature if feature is not None else _inception(_hub_checkpoint(INCEPTION_FILE))
        )
        if self.feature is not None:
            self.feature = self.feature.eval().to(device or "cpu")
        self.batch_size = batch_size
        self._sums: dict[str, list] = {}

    @property
    def available(self) -> bool:
        return self.feature is not None

    def add(self, name: str, video: Video) -> None:
        video = _video(video, name)
        if self.feature is None:
            return
        device = next(self.feature.parameters(), torch.empty(0)).device
        with torch.no_grad():
            for part in _chunks(video.shape[0], self.batch_size):
                frames = video[part].to(device).permute(0, 3, 1, 2).contiguous()
                features = self.feature(frames).to(torch.float64).flatten(1)
                if name not in self._sums:
                    dim = features.shape[1]
                    self._sums[name] = [
                        0,
                        features.new_zeros(dim),
                        features.new_zeros(dim, dim),
                    ]
                sums = self._sums[name]
                sums[0] += features.shape[0]
                sums[1] += features.sum(0)
                sums[2] += features.T @ features

    def count(self, name: str) -> int:
        return self._sums[name][0] if name in self._sums else 0

    def distance(self, a: str, b: str) -> float:
        if self.feature is None:
            return math.nan
        stats = []
        for name in (a, b):
            if self.count(name) < 2:
                raise ValueError(f"FID needs at least 2 {name} frames, got {self.count(name)}")
            count, total, outer = self._sums[name]
            mean = total / count
            cov = (outer - count * torch.outer(mean, mean)) / (count - 1)
            stats.append((mean, cov))
        (mean_a, cov_a), (mean_b, cov_b) = stats
        root_trace = torch.linalg.eigvals(cov_a @ cov_b).real.clamp(min=0).sqrt().sum()
        value = ((mean_a - mean_b) ** 2).sum() + cov_a.trace() + cov_b.trace() - 2 * root_trace
        return value.item()


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
        nan with a warning if torch-fidelity or the file is missing. See `FrechetDistance`.
    """
    pred_videos, gt_videos = _frames_of(pred, "pred"), _frames_of(gt, "gt")
    for name, videos in (("pred", pred_videos), ("gt", gt_videos)):
        if sum(v.shape[0] for v in videos) < 2:
            raise ValueError(f"FID needs at least 2 {name} frames")
    distance = FrechetDistance(feature=feature, batch_size=batch_size, device=pred_videos[0].device)
    for name, videos in (("pred", pred_videos), ("gt", gt_videos)):
        for video in videos:
            distance.add(name, video)
    return distance.distance("pred", "gt")
