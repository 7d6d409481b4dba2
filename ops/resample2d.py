"""FlowNet2's Resample2d (bilinear warp by a pixel flow): the op ``tcvc::resample2d``.

``resample2d(image, flow)``: image B×C×H×W, flow B×2×H×W in pixels (channel 0 horizontal u,
1 vertical v), same device -> B×C×H×W, ``image`` sampled bilinearly at ``(x + u, y + v)`` with
both corners clamped to the image (border): the values of ``grid_sample(..., "bilinear",
padding_mode="border", align_corners=True)``. The semantics are those of NVIDIA's flownet2-pytorch
``resample2d_package``; the flow gradient is the one-sided derivative its kernel computes (zero
where both corners clamp to the same pixel).

- ``resample2d_reference`` / ``resample2d_backward_reference``: pure PyTorch, any device and
  floating dtype (half and bfloat16 computed in float32, coordinates included, as the kernels
  do); autograd through the forward reference gives the same gradients.
  ``check_resample2d_inputs``: the input checks.
- ``tcvc::resample2d`` and ``tcvc::resample2d_backward`` (``torch.library.custom_op``): the
  kernels of ``ops/csrc/resample2d.cu`` on CUDA, the references elsewhere (the registration every op
  shares: ``ops/__init__.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ops._common import (
    _KERNEL_DTYPES,
    _check_4d_float,
    _check_same_dtype_and_device,
    _compute_dtype,
    _cuda_ops,
)

__all__ = [
    "check_resample2d_inputs",
    "resample2d",
    "resample2d_backward_reference",
    "resample2d_reference",
]


# --------------------------------------------------------------------------------------------
# reference
# --------------------------------------------------------------------------------------------


def check_resample2d_inputs(image: Tensor, flow: Tensor) -> None:
    """Raise ``ValueError`` unless image is B×C×H×W and flow B×2×H×W of the same dtype/device."""
    _check_4d_float("image", image)
    _check_4d_float("flow", flow)
    b, _, h, w = image.shape
    if tuple(flow.shape) != (b, 2, h, w):
        raise ValueError(
            f"resample2d: flow must be B×2×H×W = {(b, 2, h, w)} for image {tuple(image.shape)}, "
            f"got {tuple(flow.shape)}"
        )
    _check_same_dtype_and_device("resample2d: image and flow", image, flow)


def _bilinear_corners(flow: Tensor, height: int, width: int):
    """Corner indices (flat, B×1×HW) and fractional weights (B×1×HW) of the sample points.

    As NVIDIA's kernel: ``xL = clamp(floor(x+u))``, ``xR = clamp(floor(x+u) + 1)``, weights from
    ``alpha = (x+u) - floor(x+u)``; clamping both corners gives the border behaviour.
    """
    b = flow.shape[0]
    ys = torch.arange(height, device=flow.device, dtype=flow.dtype).view(1, height, 1)
    xs = torch.arange(width, device=flow.device, dtype=flow.dtype).view(1, 1, width)
    xf = xs + flow[:, 0]
    yf = ys + flow[:, 1]
    x_floor = torch.floor(xf)
    y_floor = torch.floor(yf)
    alpha = (xf - x_floor).reshape(b, 1, -1)
    beta = (yf - y_floor).reshape(b, 1, -1)
    x_left = x_floor.clamp(0, width - 1).long()
    x_right = (x_floor + 1).clamp(0, width - 1).long()
    y_top = y_floor.clamp(0, height - 1).long()
    y_bottom = (y_floor + 1).clamp(0, height - 1).long()
    corners = {
        "tl": (y_top * width + x_left).reshape(b, 1, -1),
        "tr": (y_top * width + x_right).reshape(b, 1, -1),
        "bl": (y_bottom * width + x_left).reshape(b, 1, -1),
        "br": (y_bottom * width + x_right).reshape(b, 1, -1),
    }
    return corners, alpha, beta


def resample2d_reference(image: Tensor, flow: Tensor) -> Tensor:
    """Warp an image by a pixel flow (FlowNet2's Resample2d, bilinear, border clamp).

    Args:
        image: B×C×H×W, any real values.
        flow: B×2×H×W in pixels; channel 0 is the horizontal (u), 1 the vertical (v) offset.

    Returns:
        B×C×H×W, ``out[n, c, y, x] = image[n, c]`` sampled bilinearly at ``(x + u, y + v)`` with
        coordinates clamped to the image — the same values as ``grid_sample(..., "bilinear",
        padding_mode="border", align_corners=True)``.
    """
    check_resample2d_inputs(image, flow)
    dtype = _compute_dtype(image.dtype)
    b, c, h, w = image.shape
    img = image.to(dtype).reshape(b, c, h * w)
    corners, alpha, beta = _bilinear_corners(flow.to(dtype), h, w)

    def at(name: str) -> Tensor:
        return torch.gather(img, 2, corners[name].expand(b, c, h * w))

    out = (
        (1 - alpha) * (1 - beta) * at("tl")
        + alpha * (1 - beta) * at("tr")
        + (1 - alpha) * beta * at("bl")
        + alpha * beta * at("br")
    )
    return out.reshape(b, c, h, w).to(image.dtype)


def resample2d_backward_reference(
    grad_output: Tensor, image: Tensor, flow: Tensor
) -> tuple[Tensor, Tensor]:
    """Gradients of ``resample2d_reference`` w.r.t. image (B×C×H×W) and flow (B×2×H×W).

    As NVIDIA's backward: the image gradient scatters ``grad · weight`` to the four clamped
    corners; the flow gradient is the derivative of the bilinear weights (zero where both
    corners clamp to the same pixel, i.e. outside the image).
    """
    check_resample2d_inputs(image, flow)
    if grad_output.shape != image.shape:
        raise ValueError(
            f"resample2d grad_output must be {tuple(image.shape)}, got {tuple(grad_output.shape)}"
        )
    dtype = _compute_dtype(image.dtype)
    b, c, h, w = image.shape
    img = image.to(dtype).reshape(b, c, h * w)
    grad = grad_output.to(dtype).reshape(b, c, h * w)
    corners, alpha, beta = _bilinear_corners(flow.to(dtype), h, w)
    weights = {
        "tl": (1 - alpha) * (1 - beta),
        "tr": alpha * (1 - beta),
        "bl": (1 - alpha) * beta,
        "br": alpha * beta,
    }
    grad_image = torch.zeros_like(img)
    values = {}
    for name, index in corners.items():
        index = index.expand(b, c, h * w)
        grad_image.scatter_add_(2, index, grad * weights[name])
        values[name] = torch.gather(img, 2, index)
    d_alpha = (1 - beta) * (values["tr"] - values["tl"]) + beta * (values["br"] - values["bl"])
    d_beta = (1 - alpha) * (values["bl"] - values["tl"]) + alpha * (values["br"] - values["tr"])
    grad_flow = torch.cat(
        [(grad * d_alpha).sum(1, keepdim=True), (grad * d_beta).sum(1, keepdim=True)], dim=1
    )
    return (
        grad_image.reshape(b, c, h, w).to(image.dtype),
        grad_flow.reshape(b, 2, h, w).to(flow.dtype),
    )


# --------------------------------------------------------------------------------------------
# custom ops
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
