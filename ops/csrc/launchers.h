// The kernel launchers (*.cu, compiled by nvcc), called by the host code (ops.cpp). Pointers are
// contiguous NCHW device buffers of the element type `dtype`. The .cu files include no ATen
// header, which keeps each nvcc run to seconds.
#pragma once

#include <cuda_runtime_api.h>

#include "common.h"
#include "correlation_shape.h"

namespace tcvc {

// Each launcher enqueues its kernels on `stream` and returns the launch status.

// out: B×D²×out_h×out_w.
cudaError_t launch_correlation_forward(DType dtype, const void* input1, const void* input2,
                                       void* output, const corr::CorrShape& shape,
                                       cudaStream_t stream);

// grad_input1 must be zero-filled (only output centres receive a gradient); every element of
// grad_input2 is written.
cudaError_t launch_correlation_backward(DType dtype, const void* grad_output, const void* input1,
                                        const void* input2, void* grad_input1, void* grad_input2,
                                        const corr::CorrShape& shape, cudaStream_t stream);

cudaError_t launch_resample2d_forward(DType dtype, const void* image, const void* flow,
                                      void* output, Dims dims, cudaStream_t stream);

// grad_image is float32 (atomics); it must be zero-filled.
cudaError_t launch_resample2d_backward(DType dtype, const void* grad_output, const void* image,
                                       const void* flow, float* grad_image, void* grad_flow,
                                       Dims dims, cudaStream_t stream);

cudaError_t launch_channel_norm_forward(DType dtype, const void* x, void* norm, Dims dims,
                                        cudaStream_t stream);

cudaError_t launch_channel_norm_backward(DType dtype, const void* grad_output, const void* x,
                                         const void* norm, void* grad_x, Dims dims,
                                         cudaStream_t stream);

}  // namespace tcvc
