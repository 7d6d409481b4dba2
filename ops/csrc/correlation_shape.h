// Shape bookkeeping of the kernel_size-1 correlation (as correlation_cuda.cc), shared by the host
// code, the kernels and their launcher.
#pragma once

#include <cstdint>

#include "common.h"

namespace tcvc {
namespace corr {

constexpr int kTile = 32;           // columns per block, one per lane (blockDim.x)
constexpr int kWarps = 8;           // blockDim.y
constexpr int kThreads = kTile * kWarps;
constexpr int kFwdPerThread = 4;    // horizontal displacements per thread and pass (forward)
constexpr int kFwdChunk = 32;       // channels staged at a time (forward)
constexpr int kGrad1PerThread = 8;  // channels per thread (grad input1): 64 a block
constexpr int kGrad2PerThread = 4;  // channels per thread (grad input2): 32 a block
constexpr int kGrad1Channels = kGrad1PerThread * kWarps;
constexpr int kGrad2Channels = kGrad2PerThread * kWarps;
// Largest displacement ((max_displacement // stride2) · stride2) and stride1 the kernels take:
// they bound the shared-memory tiles (ops/correlation.py sends larger settings to the reference).
constexpr int kMaxReach = 32;
constexpr int kMaxStride1 = 2;

struct CorrShape {
  int batch, channels, height, width;
  int out_h, out_w;
  int pad, max_disp, stride1, stride2;
  int rad;        // displacements each side, in steps of stride2
  int size;       // D = 2·rad + 1
  int reach;      // rad·stride2: the largest |displacement| in pixels
  int span;       // f2 columns one tile of output columns reads: (kTile-1)·stride1 + 2·reach + 1
  int stage;      // bound on the output columns an input2 tile receives from: kTile + 2·reach
  int64_t plane;  // height·width

  TCVC_HOST_DEVICE int centre(int o) const { return o * stride1 + max_disp - pad; }
};

// The caller checks the arguments (sizes > 0, strides ≥ 1, a non-empty output).
inline CorrShape make_corr_shape(int batch, int channels, int height, int width, int pad,
                                 int max_disp, int stride1, int stride2) {
  CorrShape s{};
  s.batch = batch;
  s.channels = channels;
  s.height = height;
  s.width = width;
  s.pad = pad;
  s.max_disp = max_disp;
  s.stride1 = stride1;
  s.stride2 = stride2;
  s.rad = max_disp / stride2;
  s.size = 2 * s.rad + 1;
  s.reach = s.rad * stride2;
  s.out_h = (height + 2 * pad - 2 * max_disp + stride1 - 1) / stride1;
  s.out_w = (width + 2 * pad - 2 * max_disp + stride1 - 1) / stride1;
  s.span = (kTile - 1) * stride1 + 2 * s.reach + 1;
  s.stage = kTile + 2 * s.reach;
  s.plane = static_cast<int64_t>(height) * width;
  return s;
}

TCVC_HOST_DEVICE inline int grad1_chunks(const CorrShape& s) {
  return (s.channels + kGrad1Channels - 1) / kGrad1Channels;
}

TCVC_HOST_DEVICE inline int grad2_chunks(const CorrShape& s) {
  return (s.channels + kGrad2Channels - 1) / kGrad2Channels;
}

}  // namespace corr
}  // namespace tcvc
