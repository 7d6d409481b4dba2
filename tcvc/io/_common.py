"""What the io modules share: `VideoError`, opening an input with FFmpeg's reasons for a failure,
the accurate swscale flags that the reader and the writer both convert colour with, and the
checks and names of an atomic output (the writers' and `join_pieces`')."""

from __future__ import annotations

import secrets
from pathlib import Path

import av
import av.error

__all__ = ["VideoError"]

# swscale's default YUV->RGB path rounds with a bias (about 0.6 L* units on real footage, even
# losslessly encoded); exact rounding with interpolated chroma brings a round trip to ~0.2.
_ACCURATE = (
    av.video.reformatter.Interpolation.BILINEAR
    | av.video.reformatter.Interpolation.ACCURATE_RND
    | av.video.reformatter.Interpolation.FULL_CHR_H_INT
)


class VideoError(ValueError):
    """A video file or frame folder that cannot be used; the message names the path and why."""


def _format_bits(format: av.video.format.VideoFormat | None) -> int:
    """Bits per component of a pixel format (its deepest component); 8 when unknown."""
    if format is None or not format.components:
        return 8
    return max(component.bits for component in format.components)


def _ffmpeg_reason(error: BaseException) -> str:
    """FFmpeg's own words without the errno and the path, which our message already names."""
    if isinstance(error, av.error.FFmpegError) and error.strerror:
        return error.strerror
    return str(error)


def _open_input(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as error:
        raise VideoError(
            f"{path}: not a video file, or a corrupt or truncated one: {_ffmpeg_reason(error)}"
        ) from error
    except OSError as error:
        raise VideoError(f"{path}: cannot open: {error.strerror or error}") from error


def _partial_name(path: Path, suffix: str = "") -> Path:
    """The hidden sibling an atomic output is written to before it is renamed to `path`."""
    return path.with_name(f".{path.name}.partial-{secrets.token_hex(4)}{suffix}")


def _check_target(path: Path, *, overwrite: bool, folder: bool) -> None:
    """An output may be written at `path`: not there (or `overwrite`), of the right kind, and its
    parent folder exists (created when missing)."""
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
