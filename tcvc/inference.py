"""Inference helpers: running the network on videos of any size.

TCVCNet needs H and W that are multiples of 64 (FlowNet2). ``run_at_resolution`` runs it either
at a fixed working resolution (the original test scripts: L resized to 256×256, whatever the
aspect ratio) or at the video's own resolution padded to multiples of 64, and returns ab at the
full frame size. As in the original, the result is joined with the *full-resolution* L, e.g.

    ab = run_at_resolution(net.colorize_clip, L, resolution=256)
    rgb = tcvc.color.lab_normalized_to_rgb(L, ab)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Resolution", "anchor_clips", "colorize_frames", "network_size", "run_at_resolution"]

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
    parts = []
    for clip in anchor_clips(L.shape[0], interval, cuts=cuts):
        frames = L[clip.start : clip.stop]
        if len(frames) == 1:
            frames = frames.expand(2, -1, -1, -1)
        ab = run_at_resolution(net_fn, frames[None], resolution=resolution)[0]
        starts_shot = not parts or clip.start != parts[-1][0].stop - 1
        parts.append((clip, ab[: len(clip)] if starts_shot else ab[1 : len(clip)]))
    if not parts:
        return L.new_zeros((0, 2, *L.shape[-2:]))
    return torch.cat([ab for _, ab in parts])
