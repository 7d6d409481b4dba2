"""Reading: `VideoReader` streams the RGB frames of a video file (PyAV) or a frame folder, one at a
time, with `VideoInfo` known before decoding, from any frame range (a file seeks to its start) and
at 8 bits or the source's full depth; `read_frames` loads a whole video at once."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.error
import numpy as np

from tcvc.io._common import _ACCURATE, VideoError, _ffmpeg_reason, _format_bits, _open_input
from tcvc.io.frames import (
    BIT_DEPTHS,
    DEFAULT_FOLDER_FPS,
    IMAGE_SUFFIXES,
    BitDepth,
    _image_size,
    image_bit_depth,
    list_frame_files,
    read_image,
)
from tcvc.io.timeline import FrameGrid, GridCheck

log = logging.getLogger(__name__)

__all__ = ["CountFrames", "FrameIndex", "OnDecodeError", "VideoInfo", "VideoReader", "read_frames"]

# Demuxers whose frame count comes from a sample table that lists every frame; other containers
# (AVI headers in particular) may carry a wrong count, so their frames are counted by demuxing.
_INDEXED_FORMATS = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"})
# H.273 code point 2: a stream that does not say its matrix.
_COLORSPACE_UNSPECIFIED = 2
# A seek that lands after the wanted frame (or past the end) is tried again this many frames
# earlier, each in turn: past H.264's deepest reordering first (16 frames; mp4 and mkv seek to
# the key frame at or before a time), then further, for containers whose seeks land on the next
# key frame (MPEG-TS). Each try decodes one frame; then decoding goes on from the key frame.
_SEEK_BACK = (0, 16, 64, 256, 1024, 4096)

OnDecodeError = Literal["raise", "keep"]
CountFrames = Literal["auto", "demux", "decode"]


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows before decoding.

    `num_frames` is exact for mp4/mov (their sample table, minus frames an edit list drops) and
    counted by demuxing for every other container; it is the whole video's, whatever range a
    reader reads. `fps` is the average rate (a frame folder has the rate its caller gave).
    `bit_depth` is the source's bits per component (10 for yuv420p10le; a frame folder's first
    frame's: 16 for a 16-bit PNG or TIFF).
    """

    path: Path
    fps: float
    width: int
    height: int
    num_frames: int
    has_audio: bool
    is_frame_folder: bool
    bit_depth: int = 8


@dataclass(frozen=True)
class FrameIndex:
    """What a reader found by counting a video file's frames, for the next reader of the same
    file to reuse (`VideoReader(..., index=reader.index)`): a film in a container without a sample
    table (mkv, avi, ts) is demuxed once to count its frames, not once for every range read.

    `num_frames` as in `VideoInfo`; `exact`: the count came from a sample table or from decoding,
    not from counting packets; `grid_step`: a frame's duration in the stream's time base when
    every frame lies on one constant-rate grid (what seeking to a frame needs), else None;
    `path` (resolved), `bytes` and `mtime_ns`: the file, its size and modification time when it
    was counted. A reader given the index of another file, or of one that has changed since,
    counts again.
    """

    num_frames: int
    exact: bool
    grid_step: Fraction | None
    path: str
    bytes: int
    mtime_ns: int

    def to_json(self) -> dict:
        """Plain JSON values (the grid step as "numerator/denominator")."""
        step = None if self.grid_step is None else str(self.grid_step)
        return {**dataclasses.asdict(self), "grid_step": step}

    @classmethod
    def from_json(cls, data: dict) -> FrameIndex:
        step = data["grid_step"]
        return cls(
            num_frames=int(data["num_frames"]),
            exact=bool(data["exact"]),
            grid_step=None if step is None else Fraction(step),
            path=str(data["path"]),
            bytes=int(data["bytes"]),
            mtime_ns=int(data["mtime_ns"]),
        )

    def describes(self, path: Path) -> bool:
        """Whether `path` is the file this index was made of, unchanged (size and time)."""
        stat = path.stat()
        here = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        return here == (self.path, self.bytes, self.mtime_ns)


class VideoReader:
    """Frames of a video file or a folder of frames, one at a time (constant memory).

    Iterating yields H×W×3 RGB numpy arrays of `dtype`: uint8 in [0, 255], or uint16 in
    [0, 65535] when `bit_depth="full"` and the source has more than 8 bits (gray sources give three
    equal channels; every frame has the size in `info`). A reader is one pass, like a file:
    iterating again, or `read_all()`, goes on where the last loop stopped.

    A range (`start`, `stop`) reads frames `start ... stop - 1`, indices counted from 0 in the
    order the decoder gives them, bit for bit the frames a reading from 0 would give there;
    `len(reader)` is the number of frames in it, `start_time` the time of its first frame. A
    file seeks to the key frame at or before `start` and decodes on from there, so a range late
    in a film does not decode what comes before it. That needs the frame index in a timestamp:
    the reader seeks when the stream is a constant-rate grid with every frame on it (an mp4/mov
    sample table stepping evenly; in other containers, the timestamps of every packet, seen when
    the frames are counted) and the seek lands on a key frame at or before `start` (a seek that
    lands after it is tried again earlier: 16, 64, ... 4096 frames). Otherwise (variable frame
    rate, odd timestamps, frames off the grid, a seek that keeps landing after) it decodes from
    frame 0 and drops the frames before `start`: slower, the same frames. A frame folder reads
    the slice of its files.

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
        start: the first frame to read (0-based). VideoError when negative or past the last frame.
        stop: the frame to stop before (exclusive); None or past the end: to the end. VideoError
            when it is not after `start`.
        bit_depth: "8" reads every source as uint8, as before; "full" reads sources of more than
            8 bits per component (10-, 12-, 16-bit video, 16-bit PNG / TIFF) as uint16 RGB in
            [0, 65535] (FFmpeg's rgb48), and 8-bit sources as uint8.
        index: another reader's `index` of the same file: its frame count and grid are taken
            instead of counting again (`count_frames` is then not used), unless the file has
            changed since (size or modification time), when it is counted again.

    `stopped_at` is a frame index in the video (like `start`); `frames_read` counts the frames
    this reader has yielded; `index` is what counting found (None for a frame folder).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float | None = None,
        on_decode_error: OnDecodeError = "raise",
        count_frames: CountFrames = "auto",
        start: int = 0,
        stop: int | None = None,
        bit_depth: BitDepth = "8",
        index: FrameIndex | None = None,
    ) -> None:
        if on_decode_error not in ("raise", "keep"):
            raise ValueError(f"on_decode_error must be 'raise' or 'keep', got {on_decode_error!r}")
        if count_frames not in ("auto", "demux", "decode"):
            raise ValueError(
                f"count_frames must be 'auto', 'demux' or 'decode', got {count_frames!r}"
            )
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if bit_depth not in BIT_DEPTHS:
            raise ValueError(f"bit_depth must be '8' or 'full', got {bit_depth!r}")
        self.path = Path(path)
        self.on_decode_error = on_decode_error
        self.start = operator.index(start)
        self.frames_read = 0
        self.stopped_at: int | None = None
        self.decode_error: str | None = None
        self._frames: Iterator[np.ndarray] | None = None
        self._container: av.container.InputContainer | None = None
        self._frame_files: list[Path] = []
        # a frame's duration (time base units; seconds), known when every frame is on its grid
        self._grid_step: Fraction | None = None
        self._frame_seconds: Fraction | None = None
        self.index: FrameIndex | None = None
        if not self.path.exists():
            raise VideoError(f"{self.path}: no such file or folder")
        if self.path.is_dir():
            self.info = self._open_folder(fps)
        else:
            self.info = self._open_file(fps, count_frames, index)
        try:
            self.stop = self._check_range(stop)
        except BaseException:
            self.close()
            raise
        deep = bit_depth == "full" and self.info.bit_depth > 8
        self.dtype = np.dtype(np.uint16 if deep else np.uint8)

    def _check_range(self, stop: int | None) -> int:
        """`stop` resolved (None or past the end: the end); VideoError for a range of nothing."""
        start, total = self.start, self.info.num_frames
        if start < 0:
            raise VideoError(f"{self.path}: start={start} is negative (frames count from 0)")
        if start >= total:
            raise VideoError(
                f"{self.path}: start={start} is past the last frame (the video has {total} frames)"
            )
        if stop is None:
            return total
        stop = operator.index(stop)
        if stop <= start:
            raise VideoError(f"{self.path}: stop={stop} is not after start={start}")
        return min(stop, total)

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
            bit_depth=image_bit_depth(self._frame_files[0]),
        )

    def _open_file(
        self, fps: float | None, count_frames: CountFrames, index: FrameIndex | None
    ) -> VideoInfo:
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
            if index is None or not index.describes(self.path):
                if index is not None:
                    log.info(
                        "%s: not the file or not as it was when the index was made; counting "
                        "its frames again",
                        self.path,
                    )
                index = self._index(container, stream, count_frames)
            self.index = index
            num_frames = index.num_frames
            if index.grid_step is not None:
                self._grid_step = index.grid_step
                self._frame_seconds = index.grid_step * stream.time_base
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
                bit_depth=_format_bits(stream.codec_context.format),
            )
        except BaseException:
            container.close()
            raise
        self._container = container
        self._reformatter = av.video.reformatter.VideoReformatter()
        return info

    def _index(self, container, stream, count_frames: CountFrames) -> FrameIndex:
        """Count the frames (see `count_frames`), and check on the way whether they lie on one
        constant-rate grid (the frame grid is what seeking needs)."""
        stat = self.path.stat()  # before counting: a file that changes meanwhile is counted again
        check = GridCheck(_frame_step(stream))
        num_frames, exact = self._count(container, stream, count_frames, check)
        return FrameIndex(
            num_frames=num_frames,
            exact=exact,
            grid_step=check.grid_step,
            path=str(self.path.resolve()),
            bytes=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
        )

    def _count(
        self, container, stream, count_frames: CountFrames, check: GridCheck
    ) -> tuple[int, bool]:
        """The number of frames (see `count_frames`) and whether it is exact (a sample table, or
        decoding; not a packet count); `check` sees every frame's timestamp (or the sample
        table) on the way."""
        if count_frames == "auto":
            indexed = set(container.format.name.split(",")) & _INDEXED_FORMATS
            entries = stream.index_entries
            if indexed and stream.frames > 0 and len(entries) == stream.frames:
                check.add_table([entry.timestamp for entry in entries])
                # Frames before an edit list's start are demuxed but never shown.
                return sum(1 for entry in entries if not entry.is_discard), True
        count = 0
        try:
            with av.open(str(self.path)) as counter:
                counted = counter.streams[stream.index]
                if count_frames == "decode":
                    counted.thread_type = "AUTO"
                    for frame in counter.decode(counted):
                        check.add(frame.pts)
                        count += 1
                    return count, True
                for packet in counter.demux(counted):
                    if packet.size and not packet.is_discard:
                        check.add(packet.pts)
                        count += 1
                return count, False
        except av.error.FFmpegError as error:
            raise VideoError(
                f"{self.path}: cannot count the frames (file truncated or corrupt): "
                f"{_ffmpeg_reason(error)}"
            ) from error

    # -- reading -----------------------------------------------------------------------------

    def __len__(self) -> int:
        """The number of frames in the range (the whole video's without one)."""
        return self.stop - self.start

    @property
    def start_time(self) -> float:
        """Seconds from the video's first frame to the range's first: `start` frame durations
        (the stream's own, where the reader seeks; else 1 / `info.fps`: exact at a constant
        rate). What a writer's `source_start` takes, to copy the audio of the same moment."""
        if self._frame_seconds is not None:
            return float(self.start * self._frame_seconds)
        return self.start / self.info.fps

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._frames is None:
            self._frames = self._iter_folder() if self.info.is_frame_folder else self._iter_file()
        return self._frames

    def _iter_folder(self) -> Iterator[np.ndarray]:
        expected = (self.info.height, self.info.width, 3)
        deep = self.dtype == np.uint16
        files = self._frame_files[self.start : self.stop]
        for index, file in enumerate(files, start=self.start):
            try:
                frame = read_image(file, bit_depth="full" if deep else "8")
            except VideoError as error:
                self._stop(index, str(error), error)
                return
            if deep and frame.dtype == np.uint8:  # an 8-bit frame among 16-bit ones
                frame = frame.astype(np.uint16) * 257
            if frame.shape != expected:
                self._stop(
                    index,
                    f"{file}: frame is {frame.shape[1]}×{frame.shape[0]}, but the folder's first "
                    f"frame is {expected[1]}×{expected[0]}",
                    None,
                )
                return
            self.frames_read = index + 1 - self.start
            yield frame

    def _iter_file(self) -> Iterator[np.ndarray]:
        if self._container is None:
            raise RuntimeError(f"{self.path}: the reader is closed")
        total = self.info.num_frames
        index = self.start  # the index of the next frame decoded
        try:
            frames, index = self._position()
            for frame in frames:
                if index < self.start:  # decoding from frame 0: not there yet
                    index += 1
                    continue
                rgb = self._to_rgb(frame)
                index += 1
                self.frames_read = index - self.start
                yield rgb
                if index == self.stop:
                    return
        except av.error.FFmpegError as error:
            self._stop(
                index,
                f"{self.path}: decoding failed after {index} of {total} frames "
                f"(file truncated or corrupt): {_ffmpeg_reason(error)}",
                error,
            )
            return
        if index < self.stop and not self.index.exact:
            log.warning(
                "%s: %d frames decoded where %d packets were counted (the count was an estimate)",
                self.path,
                index,
                total,
            )
        elif index < self.stop:
            self._stop(
                index,
                f"{self.path}: decoding stopped after {index} of {total} frames "
                "(file truncated or corrupt)",
                None,
            )

    def _decode(self) -> Iterator[av.VideoFrame]:
        """The frames of the open container, decoded from where it stands."""
        container = self._container
        for packet in container.demux(container.streams.video[0]):
            yield from packet.decode()

    def _position(self) -> tuple[Iterator[av.VideoFrame], int]:
        """Decoded frames from about `start` on, and the index of the first: `start` after a
        seek, else 0 (the caller drops the frames before `start`)."""
        if self.start == 0:
            return self._decode(), 0
        if self._grid_step is None:
            reason = "its frames are not all on one constant-rate grid"
        else:
            frames, reason = self._seek()
            if frames is not None:
                return frames, self.start
            self._reopen()  # the next decode starts from a clean demuxer and decoder
        log.info("%s: decoding from frame 0 to reach frame %d (%s)", self.path, self.start, reason)
        return self._decode(), 0

    def _seek(self) -> tuple[Iterator[av.VideoFrame] | None, str]:
        """Frames from exactly `start` on, after a seek; None (and why) when it cannot be trusted."""
        first = next(self._decode(), None)  # frame 0's timestamp anchors the grid
        if first is None or first.pts is None:
            return None, "frame 0 has no timestamp"
        grid = FrameGrid(first.pts, self._grid_step)
        stream = self._container.streams.video[0]
        for back in _SEEK_BACK:
            target = max(self.start - back, 0)
            self._container.seek(grid.pts(target), stream=stream)
            frames = self._decode()
            frame = next(frames, None)
            index = None if frame is None else grid.index(frame.pts)
            if frame is not None and (index is None or not frame.key_frame):
                return None, "the seek did not land on a key frame on the grid"
            if frame is None or index > self.start:  # landed after it (or past the end)
                if target == 0:
                    break
                continue  # again, earlier
            while index < self.start:
                frame = next(frames, None)
                following = grid.index(frame.pts) if frame is not None else None
                if following != index + 1:
                    return None, "a frame after the seek is off the grid"
                index = following
            return itertools.chain([frame], frames), ""
        return None, "the seek landed after the frame"

    def _reopen(self) -> None:
        self._container.close()
        self._container = _open_input(self.path)
        self._container.streams.video[0].thread_type = "AUTO"

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
            # planar gbrp16: swscale's packed rgb48 with full chroma interpolation overflows
            format="gbrp16le" if self.dtype == np.uint16 else "rgb24",
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
        """All remaining frames (of the range) as one T×H×W×3 array of `dtype`: loads them all
        into memory."""
        height, width = self.info.height, self.info.width
        frames = np.empty(
            (max(len(self) - self.frames_read, 0), height, width, 3), dtype=self.dtype
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
        whole = self.start == 0 and self.stop == info.num_frames
        frames = "" if whole else f"frames {self.start}:{self.stop} of "
        return (
            f"VideoReader({str(info.path)!r}, {info.width}×{info.height}, "
            f"{frames}{info.num_frames} frames at {info.fps:g} fps)"
        )


def _frame_step(stream: av.video.stream.VideoStream) -> Fraction | None:
    """One frame's duration in the stream's time base, at its average rate; None if unknown."""
    rate = stream.average_rate
    if not rate or not stream.time_base:
        return None
    return 1 / (Fraction(rate) * Fraction(stream.time_base))


def read_frames(
    path: str | Path,
    *,
    max_frames: int | None = None,
    fps: float | None = None,
    on_decode_error: OnDecodeError = "raise",
    start: int = 0,
    stop: int | None = None,
    bit_depth: BitDepth = "8",
) -> np.ndarray:
    """Every frame (or the first `max_frames`) of a video file or frame folder, or of its range
    `start:stop`, loaded at once.

    Returns T×H×W×3 RGB, uint8 (uint16 for a deep source read with `bit_depth="full"`, as in
    `VideoReader`). This holds the whole video in memory (1080p: 6 MB a frame); stream long
    videos with `VideoReader` instead.
    """
    with VideoReader(
        path, fps=fps, on_decode_error=on_decode_error, start=start, stop=stop, bit_depth=bit_depth
    ) as reader:
        if max_frames is None:
            return reader.read_all()
        frames = []
        for frame in reader:
            if len(frames) == max_frames:
                break
            frames.append(frame)
        if not frames:
            return np.empty((0, reader.info.height, reader.info.width, 3), dtype=reader.dtype)
        return np.stack(frames)
