"""User errors as one line: which exceptions count as bad input, and the wrapper that prints them.

``report_user_errors(task)(cfg)`` runs a task; a user error prints ``error: <message>`` to stderr
and exits with status 1 (``tracebacks=true`` in the config: the error itself, with its traceback);
Ctrl-C prints ``interrupted`` and exits with 130.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig

from tcvc.errors import UserError

__all__ = ["UserError", "one_line", "report_user_errors", "user_error_types"]

T = TypeVar("T")


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions that describe bad input rather than a bug: shown as one line, no traceback."""
    from tcvc.data import DataError
    from tcvc.io import VideoError
    from tcvc.nets.checkpoints import CheckpointError

    return (UserError, DataError, VideoError, CheckpointError, FileNotFoundError, PermissionError)


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

    With `tracebacks=true` in the config the error is raised as it is, with its traceback.
    """

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> T:
        try:
            return task(cfg)
        except user_error_types() as error:
            if cfg.get("tracebacks") is True:
                raise
            print(f"error: {one_line(error)}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
