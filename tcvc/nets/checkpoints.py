"""Weights files: strict loading with clear errors, and the original TCVC key layout.

Every file is read with ``torch.load(weights_only=True)`` (no code runs from a weights file).
Layouts understood:

- the released TCVC checkpoint ``80000_G.pth``: a plain state dict with the original key names
  (``flow.``, ``fea_key.``, ``L_fea_extractor.``, ``channel_reduction.``, ``weigting.``,
  ``feature_refine.``); ``ORIGINAL_PREFIXES`` maps them onto ``TCVCNet``'s modules and
  ``save_original`` writes them back, in the released key order, for the original code;
- our own files: a plain ``TCVCNet`` state dict, or a Lightning ``.ckpt`` whose ``state_dict`` holds
  it under ``net.``;
- the backbone files ``siggraph17-df00044c.pth`` (plain) and ``FlowNet2_checkpoint.pth.tar``
  (``{'epoch', 'state_dict', 'best_EPE'}``).

A ``module.`` prefix (DataParallel, as the original's ``load_network`` strips) and ``_orig_mod.``
(``torch.compile``) are removed before matching.
"""

from __future__ import annotations

import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "ORIGINAL_PREFIXES",
    "CheckpointError",
    "check_fit",
    "from_original_keys",
    "is_original_layout",
    "load_backbone",
    "load_file",
    "load_original",
    "load_strict",
    "save_original",
    "state_dict_of",
    "to_original_keys",
]

# Original prefix -> TCVCNet prefix, in the released file's key order.
ORIGINAL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("L_fea_extractor.0.", "head.l_features.conv1."),
    ("L_fea_extractor.2.", "head.l_features.conv2."),
    ("channel_reduction.", "head.reduction."),
    ("weigting.", "head.fusion_weight."),
    ("feature_refine.", "head.refine."),
    ("fea_key.", "idc."),
    ("flow.", "flownet."),
)
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_MAX_LISTED = 12


class CheckpointError(ValueError):
    """A weights file that cannot be read or does not fit the network (names the problem)."""


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    more = len(keys) - _MAX_LISTED
    return shown + (f", ... ({more} more)" if more > 0 else "")


def load_file(path: str | Path, *, map_location: str | torch.device = "cpu") -> object:
    """``torch.load(path, weights_only=True)`` with errors that say what is wrong with the file.

    Zip-format files are memory-mapped (a full TCVC checkpoint is ~800 MB in float32).
    Raises ``FileNotFoundError`` for a missing path and ``CheckpointError`` for a file that is not
    a readable PyTorch weights file (truncated, another format, or holding pickled code).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    mmap = zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        size = path.stat().st_size
        raise CheckpointError(
            f"cannot read weights file {path} ({size:,} bytes) with torch.load(weights_only=True): "
            f"{type(error).__name__}: {error}. It may be truncated, not a PyTorch file, or hold "
            "objects other than tensors and plain containers."
        ) from error


def state_dict_of(obj: object, *, source: str = "checkpoint") -> dict[str, Tensor]:
    """The flat name -> tensor mapping inside a loaded file.

    Accepts a plain state dict, ``{'state_dict': ...}`` (NVIDIA's FlowNet2 file, Lightning
    ``.ckpt``); strips ``module.`` / ``_orig_mod.`` and, for a Lightning checkpoint, keeps the keys
    under ``net.`` (the LightningModule's network) without that prefix.
    """
    lightning = isinstance(obj, Mapping) and "pytorch-lightning_version" in obj
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source}: expected a state dict (name -> tensor), got {type(obj)}")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"{source}: entries that are not name -> tensor: {_listing(bad)}")
    state = {_strip_wrappers(k): v for k, v in obj.items()}
    if lightning:
        state = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
        if not state:
            raise CheckpointError(f"{source}: a Lightning checkpoint without `net.` weights")
    return state


def _strip_wrappers(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix) :], True
    return key


def check_fit(
    expected: Mapping[str, Tensor], state: Mapping[str, Tensor], *, source: str, target: str
) -> None:
    """Raise ``CheckpointError`` unless ``state`` has exactly the names and shapes of ``expected``.

    The message lists missing keys, unexpected keys and shape mismatches, in the names given.
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"missing keys ({len(missing)}): {_listing(missing)}")
        if unexpected:
            problems.append(f"unexpected keys ({len(unexpected)}): {_listing(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatches ({len(mismatched)}): {_listing(mismatched)}")
        raise CheckpointError(f"{source} does not fit {target}: " + "; ".join(problems))


def load_strict(module: nn.Module, state: Mapping[str, Tensor], *, source: str) -> None:
    """Load ``state`` into ``module`` only if names and shapes match exactly (see ``check_fit``)."""
    check_fit(module.state_dict(), state, source=source, target=type(module).__name__)
    module.load_state_dict(state, strict=True)


def load_original(net: nn.Module, state: Mapping[str, Tensor], *, source: str) -> None:
    """Load a state dict with the original TCVC names into a ``TCVCNet``, strictly.

    Errors name keys as the file spells them (``fea_key.model1.0.weight``, ...).
    """
    check_fit(to_original_keys(net.state_dict()), state, source=source, target="TCVC_IDC")
    net.load_state_dict(from_original_keys(state), strict=True)


def load_backbone(
    path: str | Path,
    name: str,
    module: nn.Module,
    *,
    required: bool = True,
    map_location: str | torch.device = "cpu",
) -> nn.Module | None:
    """Load ``module`` (``"idc"`` or ``"flownet"``) strictly from any file that holds it.

    Accepted: the backbone's own file (``siggraph17-df00044c.pth``,
    ``FlowNet2_checkpoint.pth.tar``), the original ``80000_G.pth``, or one of our state dicts /
    Lightning ``.ckpt`` files that stores it (a head-only ``.ckpt`` does not). A file without
    it: CheckpointError, or None when not ``required``. Returns the module, frozen and in eval mode.
    """
    source = str(path)
    state = state_dict_of(load_file(path, map_location=map_location), source=source)
    if is_original_layout(state):
        state = from_original_keys(state)
    prefix = f"{name}."
    whole_net = any(k.startswith(("head.", "idc.", "flownet.")) for k in state)
    if any(k.startswith(prefix) for k in state):
        state = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    elif whole_net or set(state) != set(module.state_dict()):
        if not required:
            return None
        if whole_net:
            raise CheckpointError(
                f"{source} holds no {name} weights (a head-only checkpoint stores the frozen "
                "backbones by path only); give the backbone's own file"
            )
        # else: a file of another layout: load_strict names the keys that do not fit
    load_strict(module, state, source=source)
    return module.eval().requires_grad_(False)


def is_original_layout(state: Mapping[str, Tensor]) -> bool:
    """True if the keys use the original TCVC names (any key under an original prefix)."""
    return any(k.startswith(tuple(p for p, _ in ORIGINAL_PREFIXES)) for k in state)


def _rename(key: str, pairs: tuple[tuple[str, str], ...]) -> str:
    for old, new in pairs:
        if key.startswith(old):
            return new + key[len(old) :]
    return key  # left as is: strict loading then names it as unexpected


def from_original_keys(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Original TCVC names -> ``TCVCNet`` names (unknown keys kept, to be reported)."""
    return {_rename(k, ORIGINAL_PREFIXES): v for k, v in state.items()}


def to_original_keys(state: Mapping[str, Tensor]) -> OrderedDict[str, Tensor]:
    """``TCVCNet`` names -> original TCVC names, ordered as in the released file."""
    reverse = tuple((new, old) for old, new in ORIGINAL_PREFIXES)
    renamed = {_rename(k, reverse): v for k, v in state.items()}
    unknown = [k for k in renamed if not k.startswith(tuple(old for old, _ in ORIGINAL_PREFIXES))]
    if unknown:
        raise CheckpointError(f"no original name for: {_listing(unknown)}")
    ordered: OrderedDict[str, Tensor] = OrderedDict()
    for old, _ in ORIGINAL_PREFIXES:
        ordered.update((k, v) for k, v in renamed.items() if k.startswith(old))
    return ordered


def save_original(net: nn.Module, path: str | Path) -> None:
    """Write ``net``'s weights as the original code saves them (``80000_G.pth`` layout).

    A plain ``OrderedDict`` of CPU tensors with the original names, so the original
    ``TCVC_IDC`` loads it with ``load_state_dict(torch.load(path), strict=True)``.
    """
    state = OrderedDict((k, v.detach().cpu().contiguous()) for k, v in net.state_dict().items())
    torch.save(to_original_keys(state), Path(path))
