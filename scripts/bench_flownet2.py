"""Benchmark FlowNet2: pairs/s and the share of time in the three custom ops.

For each frame size (256×256 and 448×1024 by default) and precision (fp32; bf16 autocast on CUDA),
times FlowNet2's forward on random frame pairs after warm-up, then profiles one forward with
torch.profiler and sums the self time of the `tcvc::` ops (correlation, resample2d,
channel_norm) and their kernels. Prints a table and writes JSON (`--out`).

Targets (not asserted): ops under 10 % of FlowNet2's time on CPU at 256×256, under 5 % on GPU at
448×1024 in fp32 and bf16.

    python scripts/bench_flownet2.py [--device cpu|cuda] [--sizes 256x256 448x1024] [--out F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# time the compiled kernels, never their silent fallback to the references (see ops._common)
os.environ.setdefault("TCVC_CUDA_OPS", "require")

from tcvc.nets.flownet2 import FlowNet2

OP_NAMES = ("tcvc::correlation", "tcvc::resample2d", "tcvc::channel_norm")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def time_pairs(net, image1, image2, *, precision: str, repeats: int) -> list[float]:
    device = image1.device
    times = []
    with torch.no_grad(), _autocast(device, precision):
        net(image1, image2)  # warm-up (and CUDA build on first use)
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            net(image1, image2)
            _sync(device)
            times.append(time.perf_counter() - start)
    return times


def ops_share(net, image1, image2, *, precision: str) -> float:
    """Fraction of the forward's total self time spent in the tcvc:: ops (CPU or CUDA time)."""
    device = image1.device
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.no_grad(), _autocast(device, precision), profile(activities=activities) as prof:
        net(image1, image2)
        _sync(device)
    events = prof.key_averages()
    if device.type == "cuda":
        total = sum(e.self_device_time_total for e in events)
        # kernels launched by our ops carry the names of ops/csrc's kernels
        ours = sum(e.self_device_time_total for e in events
                   if any(k in e.key for k in ("correlation", "resample2d", "channel_norm")))
    else:
        total = sum(e.self_cpu_time_total for e in events)
        ours = sum(e.cpu_time_total for e in events if e.key in OP_NAMES)
    return ours / total if total else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", nargs="+", default=["256x256", "448x1024"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench_flownet2.json"))
    args = parser.parse_args()

    device = torch.device(args.device)
    precisions = ["fp32", "bf16"] if device.type == "cuda" else ["fp32"]
    net = FlowNet2().eval().to(device)
    rows = []
    for size in args.sizes:
        height, width = (int(s) for s in size.split("x"))
        generator = torch.Generator().manual_seed(0)
        image1 = torch.rand(args.batch, 3, height, width, generator=generator).to(device)
        image2 = torch.roll(image1, shifts=(2, 3), dims=(2, 3))
        for precision in precisions:
            times = time_pairs(net, image1, image2, precision=precision, repeats=args.repeats)
            median = statistics.median(times)
            rows.append({
                "size": size, "precision": precision, "batch": args.batch,
                "median_s": median, "pairs_per_s": args.batch / median,
                "ops_share": ops_share(net, image1, image2, precision=precision),
            })
            print(f"{size:>9} {precision:>5}: {args.batch / median:8.2f} pairs/s, "
                  f"ops {100 * rows[-1]['ops_share']:5.2f} % of the time", flush=True)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    result = {"device": device_name, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "rows": rows}
    print("\n| size | precision | pairs/s | ops share |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['size']} | {row['precision']} | {row['pairs_per_s']:.2f} | "
              f"{100 * row['ops_share']:.2f} % |")
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out} ({device_name})")


if __name__ == "__main__":
    main()
