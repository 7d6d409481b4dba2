"""Benchmark FlowNet2's custom ops: references vs CUDA kernels vs spatial-correlation-sampler.

One run times, side by side, at FlowNetC sizes (correlation of 256-channel features at 1/8 of the
frame; resample2d and channel_norm on 3-channel full frames) for 256×256 and 448×1024 frames:

- ``reference``: the pure-PyTorch references (``correlation_reference`` etc. of the modules
  ``ops.correlation``, ``ops.resample2d``, ``ops.channel_norm``; forward, and forward + the
  explicit backward) on the CPU, and on the GPU when there is one;
- ``kernel``: ``ops.correlation`` / ``resample2d`` / ``channel_norm`` on CUDA (the compiled
  kernels, built on first use), forward and forward + autograd backward;
- ``spatial-correlation-sampler``: the PyPI package's CUDA correlation (a peer's kernel), set up
  as FlowNetC (patch 21, dilation 2) and divided by C. Install it against the installed torch
  with ``pip install --no-build-isolation spatial-correlation-sampler``.

Rows that need a GPU or the peer package are reported as skipped when those are missing. With
``tcvc.nets.flownet2`` importable, FlowNet2's CPU forward at 256×256 is timed too, and the share
of its time the ops take (1 correlation, 4 resample2d, 6 channel_norm per forward, as NVIDIA's
FlowNet2) is reported. Prints a table and writes JSON (``--out``, default ``bench_ops.json``).

Targets (not asserted): GPU correlation fwd+bwd ≥ 2× faster than spatial-correlation-sampler at
the 448×1024 size; CPU ops under 10 % of FlowNet2's forward at 256×256.

    python scripts/bench_ops.py [--out bench_ops.json] [--batch 4] [--cpu-batch 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# time the compiled kernels, never their silent fallback to the references (see ops._common)
os.environ.setdefault("TCVC_CUDA_OPS", "require")

from ops import channel_norm, correlation, resample2d
from ops.channel_norm import channel_norm_backward_reference, channel_norm_reference
from ops.correlation import correlation_backward_reference, correlation_reference
from ops.resample2d import resample2d_backward_reference, resample2d_reference

# Frame sizes (H, W); FlowNetC correlates 256-channel conv3 features at 1/8 of the frame.
FRAMES = {"256x256": (256, 256), "448x1024": (448, 1024)}
CORR_CHANNELS = 256
IMAGE_CHANNELS = 3
# Per FlowNet2 forward (NVIDIA's models.FlowNet2): calls of each op.
FLOWNET2_CALLS = {"correlation": 1, "resample2d": 4, "channel_norm": 6}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class Row:
    op: str
    impl: str
    device: str
    frame: str
    shape: list[int]
    dtype: str
    fwd_ms: float | None = None
    fwd_bwd_ms: float | None = None
    max_abs_diff: float | None = None  # forward vs the reference on the same inputs
    status: str = "ok"
    extra: dict = field(default_factory=dict)


def _time_ms(fn: Callable[[], object], device: str, *, warmup: int, repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds (CUDA-synchronised on the GPU)."""
    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _shapes(op: str, batch: int, frame: tuple[int, int]) -> tuple[tuple, tuple]:
    """(input shape, output shape) of one op at one frame size."""
    h, w = frame
    if op == "correlation":
        return (batch, CORR_CHANNELS, h // 8, w // 8), (batch, 441, h // 8, w // 8)
    if op == "resample2d":
        return (batch, IMAGE_CHANNELS, h, w), (batch, IMAGE_CHANNELS, h, w)
    return (batch, IMAGE_CHANNELS, h, w), (batch, 1, h, w)


def _inputs(op: str, batch: int, frame: tuple[int, int], device: str, dtype: torch.dtype):
    """Random inputs and an output gradient for one op at one frame size."""
    gen = torch.Generator().manual_seed(0)
    shape, out_shape = _shapes(op, batch, frame)
    if op == "correlation":
        args = (torch.randn(shape, generator=gen), torch.randn(shape, generator=gen))
    elif op == "resample2d":
        flow = torch.randn((batch, 2, *shape[2:]), generator=gen) * 8
        args = (torch.rand(shape, generator=gen), flow)
    else:
        args = (torch.randn(shape, generator=gen),)
    grad = torch.randn(out_shape, generator=gen)
    inputs = [a.to(device=device, dtype=dtype) for a in args]
    return inputs, grad.to(device=device, dtype=dtype), list(shape)


REFERENCE = {
    "correlation": (correlation_reference, correlation_backward_reference),
    "resample2d": (resample2d_reference, resample2d_backward_reference),
    "channel_norm": (channel_norm_reference, None),
}
OPS = {"correlation": correlation, "resample2d": resample2d, "channel_norm": channel_norm}


def _reference_fns(op: str, args, grad):
    forward, backward = REFERENCE[op]

    def fwd():
        return forward(*args)

    def fwd_bwd():
        out = forward(*args)
        if op == "channel_norm":
            return channel_norm_backward_reference(grad, args[0], out)
        return backward(grad, *args)

    return fwd, fwd_bwd


def _autograd_fns(forward: Callable, args, grad):
    leaves = [a.detach().requires_grad_(True) for a in args]

    def fwd():
        with torch.no_grad():
            return forward(*args)

    def fwd_bwd():
        for leaf in leaves:
            leaf.grad = None
        forward(*leaves).backward(grad)

    return fwd, fwd_bwd


def _peer_correlation():
    """FlowNetC's correlation through spatial-correlation-sampler, or None if not installed."""
    try:
        from spatial_correlation_sampler import SpatialCorrelationSampler
    except ImportError:
        return None
    sampler = SpatialCorrelationSampler(
        kernel_size=1, patch_size=21, stride=1, padding=0, dilation=1, dilation_patch=2
    )

    def forward(f1, f2):
        b, c, h, w = f1.shape
        return sampler(f1, f2).reshape(b, 441, h, w) / c

    return forward


def _bench_one(row: Row, fwd, fwd_bwd, device: str, args, *, warmup: int, repeats: int, check):
    try:
        row.fwd_ms = _time_ms(fwd, device, warmup=warmup, repeats=repeats)
        row.fwd_bwd_ms = _time_ms(fwd_bwd, device, warmup=warmup, repeats=repeats)
        if check is not None:
            with torch.no_grad():
                row.max_abs_diff = float((fwd().float() - check.float()).abs().max())
    except Exception as error:  # noqa: BLE001 -- a failing implementation is a row, not a crash
        row.status = f"error: {type(error).__name__}: {error}"[:300]
    return row


def run(args: argparse.Namespace) -> dict:
    rows: list[Row] = []
    cuda = torch.cuda.is_available() and not args.no_cuda
    peer = _peer_correlation()
    frames = {k: v for k, v in FRAMES.items() if k in args.frames}
    common = {"warmup": args.warmup, "repeats": args.repeats}

    for frame_name, frame in frames.items():
        for op, op_fn in OPS.items():
            # CPU: the references (which the ops run on the CPU), batch --cpu-batch.
            if not args.no_cpu:
                inputs, grad, shape = _inputs(op, args.cpu_batch, frame, "cpu", torch.float32)
                row = Row(op, "reference", "cpu", frame_name, shape, "float32")
                fwd, fwd_bwd = _reference_fns(op, inputs, grad)
                rows.append(_bench_one(row, fwd, fwd_bwd, "cpu", inputs, check=None, **common))
            for dtype_name in args.dtypes:
                dtype = DTYPES[dtype_name]
                if not cuda:
                    shape = list(_shapes(op, args.batch, frame)[0])
                    impls = ["reference", "kernel"]
                    if op == "correlation":
                        impls.append("spatial-correlation-sampler")
                    skipped = "skipped: no CUDA device"
                    for impl in impls:
                        rows.append(
                            Row(op, impl, "cuda", frame_name, shape, dtype_name, status=skipped)
                        )
                    continue
                inputs, grad, shape = _inputs(op, args.batch, frame, "cuda", dtype)
                fwd, fwd_bwd = _reference_fns(op, inputs, grad)
                reference_out = fwd()
                row = Row(op, "reference", "cuda", frame_name, shape, dtype_name)
                rows.append(_bench_one(row, fwd, fwd_bwd, "cuda", inputs, check=None, **common))
                fwd, fwd_bwd = _autograd_fns(op_fn, inputs, grad)
                row = Row(op, "kernel", "cuda", frame_name, shape, dtype_name)
                rows.append(
                    _bench_one(row, fwd, fwd_bwd, "cuda", inputs, check=reference_out, **common)
                )
                if op != "correlation":
                    continue
                row = Row(op, "spatial-correlation-sampler", "cuda", frame_name, shape, dtype_name)
                if peer is None:
                    row.status = (
                        "skipped: spatial-correlation-sampler not installed "
                        "(pip install --no-build-isolation spatial-correlation-sampler)"
                    )
                    rows.append(row)
                    continue
                fwd, fwd_bwd = _autograd_fns(peer, inputs, grad)
                rows.append(
                    _bench_one(row, fwd, fwd_bwd, "cuda", inputs, check=reference_out, **common)
                )
            inputs = grad = None  # free this op's tensors (none were made without CPU or CUDA rows)
            if cuda:
                torch.cuda.empty_cache()

    summary = {"gpu_correlation_fwd_bwd_speedup_vs_peer": {}}
    for frame_name in frames:
        for dtype_name in args.dtypes:
            ours = _find(rows, "correlation", "kernel", "cuda", frame_name, dtype_name)
            theirs = _find(
                rows, "correlation", "spatial-correlation-sampler", "cuda", frame_name, dtype_name
            )
            if ours and theirs and ours.fwd_bwd_ms and theirs.fwd_bwd_ms:
                key = f"{frame_name}/{dtype_name}"
                summary["gpu_correlation_fwd_bwd_speedup_vs_peer"][key] = round(
                    theirs.fwd_bwd_ms / ours.fwd_bwd_ms, 3
                )
    summary["cpu_flownet2"] = _flownet2_share(rows, args) if not args.no_cpu else "skipped"
    return {
        "meta": {
            "torch": torch.__version__,
            "cuda_device": torch.cuda.get_device_name() if cuda else None,
            "cpu": platform.processor() or platform.machine(),
            "cpu_threads": torch.get_num_threads(),
            "batch": args.batch,
            "cpu_batch": args.cpu_batch,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "peer_installed": peer is not None,
        },
        "rows": [asdict(r) for r in rows],
        "summary": summary,
    }


def _find(rows: list[Row], op, impl, device, frame, dtype="float32") -> Row | None:
    for row in rows:
        if (row.op, row.impl, row.device, row.frame, row.dtype) == (op, impl, device, frame, dtype):
            return row
    return None


def _flownet2_share(rows: list[Row], args: argparse.Namespace) -> dict | str:
    """FlowNet2's CPU forward at 256×256 and the share of it the reference ops take."""
    per_call = {}
    for op in OPS:
        row = _find(rows, op, "reference", "cpu", "256x256")
        if row is None or row.fwd_ms is None:
            return "skipped: no CPU rows at 256x256"
        per_call[op] = row.fwd_ms
    ops_ms = sum(per_call[op] * FLOWNET2_CALLS[op] for op in OPS)
    result: dict = {"ops_ms_per_forward": round(ops_ms, 3), "calls": FLOWNET2_CALLS}
    try:
        from tcvc.nets.flownet2 import FlowNet2
    except ImportError as error:
        result["status"] = f"skipped: FlowNet2 not importable ({error})"
        return result
    try:
        model = FlowNet2().eval()
        images = [torch.rand(args.cpu_batch, 3, 256, 256) for _ in range(2)]
        with torch.no_grad():
            ms = _time_ms(
                lambda: model(*images), "cpu", warmup=1, repeats=max(3, args.repeats // 3)
            )
    except Exception as error:  # noqa: BLE001 -- report, don't crash the benchmark
        result["status"] = f"error: {type(error).__name__}: {error}"[:300]
        return result
    result.update(flownet2_ms=round(ms, 3), share=round(ops_ms / ms, 4), status="ok")
    return result


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:9.3f}"


def print_table(report: dict) -> None:
    header = (
        f"{'op':<13}{'impl':<29}{'dev':<6}{'frame':<10}{'dtype':<10}"
        f"{'fwd ms':>10}{'fwd+bwd ms':>12}{'max|diff|':>11}  status"
    )
    print(header)
    print("-" * len(header))
    for r in report["rows"]:
        diff = "-" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.2e}"
        print(
            f"{r['op']:<13}{r['impl']:<29}{r['device']:<6}{r['frame']:<10}{r['dtype']:<10}"
            f"{_fmt(r['fwd_ms']):>10}{_fmt(r['fwd_bwd_ms']):>12}{diff:>11}  {r['status']}"
        )
    print()
    print("summary:", json.dumps(report["summary"], indent=2))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench_ops.json"), help="JSON path")
    parser.add_argument("--batch", type=int, default=4, help="batch of the GPU rows")
    parser.add_argument("--cpu-batch", type=int, default=1, help="batch of the CPU rows")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--frames", nargs="+", default=list(FRAMES), choices=list(FRAMES), help="frame sizes"
    )
    parser.add_argument(
        "--dtypes", nargs="+", default=["float32", "bfloat16"], choices=list(DTYPES),
        help="dtypes of the GPU rows (the CPU rows are float32)",
    )  # fmt: skip
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU rows")
    parser.add_argument("--no-cuda", action="store_true", help="skip the GPU rows")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = run(args)
    print_table(report)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
