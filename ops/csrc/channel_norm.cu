// Launcher of the channel-norm kernels (channel_norm_kernels.cuh); checks live in ops.cpp.
#include "channel_norm_kernels.cuh"
#include "dtype.cuh"
#include "launchers.h"

namespace tcvc {

using cnorm::kThreads;

namespace {

unsigned int blocks_for(const Dims& d) {
  const int64_t pixels = static_cast<int64_t>(d.batch) * d.height * d.width;
  return static_cast<unsigned int>((pixels + kThreads - 1) / kThreads);
}

}  // namespace

cudaError_t launch_channel_norm_forward(DType dtype, const void* x, void* norm, Dims d,
                                        cudaStream_t stream) {
  const int64_t plane = static_cast<int64_t>(d.height) * d.width;
  return dispatch_dtype(dtype, [&](auto* tag) {
    using scalar_t = std::remove_pointer_t<decltype(tag)>;
    cnorm::channel_norm_forward_kernel<scalar_t><<<blocks_for(d), kThreads, 0, stream>>>(
        static_cast<const scalar_t*>(x), static_cast<scalar_t*>(norm), d.batch, d.channels,
        plane);
    return cudaGetLastError();
  });
}

cudaError_t launch_channel_norm_backward(DType dtype, const void* grad_output, const void* x,
                                         const void* norm, void* grad_x, Dims d,
                                         cudaStream_t stream) {
  const int64_t plane = static_cast<int64_t>(d.height) * d.width;
  return dispatch_dtype(dtype, [&](auto* tag) {
    using scalar_t = std::remove_pointer_t<decltype(tag)>;
    cnorm::channel_norm_backward_kernel<scalar_t><<<blocks_for(d), kThreads, 0, stream>>>(
        static_cast<const scalar_t*>(grad_output), static_cast<const scalar_t*>(x),
        static_cast<const scalar_t*>(norm), static_cast<scalar_t*>(grad_x), d.batch,
        d.channels, plane);
    return cudaGetLastError();
  });
}

}  // namespace tcvc
