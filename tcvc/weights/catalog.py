"""The released files: their names, the archives that hold them, and how each is verified.

The original README names two archives on ``https://tcvc.s3.amazonaws.com``: ``TCVC_IDC.zip``
(labelled "Colorization backbone model") and ``pretrained_models.zip`` (labelled "Pretrained
TCVC"). The labels look swapped (its test scripts read ``experiments/TCVC_IDC/models/80000_G.pth``),
so files are found inside by NAME, whichever archive holds them; ``Archive.likely`` only orders
the downloads so that a single missing file usually costs one archive.

Verification is the project's own strict loading (``tcvc.nets``: every name and shape, read with
``torch.load(weights_only=True)``), onto networks built on the ``meta`` device, so that checking
an 800 MB file spends no memory on its values. A name with torch.hub's hash suffix
(``siggraph17-df00044c.pth``) must also match the start of the file's SHA-256.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

__all__ = [
    "ARCHIVES",
    "BASE_URL",
    "RELEASED",
    "Archive",
    "ReleasedFile",
    "hash_prefix_of",
    "released_file",
    "verify_flownet",
    "verify_idc",
    "verify_tcvc",
]

BASE_URL = "https://tcvc.s3.amazonaws.com"
T = TypeVar("T")


def hash_prefix_of(name: str) -> str | None:
    """The hex digits torch.hub puts in a file name (``siggraph17-df00044c.pth`` -> ``df00044c``):
    the start of the file's SHA-256; None for a name without them."""
    match = re.search(r"-([0-9a-f]{8,64})\.", name)
    return match[1] if match else None


def _on_meta(build: Callable[[], T]) -> T:
    """``build()`` with its parameters on the meta device (no memory, no initialisation)."""
    import torch

    with torch.device("meta"):
        return build()


@contextmanager
def _loading_into_meta():
    """Without the warning that copying real tensors into meta parameters is a no-op: that is
    the point (the names and shapes are checked, the values not kept)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*copying from a non-meta parameter.*")
        yield


def verify_tcvc(path: Path) -> None:
    """``80000_G.pth``: a whole TCVC_IDC network in the original names (``load_original``, what
    ``TCVCNet.from_pretrained`` loads it with)."""
    from tcvc.nets import TCVCNet
    from tcvc.nets.checkpoints import (
        CheckpointError,
        is_original_layout,
        load_file,
        load_original,
        state_dict_of,
    )

    state = state_dict_of(load_file(path), source=str(path))
    if not is_original_layout(state):
        raise CheckpointError(f"{path} is not in the original TCVC_IDC layout (80000_G.pth)")
    with _loading_into_meta():
        load_original(_on_meta(TCVCNet), state, source=str(path))


def verify_flownet(path: Path) -> None:
    """``FlowNet2_checkpoint.pth.tar``: NVIDIA's ``{'epoch', 'state_dict', 'best_EPE'}``."""
    from tcvc.nets import FlowNet2, load_backbone

    with _loading_into_meta():
        load_backbone(path, "flownet", _on_meta(FlowNet2))


def verify_idc(path: Path) -> None:
    """``siggraph17-df00044c.pth``: the SIGGRAPH'17 generator's plain state dict."""
    from tcvc.nets import IDC, load_backbone

    with _loading_into_meta():
        load_backbone(path, "idc", _on_meta(IDC))


@dataclass(frozen=True)
class ReleasedFile:
    """One released weights file: its name, what it is, and its strict check.

    ``verify(path)`` raises ``CheckpointError`` (or ``FileNotFoundError``) unless the file loads
    strictly in its layout; ``sha256_prefix`` (from the name, torch.hub's convention) must start
    the file's SHA-256 when set.
    """

    name: str
    what: str
    verify: Callable[[Path], None]
    sha256_prefix: str | None = field(default=None)

    def __post_init__(self) -> None:
        if self.sha256_prefix is None:
            object.__setattr__(self, "sha256_prefix", hash_prefix_of(self.name))


@dataclass(frozen=True)
class Archive:
    """A released zip archive, and the names it likely holds (only orders the downloads)."""

    name: str
    likely: tuple[str, ...] = ()


RELEASED: tuple[ReleasedFile, ...] = (
    ReleasedFile("80000_G.pth", "the released TCVC model (TCVC_IDC)", verify_tcvc),
    ReleasedFile("FlowNet2_checkpoint.pth.tar", "NVIDIA's FlowNet2", verify_flownet),
    ReleasedFile("siggraph17-df00044c.pth", "the SIGGRAPH'17 colouriser (IDC)", verify_idc),
)

ARCHIVES: tuple[Archive, ...] = (
    Archive("TCVC_IDC.zip", likely=("80000_G.pth",)),
    Archive(
        "pretrained_models.zip", likely=("FlowNet2_checkpoint.pth.tar", "siggraph17-df00044c.pth")
    ),
)


def released_file(name: str, *, files: tuple[ReleasedFile, ...] | None = None) -> ReleasedFile:
    """The entry of ``RELEASED`` (or ``files``) called ``name``; ``KeyError`` for another name."""
    for entry in RELEASED if files is None else files:
        if entry.name == name:
            return entry
    raise KeyError(name)
