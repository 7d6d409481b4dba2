// FlowNet correlation, kernel_size 1: device code (forward and both input gradients) and the
// launch geometry. Besides correlation.cu, the kernel-emulation test compiles this header on the
// CPU (tests/ops/test_ops_correlation.py), so it keeps to plain CUDA C++.
//
// out[n, tj·D + ti, oy, ox] = 1/C · Σ_c f1[n, c, cy, cx] · f2[n, c, cy + dy, cx + dx]
// with cy = oy·stride1 + max_disp - pad, dy = (tj - rad)·stride2 (likewise x), zeros outside.
//
// Every kernel works on one image row and a tile of 32 consecutive columns, one column per lane,
// so the global reads and writes of a warp are consecutive addresses (NCHW rows are contiguous)
// and its shared-memory reads hit consecutive banks. Operands are staged in shared memory as
// float, so half/bfloat16 inputs are read once and accumulated in float32; every thread keeps
// several sums in registers (fused multiply-add over channel chunks: no per-output reduction,
// no atomics).
#pragma once

#include <cstddef>
#include <cstdint>

#include "correlation_shape.h"
#include "dtype.cuh"

// Dynamic shared memory of a kernel, as a float array; the CPU emulation defines its own.
#ifndef TCVC_DYNAMIC_SHARED
#define TCVC_DYNAMIC_SHARED(name) extern __shared__ float name[]
#endif

namespace tcvc {
namespace corr {

struct LaunchConfig {
  dim3 grid;
  dim3 block;
  size_t smem;  // dynamic shared memory, bytes
};

// forward: block (column tile, output row, n·D + tj)
inline LaunchConfig forward_config(const CorrShape& s) {
  return {dim3((s.out_w + kTile - 1) / kTile, s.out_h, s.batch * s.size), dim3(kTile, kWarps),
          sizeof(float) * kFwdChunk * (kTile + s.span)};
}

// grad input1: block (column tile of the output, output row, n·chunks + chunk)
inline LaunchConfig grad1_config(const CorrShape& s) {
  return {dim3((s.out_w + kTile - 1) / kTile, s.out_h, s.batch * grad1_chunks(s)),
          dim3(kTile, kWarps), sizeof(float) * (s.size * kTile + kGrad1Channels * s.span)};
}

// grad input2: block (column tile of input2, input row, n·chunks + chunk)
inline LaunchConfig grad2_config(const CorrShape& s) {
  return {dim3((s.width + kTile - 1) / kTile, s.height, s.batch * grad2_chunks(s)),
          dim3(kTile, kWarps), sizeof(float) * (s.size + kGrad2Channels) * s.stage};
}

// ---------------------------------------------------------------------------------------------
// forward: warp w computes the horizontal displacements ti = w, w+8, w+16, ... of its lane's
// output column; f1 (one value per lane) and the f2 row segment are staged per channel chunk.
// ---------------------------------------------------------------------------------------------
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    correlation_forward_kernel(const scalar_t* __restrict__ input1,
                               const scalar_t* __restrict__ input2,
                               scalar_t* __restrict__ output, const CorrShape s) {
  TCVC_DYNAMIC_SHARED(smem);
  float* s_f1 = smem;                      // [kFwdChunk][kTile]
  float* s_f2 = smem + kFwdChunk * kTile;  // [kFwdChunk][span]

  const int lane = threadIdx.x;
  const int warp = threadIdx.y;
  const int tid = warp * kTile + lane;
  const int ox0 = blockIdx.x * kTile;
  const int oy = blockIdx.y;
  const int n = blockIdx.z / s.size;
  const int tj = blockIdx.z % s.size;
  const int cy = s.centre(oy);
  const int y2 = cy + (tj - s.rad) * s.stride2;
  const int x2_first = s.centre(ox0) - s.reach;
  const bool rows_inside = cy >= 0 && cy < s.height && y2 >= 0 && y2 < s.height;
  const scalar_t* f1_row = input1 + static_cast<int64_t>(n) * s.channels * s.plane +
                           static_cast<int64_t>(rows_inside ? cy : 0) * s.width;
  const scalar_t* f2_row = input2 + static_cast<int64_t>(n) * s.channels * s.plane +
                           static_cast<int64_t>(rows_inside ? y2 : 0) * s.width;
  const int ox = ox0 + lane;
  const float inv_c = 1.0f / static_cast<float>(s.channels);
  const int64_t out_plane = static_cast<int64_t>(s.out_h) * s.out_w;
  const int64_t out_first = (static_cast<int64_t>(n) * s.size + tj) * s.size * out_plane +
                            static_cast<int64_t>(oy) * s.out_w + ox;

  for (int ti0 = 0; ti0 < s.size; ti0 += kWarps * kFwdPerThread) {
    float acc[kFwdPerThread];
#pragma unroll
    for (int k = 0; k < kFwdPerThread; ++k) acc[k] = 0.0f;

    if (rows_inside) {  // uniform over the block: otherwise every product is 0
      for (int c0 = 0; c0 < s.channels; c0 += kFwdChunk) {
        const int cn = min(kFwdChunk, s.channels - c0);
        for (int i = tid; i < cn * kTile; i += kThreads) {
          const int c = i / kTile;
          const int t = i - c * kTile;
          const int cx = s.centre(ox0 + t);
          float v = 0.0f;
          if (ox0 + t < s.out_w && cx >= 0 && cx < s.width) {
            v = to_float(f1_row[(c0 + c) * s.plane + cx]);
          }
          s_f1[i] = v;
        }
        for (int i = tid; i < cn * s.span; i += kThreads) {
          const int c = i / s.span;
          const int u = i - c * s.span;
          const int x2 = x2_first + u;
          float v = 0.0f;
          if (x2 >= 0 && x2 < s.width) v = to_float(f2_row[(c0 + c) * s.plane + x2]);
          s_f2[i] = v;
        }
        __syncthreads();
        for (int c = 0; c < cn; ++c) {
          const float a = s_f1[c * kTile + lane];
          const float* b = s_f2 + c * s.span + lane * s.stride1;
#pragma unroll
          for (int k = 0; k < kFwdPerThread; ++k) {
            const int ti = ti0 + warp + k * kWarps;
            if (ti < s.size) acc[k] = fmaf(a, b[ti * s.stride2], acc[k]);
          }
        }
        __syncthreads();
      }
    }
    if (ox < s.out_w) {
#pragma unroll
      for (int k = 0; k < kFwdPerThread; ++k) {
        const int ti = ti0 + warp + k * kWarps;
        if (ti < s.size) {
          output[out_first + ti * out_plane] = from_float<scalar_t>(acc[k] * inv_c);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// grad input1, written at the output centres (the caller zero-fills the rest): lane = output
// column, warp w sums channels chunk·64 + w + 8k over all D² offsets.
// ---------------------------------------------------------------------------------------------
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    correlation_grad_input1_kernel(const scalar_t* __restrict__ grad_output,
                                   const scalar_t* __restrict__ input2,
                                   scalar_t* __restrict__ grad_input1, const CorrShape s) {
  TCVC_DYNAMIC_SHARED(smem);
  float* s_g = smem;                    // [size][kTile]
  float* s_f2 = smem + s.size * kTile;  // [kGrad1Channels][span]

  const int lane = threadIdx.x;
  const int warp = threadIdx.y;
  const int tid = warp * kTile + lane;
  const int chunks = grad1_chunks(s);
  const int n = blockIdx.z / chunks;
  const int c0 = (blockIdx.z % chunks) * kGrad1Channels;
  const int cn = min(kGrad1Channels, s.channels - c0);
  const int ox0 = blockIdx.x * kTile;
  const int oy = blockIdx.y;
  const int cy = s.centre(oy);
  if (cy < 0 || cy >= s.height) return;  // uniform: the centre row is zero padding

  const int x2_first = s.centre(ox0) - s.reach;
  const int64_t out_plane = static_cast<int64_t>(s.out_h) * s.out_w;
  const scalar_t* g_first = grad_output + static_cast<int64_t>(n) * s.size * s.size * out_plane +
                            static_cast<int64_t>(oy) * s.out_w + ox0;
  const scalar_t* f2_first = input2 + (static_cast<int64_t>(n) * s.channels + c0) * s.plane;

  float acc[kGrad1PerThread];
#pragma unroll
  for (int k = 0; k < kGrad1PerThread; ++k) acc[k] = 0.0f;

  for (int tj = 0; tj < s.size; ++tj) {
    const int y2 = cy + (tj - s.rad) * s.stride2;
    if (y2 < 0 || y2 >= s.height) continue;  // uniform: that f2 row is zero padding
    for (int i = tid; i < s.size * kTile; i += kThreads) {
      const int ti = i / kTile;
      const int t = i - ti * kTile;
      float v = 0.0f;
      if (ox0 + t < s.out_w) {
        v = to_float(g_first[static_cast<int64_t>(tj * s.size + ti) * out_plane + t]);
      }
      s_g[i] = v;
    }
    for (int i = tid; i < kGrad1Channels * s.span; i += kThreads) {
      const int c = i / s.span;
      const int u = i - c * s.span;
      const int x2 = x2_first + u;
      float v = 0.0f;
      if (c < cn && x2 >= 0 && x2 < s.width) {
        v = to_float(f2_first[c * s.plane + static_cast<int64_t>(y2) * s.width + x2]);
      }
      s_f2[i] = v;
    }
    __syncthreads();
    const float* b = s_f2 + warp * s.span + lane * s.stride1;
    for (int ti = 0; ti < s.size; ++ti) {
      const float g = s_g[ti * kTile + lane];
      const int u = ti * s.stride2;
#pragma unroll
      for (int k = 0; k < kGrad1PerThread; ++k) {
        acc[k] = fmaf(g, b[k * kWarps * s.span + u], acc[k]);
      }
    }
    __syncthreads();
  }

  const int ox = ox0 + lane;
  const int cx = s.centre(ox);
  if (ox < s.out_w && cx >= 0 && cx < s.width) {
    const float inv_c = 1.0f / static_cast<float>(s.channels);
    scalar_t* dst = grad_input1 + (static_cast<int64_t>(n) * s.channels + c0) * s.plane +
                    static_cast<int64_t>(cy) * s.width + cx;
#pragma unroll
    for (int k = 0; k < kGrad1PerThread; ++k) {
      const int c = warp + k * kWarps;
      if (c < cn) dst[c * s.plane] = from_float<scalar_t>(acc[k] * inv_c);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// grad input2: lane = input column x, warp w sums channels chunk·32 + w + 8k. For each vertical
// offset the output columns the tile receives from are staged (gradients, and f1 at their
// centres); each lane then gathers its D horizontal offsets.
// ---------------------------------------------------------------------------------------------
template <typename scalar_t, bool kUnitStride>
__global__ void __launch_bounds__(kThreads)
    correlation_grad_input2_kernel(const scalar_t* __restrict__ grad_output,
                                   const scalar_t* __restrict__ input1,
                                   scalar_t* __restrict__ grad_input2, const CorrShape s) {
  TCVC_DYNAMIC_SHARED(smem);
  float* s_g = smem;                      // [size][stage]
  float* s_f1 = smem + s.size * s.stage;  // [kGrad2Channels][stage]

  const int lane = threadIdx.x;
  const int warp = threadIdx.y;
  const int tid = warp * kTile + lane;
  const int chunks = grad2_chunks(s);
  const int n = blockIdx.z / chunks;
  const int c0 = (blockIdx.z % chunks) * kGrad2Channels;
  const int cn = min(kGrad2Channels, s.channels - c0);
  const int x0 = blockIdx.x * kTile;
  const int y = blockIdx.y;
  const int stride1 = kUnitStride ? 1 : s.stride1;
  const int64_t out_plane = static_cast<int64_t>(s.out_h) * s.out_w;
  const scalar_t* g_batch = grad_output + static_cast<int64_t>(n) * s.size * s.size * out_plane;
  const scalar_t* f1_first = input1 + (static_cast<int64_t>(n) * s.channels + c0) * s.plane;
  // Output columns whose centre ± reach meets the tile, from their numerators ox·stride1.
  const int lo_num = x0 - s.reach - s.max_disp + s.pad;
  const int hi_num = x0 + kTile - 1 + s.reach - s.max_disp + s.pad;
  const int ox_lo = lo_num <= 0 ? 0 : (lo_num + stride1 - 1) / stride1;
  const int ox_hi = hi_num < 0 ? -1 : min(s.out_w - 1, hi_num / stride1);
  const int nox = ox_hi - ox_lo + 1;  // ≤ stage
  // This lane's numerator at ti = rad (no horizontal offset); each ti step moves it by stride2.
  const int lane_num = x0 + lane - s.max_disp + s.pad;

  float acc[kGrad2PerThread];
#pragma unroll
  for (int k = 0; k < kGrad2PerThread; ++k) acc[k] = 0.0f;

  if (nox > 0) {  // uniform
    for (int tj = 0; tj < s.size; ++tj) {
      const int yc = y - (tj - s.rad) * s.stride2;  // the f1 (centre) row
      const int num = yc - s.max_disp + s.pad;
      // Uniform skips: f1 row in the zero padding, or no output row centred there.
      if (yc < 0 || yc >= s.height || num < 0) continue;
      if (!kUnitStride && num % stride1 != 0) continue;
      const int oy = num / stride1;
      if (oy >= s.out_h) continue;
      const scalar_t* g_row = g_batch + static_cast<int64_t>(tj) * s.size * out_plane +
                              static_cast<int64_t>(oy) * s.out_w + ox_lo;
      for (int i = tid; i < s.size * s.stage; i += kThreads) {
        const int ti = i / s.stage;
        const int q = i - ti * s.stage;
        float v = 0.0f;
        if (q < nox) v = to_float(g_row[ti * out_plane + q]);
        s_g[i] = v;
      }
      for (int i = tid; i < kGrad2Channels * s.stage; i += kThreads) {
        const int c = i / s.stage;
        const int q = i - c * s.stage;
        const int cx = s.centre(ox_lo + q);
        float v = 0.0f;
        if (c < cn && q < nox && cx >= 0 && cx < s.width) {
          v = to_float(f1_first[c * s.plane + static_cast<int64_t>(yc) * s.width + cx]);
        }
        s_f1[i] = v;
      }
      __syncthreads();
      if (x0 + lane < s.width) {
        for (int ti = 0; ti < s.size; ++ti) {
          const int xnum = lane_num - (ti - s.rad) * s.stride2;
          if (xnum < 0) continue;
          if (!kUnitStride && xnum % stride1 != 0) continue;
          const int q = xnum / stride1 - ox_lo;
          if (q < 0 || q >= nox) continue;
          const float g = s_g[ti * s.stage + q];
#pragma unroll
          for (int k = 0; k < kGrad2PerThread; ++k) {
            acc[k] = fmaf(g, s_f1[(warp + k * kWarps) * s.stage + q], acc[k]);
          }
        }
      }
      __syncthreads();
    }
  }

  const int x = x0 + lane;
  if (x < s.width) {
    const float inv_c = 1.0f / static_cast<float>(s.channels);
    scalar_t* dst = grad_input2 + (static_cast<int64_t>(n) * s.channels + c0) * s.plane +
                    static_cast<int64_t>(y) * s.width + x;
#pragma unroll
    for (int k = 0; k < kGrad2PerThread; ++k) {
      const int c = warp + k * kWarps;
      if (c < cn) dst[c * s.plane] = from_float<scalar_t>(acc[k] * inv_c);
    }
  }
}

}  // namespace corr
}  // namespace tcvc
