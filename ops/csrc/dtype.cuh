// float32 conversions of the element types, explicit because torch builds with
// __CUDA_NO_HALF_CONVERSIONS__. Without nvcc (the CPU emulation) only float exists.
#pragma once

#ifdef __CUDACC__
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#endif

#include "common.h"

namespace tcvc {

__host__ __device__ __forceinline__ float to_float(float x) { return x; }

template <typename T>
__host__ __device__ __forceinline__ T from_float(float x);

template <>
__host__ __device__ __forceinline__ float from_float<float>(float x) {
  return x;
}

#ifdef __CUDACC__
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}

template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Calls f with a null pointer of the element type named by dtype (to pick a template).
template <typename F>
cudaError_t dispatch_dtype(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kFloat32:
      return f(static_cast<float*>(nullptr));
    case DType::kFloat16:
      return f(static_cast<__half*>(nullptr));
    case DType::kBFloat16:
      return f(static_cast<__nv_bfloat16*>(nullptr));
  }
  return cudaErrorInvalidValue;
}
#endif

}  // namespace tcvc
