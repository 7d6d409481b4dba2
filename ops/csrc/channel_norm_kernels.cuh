// ChannelNorm, device code: sqrt(Σ_c x²) per pixel, and its backward grad·x/(norm + 1e-9) as
// NVIDIA's kernel (0 at x = 0). One thread per pixel walks the channels: a warp reads consecutive
// addresses of each channel plane; sums are float32. The kernel-emulation test compiles this
// header on the CPU (tests/ops/test_ops_channel_norm.py).
#pragma once

#include <cstdint>

#include "dtype.cuh"

namespace tcvc {
namespace cnorm {

constexpr int kThreads = 256;
constexpr float kEps = 1e-9f;  // NVIDIA's: keeps the gradient finite (0) at x = 0

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    channel_norm_forward_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ norm,
                                int batch, int channels, int64_t plane) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= batch * plane) return;
  const int64_t n = index / plane;
  const int64_t p = index - n * plane;
  const scalar_t* src = x + n * channels * plane + p;
  float sum = 0.0f;
  for (int c = 0; c < channels; ++c) {
    const float value = to_float(src[c * plane]);
    sum = fmaf(value, value, sum);
  }
  norm[index] = from_float<scalar_t>(sqrtf(sum));
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    channel_norm_backward_kernel(const scalar_t* __restrict__ grad_output,
                                 const scalar_t* __restrict__ x,
                                 const scalar_t* __restrict__ norm,
                                 scalar_t* __restrict__ grad_x, int batch, int channels,
                                 int64_t plane) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= batch * plane) return;
  const int64_t n = index / plane;
  const int64_t p = index - n * plane;
  const float scale =
      to_float(grad_output[index]) / (to_float(norm[index]) + kEps);
  const int64_t offset = n * channels * plane + p;
  for (int c = 0; c < channels; ++c) {
    grad_x[offset + c * plane] =
        from_float<scalar_t>(scale * to_float(x[offset + c * plane]));
  }
}

}  // namespace cnorm
}  // namespace tcvc
