// Host side of the CUDA ops: argument checks, allocation, stream/device handling, and the
// registration of the operators tcvc_cuda::* that the public tcvc:: custom ops (ops/<op>.py)
// call for CUDA tensors. The kernels themselves are launched through launchers.h.
#include <algorithm>
#include <tuple>
#include <vector>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "launchers.h"

namespace tcvc {
namespace {

DType dtype_of(const at::Tensor& t, const char* name) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return DType::kFloat32;
    case at::kHalf:
      return DType::kFloat16;
    case at::kBFloat16:
      return DType::kBFloat16;
    default:
      TORCH_CHECK(false, name, " must be float32, float16 or bfloat16, got ", t.scalar_type());
  }
}

void check_input(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor, got device ", t.device());
  TORCH_CHECK(t.dim() == 4, name, " must be 4-D (B×C×H×W), got shape ", t.sizes());
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(t.numel() < (int64_t{1} << 31), name, " is too large for 32-bit indexing");
  dtype_of(t, name);
}

void check_same(const at::Tensor& a, const at::Tensor& b, const char* what) {
  TORCH_CHECK(a.scalar_type() == b.scalar_type() && a.device() == b.device(), what,
              ": dtypes/devices differ (", a.scalar_type(), "/", a.device(), " vs ",
              b.scalar_type(), "/", b.device(), ")");
}

Dims dims_of(const at::Tensor& t) {
  return {static_cast<int>(t.size(0)), static_cast<int>(t.size(1)),
          static_cast<int>(t.size(2)), static_cast<int>(t.size(3))};
}

// ---------------------------------------------------------------------------------------------
// correlation
// ---------------------------------------------------------------------------------------------

corr::CorrShape correlation_shape(const at::Tensor& input1, const at::Tensor& input2,
                                  int64_t pad, int64_t max_disp, int64_t stride1,
                                  int64_t stride2) {
  check_input(input1, "correlation input1");
  check_input(input2, "correlation input2");
  check_same(input1, input2, "correlation inputs");
  TORCH_CHECK(input1.sizes() == input2.sizes(), "correlation inputs differ in shape: ",
              input1.sizes(), " vs ", input2.sizes());
  TORCH_CHECK(pad >= 0 && max_disp >= 0 && stride1 >= 1 && stride2 >= 1,
              "correlation: need pad_size >= 0, max_displacement >= 0 and strides >= 1");
  const int64_t reach = max_disp / stride2 * stride2;
  TORCH_CHECK(reach <= corr::kMaxReach && stride1 <= corr::kMaxStride1,
              "correlation CUDA kernel: needs (max_displacement // stride2) * stride2 <= ",
              corr::kMaxReach, " and stride1 <= ", corr::kMaxStride1, ", got ", reach, " and ",
              stride1);
  TORCH_CHECK(input1.size(2) + 2 * pad > 2 * max_disp && input1.size(3) + 2 * pad > 2 * max_disp,
              "correlation: empty output for input ", input1.sizes(), " with pad_size ", pad,
              " and max_displacement ", max_disp);
  const Dims d = dims_of(input1);
  const corr::CorrShape s =
      corr::make_corr_shape(d.batch, d.channels, d.height, d.width, static_cast<int>(pad),
                            static_cast<int>(max_disp), static_cast<int>(stride1),
                            static_cast<int>(stride2));
  const int64_t chunks = std::max(corr::grad1_chunks(s), corr::grad2_chunks(s));
  TORCH_CHECK(s.out_h <= 65535 && s.height <= 65535 &&
                  static_cast<int64_t>(s.batch) * std::max<int64_t>(s.size, chunks) <= 65535 &&
                  static_cast<int64_t>(s.batch) * s.size * s.size * s.out_h * s.out_w <
                      (int64_t{1} << 31),
              "correlation CUDA kernel: input ", input1.sizes(), " is too large");
  return s;
}

at::Tensor correlation_forward(const at::Tensor& input1, const at::Tensor& input2,
                               int64_t pad_size, int64_t max_displacement, int64_t stride1,
                               int64_t stride2) {
  const c10::cuda::CUDAGuard guard(input1.device());
  const corr::CorrShape s =
      correlation_shape(input1, input2, pad_size, max_displacement, stride1, stride2);
  at::Tensor output = at::empty({s.batch, s.size * s.size, s.out_h, s.out_w}, input1.options());
  if (output.numel() == 0) return output;
  C10_CUDA_CHECK(launch_correlation_forward(dtype_of(input1, "input1"), input1.const_data_ptr(),
                                            input2.const_data_ptr(), output.mutable_data_ptr(),
                                            s, c10::cuda::getCurrentCUDAStream()));
  return output;
}

std::tuple<at::Tensor, at::Tensor> correlation_backward(
    const at::Tensor& grad_output, const at::Tensor& input1, const at::Tensor& input2,
    int64_t pad_size, int64_t max_displacement, int64_t stride1, int64_t stride2) {
  const c10::cuda::CUDAGuard guard(input1.device());
  const corr::CorrShape s =
      correlation_shape(input1, input2, pad_size, max_displacement, stride1, stride2);
  check_input(grad_output, "correlation grad_output");
  check_same(grad_output, input1, "correlation grad_output and inputs");
  TORCH_CHECK(grad_output.size(0) == s.batch && grad_output.size(1) == s.size * s.size &&
                  grad_output.size(2) == s.out_h && grad_output.size(3) == s.out_w,
              "correlation grad_output has shape ", grad_output.sizes(), ", expected [",
              s.batch, ", ", s.size * s.size, ", ", s.out_h, ", ", s.out_w, "]");
  at::Tensor grad1 = at::zeros_like(input1);  // only output centres receive a gradient
  at::Tensor grad2 = at::empty_like(input2);
  if (input1.numel() == 0) return {grad1, grad2};
  C10_CUDA_CHECK(launch_correlation_backward(
      dtype_of(input1, "input1"), grad_output.const_data_ptr(), input1.const_data_ptr(),
      input2.const_data_ptr(), grad1.mutable_data_ptr(), grad2.mutable_data_ptr(), s,
      c10::cuda::getCurrentCUDAStream()));
  return {grad1, grad2};
}

// ---------------------------------------------------------------------------------------------
// resample2d
// ---------------------------------------------------------------------------------------------

void check_resample(const at::Tensor& image, const at::Tensor& flow) {
  check_input(image, "resample2d image");
  check_input(flow, "resample2d flow");
  check_same(image, flow, "resample2d image and flow");
  TORCH_CHECK(flow.size(0) == image.size(0) && flow.size(1) == 2 &&
                  flow.size(2) == image.size(2) && flow.size(3) == image.size(3),
              "resample2d flow must be B×2×H×W for image ", image.sizes(), ", got ",
              flow.sizes());
}

at::Tensor resample2d_forward(const at::Tensor& image, const at::Tensor& flow) {
  check_resample(image, flow);
  const c10::cuda::CUDAGuard guard(image.device());
  at::Tensor output = at::empty_like(image);
  if (output.numel() == 0) return output;
  C10_CUDA_CHECK(launch_resample2d_forward(dtype_of(image, "image"), image.const_data_ptr(),
                                           flow.const_data_ptr(), output.mutable_data_ptr(),
                                           dims_of(image), c10::cuda::getCurrentCUDAStream()));
  return output;
}

std::tuple<at::Tensor, at::Tensor> resample2d_backward(const at::Tensor& grad_output,
                                                       const at::Tensor& image,
                                                       const at::Tensor& flow) {
  check_resample(image, flow);
  check_input(grad_output, "resample2d grad_output");
  check_same(grad_output, image, "resample2d grad_output and image");
  TORCH_CHECK(grad_output.sizes() == image.sizes(), "resample2d grad_output has shape ",
              grad_output.sizes(), ", expected ", image.sizes());
  const c10::cuda::CUDAGuard guard(image.device());
  // float32 accumulator: corners are scattered to with atomics.
  at::Tensor grad_image = at::zeros(image.sizes(), image.options().dtype(at::kFloat));
  at::Tensor grad_flow = at::zeros_like(flow);
  if (image.numel() == 0) return {grad_image.to(image.scalar_type()), grad_flow};
  C10_CUDA_CHECK(launch_resample2d_backward(
      dtype_of(image, "image"), grad_output.const_data_ptr(), image.const_data_ptr(),
      flow.const_data_ptr(), grad_image.mutable_data_ptr<float>(), grad_flow.mutable_data_ptr(),
      dims_of(image), c10::cuda::getCurrentCUDAStream()));
  return {grad_image.to(image.scalar_type()), grad_flow};
}

// ---------------------------------------------------------------------------------------------
// channel_norm
// ---------------------------------------------------------------------------------------------

at::Tensor channel_norm_forward(const at::Tensor& x) {
  check_input(x, "channel_norm x");
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor norm = at::empty({x.size(0), 1, x.size(2), x.size(3)}, x.options());
  if (norm.numel() == 0) return norm;
  C10_CUDA_CHECK(launch_channel_norm_forward(dtype_of(x, "x"), x.const_data_ptr(),
                                             norm.mutable_data_ptr(), dims_of(x),
                                             c10::cuda::getCurrentCUDAStream()));
  return norm;
}

at::Tensor channel_norm_backward(const at::Tensor& grad_output, const at::Tensor& x,
                                 const at::Tensor& norm) {
  check_input(x, "channel_norm x");
  check_input(grad_output, "channel_norm grad_output");
  check_input(norm, "channel_norm norm");
  check_same(grad_output, x, "channel_norm grad_output and x");
  check_same(norm, x, "channel_norm norm and x");
  const std::vector<int64_t> expected{x.size(0), 1, x.size(2), x.size(3)};
  TORCH_CHECK(grad_output.sizes() == at::IntArrayRef(expected) &&
                  norm.sizes() == at::IntArrayRef(expected),
              "channel_norm grad_output and norm must be ", at::IntArrayRef(expected), ", got ",
              grad_output.sizes(), " and ", norm.sizes());
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor grad_x = at::empty_like(x);
  if (grad_x.numel() == 0) return grad_x;
  C10_CUDA_CHECK(launch_channel_norm_backward(
      dtype_of(x, "x"), grad_output.const_data_ptr(), x.const_data_ptr(), norm.const_data_ptr(),
      grad_x.mutable_data_ptr(), dims_of(x), c10::cuda::getCurrentCUDAStream()));
  return grad_x;
}

}  // namespace
}  // namespace tcvc

TORCH_LIBRARY(tcvc_cuda, m) {
  m.def(
      "correlation_forward(Tensor input1, Tensor input2, int pad_size, int max_displacement, "
      "int stride1, int stride2) -> Tensor");
  m.def(
      "correlation_backward(Tensor grad_output, Tensor input1, Tensor input2, int pad_size, "
      "int max_displacement, int stride1, int stride2) -> (Tensor, Tensor)");
  m.def("resample2d_forward(Tensor image, Tensor flow) -> Tensor");
  m.def(
      "resample2d_backward(Tensor grad_output, Tensor image, Tensor flow) -> (Tensor, Tensor)");
  m.def("channel_norm_forward(Tensor x) -> Tensor");
  m.def("channel_norm_backward(Tensor grad_output, Tensor x, Tensor norm) -> Tensor");
}

TORCH_LIBRARY_IMPL(tcvc_cuda, CUDA, m) {
  m.impl("correlation_forward", &tcvc::correlation_forward);
  m.impl("correlation_backward", &tcvc::correlation_backward);
  m.impl("resample2d_forward", &tcvc::resample2d_forward);
  m.impl("resample2d_backward", &tcvc::resample2d_backward);
  m.impl("channel_norm_forward", &tcvc::channel_norm_forward);
  m.impl("channel_norm_backward", &tcvc::channel_norm_backward);
}
