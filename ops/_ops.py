"""The ``tcvc::`` custom ops: reference kernels for every device, compiled kernels for CUDA.

Each op and its backward is a ``torch.library.custom_op``: the default implementation is the
pure-PyTorch reference (CPU, MPS, ...; on CUDA also float64 and the correlation settings the
compiled kernel does not cover: kernel_size > 1, displacement > 32 px, stride1 > 2),
``register_kernel("cuda")`` routes CUDA tensors to the kernels of ``ops/csrc`` (built on the first
CUDA call, see ``ops._build``), ``register_fake`` gives shapes for tracing, and
``register_autograd`` calls the backward op, so the CUDA backward is a kernel too.

Where the kernels cannot be built (no CUDA toolkit, an nvcc that does not match torch's CUDA, a
compiler error), CUDA tensors run the references as well, with one warning that says why;
``TCVC_CUDA_OPS=require`` in the environment makes that an error instead (the GPU tests set it).
"""

from __future__ import annotations

import functools
import os
import warnings

import torch
from torch import Tensor

from ops import _build
from ops.reference import (
    channel_norm_backward_reference,
    channel_norm_reference,
    check_correlation_inputs,
    check_resample2d_inputs,
    correlation_backward_reference,
    correlation_output_shape,
    correlation_reference,
    resample2d_backward_reference,
    resample2d_reference,
)

__all__ = ["channel_norm", "correlation", "resample2d"]


# The compiled kernels' element types (float32 accumulation); float64 runs the reference.
_KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Mirrors kMaxReach / kMaxStride1 in ops/csrc/correlation_shape.h (shared-memory tile bounds).
_CORR_MAX_REACH = 32
_CORR_MAX_STRIDE1 = 2


def _cuda_ops():
    """``torch.ops.tcvc_cuda`` after building/loading the extension (once a process), or None
    when it cannot be built: the callers then run the reference kernels on CUDA too."""
    error = _build_error()
    if error is None:
        return torch.ops.tcvc_cuda
    if os.environ.get("TCVC_CUDA_OPS") == "require":
        raise error
    return None


@functools.cache
def _build_error() -> _build.BuildError | None:
    """Build and load the kernels once a process; the error, if any (warned about once)."""
    try:
        _build.load_extension()
    except _build.BuildError as error:
        warnings.warn(
            f"the CUDA kernels of ops/ are not available ({error}); FlowNet2's correlation, "
            "resample2d and channel_norm run their pure-PyTorch references on the GPU (correct, "
            "slower). TCVC_CUDA_OPS=require makes this an error.",
            RuntimeWarning,
            stacklevel=4,
        )
        return error
    return None


def _correlation_kernel_covers(
    dtype: torch.dtype, kernel_size: int, max_displacement: int, stride1: int, stride2: int
) -> bool:
    """Whether the compiled correlation kernel takes this setting (all FlowNet ones do)."""
    reach = max_displacement // stride2 * stride2
    return (
        dtype in _KERNEL_DTYPES
        and kernel_size == 1
        and reach <= _CORR_MAX_REACH
        and stride1 <= _CORR_MAX_STRIDE1
    )


# --------------------------------------------------------------------------------------------
# correlation
# --------------------------------------------------------------------------------------------


@torch.library.custom_op("tcvc::correlation", mutates_args=())
def _correlation(
    input1: Tensor,
    input2: Tensor,
    pad_size: int,
    kernel_size: int,
    max_displacement: int,
    stride1: int,
    stride2: int,
) -> Tensor:
    return correlation_reference(
        input1,
        input2,
        pad_size=pad_size,
        kernel_size=kernel_size,
        max_displacement=max_displacement,
        stride1=stride1,
        stride2=stride2,
    )


@torch.library.custom_op("tcvc::correlation_backward", mutates_args=())
def _correlation_backward(
    grad_output: Tensor,
    input1: Tensor,
    input2: Tensor,
    pad_size: int,
    kernel_size: int,
    max_displacement: int,
    stride1: int,
    stride2: int,
) -> tuple[Tensor, Tensor]:
    return correlation_backward_reference(
        grad_output,
        input1,
        input2,
        pad_size=pad_size,
        kernel_size=kernel_size,
        max_displacement=max_displacement,
        stride1=stride1,
        stride2=stride2,
    )


@_correlation.register_fake
def _(input1, input2, pad_size, kernel_size, max_displacement, stride1, stride2):
    shape = correlation_output_shape(
        input1.shape,
        pad_size=pad_size,
        kernel_size=kernel_size,
        max_displacement=max_displacement,
        stride1=stride1,
        stride2=stride2,
    )
    return input1.new_empty(shape)


@_correlation_backward.register_fake
def _(grad_output, input1, input2, pad_size, kernel_size, max_displacement, stride1, stride2):
    return torch.empty_like(input1), torch.empty_like(input2)


@_correlation.register_kernel("cuda")
def _(input1, input2, pad_size, kernel_size, max_displacement, stride1, stride2):
    kernels = _cuda_ops()
    if kernels is None or not _correlation_kernel_covers(
        input1.dtype, kernel_size, max_displacement, stride1, stride2
    ):
        return correlation_reference(
            input1,
            input2,
            pad_size=pad_size,
            kernel_size=kernel_size,
            max_displacement=max_displacement,
            stride1=stride1,
            stride2=stride2,
        )
    return kernels.correlation_forward(
        input1.contiguous(), input2.contiguous(), pad_size, max_displacement, stride1, stride2
    )


@_correlation_backward.register_kernel("cuda")
def _(grad_output, input1, input2, pad_size, kernel_size, max_displacement, stride1, stride2):
    kernels = _cuda_ops()
    if kernels is None or not _correlation_kernel_covers(
        input1.dtype, kernel_size, max_displacement, stride1, stride2
    ):
        return correlation_backward_reference(
            grad_output,
            input1,
            input2,
            pad_size=pad_size,
            kernel_size=kernel_size,
            max_displacement=max_displacement,
            stride1=stride1,
            stride2=stride2,
        )
    grad1, grad2 = kernels.correlation_backward(
        grad_output.contiguous(),
        input1.contiguous(),
        input2.contiguous(),
        pad_size,
        max_displacement,
        stride1,
        stride2,
    )
    return grad1, grad2


def _correlation_setup(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0], inputs[1])
    ctx.params = inputs[2:]


def _correlation_grad(ctx, grad_output):
    input1, input2 = ctx.saved_tensors
    grad1, grad2 = _correlation_backward(grad_output, input1, input2, *ctx.params)
    return grad1, grad2, None, None, None, None, None


_correlation.register_autograd(_correlation_grad, setup_context=_correlation_setup)


def correlation(
    input1: Tensor,
    input2: Tensor,
    *,
    pad_size: int = 20,
    kernel_size: int = 1,
    max_displacement: int = 20,
    stride1: int = 1,
    stride2: int = 2,
) -> Tensor:
    """FlowNet correlation (cost volume) of two feature maps — op ``tcvc::correlation``.

    Args:
        input1, input2: B×C×H×W feature maps (same shape, dtype and device), any real values.
        pad_size, kernel_size, max_displacement, stride1, stride2: as NVIDIA's ``Correlation``;
            the defaults are FlowNetC's.

    Returns:
        B×D²×H_out×W_out in the input dtype, ``D = 2·(max_displacement // stride2) + 1``. For the
        defaults: B×441×H×W, channel k ↔ displacement ``dy = 2·(k // 21 - 10)``,
        ``dx = 2·(k % 21 - 10)``, ``out = mean_c f1[c, y, x] · f2[c, y + dy, x + dx]``, zero
        where ``(y + dy, x + dx)`` leaves the map. Other settings follow ``correlation_cuda.cc``
        (see ``ops.reference``). Raises ``ValueError`` for mismatched inputs or a setting
        without an output.
    """
    params = {
        "pad_size": pad_size,
        "kernel_size": kernel_size,
        "max_displacement": max_displacement,
        "stride1": stride1,
        "stride2": stride2,
    }
    check_correlation_inputs(input1, input2, **params)
    return _correlation(input1, input2, pad_size, kernel_size, max_displacement, stride1, stride2)


# --------------------------------------------------------------------------------------------
# resample2d
# --------------------------------------------------------------------------------------------


@torch.library.custom_op("tcvc::resample2d", mutates_args=())
def _resample2d(image: Tensor, flow: Tensor) -> Tensor:
    return resample2d_reference(image, flow)


@torch.library.custom_op("tcvc::resample2d_backward", mutates_args=())
def _resample2d_backward(grad_output: Tensor, image: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
    return resample2d_backward_reference(grad_output, image, flow)


@_resample2d.register_fake
def _(image, flow):
    return torch.empty_like(image)


@_resample2d_backward.register_fake
def _(grad_output, image, flow):
    return torch.empty_like(image), torch.empty_like(flow)


@_resample2d.register_kernel("cuda")
def _(image, flow):
    kernels = _cuda_ops()
    if kernels is None or image.dtype not in _KERNEL_DTYPES:
        return resample2d_reference(image, flow)
    return kernels.resample2d_forward(image.contiguous(), flow.contiguous())


@_resample2d_backward.register_kernel("cuda")
def _(grad_output, image, flow):
    kernels = _cuda_ops()
    if kernels is None or image.dtype not in _KERNEL_DTYPES:
        return resample2d_backward_reference(grad_output, image, flow)
    grad_image, grad_flow = kernels.resample2d_backward(
        grad_output.contiguous(), image.contiguous(), flow.contiguous()
    )
    return grad_image, grad_flow


def _resample2d_setup(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _resample2d_grad(ctx, grad_output):
    image, flow = ctx.saved_tensors
    return _resample2d_backward(grad_output, image, flow)


_resample2d.register_autograd(_resample2d_grad, setup_context=_resample2d_setup)


def resample2d(image: Tensor, flow: Tensor) -> Tensor:
    """Warp an image by a pixel flow (FlowNet2's Resample2d) — op ``tcvc::resample2d``.

    Args:
        image: B×C×H×W, any real values.
        flow: B×2×H×W in pixels (channel 0 horizontal, 1 vertical), same device. Under
            autocast the two often differ in float dtype (a bf16 feature, a float32 flow): both
            are then taken in the wider dtype, so a float32 flow keeps its sub-pixel precision.

    Returns:
        B×C×H×W in that dtype: ``image`` sampled bilinearly at ``(x + u, y + v)``, coordinates
        clamped to the image (= ``grid_sample`` bilinear, ``padding_mode="border"``,
        ``align_corners=True``).
    """
    if image.dtype != flow.dtype and image.is_floating_point() and flow.is_floating_point():
        dtype = torch.promote_types(image.dtype, flow.dtype)
        image, flow = image.to(dtype), flow.to(dtype)
    check_resample2d_inputs(image, flow)
    return _resample2d(image, flow)


# --------------------------------------------------------------------------------------------
# channel_norm
# --------------------------------------------------------------------------------------------


@torch.library.custom_op("tcvc::channel_norm", mutates_args=())
def _channel_norm(x: Tensor) -> Tensor:
    return channel_norm_reference(x)


@torch.library.custom_op("tcvc::channel_norm_backward", mutates_args=())
def _channel_norm_backward(grad_output: Tensor, x: Tensor, norm: Tensor) -> Tensor:
    return channel_norm_backward_reference(grad_output, x, norm)


@_channel_norm.register_fake
def _(x):
    return x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3])


@_channel_norm_backward.register_fake
def _(grad_output, x, norm):
    return torch.empty_like(x)


@_channel_norm.register_kernel("cuda")
def _(x):
    kernels = _cuda_ops()
    if kernels is None or x.dtype not in _KERNEL_DTYPES:
        return channel_norm_reference(x)
    return kernels.channel_norm_forward(x.contiguous())


@_channel_norm_backward.register_kernel("cuda")
def _(grad_output, x, norm):
    kernels = _cuda_ops()
    if kernels is None or x.dtype not in _KERNEL_DTYPES:
        return channel_norm_backward_reference(grad_output, x, norm)
    return kernels.channel_norm_backward(
        grad_output.contiguous(), x.contiguous(), norm.contiguous()
    )


def _channel_norm_setup(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0], output)


def _channel_norm_grad(ctx, grad_output):
    x, norm = ctx.saved_tensors
    return _channel_norm_backward(grad_output, x, norm)


_channel_norm.register_autograd(_channel_norm_grad, setup_context=_channel_norm_setup)


def channel_norm(x: Tensor) -> Tensor:
    """L2 norm over channels (FlowNet2's ChannelNorm) — op ``tcvc::channel_norm``.

    Args:
        x: B×C×H×W, any real values.

    Returns:
        B×1×H×W, ``sqrt(Σ_c x²)`` ≥ 0, input dtype. Its gradient is ``x / (norm + 1e-9)`` per
        unit output gradient (0 where x = 0), as NVIDIA's kernel.
    """
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(
            f"channel_norm: x must be a floating B×C×H×W tensor, got {x.dtype} {tuple(x.shape)}"
        )
    return _channel_norm(x)
