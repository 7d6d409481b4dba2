"""Helpers of the op tests: the devices to run on, and the CPU emulation of the CUDA kernels.

- ``DEVICES``: ``"cpu"`` and ``"cuda"`` as ``pytest.param``s for ``parametrize("device", ...)``;
  the cuda one is marked ``gpu`` (skipped without a CUDA device, see tests/conftest.py; on a GPU
  tests/ops/conftest.py sets ``TCVC_CUDA_OPS=require``, so the compiled kernels are under test,
  never their fallback to the references).
- ``assert_relative_close(got, expected, dtype)``: the error against the largest reference
  magnitude, within ``TOLERANCE[dtype]`` (float32 1e-5, bfloat16 2e-2, float16 2e-3).
- ``build_emulator(work)``: the device code of ``ops/csrc/*_kernels.cuh`` compiled on the CPU with
  g++ and a small CUDA shim (each block's threads are OS threads, ``__syncthreads`` a barrier,
  shared memory an AddressSanitizer-checked heap buffer); tests/ops/conftest.py builds it once a
  session (fixture ``emulator``). ``run_emulated`` runs one kernel on float32 arrays, whose
  unwritten outputs are NaN, so ``assert_emulated_close`` fails on a missed element.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from ops._build import CSRC_DIR

DEVICES = [pytest.param("cpu"), pytest.param("cuda", marks=pytest.mark.gpu)]

TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 2e-3}


def assert_relative_close(got: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    """Relative error against the largest reference magnitude (fp32 ≤ 1e-5, bf16 ≤ 2e-2)."""
    scale = expected.abs().max().clamp_min(1e-12)
    error = (got.double() - expected.double()).abs().max() / scale
    assert error <= TOLERANCE[dtype], f"relative error {error:.3g} for {dtype}"


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


def build_emulator(work: Path) -> Path:
    """The kernels compiled for the CPU with g++ -fsanitize=address, in ``work``."""
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("kernel emulation needs g++ (C++20), which is not installed")
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


def run_emulated(exe: Path, work: Path, op: str, ints, inputs, outputs) -> list[np.ndarray]:
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


def assert_emulated_close(got: np.ndarray, expected: torch.Tensor, rtol=1e-5, atol=1e-6) -> None:
    got_t = torch.from_numpy(got).reshape(expected.shape).double()
    assert not torch.isnan(got_t).any(), "some outputs were never written"
    torch.testing.assert_close(got_t, expected.double(), rtol=rtol, atol=atol)
