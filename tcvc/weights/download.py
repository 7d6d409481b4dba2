"""One HTTP download into a file: a progress bar, resumption, and nothing half-written in place.

``download(url, target)`` writes to ``<target>.partial`` and renames it to ``target`` only when
every byte the server announced has arrived (``os.replace``: atomic). A ``.partial`` left by an
interrupted download is resumed with an HTTP ``Range`` request; a server that ignores Range
(answers ``200`` with the whole file) or refuses it (``416``) is downloaded again from byte 0.
A download that stops early (the connection drops, a timeout) keeps its ``.partial`` for the next
try and raises ``UserError`` naming the URL. Only the standard library (``urllib``) and tqdm.
"""

from __future__ import annotations

import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tcvc.errors import UserError

__all__ = ["CHUNK", "download", "partial_path"]

CHUNK = 1 << 20  # bytes read and written at a time
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_CONTENT_RANGE_UNSATISFIED = re.compile(r"\s*bytes \*/(\d+)\s*")


def partial_path(target: Path) -> Path:
    """Where ``target`` is downloaded to until it is complete: ``<target>.partial``."""
    return target.with_name(target.name + ".partial")


def _open(url: str, *, start: int, timeout: float):
    """``urlopen(url)``, asking for the bytes from ``start`` on when ``start > 0``.

    Returns ``(response, offset, total)``: the response, the offset its body begins at (0 when
    the server ignored the Range or gave another range than asked) and the file's total size
    (None if unknown).
    """
    headers = {"User-Agent": "tcvc-weights"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as error:
        if error.code == 416 and start:
            error.close()
            whole = _CONTENT_RANGE_UNSATISFIED.fullmatch(error.headers.get("Content-Range", ""))
            if whole and int(whole[1]) == start:  # the .partial is the whole file already
                return None, start, start
            return _open(url, start=0, timeout=timeout)  # not a prefix of this file: start over
        raise UserError(f"cannot download {url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise UserError(f"cannot download {url}: {reason}") from error
    status = getattr(response, "status", None) or 200
    length = response.headers.get("Content-Length")
    if start and status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match and int(match[1]) == start:
            return response, start, (None if match[3] == "*" else int(match[3]))
        response.close()  # a range we did not ask for
        return _open(url, start=0, timeout=timeout)
    return response, 0, (int(length) if length is not None else None)


def download(url: str, target: Path, *, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` (resuming ``<target>.partial``); return ``target``.

    Raises ``UserError`` naming the URL: HTTP errors (``HTTP 404 Not Found``), an unreachable
    host, or a download that stopped before the announced size (its ``.partial`` is kept, so the
    next call resumes it).
    """
    from tqdm import tqdm

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(target)
    start = partial.stat().st_size if partial.is_file() else 0
    response, start, total = _open(url, start=start, timeout=timeout)
    if response is None:  # complete before (a run stopped before its rename)
        os.replace(partial, target)
        return target
    done = start
    bar = tqdm(
        total=total,
        initial=start,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=target.name,
        file=sys.stderr,
        disable=not progress,
        leave=True,
    )
    try:
        with response, bar, open(partial, "r+b" if start else "wb") as file:
            file.seek(start)
            file.truncate()
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                file.write(chunk)
                done += len(chunk)
                bar.update(len(chunk))
            file.flush()
            os.fsync(file.fileno())
    except (OSError, http.client.HTTPException) as error:  # a reset, a timeout, IncompleteRead
        raise _stopped(url, partial, done, total, error) from error
    if total is not None and done != total:
        raise _stopped(url, partial, done, total, "the connection closed")
    os.replace(partial, target)
    return target


def _stopped(url: str, partial: Path, done: int, total: int | None, why: object) -> UserError:
    of = f" of {total:,}" if total is not None else ""
    return UserError(
        f"download of {url} stopped at {done:,}{of} bytes ({why}); kept {partial}: run the "
        "command again to resume"
    )
