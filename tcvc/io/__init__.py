"""Video files and frame folders (PyAV): stream RGB frames in, write H.264 mp4 or PNG folders.

Reading::

    with VideoReader("clip.mp4") as reader:      # or a folder of frames: png, jpg, bmp, tif
        reader.info                              # VideoInfo(fps, width, height, num_frames, ...)
        for frame in reader:                     # H×W×3 uint8 RGB, one frame at a time
            ...
    VideoReader("film.mp4", start=100_000, stop=100_250)   # a range: seeks, len() == 250
    VideoReader("film_10bit.mov", bit_depth="full")        # uint16 RGB from a 10-bit source
    VideoReader("film.mkv", start=..., index=earlier.index) # no second count of a long mkv

Writing (nothing appears at `path` until the writer closes cleanly)::

    with VideoWriter("out.mp4", fps=reader.info.fps, audio_from="clip.mp4") as writer:
        writer.write(frame)                      # H×W×3 uint8 RGB or H×W uint8 gray
    VideoWriter("preview.mp4", fps=..., audio_from="clip.mp4", source_start=reader.start_time)
    join_pieces(["part0.mp4", "part1.mp4"], "whole.mp4", audio_from="clip.mp4")  # stream copy

`audio_from` copies the source's audio, subtitles (as mov_text), metadata and languages; with
`source_start`, from that moment of the source on (a preview of a range).

Every problem with a user's file raises `VideoError`, whose message names the file and what is
wrong, so entry points can print it as one line.

Colour conversion: the writer converts RGB to YUV with the BT.709 matrix (limited range) and tags
the stream as BT.709, so players and this reader invert it exactly; the reader follows a stream's
tags, and for untagged streams guesses like players do (BT.709 from 720 lines up, else BT.601).

The package, by job: `frames` (frame folders and image files), `reader` (`VideoReader`,
`read_frames`), `timeline` (frame index ↔ timestamp, for the reader's seeks), `writer`
(`VideoWriter`, `FrameFolderWriter`), `streams` (the other streams of a source copied beside the
video: audio, subtitles, data, metadata; `audio` is its old name), `join` (`join_pieces`),
`threads` (reading ahead, writing behind), and `_common` (`VideoError` and what the others
share). Import from `tcvc.io` itself.
"""

from tcvc.io._common import VideoError
from tcvc.io.frames import (
    DEFAULT_FOLDER_FPS,
    IMAGE_SUFFIXES,
    BitDepth,
    image_bit_depth,
    list_frame_files,
    natural_key,
    read_image,
)
from tcvc.io.join import join_pieces
from tcvc.io.reader import (
    CountFrames,
    FrameIndex,
    OnDecodeError,
    VideoInfo,
    VideoReader,
    read_frames,
)
from tcvc.io.writer import FrameFolderWriter, VideoWriter

__all__ = [
    "DEFAULT_FOLDER_FPS",
    "IMAGE_SUFFIXES",
    "BitDepth",
    "CountFrames",
    "FrameFolderWriter",
    "FrameIndex",
    "OnDecodeError",
    "VideoError",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "image_bit_depth",
    "join_pieces",
    "list_frame_files",
    "natural_key",
    "read_frames",
    "read_image",
]
