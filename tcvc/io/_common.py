"""What the io modules share: `VideoError`, opening an input with FFmpeg's reasons for a failure,
and the accurate swscale flags that the reader and the writer both convert colour with."""

from __future__ import annotations

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
