"""FlowNet2 flows of whole training videos, computed once and stored next to the data.

FlowNet2 is frozen, so its flows are a function of the frames alone. With ``data.flow_cache=true``
the flows a training step needs are computed once per video on the full frames (300×300 in the
paper's data, padded by edge replication to multiples of 64) and stored as float16 ``.npy``
files; each clip then reads its flows and crops / flips / transposes them with its frames
(``Augmentation.apply_to_flow``) instead of running FlowNet2 on the crops. This is an
approximation: near a crop's border FlowNet2 on the crop sees less context than on the full frame
(and float16 keeps about 11 bits: 0.03 px at 50 px). Off by default.

Layout: ``<root>.flows/<video folder>/offset_<d>.npy`` next to each root, one file per offset d,
holding F(a, a + d) for every frame a with a + d inside the video: an (N − |d|)×2×H×W array
(F(a, a + d) is row a for d > 0, row a − |d| for d < 0: ``row_of``). A flow F(a, b) is on frame
a's grid, in pixels. ``flownet.fingerprint`` holds ``weights_fingerprint`` of the FlowNet2 that
made them: a cache made with other weights (random ones, say, before the real file was given) is
stale and computed again.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from tcvc.color import rgb_to_lab_normalized
from tcvc.data.frames import read_frame
from tcvc.nets import SIZE_MULTIPLE

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_OFFSETS",
    "PairFlowFn",
    "build_flow_cache",
    "cache_dir_of",
    "clip_flow_pairs",
    "read_clip_flows",
    "row_of",
    "video_flows",
    "weights_fingerprint",
]

# F(a, a+1) and F(a, a−1) (propagation), F(a+k, a) for k = 1, 2 (SRL) = offsets −1, −2.
DEFAULT_OFFSETS = (1, -1, -2)

# The flow of a batch of frame pairs from their normalised L: (L_a, L_b) B×1×H×W each -> F(a, b)
# B×2×H×W pixels on a's grid (``TCVCNet.estimate_flow``). Not ``tcvc.metrics.FlowFn``, which
# takes RGB images.
PairFlowFn = Callable[[Tensor, Tensor], Tensor]


def clip_flow_pairs(num_frames: int, offsets: Iterable[int]) -> list[tuple[int, int]]:
    """The (a, b) frame pairs of a clip the cache provides, in a fixed order: offset-major."""
    return [(a, a + d) for d in offsets for a in range(num_frames) if 0 <= a + d < num_frames]


def cache_dir_of(root: str | Path, video_folder: str) -> Path:
    """Where the flows of ``root/video_folder`` are stored: ``<root>.flows/<video_folder>``.

    A relative root (``.``, ``frames/``) is resolved first: ``<root>.flows`` is a sibling of the
    root's own folder, which ``Path(".")`` does not name.
    """
    root = Path(root).resolve()
    return root.with_name(root.name + ".flows") / video_folder


def _path(folder: Path, offset: int) -> Path:
    return folder / f"offset_{offset:+d}.npy"


def row_of(frame: int, offset: int) -> int:
    """The row of F(frame, frame + offset) in its offset file."""
    return frame if offset > 0 else frame + offset


def read_clip_flows(folder: Path, start: int, pairs: Sequence[tuple[int, int]]) -> Tensor:
    """P×2×H×W float32 flows of a clip starting at ``start`` (pairs in clip frame indices)."""
    arrays: dict[int, np.ndarray] = {}
    rows = []
    for a, b in pairs:
        offset = b - a
        if offset not in arrays:
            arrays[offset] = np.load(_path(folder, offset), mmap_mode="r")
        rows.append(torch.from_numpy(np.array(arrays[offset][row_of(start + a, offset)])))
    return torch.stack(rows).float()


def weights_fingerprint(module: nn.Module, *, samples: int = 4096) -> str:
    """A short hash of a network's weights: names, shapes and ``samples`` evenly spaced values of
    every tensor (hashing all 162 M values of FlowNet2 would take seconds; different weights
    differ in their samples too)."""
    digest = hashlib.sha1()
    for name, tensor in module.state_dict().items():
        flat = tensor.detach().flatten()
        picked = flat[:: max(1, flat.numel() // samples)].to("cpu", torch.float64)
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(picked.numpy().tobytes())
    return digest.hexdigest()[:16]


def _fingerprint_path(folder: Path) -> Path:
    return folder / "flownet.fingerprint"


def _complete(
    folder: Path, num_frames: int, offsets: Iterable[int], fingerprint: str | None
) -> bool:
    if fingerprint is not None:
        path = _fingerprint_path(folder)
        if not path.is_file() or path.read_text().strip() != fingerprint:
            return False
    for offset in offsets:
        path = _path(folder, offset)
        if not path.is_file():
            return False
        try:
            shape = np.load(path, mmap_mode="r").shape
        except (OSError, ValueError):
            return False
        if shape[0] != max(num_frames - abs(offset), 0):
            return False
    return True


@torch.no_grad()
def video_flows(L: Tensor, flow_fn: PairFlowFn, offset: int, *, batch_size: int = 8) -> Tensor:
    """F(a, a + offset) for every valid a of a video: N×1×H×W normalised L -> M×2×H×W.

    Frames are padded (edge replication) to multiples of ``SIZE_MULTIPLE`` (64) for FlowNet2 and
    the flows cropped back, so they are the full frames' flows.
    """
    num_frames, _, height, width = L.shape
    pad_h, pad_w = -height % SIZE_MULTIPLE, -width % SIZE_MULTIPLE
    padded = F.pad(L, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else L
    # ascending a: row a of F(a, a + d) for d > 0, row a − |d| for d < 0 (see row_of)
    sources = [a for a in range(num_frames) if 0 <= a + offset < num_frames]
    out = []
    for i in range(0, len(sources), batch_size):
        a = torch.tensor(sources[i : i + batch_size])
        flow = flow_fn(padded[a], padded[a + offset])
        out.append(flow[..., :height, :width].float().cpu())
    if not out:
        return L.new_zeros((0, 2, height, width))
    return torch.cat(out)


def build_flow_cache(
    videos: Sequence[tuple[Path, str, Sequence[Path]]],
    flow_fn: PairFlowFn,
    *,
    offsets: Iterable[int] = DEFAULT_OFFSETS,
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    fingerprint: str | None = None,
) -> int:
    """Compute and store the flows of every video that has no complete cache yet.

    Args:
        videos: (root, video folder name, frame files) of each video.
        flow_fn: F(a, b) from normalised L of both frames, B×1×H×W each (``net.estimate_flow``).
        offsets: the frame offsets d of F(a, a + d) to store.
        fingerprint: ``weights_fingerprint`` of the flow network; a cache made by another one
            is computed again (None: not checked).

    Returns the number of videos computed. Each file is written to a temporary name and renamed,
    so an interrupted build leaves no half-written cache.
    """
    offsets = tuple(offsets)
    todo = [
        (root, name, frames)
        for root, name, frames in videos
        if not _complete(cache_dir_of(root, name), len(frames), offsets, fingerprint)
    ]
    if not todo:
        return 0
    log.info("flow cache: computing FlowNet2 flows of %d videos (once)", len(todo))
    for root, name, frames in tqdm(todo, desc="flow cache", unit="video"):
        rgb = torch.stack([read_frame(path) for path in frames])
        L, _ = rgb_to_lab_normalized(rgb)
        L = L.to(device)
        folder = cache_dir_of(root, name)
        folder.mkdir(parents=True, exist_ok=True)
        _fingerprint_path(folder).unlink(missing_ok=True)  # incomplete until rewritten
        for offset in offsets:
            flows = video_flows(L, flow_fn, offset, batch_size=batch_size)
            target = _path(folder, offset)
            partial = target.with_name(f".{target.stem}.partial.npy")
            np.save(partial, flows.numpy().astype(np.float16))
            os.replace(partial, target)
        if fingerprint is not None:  # last: the folder is complete once it matches
            _fingerprint_path(folder).write_text(fingerprint + "\n")
    return len(todo)
