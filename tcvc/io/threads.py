"""Reading and writing on their own threads, so the network never waits for FFmpeg.

``Prefetch(frames, depth=n)`` iterates ``frames`` (a ``VideoReader``) on a background thread, at
most ``n`` items ahead; ``BackgroundWriter(writer, depth=n)`` hands frames to ``writer.write`` on
a background thread, at most ``n`` behind (``convert`` turns each into what the writer takes,
there: a GPU tensor's copy to numpy leaves the caller's thread too). Both are bounded (constant memory), keep the order,
and re-raise an error of their thread in the caller (the reader's ``VideoError`` at the frame
where it happened; the writer's at the next ``write`` or at ``close``), with its own message.
Decoding and encoding in FFmpeg release the GIL, so they overlap with the network's work.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["BackgroundWriter", "Prefetch"]

_DONE = object()
_POLL_S = 0.1


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch:
    """``for item in Prefetch(iterable, depth=8)``: the items of ``iterable``, read ahead.

    Call ``close`` (in a ``finally``) inside the reader's own ``with``: it stops and joins the
    thread before the reader is closed under it.
    """

    def __init__(self, iterable: Iterable[Any], *, depth: int = 8) -> None:
        if depth < 1:
            raise ValueError(f"depth must be ≥ 1, got {depth}")
        self._iterable = iterable
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="tcvc-read", daemon=True)
        self._started = False

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._iterable:
                if not self._put(item):
                    return
        except BaseException as error:  # noqa: BLE001 (any error is re-raised in the consumer)
            self._put(_Failure(error))
            return
        self._put(_DONE)

    def __iter__(self) -> Iterator[Any]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop reading ahead and wait for the thread (at most one item's read)."""
        self._stop.set()
        if self._started:
            self._thread.join()


class BackgroundWriter:
    """``writer.write(frame)`` on a background thread; ``close()`` waits until every frame is
    written (and re-raises the thread's error, if any). Use it inside the writer's own ``with``:
    on an error in the caller, ``abort()`` drops what is queued, so the writer's ``__exit__``
    removes its partial output as usual."""

    def __init__(
        self, writer: Any, *, depth: int = 8, convert: Callable[[Any], Any] | None = None
    ) -> None:
        if depth < 1:
            raise ValueError(f"depth must be ≥ 1, got {depth}")
        self.writer = writer
        self.convert = convert  # applied on the thread (e.g. a GPU tensor to numpy)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._consume, name="tcvc-write", daemon=True)
        self._thread.start()

    def _consume(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE or self._abort.is_set():
                return
            try:
                self.writer.write(item if self.convert is None else self.convert(item))
            except BaseException as error:  # noqa: BLE001 (re-raised in the caller)
                self._error = error
                return

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def write(self, frame: Any) -> None:
        """Queue ``frame`` (blocks while ``depth`` frames wait); raises the thread's error."""
        while True:
            self._raise()
            if not self._thread.is_alive():
                raise RuntimeError("the writer thread has stopped")
            try:
                self._queue.put(frame, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Write everything queued, stop the thread; raises its error, if any."""
        if self._thread.is_alive():
            while True:
                try:
                    self._queue.put(_DONE, timeout=_POLL_S)
                    break
                except queue.Full:
                    if not self._thread.is_alive():
                        break
            self._thread.join()
        self._raise()

    def abort(self) -> None:
        """Drop what is queued and stop the thread (after the frame it is writing)."""
        self._abort.set()
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                pass
            try:
                self._queue.put_nowait(_DONE)
            except queue.Full:
                pass
            self._thread.join(timeout=_POLL_S)
