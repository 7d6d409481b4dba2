"""Reading: `VideoReader` streams the RGB frames of a video file (PyAV) or a frame folder, one at a
time, with `VideoInfo` known before decoding; `read_frames` loads a whole video at once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import av.error
import numpy as np

from tcvc.io._common import _ACCURATE, VideoError, _ffmpeg_reason, _open_input
from tcvc.io.frames import (
    DEFAULT_FOLDER_FPS,
    IMAGE_SUFFIXES,
    _image_size,
    list_frame_files,
    read_image,
)

log = logging.getLogger(__name__)

__all__ = ["CountFrames", "OnDecodeError", "VideoInfo", "VideoReader", "read_frames"]

# Demuxers whose frame count comes from a sample table that lists every frame; other containers
# (AVI headers in particular) may carry a wrong count, so their frames are counted by demuxing.
_INDEXED_FORMATS = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"})
# H.273 code point 2: a stream that does not say its matrix.
_COLORSPACE_UNSPECIFIED = 2

OnDecodeError = Literal["raise", "keep"]
CountFrames = Literal["auto", "demux", "decode"]


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows before decoding.

    `num_frames` is exact for mp4/mov (their sample table, minus frames an edit list drops) and
    counted by demuxing for every other container; `fps` is the average rate (a frame folder has
    the rate its caller gave).
    """

    path: Path
    fps: float
    width: int
    height: int
    num_frames: int
    has_audio: bool
    is_frame_folder: bool


class VideoReader:
    """Frames of a video file or a folder of frames, one at a time (constant memory).

    Iterating yields H×W×3 uint8 RGB numpy arrays in [0, 255] (gray sources give three equal
    channels; every frame has the size in `info`). A reader is one pass, like a file: iterating
    again, or `read_all()`, goes on where the last loop stopped.

    Args:
        path: a video file (anything FFmpeg demuxes: mp4, mov, mkv, avi, ...) or a folder of
            frames (png, jpg, jpeg, bmp, tif, tiff; natural sort: frame2 before frame10).
        fps: frame rate of a folder (default 25); for a file it overrides the container's rate.
        on_decode_error: "raise" raises VideoError when a frame cannot be decoded or the file ends
            early; "keep" stops there instead, logs a warning, and leaves `stopped_at` (index of
            the first frame not yielded) and `decode_error` (the message) set.
        count_frames: "auto" trusts mp4/mov sample tables and counts other containers' packets;
            "demux" always counts packets; "decode" decodes the whole file once to count (exact
            even when packets and frames differ, slow). A packet count is an estimate: when
            decoding ends cleanly short of it (streams whose frames span several packets), the
            video simply had fewer frames, a warning says so, and it is not an error; short of
            an exact count (a sample table, decoding) it is a truncated file.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float | None = None,
        on_decode_error: OnDecodeError = "raise",
        count_frames: CountFrames = "auto",
    ) -> None:
        if on_decode_error not in ("raise", "keep"):
            raise ValueError(f"on_decode_error must be 'raise' or 'keep', got {on_decode_error!r}")
        if count_frames not in ("auto", "demux", "decode"):
            raise ValueError(
                f"count_frames must be 'auto', 'demux' or 'decode', got {count_frames!r}"
            )
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.on_decode_error = on_decode_error
        self.frames_read = 0
        self.stopped_at: int | None = None
        self.decode_error: str | None = None
        self._frames: Iterator[np.ndarray] | None = None
        self._container: av.container.InputContainer | None = None
        self._frame_files: list[Path] = []
        self._count_is_exact = True
        if not self.path.exists():
            raise VideoError(f"{self.path}: no such file or folder")
        if self.path.is_dir():
            self.info = self._open_folder(fps)
        else:
            self.info = self._open_file(fps, count_frames)

    # -- opening -----------------------------------------------------------------------------

    def _open_folder(self, fps: float | None) -> VideoInfo:
        self._frame_files = list_frame_files(self.path)
        width, height = _image_size(self._frame_files[0])
        return VideoInfo(
            path=self.path,
            fps=float(fps if fps is not None else DEFAULT_FOLDER_FPS),
            width=width,
            height=height,
            num_frames=len(self._frame_files),
            has_audio=False,
            is_frame_folder=True,
        )

    def _open_file(self, fps: float | None, count_frames: CountFrames) -> VideoInfo:
        if self.path.suffix.lower() in IMAGE_SUFFIXES:
            raise VideoError(
                f"{self.path}: is an image, not a video (to read frames, pass their folder)"
            )
        container = _open_input(self.path)
        try:
            format_name = container.format.name
            if format_name == "image2" or format_name.endswith("_pipe"):
                raise VideoError(
                    f"{self.path}: is an image ({format_name}), not a video "
                    "(to read frames, pass their folder)"
                )
            if not container.streams.video:
                kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
                raise VideoError(f"{self.path}: has no video stream (it holds {kinds})")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            if fps is None and not rate:
                log.warning(
                    "%s: no frame rate in the file; assuming %g", self.path, DEFAULT_FOLDER_FPS
                )
            num_frames = self._count(container, stream, count_frames)
            if num_frames == 0:
                raise VideoError(f"{self.path}: holds no video frames")
            info = VideoInfo(
                path=self.path,
                fps=float(fps if fps is not None else (rate or DEFAULT_FOLDER_FPS)),
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                num_frames=num_frames,
                has_audio=bool(container.streams.audio),
                is_frame_folder=False,
            )
        except BaseException:
            container.close()
            raise
        self._container = container
        self._reformatter = av.video.reformatter.VideoReformatter()
        return info

    def _count(self, container, stream, count_frames: CountFrames) -> int:
        if count_frames == "auto":
            indexed = set(container.format.name.split(",")) & _INDEXED_FORMATS
            entries = stream.index_entries
            if indexed and stream.frames > 0 and len(entries) == stream.frames:
                # Frames before an edit list's start are demuxed but never shown.
                return sum(1 for entry in entries if not entry.is_discard)
        self._count_is_exact = count_frames == "decode"
        try:
            with av.open(str(self.path)) as counter:
                counted = counter.streams[stream.index]
                if count_frames == "decode":
                    counted.thread_type = "AUTO"
                    return sum(1 for _ in counter.decode(counted))
                return sum(
                    1 for packet in counter.demux(counted) if packet.size and not packet.is_discard
                )
        except av.error.FFmpegError as error:
            raise VideoError(
                f"{self.path}: cannot count the frames (file truncated or corrupt): "
                f"{_ffmpeg_reason(error)}"
            ) from error

    # -- reading -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.info.num_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._frames is None:
            self._frames = self._iter_folder() if self.info.is_frame_folder else self._iter_file()
        return self._frames

    def _iter_folder(self) -> Iterator[np.ndarray]:
        expected = (self.info.height, self.info.width, 3)
        for index, file in enumerate(self._frame_files):
            try:
                frame = read_image(file)
            except VideoError as error:
                self._stop(index, str(error), error)
                return
            if frame.shape != expected:
                self._stop(
                    index,
                    f"{file}: frame is {frame.shape[1]}×{frame.shape[0]}, but the folder's first "
                    f"frame is {expected[1]}×{expected[0]}",
                    None,
                )
                return
            self.frames_read = index + 1
            yield frame

    def _iter_file(self) -> Iterator[np.ndarray]:
        container = self._container
        if container is None:
            raise RuntimeError(f"{self.path}: the reader is closed")
        stream = container.streams.video[0]
        total = self.info.num_frames
        index = 0
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    rgb = self._to_rgb(frame)
                    index += 1
                    self.frames_read = index
                    yield rgb
        except av.error.FFmpegError as error:
            self._stop(
                index,
                f"{self.path}: decoding failed after {index} of {total} frames "
                f"(file truncated or corrupt): {_ffmpeg_reason(error)}",
                error,
            )
            return
        if index < total and not self._count_is_exact:
            log.warning(
                "%s: %d frames decoded where %d packets were counted (the count was an estimate)",
                self.path,
                index,
                total,
            )
        elif index < total:
            self._stop(
                index,
                f"{self.path}: decoding stopped after {index} of {total} frames "
                "(file truncated or corrupt)",
                None,
            )

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        source = None
        if frame.colorspace == _COLORSPACE_UNSPECIFIED and frame.height >= 720:
            source = "ITU709"  # what players assume for untagged HD; swscale would pick BT.601
        # Width and height are a no-op except for streams that change size mid-way (some TS
        # and mkv files): those are scaled to the first size so every frame has info's shape.
        rgb = self._reformatter.reformat(
            frame,
            width=self.info.width,
            height=self.info.height,
            format="rgb24",
            src_colorspace=source,
            interpolation=_ACCURATE,
        )
        return np.ascontiguousarray(rgb.to_ndarray())

    def _stop(self, index: int, message: str, cause: BaseException | None) -> None:
        if self.on_decode_error == "raise":
            raise VideoError(message) from cause
        self.stopped_at = index
        self.decode_error = message
        log.warning("%s; keeping the %d frame(s) before it", message, index)

    def read_all(self) -> np.ndarray:
        """All remaining frames as one T×H×W×3 uint8 array: loads the whole video into memory."""
        height, width = self.info.height, self.info.width
        frames = np.empty(
            (max(self.info.num_frames - self.frames_read, 0), height, width, 3), dtype=np.uint8
        )
        extra: list[np.ndarray] = []
        count = 0
        for frame in self:
            if count < len(frames):
                frames[count] = frame
            else:  # a count that was short; rare, so growing a list is fine
                extra.append(frame)
            count += 1
        if extra:
            return np.concatenate([frames, np.stack(extra)])
        return frames[:count]

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        info = self.info
        return (
            f"VideoReader({str(info.path)!r}, {info.width}×{info.height}, "
            f"{info.num_frames} frames at {info.fps:g} fps)"
        )


def read_frames(
    path: str | Path,
    *,
    max_frames: int | None = None,
    fps: float | None = None,
    on_decode_error: OnDecodeError = "raise",
) -> np.ndarray:
    """Every frame (or the first `max_frames`) of a video file or frame folder, loaded at once.

    Returns T×H×W×3 uint8 RGB. This holds the whole video in memory (1080p: 6 MB a frame); stream
    long videos with `VideoReader` instead.
    """
    with VideoReader(path, fps=fps, on_decode_error=on_decode_error) as reader:
        if max_frames is None:
            return reader.read_all()
        frames = []
        for frame in reader:
            if len(frames) == max_frames:
                break
            frames.append(frame)
        if not frames:
            return np.empty((0, reader.info.height, reader.info.width, 3), dtype=np.uint8)
        return np.stack(frames)
