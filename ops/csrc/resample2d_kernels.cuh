// Resample2d (FlowNet2's warp), device code: bilinear sampling at (x + u, y + v) with both
// corners clamped to the image, as NVIDIA's kernel (kernel_size 1, bilinear). One thread per
// pixel walks the channels, so the flow and the corner arithmetic are done once per pixel and a
// warp's reads and writes of a channel plane are consecutive. The kernel-emulation test compiles
// this header on the CPU (tests/ops/test_ops_resample2d.py).
#pragma once

#include <cstdint>

#include "dtype.cuh"

namespace tcvc {
namespace resample {

constexpr int kThreads = 256;

struct Bilinear {
  int tl, tr, bl, br;  // flat corner indices in one channel plane
  float alpha, beta;   // fractional parts of x + u and y + v
};

__host__ __device__ __forceinline__ Bilinear corners(int x, int y, float u, float v, int height,
                                            int width) {
  const float xf = static_cast<float>(x) + u;
  const float yf = static_cast<float>(y) + v;
  const float xfl = floorf(xf);
  const float yfl = floorf(yf);
  // Clamp in float before converting: a flow far outside must not overflow int.
  const int x_left = static_cast<int>(fminf(fmaxf(xfl, 0.0f), width - 1.0f));
  const int x_right = static_cast<int>(fminf(fmaxf(xfl + 1.0f, 0.0f), width - 1.0f));
  const int y_top = static_cast<int>(fminf(fmaxf(yfl, 0.0f), height - 1.0f));
  const int y_bottom = static_cast<int>(fminf(fmaxf(yfl + 1.0f, 0.0f), height - 1.0f));
  Bilinear b;
  b.tl = y_top * width + x_left;
  b.tr = y_top * width + x_right;
  b.bl = y_bottom * width + x_left;
  b.br = y_bottom * width + x_right;
  b.alpha = xf - xfl;
  b.beta = yf - yfl;
  return b;
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    resample2d_forward_kernel(const scalar_t* __restrict__ image,
                              const scalar_t* __restrict__ flow, scalar_t* __restrict__ output,
                              int batch, int channels, int height, int width) {
  const int64_t plane = static_cast<int64_t>(height) * width;
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= batch * plane) return;
  const int n = static_cast<int>(index / plane);
  const int p = static_cast<int>(index - n * plane);
  const int y = p / width;
  const int x = p - y * width;
  const float u = to_float(flow[(2 * static_cast<int64_t>(n)) * plane + p]);
  const float v = to_float(flow[(2 * static_cast<int64_t>(n) + 1) * plane + p]);
  const Bilinear b = corners(x, y, u, v, height, width);
  const float w_tl = (1.0f - b.alpha) * (1.0f - b.beta);
  const float w_tr = b.alpha * (1.0f - b.beta);
  const float w_bl = (1.0f - b.alpha) * b.beta;
  const float w_br = b.alpha * b.beta;
  const scalar_t* src = image + static_cast<int64_t>(n) * channels * plane;
  scalar_t* dst = output + static_cast<int64_t>(n) * channels * plane + p;
  for (int c = 0; c < channels; ++c, src += plane) {
    const float value = w_tl * to_float(src[b.tl]) +
                        w_tr * to_float(src[b.tr]) +
                        w_bl * to_float(src[b.bl]) + w_br * to_float(src[b.br]);
    dst[c * plane] = from_float<scalar_t>(value);
  }
}

// Image gradient: scatter grad·weight to the four corners (atomics into a float32 buffer, since
// several pixels may sample the same corner). Flow gradient: the derivative of the weights,
// summed over channels in the same pass.
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    resample2d_backward_kernel(const scalar_t* __restrict__ grad_output,
                               const scalar_t* __restrict__ image,
                               const scalar_t* __restrict__ flow,
                               float* __restrict__ grad_image, scalar_t* __restrict__ grad_flow,
                               int batch, int channels, int height, int width) {
  const int64_t plane = static_cast<int64_t>(height) * width;
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= batch * plane) return;
  const int n = static_cast<int>(index / plane);
  const int p = static_cast<int>(index - n * plane);
  const int y = p / width;
  const int x = p - y * width;
  const float u = to_float(flow[(2 * static_cast<int64_t>(n)) * plane + p]);
  const float v = to_float(flow[(2 * static_cast<int64_t>(n) + 1) * plane + p]);
  const Bilinear b = corners(x, y, u, v, height, width);
  const float w_tl = (1.0f - b.alpha) * (1.0f - b.beta);
  const float w_tr = b.alpha * (1.0f - b.beta);
  const float w_bl = (1.0f - b.alpha) * b.beta;
  const float w_br = b.alpha * b.beta;
  const int64_t offset = static_cast<int64_t>(n) * channels * plane;
  const scalar_t* src = image + offset;
  const scalar_t* grad = grad_output + offset + p;
  float* dst = grad_image + offset;
  float du = 0.0f;
  float dv = 0.0f;
  for (int c = 0; c < channels; ++c, src += plane, dst += plane) {
    const float g = to_float(grad[c * plane]);
    const float tl = to_float(src[b.tl]);
    const float tr = to_float(src[b.tr]);
    const float bl = to_float(src[b.bl]);
    const float br = to_float(src[b.br]);
    atomicAdd(dst + b.tl, w_tl * g);
    atomicAdd(dst + b.tr, w_tr * g);
    atomicAdd(dst + b.bl, w_bl * g);
    atomicAdd(dst + b.br, w_br * g);
    du += g * ((1.0f - b.beta) * (tr - tl) + b.beta * (br - bl));
    dv += g * ((1.0f - b.alpha) * (bl - tl) + b.alpha * (br - tr));
  }
  grad_flow[(2 * static_cast<int64_t>(n)) * plane + p] = from_float<scalar_t>(du);
  grad_flow[(2 * static_cast<int64_t>(n) + 1) * plane + p] = from_float<scalar_t>(dv);
}

}  // namespace resample
}  // namespace tcvc
