"""Video files and frame folders (PyAV): stream RGB frames in, write H.264 mp4 or PNG folders.

Reading::

    with VideoReader("clip.mp4") as reader:      # or a folder of frames: png, jpg, bmp, tif
        reader.info                              # VideoInfo(fps, width, height, num_frames, ...)
        for frame in reader:                     # H×W×3 uint8 RGB, one frame at a time
            ...

Writing (nothing appears at `path` until the writer closes cleanly)::

    with VideoWriter("out.mp4", fps=reader.info.fps, audio_from="clip.mp4") as writer:
        writer.write(frame)                      # H×W×3 uint8 RGB or H×W uint8 gray

Every problem with a user's file raises `VideoError`, whose message names the file and what is
wrong, so entry points can print it as one line.

Colour conversion: the writer converts RGB to YUV with the BT.709 matrix (limited range) and tags
the stream as BT.709, so players and this reader invert it exactly; the reader follows a stream's
tags, and for untagged streams guesses like players do (BT.709 from 720 lines up, else BT.601).

The package, by job: `frames` (frame folders and image files), `reader` (`VideoReader`,
`read_frames`), `writer` (`VideoWriter`, `FrameFolderWriter`), `audio` (the writer's audio copy),
and `_common` (`VideoError` and what the others share). Import from `tcvc.io` itself.
"""

from tcvc.io._common import VideoError
from tcvc.io.frames import (
    DEFAULT_FOLDER_FPS,
    IMAGE_SUFFIXES,
    list_frame_files,
    natural_key,
    read_image,
)
from tcvc.io.reader import CountFrames, OnDecodeError, VideoInfo, VideoReader, read_frames
from tcvc.io.writer import FrameFolderWriter, VideoWriter

__all__ = [
    "DEFAULT_FOLDER_FPS",
    "IMAGE_SUFFIXES",
    "CountFrames",
    "FrameFolderWriter",
    "OnDecodeError",
    "VideoError",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "list_frame_files",
    "natural_key",
    "read_frames",
    "read_image",
]
