"""``UserError``: a problem with what the user asked for, shown as one line without a traceback.

It lives at the bottom of the package (it imports nothing) so that every layer can raise it: an
inference option (``tcvc.inference.options``), a task's input (``tcvc.tasks``). The entry points
turn it, and the other errors of bad input (``tcvc.tasks.errors.user_error_types``), into
``error: <message>``.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A problem with what the user asked for (a bad option or path, a missing weights file...)."""
