// Plain C++ shared by the host code (ops.cpp), the kernel launchers (*.cu) and the kernels
// (*_kernels.cuh). No CUDA or ATen headers: the CPU emulation test compiles the kernels too.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define TCVC_HOST_DEVICE __host__ __device__
#else
#define TCVC_HOST_DEVICE
#endif

namespace tcvc {

// The element types the kernels are built for; float64 runs the pure-PyTorch reference.
enum class DType { kFloat32, kFloat16, kBFloat16 };

// NCHW sizes of an image-like tensor.
struct Dims {
  int batch, channels, height, width;
};

}  // namespace tcvc
