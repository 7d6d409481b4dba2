"""Frame folders and image files: listing a folder's frames in natural order, reading one image
as RGB, and the frame rate a folder is given when none is asked for."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from tcvc.io._common import VideoError

__all__ = [
    "DEFAULT_FOLDER_FPS",
    "IMAGE_SUFFIXES",
    "list_frame_files",
    "natural_key",
    "read_image",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
DEFAULT_FOLDER_FPS = 25.0


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
