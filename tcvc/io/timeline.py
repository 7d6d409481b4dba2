"""Frame index ↔ timestamp, so a reader can seek to a frame: the grid of a constant-rate stream.

A reader counts frames from 0 in the order the decoder gives them. Seeking works in timestamps,
so a frame index is turned into one only when the stream is known to be a grid: frame `i` shown
at `first_pts + i * step`, every slot filled. The evidence is an mp4/mov sample table whose
decode times step evenly (`table_step`), or, for other containers, the timestamps of every
packet, seen while the reader counts them (`GridCheck`). Without it (variable frame rate, gaps,
no timestamps) there is no grid, and the reader decodes from frame 0 instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["FrameGrid", "GridCheck", "table_step"]

# How far off its slot (in steps) a timestamp may be and still count as on the grid: a millisecond
# time base rounds 29.97 fps (33.37 ms a frame) to whole ticks.
_TOLERANCE = 0.25


@dataclass(frozen=True)
class FrameGrid:
    """Frame `index` of the video is shown at `first_pts + index * step` (stream time base)."""

    first_pts: int
    step: Fraction

    def pts(self, index: int) -> int:
        return self.first_pts + round(index * self.step)

    def index(self, pts: int | None) -> int | None:
        """The index of the frame shown at `pts`; None when `pts` is unknown or off the grid."""
        if pts is None:
            return None
        position = (pts - self.first_pts) / self.step
        index = round(position)
        return index if abs(position - index) <= _TOLERANCE else None


def table_step(timestamps: list[int]) -> Fraction | None:
    """The frame step of a sample table's decode times (mp4/mov `index_entries`), when they step
    evenly (a constant frame rate: each within a tick of its place, as a muxer rounds them);
    None otherwise."""
    count = len(timestamps)
    if count < 2:
        return None
    first, span = timestamps[0], timestamps[-1] - timestamps[0]
    if span <= 0:
        return None
    # |(t_i - t_0) - i * span / (n - 1)| <= 1 tick, in integers
    for position, stamp in enumerate(timestamps):
        if abs((stamp - first) * (count - 1) - position * span) > count - 1:
            return None
    return Fraction(span, count - 1)


class GridCheck:
    """Fed every frame's timestamp (in any order), says whether they fill a grid of `step`; or
    given a sample table (`add_table`), whether its decode times step evenly.

    The timestamps must all lie on the grid through the first one, each slot at most once (a
    byte a slot seen: 100 kB for 100,000 frames), and span exactly as many slots as there were
    timestamps, so that no slot is empty: one timestamp twice and a gap elsewhere would
    otherwise pass for a full grid, and a seek past them land on the wrong frame.
    """

    def __init__(self, step: Fraction | None) -> None:
        self.step = step if step is not None and step > 0 else None
        self._anchor: int | None = None
        self._low = self._high = 0
        self._count = 0
        self._seen = bytearray()  # slot self._base + k seen: self._seen[k]
        self._base = 0
        self._on_grid = self.step is not None
        self._table: Fraction | None = None

    def add_table(self, timestamps: list[int]) -> None:
        """The decode times of every sample, in order (an mp4/mov sample table)."""
        self._table = table_step(timestamps)
        self._on_grid = False  # the table decides

    def add(self, pts: int | None) -> None:
        if not self._on_grid:
            return
        if pts is None:
            self._on_grid = False
            return
        if self._anchor is None:
            self._anchor = pts
        slot = FrameGrid(self._anchor, self.step).index(pts)
        if slot is None or self._mark(slot):
            self._on_grid = False  # off the grid, or a slot taken twice
            return
        self._low, self._high = min(self._low, slot), max(self._high, slot)
        self._count += 1

    def _mark(self, slot: int) -> bool:
        """Mark ``slot`` seen; whether it was seen before."""
        if slot < self._base:
            self._seen[:0] = bytes(self._base - slot)
            self._base = slot
        index = slot - self._base
        if index >= len(self._seen):
            self._seen.extend(bytes(index + 1 - len(self._seen)))
        seen = bool(self._seen[index])
        self._seen[index] = 1
        return seen

    @property
    def grid_step(self) -> Fraction | None:
        """The frame step when every timestamp seen so far fills the grid, else None."""
        if self._table is not None:
            return self._table
        if self._on_grid and self._count and self._high - self._low + 1 == self._count:
            return self.step
        return None
