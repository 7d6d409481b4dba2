"""One frame file of a training root as a tensor (``read_frame``), and ``DataError``, the error of
a root, a video folder or a frame that cannot be used.

Both sit below the modules that read frames (``tcvc.data.clips`` builds clips of them,
``tcvc.data.flow_cache`` computes the flows of whole videos), so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tcvc.io import VideoError, read_image

__all__ = ["DataError", "read_frame"]


class DataError(ValueError):
    """A training or validation root that cannot be used; the message names the path."""


def read_frame(path: Path) -> torch.Tensor:
    """A frame file as a 3×H×W float tensor in [0, 1] (``tcvc.io.read_image``: gray files are
    repeated to RGB, 16-bit ones scaled to 8 bits)."""
    try:
        array = read_image(path)
    except VideoError as error:
        raise DataError(f"frame {error}") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)
