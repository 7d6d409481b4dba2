"""Benchmark `data.flow_cache`: training-step speed and SRL with cached full-frame flows vs
FlowNet2 on every clip, side by side on the same clips.

A small root is made of the first ``--frames`` frames of the first ``--videos`` sample videos
(links, in a temporary folder), its cache is built (timed once), then for ``--steps`` clips a
training step (forward, SRL, backward of the head) runs with the cached flows and without, in
alternation. Printed: seconds a step, FlowNet2 pairs a step, the speed-up, and the SRL each way
(the cache's flows come from full frames, so near crop borders they differ from the crop's).

    python scripts/bench_flow_cache.py [--crop 128 --interval 4 --steps 6] [--flownet F --idc F]

Without the original weights the backbones are random: the speed figures hold, the SRL
difference only shows the size of the approximation for random flows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tcvc.data import find_videos, prepare_sample_data
from tcvc.data.clips import ClipDataset, video_location
from tcvc.data.flow_cache import DEFAULT_OFFSETS, build_flow_cache
from tcvc.models import TCVCModule
from tcvc.nets import TCVCNet


def small_root(source_roots: list[Path], folder: Path, videos: int, frames: int) -> Path:
    root = folder / "train"
    for video in find_videos(source_roots, min_frames=frames)[:videos]:
        target = root / video.frames[0].parent.name
        target.mkdir(parents=True)
        for path in video.frames[:frames]:
            (target / path.name).symlink_to(path.resolve())
    return root


def timed_step(module: TCVCModule, batch: dict) -> tuple[float, float, int]:
    """(seconds, SRL, FlowNet2 image pairs) of one training step's forward and backward."""
    pairs = []
    handle = module.net.flownet.register_forward_hook(
        lambda m, args, out: pairs.append(args[0].shape[0])
    )
    module.zero_grad(set_to_none=True)
    start = time.perf_counter()
    terms, _ = module._step(batch)
    terms["loss"].backward()
    seconds = time.perf_counter() - start
    handle.remove()
    srl = sum(v.item() for k, v in terms.items() if k.startswith("srl_"))
    return seconds, srl, sum(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/sample"))
    parser.add_argument("--videos", type=int, default=1)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--interval", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--flownet", type=Path, help="FlowNet2_checkpoint.pth.tar")
    parser.add_argument("--idc", type=Path, help="siggraph17-df00044c.pth")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=Path("bench_flow_cache.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    sample = prepare_sample_data(args.data)
    net = TCVCNet.from_pretrained(flownet=args.flownet, idc=args.idc)
    module = TCVCModule(net=net)
    module.train()
    with tempfile.TemporaryDirectory() as tmp:
        root = small_root([sample / "train"], Path(tmp), args.videos, args.frames)
        dataset = ClipDataset(
            [root], interval=args.interval, crop_size=args.crop, train=True,
            flow_offsets=DEFAULT_OFFSETS,
        )  # fmt: skip
        start = time.perf_counter()
        with torch.no_grad():
            build_flow_cache(
                [(*video_location(v), v.frames) for v in dataset.videos], net.estimate_flow
            )
        build_seconds = time.perf_counter() - start
        cached_frames = sum(len(v.frames) for v in dataset.videos)
        rows: dict[str, list[tuple[float, float, int]]] = {"flownet2": [], "flow cache": []}
        for step in range(args.steps + 1):  # the first step of each is a warm-up
            torch.manual_seed(step)
            batch = torch.utils.data.default_collate([dataset[step]])
            uncached = {k: v for k, v in batch.items() if k not in ("flows", "flow_pairs")}
            results = {"flow cache": timed_step(module, batch),
                       "flownet2": timed_step(module, uncached)}  # fmt: skip
            if step:
                for name, result in results.items():
                    rows[name].append(result)

    base = statistics.median(r[0] for r in rows["flownet2"])
    table = []
    for name, results in rows.items():
        seconds = statistics.median(r[0] for r in results)
        table.append({
            "path": name,
            "s_per_step": seconds,
            "speedup": base / seconds,
            "flownet2_pairs_per_step": statistics.mean(r[2] for r in results),
            "srl_mean": statistics.mean(r[1] for r in results),
        })  # fmt: skip
    srl_change = [
        abs(c[1] - f[1]) / max(abs(f[1]), 1e-12)
        for c, f in zip(rows["flow cache"], rows["flownet2"], strict=True)
    ]
    header = f"{'path':<11} {'s/step':>8} {'speed-up':>9} {'pairs/step':>11} {'SRL mean':>10}"
    print(f"clips of {args.interval + 2} frames, {args.crop}² crops, batch 1, {args.steps} steps, "
          f"{args.threads} threads")  # fmt: skip
    print(header)
    for row in table:
        print(f"{row['path']:<11} {row['s_per_step']:>8.3f} {row['speedup']:>8.2f}× "
              f"{row['flownet2_pairs_per_step']:>11.1f} {row['srl_mean']:>10.3e}")  # fmt: skip
    print(f"SRL with the cache vs without: mean relative change {statistics.mean(srl_change):.1%}")
    print(f"cache build: {build_seconds:.1f} s for {cached_frames} frames (once per video)")
    result = {
        "settings": vars(args) | {"data": str(args.data), "out": str(args.out),
                                  "flownet": str(args.flownet), "idc": str(args.idc)},
        "random_backbones": args.flownet is None or args.idc is None,
        "rows": table,
        "srl_relative_change_mean": statistics.mean(srl_change),
        "cache_build_s": build_seconds,
        "cached_frames": cached_frames,
        "torch": torch.__version__,
    }  # fmt: skip
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
