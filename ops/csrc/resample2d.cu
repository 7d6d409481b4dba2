// Launcher of the resample2d kernels (resample2d_kernels.cuh); checks live in ops.cpp.
#include "dtype.cuh"
#include "launchers.h"
#include "resample2d_kernels.cuh"

namespace tcvc {

using resample::kThreads;

namespace {

unsigned int blocks_for(const Dims& d) {
  const int64_t pixels = static_cast<int64_t>(d.batch) * d.height * d.width;
  return static_cast<unsigned int>((pixels + kThreads - 1) / kThreads);
}

}  // namespace

cudaError_t launch_resample2d_forward(DType dtype, const void* image, const void* flow,
                                      void* output, Dims d, cudaStream_t stream) {
  return dispatch_dtype(dtype, [&](auto* tag) {
    using scalar_t = std::remove_pointer_t<decltype(tag)>;
    resample::resample2d_forward_kernel<scalar_t><<<blocks_for(d), kThreads, 0, stream>>>(
        static_cast<const scalar_t*>(image), static_cast<const scalar_t*>(flow),
        static_cast<scalar_t*>(output), d.batch, d.channels, d.height, d.width);
    return cudaGetLastError();
  });
}

cudaError_t launch_resample2d_backward(DType dtype, const void* grad_output, const void* image,
                                       const void* flow, float* grad_image, void* grad_flow,
                                       Dims d, cudaStream_t stream) {
  return dispatch_dtype(dtype, [&](auto* tag) {
    using scalar_t = std::remove_pointer_t<decltype(tag)>;
    resample::resample2d_backward_kernel<scalar_t><<<blocks_for(d), kThreads, 0, stream>>>(
        static_cast<const scalar_t*>(grad_output), static_cast<const scalar_t*>(image),
        static_cast<const scalar_t*>(flow), grad_image, static_cast<scalar_t*>(grad_flow),
        d.batch, d.channels, d.height, d.width);
    return cudaGetLastError();
  });
}

}  // namespace tcvc
