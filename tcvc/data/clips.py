"""Clips of consecutive frames from roots of frame folders (the DAVIS/Videvo 300×300 layout).

A root holds one folder of frames per video::

    root/
      bear/00000.png 00001.png ...
      blackswan/00000.png ...

A clip is `interval + 2` consecutive frames: two anchors with `interval` frames between them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from tcvc.color import rgb_to_lab_normalized
from tcvc.data.augment import center_augmentation, random_augmentation
from tcvc.data.flow_cache import cache_dir_of, clip_flow_pairs, read_clip_flows
from tcvc.data.frames import DataError, read_frame
from tcvc.io import VideoError, list_frame_files, natural_key

log = logging.getLogger(__name__)

__all__ = ["ClipDataset", "VideoFrames", "find_videos", "video_location"]


@dataclass(frozen=True)
class VideoFrames:
    """One video of a root: its name and its naturally sorted frame files."""

    name: str
    frames: tuple[Path, ...]


def find_videos(roots: list[str | Path], *, min_frames: int) -> list[VideoFrames]:
    """Every video folder of every root with at least `min_frames` frames.

    Raises DataError for a missing or unreadable root, a root with no video folders, a video
    folder without frames, or when no video is long enough; shorter videos are skipped with one
    warning that lists them. Hidden entries (``.ipynb_checkpoints``, macOS ``._00000.png``) are
    ignored; frames are listed as ``tcvc.io.list_frame_files`` lists them.
    """
    if isinstance(roots, (str, Path)):
        roots = [roots]
    if not roots:
        raise DataError("no data root given (data.roots / data.val_roots is empty)")
    videos: list[VideoFrames] = []
    too_short: list[str] = []
    for root in map(Path, roots):
        if not root.is_dir():
            raise DataError(f"data root {root} does not exist or is not a folder")
        try:
            entries = [p for p in root.iterdir() if not p.name.startswith(".") and p.is_dir()]
        except OSError as error:
            raise DataError(
                f"data root {root}: cannot list it: {error.strerror or error}"
            ) from None
        folders = sorted(entries, key=lambda p: natural_key(p.name))
        if not folders:
            raise DataError(
                f"data root {root} holds no video folders (expected <root>/<video>/00000.png ...)"
            )
        for folder in folders:
            try:
                frames = tuple(list_frame_files(folder))
            except VideoError as error:
                raise DataError(f"video folder {error}") from None
            if len(frames) < min_frames:
                too_short.append(f"{folder} ({len(frames)} frames)")
                continue
            videos.append(VideoFrames(name=f"{root.resolve().name}/{folder.name}", frames=frames))
    if too_short:
        log.warning(
            "skipping %d video(s) shorter than a clip of %d frames: %s",
            len(too_short),
            min_frames,
            ", ".join(too_short),
        )
    if not videos:
        raise DataError(
            f"no video in {', '.join(map(str, roots))} has the {min_frames} frames a clip needs "
            f"(data.interval + 2); lower data.interval or add longer videos"
        )
    return videos


class ClipDataset(Dataset):
    """Clips of `interval + 2` frames, as Lab tensors normalised the way IDC and TCVC expect.

    A sample is a dict:
      - `L`:  T×1×H×W, (L − 50) / 100, in [−0.5, 0.5]
      - `ab`: T×2×H×W, ab / 110, about [−1, 1]
      - `video`: the video's name (`<root name>/<folder name>`), `start`: index of the first frame.

    Training (`train=True`): item i is a clip of video i mod V (V videos over all roots, so mixed
    roots such as DAVIS + Videvo are sampled uniformly by video, whatever their lengths), from a
    random start, with one random crop and the same random flips/transpose for every frame.
    Validation (`train=False`): fixed clips — `clips_per_video` starts spread evenly over each video
    and a centre crop — so every validation run sees the same frames.
    """

    def __init__(
        self,
        roots: list[str | Path],
        *,
        interval: int,
        crop_size: int | None,
        train: bool,
        clips_per_video: int = 1,
        flow_offsets: Sequence[int] | None = None,
    ) -> None:
        if interval < 0:
            raise DataError(f"data.interval must be >= 0, got {interval}")
        if clips_per_video < 1:
            raise DataError(f"clips_per_video must be >= 1, got {clips_per_video}")
        self.interval = interval
        self.clip_length = interval + 2
        self.crop_size = crop_size
        self.train = train
        self.clips_per_video = clips_per_video
        self.flow_offsets = None if flow_offsets is None else tuple(flow_offsets)
        self.videos = find_videos(roots, min_frames=self.clip_length)
        self._fixed_clips = [
            (video_index, start)
            for video_index, video in enumerate(self.videos)
            for start in self._even_starts(len(video.frames))
        ]

    def _even_starts(self, num_frames: int) -> list[int]:
        last = num_frames - self.clip_length
        count = min(self.clips_per_video, last + 1)
        return sorted({round(i * last / max(count - 1, 1)) for i in range(count)})

    def __len__(self) -> int:
        if self.train:
            return len(self.videos) * self.clips_per_video
        return len(self._fixed_clips)

    def __getitem__(self, index: int) -> dict:
        if self.train:
            video = self.videos[index % len(self.videos)]
            start = int(torch.randint(0, len(video.frames) - self.clip_length + 1, ()).item())
        else:
            video_index, start = self._fixed_clips[index]
            video = self.videos[video_index]
        paths = video.frames[start : start + self.clip_length]
        frames = [read_frame(p) for p in paths]
        for path, frame in zip(paths, frames):
            if frame.shape != frames[0].shape:
                raise DataError(
                    f"frame {path} is {tuple(frame.shape[1:])}, but {paths[0]} is "
                    f"{tuple(frames[0].shape[1:])}: frames of a video must share one size"
                )
        rgb = torch.stack(frames)
        augmentation = None
        if self.crop_size is not None:
            height, width = rgb.shape[-2:]
            if min(height, width) < self.crop_size:
                raise DataError(
                    f"frames of {video.name} are {height}×{width}, smaller than "
                    f"data.crop_size={self.crop_size}"
                )
            draw = random_augmentation if self.train else center_augmentation
            augmentation = draw(height, width, self.crop_size)
            rgb = augmentation.apply(rgb)
        L, ab = rgb_to_lab_normalized(rgb)
        sample = {"L": L, "ab": ab, "video": video.name, "start": start}
        if self.flow_offsets is not None:
            pairs = clip_flow_pairs(self.clip_length, self.flow_offsets)
            flows = read_clip_flows(cache_dir_of(*video_location(video)), start, pairs)
            if augmentation is not None:
                flows = augmentation.apply_to_flow(flows)
            sample["flows"] = flows  # P×2×H×W
            sample["flow_pairs"] = torch.tensor(pairs)  # P×2 (a, b) in clip frame indices
        return sample


def video_location(video: VideoFrames) -> tuple[Path, str]:
    """(root, folder name) of a video found by ``find_videos``."""
    folder = video.frames[0].parent
    return folder.parent, folder.name
