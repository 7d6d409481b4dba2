"""Frame folders and image files: listing a folder's frames in natural order, reading one image
as RGB (8 bits, or 16 at full depth), and the frame rate a folder is given when none is asked for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import av
import av.error
import numpy as np
from PIL import Image

from tcvc.io._common import VideoError, _format_bits

__all__ = [
    "DEFAULT_FOLDER_FPS",
    "IMAGE_SUFFIXES",
    "BitDepth",
    "image_bit_depth",
    "list_frame_files",
    "natural_key",
    "read_image",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
DEFAULT_FOLDER_FPS = 25.0

# "8": every source read as uint8, as players show it; "full": sources of more than 8 bits per
# component read as uint16 in [0, 65535] (8-bit ones stay uint8).
BitDepth = Literal["8", "full"]
BIT_DEPTHS = ("8", "full")


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


def _image_to_rgb(image: Image.Image, *, keep_16_bits: bool = False) -> np.ndarray:
    """PIL image of any mode -> H×W×3 RGB: uint8 (gray repeated, 16-bit scaled, alpha dropped),
    or, with `keep_16_bits`, 16-bit gray as uint16."""
    # np.array, not asarray: a PIL image's array view is read-only, and torch warns on those
    if image.mode == "RGB":
        return np.array(image, dtype=np.uint8)
    if image.mode == "L":
        gray = np.asarray(image, dtype=np.uint8)
    elif image.mode.startswith("I"):  # 16-bit PNG/TIFF ("I;16", "I;16B") or its 32-bit "I" form
        values = np.asarray(image, dtype=np.float64)
        if keep_16_bits:
            gray = np.clip(values, 0, 65535).astype(np.uint16)
        else:
            gray = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
    else:
        return np.array(image.convert("RGB"), dtype=np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def read_image(path: str | Path, *, bit_depth: BitDepth = "8") -> np.ndarray:
    """An image file as H×W×3 RGB; VideoError if it cannot be read.

    `bit_depth="8"`: uint8 in [0, 255] (gray repeated, 16-bit files scaled, alpha dropped).
    `bit_depth="full"`: images of more than 8 bits (16-bit PNG / TIFF) as uint16 in [0, 65535],
    decoded by FFmpeg (PIL keeps only 8 bits of a colour image); 8-bit images as uint8.
    """
    path = Path(path)
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f"bit_depth must be '8' or 'full', got {bit_depth!r}")
    if bit_depth == "full":
        deep = _read_deep(path)
        if deep is not None:
            return deep
    try:
        with Image.open(path) as image:
            image.load()
            return _image_to_rgb(image, keep_16_bits=bit_depth == "full")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise VideoError(f"{path}: cannot read the image: {error}") from error


def image_bit_depth(path: str | Path) -> int:
    """Bits per component of an image file: 16 for 16-bit PNG / TIFF, 8 for most others.

    Read from the header by FFmpeg; for a file FFmpeg cannot open (PIL may still read it), 16
    when PIL sees 16-bit gray, else 8.
    """
    try:
        with av.open(str(path)) as container:
            return _format_bits(container.streams.video[0].codec_context.format)
    except (av.error.FFmpegError, IndexError, OSError):
        pass
    try:
        with Image.open(path) as image:
            return 16 if image.mode.startswith("I") else 8
    except (OSError, SyntaxError, ValueError) as error:
        raise VideoError(f"{path}: cannot read the image: {error}") from error


def _read_deep(path: Path) -> np.ndarray | None:
    """An image of more than 8 bits as H×W×3 uint16 RGB (gray repeated, alpha dropped), decoded
    by FFmpeg; None for an 8-bit image or one FFmpeg cannot read (PIL reads those)."""
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    except (av.error.FFmpegError, StopIteration, OSError):
        return None
    if _format_bits(frame.format) <= 8:
        return None
    if frame.format.name in ("gray16be", "gray16le"):
        gray = frame.to_ndarray()  # in native byte order, without a colour conversion
        return np.repeat(gray[..., None], 3, axis=2)
    return np.ascontiguousarray(frame.to_ndarray(format="rgb48le"))


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, SyntaxError, ValueError) as error:
        raise VideoError(f"{path}: cannot read the image: {error}") from error
