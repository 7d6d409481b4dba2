// Launcher of the correlation kernels (correlation_kernels.cuh); checks live in ops.cpp.
#include "correlation_kernels.cuh"
#include "dtype.cuh"
#include "launchers.h"

namespace tcvc {
namespace {

// Above 48 KiB a kernel must opt in to dynamic shared memory.
template <typename Kernel>
cudaError_t allow_shared_memory(Kernel kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(bytes));
}

}  // namespace

cudaError_t launch_correlation_forward(DType dtype, const void* input1, const void* input2,
                                       void* output, const corr::CorrShape& s,
                                       cudaStream_t stream) {
  const corr::LaunchConfig config = corr::forward_config(s);
  return dispatch_dtype(dtype, [&](auto* tag) {
    using scalar_t = std::remove_pointer_t<decltype(tag)>;
    auto kernel = corr::correlation_forward_kernel<scalar_t>;
    cudaError_t status = allow_shared_memory(kernel, config.smem);
    if (status != cudaSuccess) return status;
    kernel<<<config.grid, config.block, config.smem, stream>>>(
        static_cast<const scalar_t*>(input1), static_cast<const scalar_t*>(input2),
        static_cast<scalar_t*>(output), s);
    return cudaGetLastError();
  });
}

cudaError_t launch_correlation_backward(DType dtype, const void* grad_output, const void* input1,
                                        const void* input2, void* grad_input1, void* grad_input2,
                                        const corr::CorrShape& s, cudaStream_t stream) {
  const corr::LaunchConfig config1 = corr::grad1_config(s);
  const corr::LaunchConfig config2 = corr::grad2_config(s);
  return dispatch_dtype(dtype, [&](auto* tag) {
    using scalar_t = std::remove_pointer_t<decltype(tag)>;
    const auto* grad = static_cast<const scalar_t*>(grad_output);
    auto kernel1 = corr::correlation_grad_input1_kernel<scalar_t>;
    cudaError_t status = allow_shared_memory(kernel1, config1.smem);
    if (status != cudaSuccess) return status;
    kernel1<<<config1.grid, config1.block, config1.smem, stream>>>(
        grad, static_cast<const scalar_t*>(input2), static_cast<scalar_t*>(grad_input1), s);
    status = cudaGetLastError();
    if (status != cudaSuccess) return status;
    auto kernel2 = s.stride1 == 1 ? corr::correlation_grad_input2_kernel<scalar_t, true>
                                   : corr::correlation_grad_input2_kernel<scalar_t, false>;
    status = allow_shared_memory(kernel2, config2.smem);
    if (status != cudaSuccess) return status;
    kernel2<<<config2.grid, config2.block, config2.smem, stream>>>(
        grad, static_cast<const scalar_t*>(input1), static_cast<scalar_t*>(grad_input2), s);
    return cudaGetLastError();
  });
}

}  // namespace tcvc
