"""FlowNet2's ChannelNorm (L2 norm over channels): the op ``tcvc::channel_norm``.

``channel_norm(x)``: x B×C×H×W -> B×1×H×W, ``sqrt(Σ_c x²)`` ≥ 0 in x's dtype. Its backward is
NVIDIA's (flownet2-pytorch ``channelnorm_package``): ``grad · x / (norm + 1e-9)``, zero at x = 0.

- ``channel_norm_reference`` / ``channel_norm_backward_reference``: pure PyTorch, any device and
  floating dtype (half and bfloat16 accumulated in float32, as the kernels do). Autograd through
  the forward reference gives the same gradient except at x = 0, where it is NaN.
- ``tcvc::channel_norm`` and ``tcvc::channel_norm_backward`` (``torch.library.custom_op``): the
  kernels of ``ops/csrc/channel_norm.cu`` on CUDA, the references elsewhere (the registration every op
  shares: ``ops/__init__.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ops._common import _KERNEL_DTYPES, _check_4d_float, _compute_dtype, _cuda_ops

__all__ = [
    "CHANNEL_NORM_EPS",
    "channel_norm",
    "channel_norm_backward_reference",
    "channel_norm_reference",
]

# NVIDIA's channel-norm backward divides by (norm + 1e-9), which makes the gradient 0 at x = 0.
CHANNEL_NORM_EPS = 1e-9


# --------------------------------------------------------------------------------------------
# reference
# --------------------------------------------------------------------------------------------


def channel_norm_reference(x: Tensor) -> Tensor:
    """L2 norm over channels: B×C×H×W (any real values) -> B×1×H×W (≥ 0), input dtype.

    (Autograd through this function is NaN where x = 0; the op uses
    ``channel_norm_backward_reference``, which is 0 there.)
    """
    _check_4d_float("x", x)
    xc = x.to(_compute_dtype(x.dtype))
    # Not linalg.vector_norm: a plain sum of squares is ~50× faster over a short channel axis.
    return (xc * xc).sum(1, keepdim=True).sqrt().to(x.dtype)


def channel_norm_backward_reference(grad_output: Tensor, x: Tensor, norm: Tensor) -> Tensor:
    """Gradient of ``channel_norm`` w.r.t. x: ``grad · x / (norm + 1e-9)`` (B×C×H×W).

    ``grad_output`` and ``norm`` are B×1×H×W. The 1e-9 is NVIDIA's: the gradient is 0 at x = 0.
    """
    _check_4d_float("x", x)
    b, _, h, w = x.shape
    for name, t in (("grad_output", grad_output), ("norm", norm)):
        if tuple(t.shape) != (b, 1, h, w):
            raise ValueError(f"channel_norm {name} must be {(b, 1, h, w)}, got {tuple(t.shape)}")
    dtype = _compute_dtype(x.dtype)
    grad = grad_output.to(dtype) * x.to(dtype) / (norm.to(dtype) + CHANNEL_NORM_EPS)
    return grad.to(x.dtype)


# --------------------------------------------------------------------------------------------
# custom ops
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
