"""Opening ranges of a long video: counting its frames each time against reusing a FrameIndex.

A container without a sample table (mkv, avi, ts) is demuxed whole to count its frames; a run
in segments opens one range per segment. This makes a long, tiny video (``--frames``, 16×16
H.264 at 25 fps, in mkv and mp4), then, side by side in one run, opens ``--ranges`` ranges of
10 frames spread over it, each reader counting again (``VideoReader(path, start=...)``) or
given the first reader's index (``index=...``), and checks both give the same frames.

    python scripts/bench_io.py --frames 90000 --out bench_io.json

Prints a table (seconds per range, best of ``--repeats``) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from tcvc.io import VideoReader


def make_video(path: Path, frames: int) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "250"}
        picture = np.zeros((16, 16, 3), np.uint8)
        for index in range(frames):
            picture[...] = index % 256
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def time_ranges(path: Path, starts: list[int], index) -> tuple[float, list[np.ndarray]]:
    """Seconds to open and read 10 frames at each start, and the frames read."""
    frames = []
    begin = time.perf_counter()
    for start in starts:
        with VideoReader(path, start=start, stop=start + 10, index=index) as reader:
            frames.append(reader.read_all())
    return time.perf_counter() - begin, frames


def run(args: argparse.Namespace) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for suffix in ("mkv", "mp4"):
            path = make_video(Path(folder) / f"long.{suffix}", args.frames)
            with VideoReader(path) as first:
                index = first.index
            starts = [
                round(k * (args.frames - 10) / max(args.ranges - 1, 1)) for k in range(args.ranges)
            ]
            best = {"count": float("inf"), "index": float("inf")}
            for _ in range(args.repeats):
                for mode in ("count", "index"):
                    seconds, frames = time_ranges(path, starts, index if mode == "index" else None)
                    best[mode] = min(best[mode], seconds)
                    if mode == "count":
                        counted = frames
                    else:
                        assert all(
                            np.array_equal(a, b) for a, b in zip(counted, frames, strict=True)
                        )
            rows.append(
                {
                    "container": suffix,
                    "frames": args.frames,
                    "ranges": args.ranges,
                    "count_s_per_range": best["count"] / args.ranges,
                    "index_s_per_range": best["index"] / args.ranges,
                    "speedup": best["count"] / best["index"],
                }
            )
    return {
        "meta": {"cpu": platform.processor() or platform.machine(), "repeats": args.repeats},
        "rows": rows,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=90_000, help="frames of the video (1 h)")
    parser.add_argument("--ranges", type=int, default=10, help="ranges opened")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench_io.json"))
    args = parser.parse_args(argv)
    if args.frames < 20 or args.ranges < 1:
        parser.error("need --frames ≥ 20 and --ranges ≥ 1")
    result = run(args)
    print(
        f"{'container':<10} {'frames':>7} {'count s/range':>14} {'index s/range':>14} {'ratio':>7}"
    )
    for row in result["rows"]:
        print(
            f"{row['container']:<10} {row['frames']:>7} {row['count_s_per_range']:>14.4f} "
            f"{row['index_s_per_range']:>14.4f} {row['speedup']:>6.1f}×"
        )
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
