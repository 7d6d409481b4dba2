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
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.error
import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

__all__ = [
    "IMAGE_SUFFIXES",
    "FrameFolderWriter",
    "VideoError",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "list_frame_files",
    "natural_key",
    "read_frames",
    "read_image",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
DEFAULT_FOLDER_FPS = 25.0

# Demuxers whose frame count comes from a sample table that lists every frame; other containers
# (AVI headers in particular) may carry a wrong count, so their frames are counted by demuxing.
_INDEXED_FORMATS = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"})
# Audio codecs copied into mp4 as they are; anything else is transcoded to AAC.
_MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus"})
# H.273 code point 1 means BT.709 for the matrix, the primaries and the transfer alike.
_BT709 = 1
_RANGE_LIMITED = 1
_COLORSPACE_UNSPECIFIED = 2
# swscale's default YUV->RGB path rounds with a bias (about 0.6 L* units on real footage, even
# losslessly encoded); exact rounding with interpolated chroma brings a round trip to ~0.2.
_ACCURATE = (
    av.video.reformatter.Interpolation.BILINEAR
    | av.video.reformatter.Interpolation.ACCURATE_RND
    | av.video.reformatter.Interpolation.FULL_CHR_H_INT
)

OnDecodeError = Literal["raise", "keep"]
CountFrames = Literal["auto", "demux", "decode"]


class VideoError(ValueError):
    """A video file or frame folder that cannot be used; the message names the path and why."""


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


def natural_key(name: str) -> tuple[tuple[str | int, ...], str]:
    """Sort key that orders numbers by value: `frame2` < `frame10`, case-insensitive.

    Splitting on digit runs puts text at even and numbers at odd positions, so two keys never
    compare a string with an int; the name itself breaks ties (`frame01` vs `frame1`).
    """
    parts = re.split(r"(\d+)", name.casefold())
    return tuple(int(part) if index % 2 else part for index, part in enumerate(parts)), name


def list_frame_files(folder: str | Path) -> list[Path]:
    """The image files of `folder` (png, jpg, jpeg, bmp, tif, tiff), naturally sorted.

    Hidden files (`.DS_Store`, macOS `._00001.png`) are ignored. Raises VideoError when the folder
    is missing, unreadable, or holds no image.
    """
    folder = Path(folder)
    if not folder.exists():
        raise VideoError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise VideoError(f"{folder}: not a folder")
    try:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()]
    except OSError as error:
        raise VideoError(f"{folder}: cannot list the folder: {error.strerror or error}") from error
    frames = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES]
    if not frames:
        others = sorted(p.name for p in entries)
        hint = f" (it holds {len(others)} other file(s), e.g. {others[0]})" if others else ""
        suffixes = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
        raise VideoError(f"{folder}: holds no frames ({suffixes}){hint}")
    return sorted(frames, key=lambda p: natural_key(p.name))


def _image_to_rgb(image: Image.Image) -> np.ndarray:
    """PIL image of any mode -> H×W×3 uint8 RGB (gray repeated, 16-bit scaled, alpha dropped)."""
    if image.mode == "RGB":
        return np.asarray(image, dtype=np.uint8)
    if image.mode == "L":
        gray = np.asarray(image, dtype=np.uint8)
    elif image.mode.startswith("I"):  # 16-bit PNG/TIFF ("I;16", "I;16B") or its 32-bit "I" form
        gray = np.clip(np.round(np.asarray(image, dtype=np.float64) / 257.0), 0, 255)
        gray = gray.astype(np.uint8)
    else:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB (gray and 16-bit files converted); VideoError if it
    cannot be read."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return _image_to_rgb(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise VideoError(f"{path}: cannot read the image: {error}") from error


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, SyntaxError, ValueError) as error:
        raise VideoError(f"{path}: cannot read the image: {error}") from error


def _ffmpeg_reason(error: BaseException) -> str:
    """FFmpeg's own words without the errno and the path, which our message already names."""
    if isinstance(error, av.error.FFmpegError) and error.strerror:
        return error.strerror
    return str(error)


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


def _open_input(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as error:
        raise VideoError(
            f"{path}: not a video file, or a corrupt or truncated one: {_ffmpeg_reason(error)}"
        ) from error
    except OSError as error:
        raise VideoError(f"{path}: cannot open: {error.strerror or error}") from error


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


# -- writing ---------------------------------------------------------------------------------


def _check_frame(frame: np.ndarray, shape: tuple[int, ...] | None, path: Path) -> np.ndarray:
    """H×W×3 or H×W (or H×W×1) uint8 -> H×W×3 uint8; the size must match earlier frames."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        kind = f"{frame.dtype} array" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"{path}: frames must be uint8 numpy arrays in [0, 255], got {kind}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[..., 0]
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(
            f"{path}: expected an H×W×3 RGB or H×W gray frame, got shape {frame.shape}"
        )
    if shape is not None and frame.shape != shape:
        raise ValueError(
            f"{path}: every frame must have the first frame's shape {shape}, got {frame.shape}"
        )
    return np.ascontiguousarray(frame)


def _partial_name(path: Path, suffix: str = "") -> Path:
    return path.with_name(f".{path.name}.partial-{secrets.token_hex(4)}{suffix}")


def _fps_fraction(fps: float | Fraction) -> Fraction:
    """The exact rate; floats of NTSC rates (29.97..., 23.976...) become 30000/1001, 24000/1001."""
    if isinstance(fps, Fraction):
        return fps
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return Fraction(fps).limit_denominator(1001)


class _AtomicOutput:
    """Shared contract: write to a hidden temporary sibling, rename into place on a clean close."""

    path: Path
    _temp: Path
    _closed: bool

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:  # any exception, Ctrl-C included: leave nothing half-written behind
            self.abort()


def _check_target(path: Path, *, overwrite: bool, folder: bool) -> None:
    empty_folder = folder and path.is_dir() and not any(path.iterdir())
    if path.exists() and not overwrite and not empty_folder:
        raise VideoError(f"{path}: already exists (remove it, or ask to overwrite)")
    if path.exists() and folder != path.is_dir():
        kind = "a file" if folder else "a folder"
        raise VideoError(f"{path}: exists and is {kind}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or error
        raise VideoError(f"{path.parent}: cannot create the folder: {reason}") from error


class VideoWriter(_AtomicOutput):
    """H.264 (libx264) mp4 writer; a context manager whose file appears only when complete.

    Args:
        path: the output file; must end in `.mp4`. Missing parent folders are created.
        fps: frame rate (float or Fraction; float NTSC rates are recovered exactly).
        audio_from: a video or audio file whose first audio stream is copied into the output
            (remuxed as is when mp4 takes its codec: aac, mp3, ac3, eac3, alac, opus; otherwise
            transcoded to AAC), cut at the end of the written video. None, or a file without
            audio: no audio.
        crf: x264 constant rate factor (0 lossless ... 51); 15 keeps the luminance of a frame
            within a few levels of the input.
        preset: x264 speed/size trade-off ("ultrafast" ... "veryslow").
        pixel_format: "yuv420p" (plays everywhere; needs even width and height: odd sizes raise
            VideoError) or "yuv444p" (full-resolution colour, any size; fewer players).
        atomic: write `<dir>/.<name>.partial-XXXXXXXX.mp4` and rename it to `path` on a clean
            close; on an exception or Ctrl-C the partial file is removed. False writes `path`
            directly (a failure leaves what was written).
        overwrite: replace an existing `path` (otherwise VideoError at construction).
        faststart: put the index at the front of the file (streams on the web, and a truncated
            copy still opens); costs one extra pass over the file at close.

    `write(frame)` takes H×W×3 uint8 RGB or H×W uint8 gray, every frame the size of the first.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float | Fraction,
        audio_from: str | Path | None = None,
        crf: int = 15,
        preset: str = "medium",
        pixel_format: Literal["yuv420p", "yuv444p"] = "yuv420p",
        atomic: bool = True,
        overwrite: bool = False,
        faststart: bool = True,
    ) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise VideoError(f"{self.path}: the video writer writes .mp4 files only")
        if pixel_format not in ("yuv420p", "yuv444p"):
            raise ValueError(f"pixel_format must be 'yuv420p' or 'yuv444p', got {pixel_format!r}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be in [0, 51], got {crf}")
        self.rate = _fps_fraction(fps)
        self.crf = crf
        self.preset = preset
        self.pixel_format = pixel_format
        self.atomic = atomic
        self.frames_written = 0
        self._shape: tuple[int, ...] | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._closed = False
        _check_target(self.path, overwrite=overwrite, folder=False)
        self._audio = _AudioCopy(Path(audio_from)) if audio_from is not None else None
        self._temp = _partial_name(self.path, ".mp4") if atomic else self.path
        options = {"movflags": "+faststart"} if faststart else {}
        try:
            self._container = av.open(
                str(self._temp), mode="w", format="mp4", container_options=options
            )
        except (av.error.FFmpegError, OSError) as error:
            if self._audio is not None:
                self._audio.close()
            raise VideoError(f"{self.path}: cannot create the file: {error}") from error

    def _start(self, height: int, width: int) -> None:
        if self.pixel_format == "yuv420p" and (height % 2 or width % 2):
            raise VideoError(
                f"{self.path}: H.264 in yuv420p needs an even width and height, got "
                f"{width}×{height}; use pixel_format='yuv444p' (any size, fewer players) or "
                "crop or pad the frames"
            )
        stream = self._container.add_stream("libx264", rate=self.rate)
        stream.width = width
        stream.height = height
        stream.pix_fmt = self.pixel_format
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        context = stream.codec_context
        context.colorspace = _BT709
        context.color_primaries = _BT709
        context.color_trc = _BT709
        context.color_range = _RANGE_LIMITED
        self._stream = stream
        if self._audio is not None:
            self._audio.add_to(self._container)

    def write(self, frame: np.ndarray) -> None:
        """Append one frame: H×W×3 uint8 RGB or H×W uint8 gray (encoded as equal channels)."""
        if self._closed:
            raise RuntimeError(f"{self.path}: the writer is closed")
        frame = _check_frame(frame, self._shape, self.path)
        if self._stream is None:
            self._start(*frame.shape[:2])
            self._shape = frame.shape
        picture = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
            format=self.pixel_format,
            dst_colorspace="ITU709",
            dst_color_range="MPEG",
            interpolation=_ACCURATE,
        )
        picture.pts = self.frames_written
        try:
            packets = self._stream.encode(picture)
            if self._audio is not None:
                self._audio.copy_until(float((self.frames_written + 1) / self.rate))
            self._container.mux(packets)
        except av.error.FFmpegError as error:
            raise VideoError(
                f"{self.path}: cannot encode frame {self.frames_written}: {error}"
            ) from error
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder, finish the file and (atomic) rename it into place."""
        if self._closed:
            return
        if self._stream is None:
            self.abort()
            raise VideoError(f"{self.path}: no frames were written")
        try:
            packets = self._stream.encode(None)
            if self._audio is not None:
                self._audio.copy_until(float(self.frames_written / self.rate))
                self._audio.flush()
            self._container.mux(packets)
            self._container.close()
        except av.error.FFmpegError as error:
            self.abort()
            raise VideoError(f"{self.path}: cannot finish the file: {error}") from error
        except BaseException:
            self.abort()
            raise
        self._closed = True
        if self._audio is not None:
            self._audio.close()
        if self.atomic:
            os.replace(self._temp, self.path)

    def abort(self) -> None:
        """Stop and discard the output (atomic) or leave what was written (not atomic)."""
        if self._closed:
            return
        self._closed = True
        if self._audio is not None:
            self._audio.close()
        try:
            self._container.close()
        except av.error.FFmpegError:
            pass  # the file is discarded or already damaged; the original error matters
        if self.atomic:
            self._temp.unlink(missing_ok=True)


class _AudioCopy:
    """Copies the first audio stream of a file into an output container, in step with the video.

    Packets are muxed up to the current video time as frames arrive, so the two streams stay
    interleaved and memory stays constant however long the video is.
    """

    def __init__(self, source: Path) -> None:
        self.source = source
        if not source.exists():
            raise VideoError(f"{source}: no such file (asked to copy its audio)")
        if source.is_dir():
            log.info("%s is a frame folder: no audio to copy", source)
            self._input = None
            return
        self._input = _open_input(source)
        if not self._input.streams.audio:
            log.info("%s has no audio stream: writing video only", source)
            self.close()
            return
        self._in = self._input.streams.audio[0]
        # Our video starts at 0; shift the audio by the source video's start to keep them in sync.
        offset = 0.0
        if self._input.streams.video and self._input.streams.video[0].start_time is not None:
            video = self._input.streams.video[0]
            offset = float(video.start_time * video.time_base)
        self._offset = offset
        self._packets = None
        self._pending = None
        self._remux = False
        self._out = None

    @property
    def active(self) -> bool:
        return self._input is not None

    def add_to(self, output: av.container.OutputContainer) -> None:
        if not self.active:
            return
        name = self._in.codec_context.name
        self._remux = name in _MP4_AUDIO_CODECS and name in output.supported_codecs
        try:
            if self._remux:
                self._out = output.add_stream_from_template(self._in)
            else:
                self._out = self._add_aac(output)
                self._samples = None
        except (av.error.FFmpegError, ValueError) as error:
            raise VideoError(f"{self.source}: cannot copy its audio ({name}): {error}") from error
        self._output = output
        self._packets = self._input.demux(self._in)
        log.info(
            "%s audio from %s (%s)",
            "copying" if self._remux else "transcoding to AAC the",
            self.source,
            name,
        )

    def _add_aac(self, output: av.container.OutputContainer):
        context = self._in.codec_context
        layout = context.layout.name
        if layout.endswith("channels"):  # no channel order ("1 channels"): AAC needs a named one
            layout = "mono" if context.channels == 1 else "stereo"
        stream = output.add_stream("aac", rate=context.sample_rate)
        stream.layout = layout
        stream.bit_rate = 192_000
        try:
            stream.codec_context.open()  # fail here, not later when the header is written
        except av.error.FFmpegError:
            if layout in ("mono", "stereo"):
                raise
            log.warning(
                "%s: AAC cannot encode the layout %s; downmixing to stereo", self.source, layout
            )
            stream.layout = "stereo"
            stream.codec_context.open()
        return stream

    def _time(self, packet) -> float | None:
        stamp = packet.pts if packet.pts is not None else packet.dts
        return None if stamp is None else float(stamp * packet.time_base) - self._offset

    def copy_until(self, seconds: float) -> None:
        """Mux every audio packet that starts before `seconds` of the output's timeline."""
        if not self.active or self._packets is None:
            return
        try:
            while True:
                if self._pending is None:
                    self._pending = next(self._packets, None)
                    if self._pending is None:
                        self._packets = None
                        return
                packet = self._pending
                if not packet.size:  # the demuxer's end-of-stream marker
                    self._pending = None
                    continue
                start = self._time(packet)
                if start is not None and start >= seconds:
                    return
                self._pending = None
                self._mux(packet)
        except av.error.FFmpegError as error:
            log.warning(
                "%s: audio copy stopped at %.2f s (%s); the video continues without it",
                self.source,
                seconds,
                _ffmpeg_reason(error),
            )
            self._packets = None

    def _mux(self, packet) -> None:
        if self._remux:
            shift = round(self._offset / packet.time_base) if self._offset else 0
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self._out
            self._output.mux(packet)
            return
        for frame in packet.decode():
            if self._samples is None:  # the first frame sets the start; then samples run on
                start = float(frame.time) - self._offset if frame.time is not None else 0.0
                self._samples = max(round(start * frame.sample_rate), 0)
            frame.pts = self._samples
            frame.time_base = Fraction(1, frame.sample_rate)
            self._samples += frame.samples
            self._output.mux(self._out.encode(frame))

    def flush(self) -> None:
        if self.active and self._out is not None and not self._remux:
            try:
                self._output.mux(self._out.encode(None))
            except av.error.FFmpegError as error:
                log.warning("%s: cannot finish the audio: %s", self.source, _ffmpeg_reason(error))

    def close(self) -> None:
        if self._input is not None:
            self._input.close()
            self._input = None


class FrameFolderWriter(_AtomicOutput):
    """Writes frames as `folder/00000.png, 00001.png, ...`; the folder appears only when complete.

    Args:
        folder: the output folder (created; missing parents too).
        suffix: ".png" (lossless) or ".jpg" (quality 95).
        atomic: write into `<parent>/.<name>.partial-XXXXXXXX/` and rename it to `folder` on a
            clean close; on an exception or Ctrl-C it is removed.
        overwrite: replace an existing non-empty `folder` (an empty one is always fine).
        digits: zero padding of the file names.

    `write(frame)` takes H×W×3 uint8 RGB or H×W uint8 gray (saved as a one-channel image).
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        suffix: Literal[".png", ".jpg"] = ".png",
        atomic: bool = True,
        overwrite: bool = False,
        digits: int = 5,
    ) -> None:
        if suffix not in (".png", ".jpg"):
            raise ValueError(f"suffix must be '.png' or '.jpg', got {suffix!r}")
        self.path = Path(folder)
        self.suffix = suffix
        self.digits = digits
        self.atomic = atomic
        self.frames_written = 0
        self._shape: tuple[int, ...] | None = None
        self._closed = False
        _check_target(self.path, overwrite=overwrite, folder=True)
        self._temp = _partial_name(self.path) if atomic else self.path
        if not atomic and overwrite and self.path.is_dir():
            shutil.rmtree(self.path)  # no swap without a temporary folder: clear it first
        try:
            self._temp.mkdir(exist_ok=not atomic)
        except OSError as error:
            reason = error.strerror or error
            raise VideoError(f"{self._temp}: cannot create the folder: {reason}") from error

    def write(self, frame: np.ndarray) -> None:
        """Save one frame: H×W×3 uint8 RGB or H×W uint8 gray."""
        if self._closed:
            raise RuntimeError(f"{self.path}: the writer is closed")
        gray = isinstance(frame, np.ndarray) and (
            frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1)
        )
        rgb = _check_frame(frame, self._shape, self.path)
        self._shape = rgb.shape
        image = Image.fromarray(rgb[..., 0] if gray else rgb)
        file = self._temp / f"{self.frames_written:0{self.digits}d}{self.suffix}"
        try:
            image.save(file, quality=95) if self.suffix == ".jpg" else image.save(file)
        except OSError as error:
            reason = error.strerror or error
            raise VideoError(f"{file}: cannot write the frame: {reason}") from error
        self.frames_written += 1

    def close(self) -> None:
        """Rename the finished folder into place (atomic)."""
        if self._closed:
            return
        if self.frames_written == 0:
            self.abort()
            raise VideoError(f"{self.path}: no frames were written")
        self._closed = True
        if not self.atomic:
            return
        old = None
        if self.path.exists() and any(self.path.iterdir()):
            old = _partial_name(self.path, ".old")  # overwrite: swap, then delete the old one
            os.replace(self.path, old)
        os.replace(self._temp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Stop and discard the output (atomic) or leave what was written (not atomic)."""
        if self._closed:
            return
        self._closed = True
        if self.atomic:
            shutil.rmtree(self._temp, ignore_errors=True)
