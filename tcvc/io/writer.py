"""Writing: `VideoWriter` (H.264 mp4, with the source's audio, subtitles and metadata) and
`FrameFolderWriter` (png or jpg frames), both atomic: written to a hidden sibling and renamed into
place on a clean close."""

from __future__ import annotations

import os
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.error
import numpy as np
from PIL import Image

from tcvc.io._common import _ACCURATE, VideoError, _check_target, _partial_name
from tcvc.io.streams import _StreamCopy

__all__ = ["FrameFolderWriter", "VideoWriter"]

# H.273 code point 1 means BT.709 for the matrix, the primaries and the transfer alike.
_BT709 = 1
_RANGE_LIMITED = 1


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


class VideoWriter(_AtomicOutput):
    """H.264 (libx264) mp4 writer; a context manager whose file appears only when complete.

    Args:
        path: the output file; must end in `.mp4`. Missing parent folders are created.
        fps: frame rate (float or Fraction; float NTSC rates are recovered exactly).
        audio_from: the source file whose other streams are copied into the output, cut at the
            end of the written video: every audio stream (remuxed as is when mp4 takes its
            codec: aac, mp3, ac3, eac3, alac, opus; otherwise transcoded to AAC), its text
            subtitles (as mov_text), the data streams mp4 can carry, the container's metadata
            (title, ...) and each stream's language (`tcvc.io.streams` says what is skipped and
            why). None, or a file without audio: no audio.
        source_start: where in `audio_from` the written video begins, in seconds from its first
            video frame (a preview of frames from `start` on: `reader.start_time`). Its audio and
            subtitles are taken from there, shifted to 0.
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
        source_start: float = 0.0,
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
        self._audio = (
            _StreamCopy(Path(audio_from), start=source_start) if audio_from is not None else None
        )
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
            self._audio.add_to(self._container, stream)

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
