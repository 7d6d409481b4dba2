"""Training and validation data: clips of frame folders, the DataModule, the sample data."""

from tcvc.data.clips import ClipDataset, VideoFrames, find_videos
from tcvc.data.datamodule import TCVCDataModule
from tcvc.data.frames import DataError, read_frame
from tcvc.data.sample import prepare_sample_data

__all__ = [
    "ClipDataset",
    "DataError",
    "TCVCDataModule",
    "VideoFrames",
    "find_videos",
    "prepare_sample_data",
    "read_frame",
]
