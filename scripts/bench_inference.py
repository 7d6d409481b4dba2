"""Benchmark TCVCNet inference: the exact path vs the efficient path, side by side.

For each setting (device, frame size, dtype) one process times, on the same T-frame clips:

- ``original``: the exact path plus the 2T − 3 flows the original forward also computes for its
  loss (4T − 7 FlowNet2 pairs a clip: what running the original TCVC_IDC costs at inference);
- ``exact``:    ``net(L)``, the frame-by-frame exact path (2T − 4 pairs, one at a time);
- ``efficient``: ``net.colorize_clip(L)`` (2T − 4 pairs, batched; IDC once on both anchors).

Frames/s counts the T frames of a clip (consecutive clips of a video share an anchor, so a video
costs T − 1 frames a clip). Peak memory: the CUDA allocator's peak on GPU; on CPU the peak
resident-set growth over the process's baseline, sampled every 5 ms. bf16 means
``torch.autocast(bfloat16)`` and channels_last weights; fp32 has TF32 off. Weights are random
(timing does not depend on them). The paths run round-robin, clip by clip, and the median
clip time is reported (the minimum is in the JSON). Prints a table; ``--out`` writes JSON.

    python scripts/bench_inference.py --device cpu --sizes 256 --dtypes fp32 --out cpu.json
    python scripts/bench_inference.py --device cuda --sizes 256 480x854 --dtypes fp32 bf16
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import torch

from tcvc.inference import network_size
from tcvc.nets import TCVCNet

PATHS = ("original", "exact", "efficient")


def loss_only_pairs(num_frames: int) -> list[tuple[int, int]]:
    """The flows the original forward computes for its loss beyond the propagation ones.

    F(t+1, t) for t = 0 … T−2 (recomputed even where propagation had them) and F(t+2, t) for
    t = 0 … T−3: 2T − 3 pairs.
    """
    return [(t + 1, t) for t in range(num_frames - 1)] + [(t + 2, t) for t in range(num_frames - 2)]


def run_path(net: TCVCNet, name: str, L: torch.Tensor, flow_batch: int | None) -> torch.Tensor:
    if name == "efficient":
        return net.colorize_clip(L, flow_batch=flow_batch)
    with torch.no_grad():
        ab = net(L)
        if name == "original":
            for a, b in loss_only_pairs(L.shape[1]):
                net.estimate_flow(L[:, a], L[:, b])
    return ab


class _RssPeak:
    """Peak resident memory (bytes) of this process while ``watch()`` is open, by sampling."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.baseline, self.peak = interval, 0, 0
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    @contextlib.contextmanager
    def watch(self):
        self.baseline = self.peak = self._rss()
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                self.peak = max(self.peak, self._rss())
                time.sleep(self.interval)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            self.peak = max(self.peak, self._rss())


def _measure(net, name, L, flow_batch, autocast, device) -> tuple[float, int, torch.Tensor]:
    """Seconds and peak memory (bytes above the start) of one clip through one path."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    monitor = _RssPeak()
    with monitor.watch() if device.type == "cpu" else contextlib.nullcontext(), autocast:
        start = time.perf_counter()
        ab = run_path(net, name, L, flow_batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        peak = monitor.peak - monitor.baseline
    return seconds, peak, ab


def bench_setting(
    net: TCVCNet,
    *,
    device: torch.device,
    size: tuple[int, int],
    dtype: str,
    num_frames: int,
    clips: int,
    warmup: int,
    flow_batch: int | None,
    paths: tuple[str, ...],
) -> list[dict]:
    """Time every path on the same clip, round-robin (so load changes hit all paths alike)."""
    height, width = network_size(*size, "native")
    L = torch.rand(1, num_frames, 1, height, width, device=device) - 0.5
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if dtype == "bf16"
        else contextlib.nullcontext()
    )
    for _ in range(warmup):
        for name in paths:
            with autocast:
                run_path(net, name, L, flow_batch)
    times: dict[str, list[float]] = {name: [] for name in paths}
    peaks: dict[str, int] = dict.fromkeys(paths, 0)
    outputs: dict[str, torch.Tensor] = {}
    for _ in range(clips):
        for name in paths:
            seconds, peak, ab = _measure(net, name, L, flow_batch, autocast, device)
            times[name].append(seconds)
            peaks[name] = max(peaks[name], peak)
            outputs[name] = ab.float()
    rows = []
    for name in paths:
        median = statistics.median(times[name])
        rows.append(
            {
                "device": device.type,
                "size": f"{size[0]}x{size[1]}",
                "network_size": f"{height}x{width}",
                "dtype": dtype,
                "path": name,
                "T": num_frames,
                "clips": clips,
                "seconds_per_clip": median,
                "seconds_per_clip_min": min(times[name]),
                "frames_per_s": num_frames / median,
                "peak_memory_mib": peaks[name] / 2**20,
                "flownet_pairs": flownet_pairs(name, num_frames),
            }
        )
    if "exact" in outputs:
        for row in rows:
            diff = (outputs[row["path"]] - outputs["exact"]).abs().max().item()
            row["max_abs_diff_vs_exact"] = diff
    return rows


def flownet_pairs(name: str, num_frames: int) -> int:
    """FlowNet2 pairs a clip costs on each path."""
    needed = 2 * (num_frames - 2)
    return needed + len(loss_only_pairs(num_frames)) if name == "original" else needed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["256", "480x854"],
        help="frame sizes: N (N×N) or HxW; run natively, padded to multiples of 64",
    )
    parser.add_argument("--dtypes", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    parser.add_argument("--frames", type=int, default=19, help="T, frames a clip (default 19)")
    parser.add_argument("--clips", type=int, default=3, help="timed clips per path")
    parser.add_argument("--warmup", type=int, default=1, help="untimed clips per path first")
    parser.add_argument(
        "--flow-batch",
        type=int,
        default=8,
        help="image pairs per FlowNet2 call in the efficient path (0: all)",
    )
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the submodules (compile_for_inference)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    net = TCVCNet().eval().to(device)
    if args.compile:
        net.compile_for_inference()
    rows = []
    for dtype in args.dtypes:
        net.to(memory_format=torch.channels_last if dtype == "bf16" else torch.contiguous_format)
        for text in args.sizes:
            height, _, width = text.partition("x")
            size = (int(height), int(width or height))
            rows += bench_setting(
                net,
                device=device,
                size=size,
                dtype=dtype,
                num_frames=args.frames,
                clips=args.clips,
                warmup=args.warmup,
                flow_batch=args.flow_batch or None,
                paths=tuple(args.paths),
            )
            print_table(rows[-len(args.paths) :])
    print("\nall settings")
    print_table(rows)
    if args.out:
        meta = {
            "device_name": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or platform.machine(),
            "torch": str(torch.__version__),
            "threads": torch.get_num_threads(),
            "flow_batch": args.flow_batch,
            "compile": args.compile,
        }
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
        print(f"wrote {args.out}")


def print_table(rows: list[dict]) -> None:
    print(
        f"{'device':6} {'size':>8} {'dtype':5} {'path':9} {'pairs':>5} {'s/clip':>8} "
        f"{'min s':>8} {'frames/s':>9} {'vs exact':>8} {'peak MiB':>9} {'|Δab| vs exact':>14}"
    )
    exact = {(r["device"], r["size"], r["dtype"]): r for r in rows if r["path"] == "exact"}
    for r in rows:
        ref = exact.get((r["device"], r["size"], r["dtype"]))
        ratio = r["frames_per_s"] / ref["frames_per_s"] if ref else float("nan")
        diff = r.get("max_abs_diff_vs_exact", float("nan"))
        print(
            f"{r['device']:6} {r['size']:>8} {r['dtype']:5} {r['path']:9} {r['flownet_pairs']:5d} "
            f"{r['seconds_per_clip']:8.3f} {r['seconds_per_clip_min']:8.3f} "
            f"{r['frames_per_s']:9.2f} {ratio:7.2f}x {r['peak_memory_mib']:9.0f} {diff:14.2e}"
        )


if __name__ == "__main__":
    main()
