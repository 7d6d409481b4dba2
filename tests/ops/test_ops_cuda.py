"""The CUDA side of the ops: the sources compile, the kernels compute the reference's values.

- ``test_cuda_sources_compile``: builds ``ops/csrc`` with nvcc for sm_90 (no GPU needed, about
  15 s on 2 cores) and loads the library; skips, saying why, only when no usable CUDA toolkit
  is installed.
- ``test_kernel_emulation_*``: the device code of ``ops/csrc/*_kernels.cuh`` compiled on the CPU
  with g++ and a small CUDA shim (each block's threads are OS threads, ``__syncthreads`` a
  barrier, shared memory an AddressSanitizer-checked heap buffer), run on random inputs and
  compared with the references. Unwritten outputs are NaN, so a missed element fails.
- ``gpu``-marked tests compare the compiled kernels with the references on a real GPU.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from ops import channel_norm, correlation, resample2d
from ops._build import CSRC_DIR
from ops.reference import (
    channel_norm_backward_reference,
    channel_norm_reference,
    correlation_backward_reference,
    correlation_reference,
    resample2d_backward_reference,
    resample2d_reference,
)

# (pad_size, max_displacement, stride1, stride2) with kernel_size 1, inside the CUDA kernel's
# range (reach ≤ 32, stride1 ≤ 2): FlowNetC, scaled-down FlowNetC, no padding, more padding than
# displacement, strided outputs, max_displacement not a multiple of stride2, a single offset.
CUDA_SETTINGS = [
    (20, 20, 1, 2),
    (4, 4, 1, 2),
    (0, 3, 1, 1),
    (6, 2, 1, 1),
    (3, 3, 2, 2),
    (2, 4, 2, 3),
    (0, 0, 1, 1),
]

# ---------------------------------------------------------------------------------------------
# compile test
# ---------------------------------------------------------------------------------------------

_BUILD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from ops._build import ToolchainError, build
    try:
        path = build(build_directory=sys.argv[1], arch_list=["9.0"])
    except ToolchainError as error:
        print(json.dumps({"skip": str(error)}))
        sys.exit(0)
    import torch
    names = [n for n in ("correlation_forward", "correlation_backward", "resample2d_forward",
             "resample2d_backward", "channel_norm_forward", "channel_norm_backward")
             if hasattr(torch.ops.tcvc_cuda, n)]
    print(json.dumps({"path": str(path), "ops": names}))
    """
)


def test_cuda_sources_compile(tmp_path):
    """nvcc compiles every source for sm_90 and the library loads and registers its ops."""
    # A subprocess: loading registers the tcvc_cuda namespace, which a process can do once.
    result = subprocess.run(
        [sys.executable, "-c", _BUILD_SCRIPT, str(tmp_path / "build")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, (
        f"build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if "skip" in report:
        pytest.skip(f"no usable CUDA toolkit to compile ops/csrc: {report['skip']}")
    assert Path(report["path"]).is_file()
    assert len(report["ops"]) == 6, report


def test_import_compiles_nothing():
    """Importing ops (and running it on the CPU) neither builds nor loads the extension."""
    code = (
        "import torch, ops; ops.channel_norm(torch.ones(1, 2, 3, 3));"
        "print(hasattr(torch.ops.tcvc_cuda, 'correlation_forward'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_load_extension_without_gpu_says_why():
    from ops._build import BuildError, load_extension

    with pytest.raises(BuildError, match="visible GPU"):
        load_extension()


def test_kernels_that_cannot_be_built_fall_back_to_the_references(monkeypatch):
    """No toolkit (or a failed build) on a GPU machine: one warning, then the reference kernels
    run on CUDA too; TCVC_CUDA_OPS=require makes it an error (the GPU tests set it)."""
    from ops import _build, _ops

    attempts = []

    def failing_build():
        attempts.append(1)
        raise _build.ToolchainError("no CUDA toolkit found (set CUDA_HOME)")

    monkeypatch.setattr(_build, "load_extension", failing_build)
    _ops._build_error.cache_clear()
    monkeypatch.delenv("TCVC_CUDA_OPS", raising=False)
    try:
        with pytest.warns(RuntimeWarning, match="no CUDA toolkit found.*pure-PyTorch references"):
            assert _ops._cuda_ops() is None
        assert _ops._cuda_ops() is None and attempts == [1]  # built (and warned) once
        monkeypatch.setenv("TCVC_CUDA_OPS", "require")
        with pytest.raises(_build.BuildError, match="no CUDA toolkit found"):
            _ops._cuda_ops()
    finally:
        _ops._build_error.cache_clear()


# ---------------------------------------------------------------------------------------------
# CPU emulation of the kernels
# ---------------------------------------------------------------------------------------------

_SHIM = r"""
// Minimal CUDA shim: enough of the language for ops/csrc/*_kernels.cuh to run on the CPU.
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
float* g_shared = nullptr;
std::barrier<>* g_barrier = nullptr;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define TCVC_DYNAMIC_SHARED(name) float* name = g_shared
inline void __syncthreads() { g_barrier->arrive_and_wait(); }
using std::max;
using std::min;
inline float atomicAdd(float* address, float value) {
  return std::atomic_ref<float>(*address).fetch_add(value);
}

template <typename... Params, typename... Args>
void launch(dim3 grid, dim3 block, size_t smem_bytes, void (*kernel)(Params...), Args... args) {
  gridDim = grid;
  blockDim = block;
  const unsigned threads = block.x * block.y * block.z;
  std::vector<float> shared(smem_bytes / sizeof(float));  // exact size: ASan sees overruns
  g_shared = shared.data();
  std::barrier<> barrier(threads);
  g_barrier = &barrier;
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      threadIdx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
      for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
          for (unsigned x = 0; x < grid.x; ++x) {
            blockIdx = dim3(x, y, z);
            kernel(args...);
            barrier.arrive_and_wait();  // the next block reuses the shared buffer
          }
    });
  }
  for (auto& thread : pool) thread.join();
}
"""

_HARNESS = r"""
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "correlation_kernels.cuh"
#include "resample2d_kernels.cuh"
#include "channel_norm_kernels.cuh"

static std::vector<float> read_file(const char* path, size_t n) {
  std::vector<float> data(n);
  FILE* f = std::fopen(path, "rb");
  if (!f || std::fread(data.data(), sizeof(float), n, f) != n) { std::perror(path); std::exit(2); }
  std::fclose(f);
  return data;
}

static void write_file(const char* path, const std::vector<float>& data) {
  FILE* f = std::fopen(path, "wb");
  std::fwrite(data.data(), sizeof(float), data.size(), f);
  std::fclose(f);
}

static unsigned blocks(size_t n, int threads) { return (n + threads - 1) / threads; }

int main(int argc, char** argv) {
  const std::string op = argv[1];
  const int b = std::atoi(argv[2]), c = std::atoi(argv[3]), h = std::atoi(argv[4]),
            w = std::atoi(argv[5]);
  const size_t numel = size_t(b) * c * h * w, pixels = size_t(b) * h * w;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  if (op == "corr_fwd" || op == "corr_bwd") {
    using namespace tcvc::corr;
    const CorrShape s = make_corr_shape(b, c, h, w, std::atoi(argv[6]), std::atoi(argv[7]),
                                        std::atoi(argv[8]), std::atoi(argv[9]));
    const size_t out_numel = size_t(b) * s.size * s.size * s.out_h * s.out_w;
    if (op == "corr_fwd") {
      auto in1 = read_file(argv[10], numel), in2 = read_file(argv[11], numel);
      std::vector<float> out(out_numel, nan);
      const LaunchConfig cfg = forward_config(s);
      launch(cfg.grid, cfg.block, cfg.smem, correlation_forward_kernel<float>, in1.data(),
             in2.data(), out.data(), s);
      write_file(argv[12], out);
    } else {
      auto grad = read_file(argv[10], out_numel);
      auto in1 = read_file(argv[11], numel), in2 = read_file(argv[12], numel);
      std::vector<float> g1(numel, 0.0f), g2(numel, nan);
      const LaunchConfig cfg1 = grad1_config(s), cfg2 = grad2_config(s);
      launch(cfg1.grid, cfg1.block, cfg1.smem, correlation_grad_input1_kernel<float>,
             grad.data(), in2.data(), g1.data(), s);
      if (s.stride1 == 1)
        launch(cfg2.grid, cfg2.block, cfg2.smem, correlation_grad_input2_kernel<float, true>,
               grad.data(), in1.data(), g2.data(), s);
      else
        launch(cfg2.grid, cfg2.block, cfg2.smem, correlation_grad_input2_kernel<float, false>,
               grad.data(), in1.data(), g2.data(), s);
      write_file(argv[13], g1);
      write_file(argv[14], g2);
    }
  } else if (op == "resample_fwd") {
    using namespace tcvc::resample;
    auto image = read_file(argv[6], numel), flow = read_file(argv[7], pixels * 2);
    std::vector<float> out(numel, nan);
    launch(dim3(blocks(pixels, kThreads)), dim3(kThreads), 0, resample2d_forward_kernel<float>,
           image.data(), flow.data(), out.data(), b, c, h, w);
    write_file(argv[8], out);
  } else if (op == "resample_bwd") {
    using namespace tcvc::resample;
    auto grad = read_file(argv[6], numel), image = read_file(argv[7], numel),
         flow = read_file(argv[8], pixels * 2);
    std::vector<float> g_image(numel, 0.0f), g_flow(pixels * 2, nan);
    launch(dim3(blocks(pixels, kThreads)), dim3(kThreads), 0, resample2d_backward_kernel<float>,
           grad.data(), image.data(), flow.data(), g_image.data(), g_flow.data(), b, c, h, w);
    write_file(argv[9], g_image);
    write_file(argv[10], g_flow);
  } else if (op == "norm_fwd") {
    using namespace tcvc::cnorm;
    auto x = read_file(argv[6], numel);
    std::vector<float> out(pixels, nan);
    launch(dim3(blocks(pixels, kThreads)), dim3(kThreads), 0, channel_norm_forward_kernel<float>,
           x.data(), out.data(), b, c, int64_t(h) * w);
    write_file(argv[7], out);
  } else if (op == "norm_bwd") {
    using namespace tcvc::cnorm;
    auto grad = read_file(argv[6], pixels), x = read_file(argv[7], numel),
         norm = read_file(argv[8], pixels);
    std::vector<float> g_x(numel, nan);
    launch(dim3(blocks(pixels, kThreads)), dim3(kThreads), 0,
           channel_norm_backward_kernel<float>, grad.data(), x.data(), norm.data(), g_x.data(),
           b, c, int64_t(h) * w);
    write_file(argv[9], g_x);
  } else {
    return 3;
  }
  return 0;
}
"""


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Path:
    """The kernels compiled for the CPU with g++ -fsanitize=address (built once a module)."""
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("kernel emulation needs g++ (C++20), which is not installed")
    work = tmp_path_factory.mktemp("kernel_emulator")
    (work / "cuda_shim.h").write_text(_SHIM)
    (work / "harness.cpp").write_text(_HARNESS)
    exe = work / "emulator"
    cmd = [
        compiler, "-std=c++20", "-O1", "-g", "-pthread", "-include", str(work / "cuda_shim.h"),
        "-I", str(CSRC_DIR), str(work / "harness.cpp"), "-o", str(exe),
    ]  # fmt: skip
    sanitizers = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    result = subprocess.run(
        cmd + sanitizers, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0 and "-lasan" in result.stderr + result.stdout:
        # No sanitizer runtime installed: still run the kernels, without bounds checks.
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0 and any(
        name in result.stderr for name in ("<barrier>", "atomic_ref", "std=c++20")
    ):
        pytest.skip(f"kernel emulation needs a C++20 g++ (<barrier>): {result.stderr[-300:]}")
    assert result.returncode == 0, f"emulator build failed:\n{result.stderr[-6000:]}"
    return exe


def _run(exe: Path, work: Path, op: str, ints, inputs, outputs) -> list[np.ndarray]:
    """Run one emulated op on float32 arrays; returns the outputs (flat float32)."""
    paths = []
    for i, array in enumerate(inputs):
        path = work / f"in{i}.bin"
        np.ascontiguousarray(array, dtype=np.float32).tofile(path)
        paths.append(str(path))
    out_paths = [str(work / f"out{i}.bin") for i in range(outputs)]
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=0"}
    result = subprocess.run(
        [str(exe), op, *map(str, ints), *paths, *out_paths],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{op} failed:\n{result.stderr[-6000:]}"
    return [np.fromfile(p, dtype=np.float32) for p in out_paths]


def _close(got: np.ndarray, expected: torch.Tensor, rtol=1e-5, atol=1e-6) -> None:
    got_t = torch.from_numpy(got).reshape(expected.shape).double()
    assert not torch.isnan(got_t).any(), "some outputs were never written"
    torch.testing.assert_close(got_t, expected.double(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("setting", CUDA_SETTINGS, ids=str)
def test_kernel_emulation_correlation(emulator, tmp_path, setting):
    pad, md, s1, s2 = setting
    params = {
        "pad_size": pad,
        "kernel_size": 1,
        "max_displacement": md,
        "stride1": s1,
        "stride2": s2,
    }
    torch.manual_seed(0)
    # 40 channels: two forward chunks (32 + 8), one partial grad-input1 chunk, two grad-input2
    # chunks; 37 columns: a full and a partial column tile.
    size = (2, 40, 9, 37) if md >= 20 else (2, 40, 7, 37)
    f1 = torch.randn(size, dtype=torch.float64)
    f2 = torch.randn(size, dtype=torch.float64)
    expected = correlation_reference(f1, f2, **params)
    ints = [*size, pad, md, s1, s2]
    (out,) = _run(emulator, tmp_path, "corr_fwd", ints, [f1.float(), f2.float()], 1)
    _close(out, expected)
    grad = torch.randn_like(expected)
    g1, g2 = correlation_backward_reference(grad, f1, f2, **params)
    got1, got2 = _run(
        emulator, tmp_path, "corr_bwd", ints, [grad.float(), f1.float(), f2.float()], 2
    )
    _close(got1, g1)
    _close(got2, g2)


@pytest.mark.parametrize("kind", ["random", "zero", "outside", "integer"])
def test_kernel_emulation_resample2d(emulator, tmp_path, kind):
    torch.manual_seed(1)
    b, c, h, w = 2, 3, 13, 21
    image = torch.randn(b, c, h, w, dtype=torch.float64)
    flow = {
        "random": torch.randn(b, 2, h, w, dtype=torch.float64) * 3,
        "zero": torch.zeros(b, 2, h, w, dtype=torch.float64),
        "outside": (torch.rand(b, 2, h, w, dtype=torch.float64) - 0.5) * 6 * w,
        "integer": torch.randint(-4, 5, (b, 2, h, w)).double(),
    }[kind]
    # Compare in float32 coordinates: the kernel's and the reference's floor must see the same
    # numbers (a float64 flow could round across an integer in float32).
    flow = flow.float().double()
    (out,) = _run(emulator, tmp_path, "resample_fwd", [b, c, h, w], [image, flow], 1)
    _close(out, resample2d_reference(image, flow))
    grad = torch.randn_like(image)
    g_image, g_flow = resample2d_backward_reference(grad, image, flow)
    got_image, got_flow = _run(
        emulator, tmp_path, "resample_bwd", [b, c, h, w], [grad, image, flow], 2
    )
    _close(got_image, g_image)
    _close(got_flow, g_flow, rtol=1e-5, atol=1e-5)


def test_kernel_emulation_channel_norm(emulator, tmp_path):
    torch.manual_seed(2)
    b, c, h, w = 2, 5, 17, 19
    x = torch.randn(b, c, h, w, dtype=torch.float64)
    x[:, :, 3, 4] = 0
    (out,) = _run(emulator, tmp_path, "norm_fwd", [b, c, h, w], [x], 1)
    norm = channel_norm_reference(x)
    _close(out, norm)
    grad = torch.randn_like(norm)
    (g_x,) = _run(emulator, tmp_path, "norm_bwd", [b, c, h, w], [grad, x, norm], 1)
    _close(g_x, channel_norm_backward_reference(grad, x, norm))


# ---------------------------------------------------------------------------------------------
# on a GPU
# ---------------------------------------------------------------------------------------------

_TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 2e-3}


@pytest.fixture(autouse=True)
def _compiled_kernels_required(request, monkeypatch):
    """On a GPU the kernels themselves are under test: no silent fallback to the references."""
    if "gpu" in request.keywords:
        monkeypatch.setenv("TCVC_CUDA_OPS", "require")


def _compare(got: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    """Relative error against the largest reference magnitude (fp32 ≤ 1e-5, bf16 ≤ 2e-2)."""
    scale = expected.abs().max().clamp_min(1e-12)
    error = (got.double() - expected.double()).abs().max() / scale
    assert error <= _TOLERANCE[dtype], f"relative error {error:.3g} for {dtype}"


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("setting", CUDA_SETTINGS, ids=str)
def test_gpu_correlation_matches_reference(setting, dtype):
    pad, md, s1, s2 = setting
    params = {
        "pad_size": pad,
        "kernel_size": 1,
        "max_displacement": md,
        "stride1": s1,
        "stride2": s2,
    }
    torch.manual_seed(3)
    f1 = torch.randn(2, 67, 29, 45, dtype=torch.float64)
    f2 = torch.randn(2, 67, 29, 45, dtype=torch.float64)
    # The reference on the dtype-rounded inputs: only accumulation and output rounding differ.
    a, b = f1.to(dtype).double(), f2.to(dtype).double()
    expected = correlation_reference(a, b, **params)
    ga, gb = a.cuda().to(dtype).requires_grad_(True), b.cuda().to(dtype).requires_grad_(True)
    out = correlation(ga, gb, **params)
    assert out.dtype == dtype
    _compare(out.cpu(), expected, dtype)
    grad = torch.randn_like(expected).to(dtype).double()
    e1, e2 = correlation_backward_reference(grad, a, b, **params)
    out.backward(grad.cuda().to(dtype))
    _compare(ga.grad.cpu(), e1, dtype)
    _compare(gb.grad.cpu(), e2, dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_resample2d_and_channel_norm_match_reference(dtype):
    torch.manual_seed(4)
    image = torch.randn(2, 5, 33, 47, dtype=torch.float64).to(dtype).double()
    flow = ((torch.rand(2, 2, 33, 47, dtype=torch.float64) - 0.5) * 80).to(dtype).double()
    gi = image.cuda().to(dtype).requires_grad_(True)
    gf = flow.cuda().to(dtype).requires_grad_(True)
    out = resample2d(gi, gf)
    # float32 reference: the same coordinate arithmetic as the kernel (x + u in float32).
    _compare(out.cpu(), resample2d_reference(image.float(), flow.float()), dtype)
    grad = torch.randn_like(image).to(dtype).double()
    out.backward(grad.cuda().to(dtype))
    e_image, e_flow = resample2d_backward_reference(grad.float(), image.float(), flow.float())
    _compare(gi.grad.cpu(), e_image, dtype)
    _compare(gf.grad.cpu(), e_flow, dtype)

    x = image.cuda().to(dtype).requires_grad_(True)
    norm = channel_norm(x)
    expected = channel_norm_reference(image)
    _compare(norm.cpu(), expected, dtype)
    g = torch.randn_like(expected).to(dtype).double()
    norm.backward(g.cuda().to(dtype))
    _compare(
        x.grad.cpu(), channel_norm_backward_reference(g, image, norm.detach().cpu().double()), dtype
    )


@pytest.mark.gpu
def test_gpu_opcheck():
    f1 = torch.randn(2, 8, 9, 11, device="cuda", requires_grad=True)
    f2 = torch.randn(2, 8, 9, 11, device="cuda", requires_grad=True)
    torch.library.opcheck(torch.ops.tcvc.correlation.default, (f1, f2, 4, 1, 4, 1, 2))
    flow = torch.randn(2, 2, 9, 11, device="cuda", requires_grad=True)
    torch.library.opcheck(torch.ops.tcvc.resample2d.default, (f1, flow))
    torch.library.opcheck(torch.ops.tcvc.channel_norm.default, (f1,))


def test_python_routing_mirrors_kernel_limits():
    """ops/_ops.py sends to the kernel exactly the settings correlation_shape.h accepts."""
    import re

    from ops import _ops

    header = (CSRC_DIR / "correlation_shape.h").read_text()
    reach = int(re.search(r"kMaxReach = (\d+);", header).group(1))
    stride1 = int(re.search(r"kMaxStride1 = (\d+);", header).group(1))
    assert (_ops._CORR_MAX_REACH, _ops._CORR_MAX_STRIDE1) == (reach, stride1)
    covers = _ops._correlation_kernel_covers
    assert covers(torch.float32, 1, 20, 1, 2)  # FlowNetC
    assert covers(torch.bfloat16, 1, reach, stride1, 1)
    assert not covers(torch.float32, 1, reach + 1, 1, 1)
    assert not covers(torch.float32, 3, 20, 1, 2)
    assert not covers(torch.float64, 1, 20, 1, 2)
