"""What every entry point shares: user errors as one line, the project root, seeding."""

from __future__ import annotations

import functools
import logging
import netrc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("tcvc")

__all__ = [
    "ROOT",
    "UserError",
    "load_net",
    "one_line",
    "pick_device",
    "report_user_errors",
    "user_error_types",
]

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("TCVC_ROOT", str(ROOT))

T = TypeVar("T")


def wandb_logged_in() -> bool:
    """True when W&B has credentials here (``WANDB_API_KEY`` or ``wandb login``'s netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


# conf/logger/wandb.yaml: `offline: ${wandb_offline:}` (online only for a logged-in user;
# WANDB_MODE=offline still forces offline)
OmegaConf.register_new_resolver("wandb_offline", lambda: not wandb_logged_in(), replace=True)


class UserError(Exception):
    """A problem with what the user asked for (a bad path, a missing weights file...)."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions that describe bad input rather than a bug: shown as one line, no traceback."""
    from tcvc.data import DataError
    from tcvc.io import VideoError

    types: list[type[BaseException]] = [
        UserError,
        DataError,
        VideoError,
        FileNotFoundError,
        PermissionError,
    ]
    try:
        from tcvc.nets.checkpoints import CheckpointError
    except ImportError:  # pragma: no cover - the nets are optional for the data-only entry points
        pass
    else:
        types.append(CheckpointError)
    return tuple(types)


def load_net(
    ckpt: str | Path | None,
    *,
    flownet2_weights: str | Path | None = None,
    idc_weights: str | Path | None = None,
):
    """The ``TCVCNet`` for inference (eval, colorize), in eval mode on the CPU.

    ``ckpt`` is a project ``.ckpt`` / state dict or the original ``80000_G.pth``. A project
    checkpoint of a run with backbones from files stores only the head: the backbones then come
    from ``flownet2_weights`` / ``idc_weights`` or the paths the run recorded (see
    ``TCVCNet.from_pretrained``). Raises ``UserError`` when there is no ``ckpt``.
    """
    from tcvc.nets import TCVCNet

    if ckpt is None:
        raise UserError(
            "no weights: set ckpt=PATH (a project .ckpt or the original 80000_G.pth); a network "
            "with random weights gives meaningless colours"
        )
    return TCVCNet.from_pretrained(ckpt, flownet2=flownet2_weights, idc=idc_weights)


def pick_device(name: str) -> torch.device:
    """The ``device=`` option of eval.py and colorize.py: ``auto`` -> cuda when available, else
    cpu; a bad name or ``cuda`` without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UserError(f"device: {error}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={name}, but CUDA is not available here; use device=auto or cpu")
    return device


def one_line(error: BaseException) -> str:
    """The message of a user error, without the worker traceback that a DataLoader worker adds
    when it re-raises an error of one of its processes ("Caught DataError in DataLoader worker
    process 0. Original Traceback ..."): its last line, the original message."""
    text = str(error)
    if "Original Traceback" not in text:
        return text
    last = text.strip().splitlines()[-1]
    kind = type(error)
    for prefix in (f"{kind.__module__}.{kind.__qualname__}: ", f"{kind.__name__}: "):
        last = last.removeprefix(prefix)
    return last


def report_user_errors(task: Callable[[DictConfig], T]) -> Callable[[DictConfig], T]:
    """Run `task(cfg)`; a user error prints `error: <message>` to stderr and exits with status 1.

    With `debug=true` in the config the full traceback is shown instead.
    """

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> T:
        try:
            return task(cfg)
        except user_error_types() as error:
            if cfg.get("debug") is True:
                raise
            print(f"error: {one_line(error)}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
