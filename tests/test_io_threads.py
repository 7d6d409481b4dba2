"""tcvc.io.threads: reading ahead and writing behind on threads, bounded, in order, errors
re-raised in the caller where they belong."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from tcvc.io import VideoError
from tcvc.io.threads import BackgroundWriter, Prefetch


def test_prefetch_keeps_the_order_and_reads_at_most_depth_ahead():
    read: list[int] = []  # what the thread has taken from the source
    prefetch = Prefetch((read.append(i) or i for i in itertools.count()), depth=3)
    ahead = []
    try:
        for count, item in enumerate(itertools.islice(prefetch, 50), start=1):
            assert item == count - 1
            time.sleep(0.002)  # let the thread fill the queue
            ahead.append(len(read) - count)
    finally:
        prefetch.close()  # stops an endless producer blocked on a full queue
    assert max(ahead) <= 3 + 1  # the queue, and the item waiting to be put
    assert not prefetch._thread.is_alive()


def test_prefetch_reraises_the_error_after_the_items_before_it():
    def failing():
        yield from range(4)
        raise VideoError("broken.mp4: decoding stopped after 4 of 9 frames")

    seen = []
    with pytest.raises(VideoError, match="decoding stopped after 4 of 9"):
        for item in Prefetch(failing(), depth=2):
            seen.append(item)  # noqa: PERF402 (the items before the error, one by one)
    assert seen == [0, 1, 2, 3]


class ListWriter:
    def __init__(self, fail_at: int | None = None) -> None:
        self.frames: list[int] = []
        self.fail_at = fail_at
        self.thread_names: set[str] = set()

    def write(self, frame: int) -> None:
        self.thread_names.add(threading.current_thread().name)
        if frame == self.fail_at:
            raise OSError(f"disk full at frame {frame}")
        time.sleep(0.001)
        self.frames.append(frame)


def test_background_writer_writes_everything_in_order_on_its_thread():
    writer = ListWriter()
    sink = BackgroundWriter(writer, depth=2, convert=lambda x: x * 10)
    for frame in range(30):
        sink.write(frame)
    sink.close()
    assert writer.frames == [10 * f for f in range(30)]
    assert writer.thread_names == {"tcvc-write"}


def test_background_writer_reraises_its_error_in_the_caller():
    sink = BackgroundWriter(ListWriter(fail_at=5), depth=2)
    with pytest.raises(OSError, match="disk full at frame 5"):
        for frame in range(100):
            sink.write(frame)
        sink.close()


def test_background_writer_abort_drops_what_is_queued():
    writer = ListWriter()
    sink = BackgroundWriter(writer, depth=8)
    for frame in range(8):
        sink.write(frame)
    sink.abort()
    assert not sink._thread.is_alive()
    assert len(writer.frames) < 8
