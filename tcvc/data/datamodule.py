"""The LightningDataModule: training clips from mixed roots, fixed validation clips."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from tcvc.data.clips import ClipDataset, video_location
from tcvc.data.flow_cache import DEFAULT_OFFSETS
from tcvc.data.sample import prepare_sample_data

__all__ = ["TCVCDataModule"]


class TCVCDataModule(pl.LightningDataModule):
    """Batches of clips: `L` B×T×1×H×W, `ab` B×T×2×H×W (T = interval + 2), `video`, `start`.

    Args mirror `conf/data/*.yaml`:
        roots: training roots (one folder of frames per video in each); videos of all roots are
            sampled uniformly.
        val_roots: validation roots (fixed clips, centre crop).
        interval: N, the frames between two anchors; a clip holds N + 2 frames.
        crop_size: side of the square crop (a multiple of ``tcvc.nets.SIZE_MULTIPLE``, 64, for
            FlowNet2), or None for full frames.
        clips_per_video: training clips drawn per video and epoch.
        val_clips_per_video: fixed validation clips per video, spread evenly.
        sample_dir: when set, `prepare_data` first builds the embedded sample data there.
        flow_cache: clips carry their FlowNet2 flows from a per-video cache (`tcvc.data.
            flow_cache`; `TCVCModule` builds it once before training), as `flows` P×2×H×W and
            `flow_pairs` P×2, cropped and flipped with the frames. An approximation; off by default.
        flow_offsets: the offsets d of the cached flows F(a, a + d).

    A data config also names the test roots eval.py scores (`test_roots`); they are no argument
    here: `tcvc.tasks.train.build_datamodule` leaves them out.
    """

    def __init__(
        self,
        *,
        roots: list[str],
        val_roots: list[str],
        interval: int = 10,
        crop_size: int | None = 256,
        batch_size: int = 4,
        num_workers: int = 0,
        clips_per_video: int = 1,
        val_clips_per_video: int = 1,
        sample_dir: str | None = None,
        pin_memory: bool = False,
        flow_cache: bool = False,
        flow_offsets: Sequence[int] = DEFAULT_OFFSETS,
    ) -> None:
        super().__init__()
        self.roots = [str(r) for r in roots]
        self.val_roots = [str(r) for r in val_roots]
        self.interval = interval
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.clips_per_video = clips_per_video
        self.val_clips_per_video = val_clips_per_video
        self.sample_dir = sample_dir
        self.pin_memory = pin_memory
        self.flow_cache = flow_cache
        self.flow_offsets = tuple(flow_offsets)
        self.train_set: ClipDataset | None = None
        self.val_set: ClipDataset | None = None

    def prepare_data(self) -> None:
        if self.sample_dir is not None:
            prepare_sample_data(Path(self.sample_dir))

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = ClipDataset(
                self.roots,
                interval=self.interval,
                crop_size=self.crop_size,
                train=True,
                clips_per_video=self.clips_per_video,
                flow_offsets=self.flow_offsets if self.flow_cache else None,
            )
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = ClipDataset(
                self.val_roots,
                interval=self.interval,
                crop_size=self.crop_size,
                train=False,
                clips_per_video=self.val_clips_per_video,
                flow_offsets=self.flow_offsets if self.flow_cache else None,
            )

    def cached_videos(self) -> list[tuple[Path, str, tuple[Path, ...]]]:
        """(root, folder, frame files) of every training and validation video (after setup)."""
        datasets = [d for d in (self.train_set, self.val_set) if d is not None]
        return [(*video_location(v), v.frames) for d in datasets for v in d.videos]

    def _loader(self, dataset: ClipDataset, *, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "call setup('fit') first"
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None, "call setup('validate') first"
        return self._loader(self.val_set, shuffle=False)
