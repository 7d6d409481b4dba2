"""FlowNet correlation (FlowNetC's cost volume): the op ``tcvc::correlation`` and its reference.

``correlation(input1, input2, *, pad_size=20, kernel_size=1, max_displacement=20, stride1=1,
stride2=2)``: two B×C×H×W feature maps (same shape, dtype and device) -> B×D²×H_out×W_out in
their dtype, ``D = 2·(max_displacement // stride2) + 1``, ``H_out = ceil((H + 2·pad_size -
2·(max_displacement + (kernel_size - 1)//2)) / stride1)`` (W_out likewise); for FlowNetC's
defaults B×441×H×W.

The semantics are those of NVIDIA's flownet2-pytorch ``correlation_package``, written from its
definition: ``out[n, k, y, x] = 1/(K²C) Σ_{j,i,c} f1[n, c, cy+j, cx+i] ·
f2[n, c, cy+j+dy(k), cx+i+dx(k)]`` with zeros outside the image, the output grid
``cy = y·stride1 + max_displacement - pad_size``, window offsets ``j, i ∈ [-(K-1)//2,
(K-1)//2]`` (K = kernel_size), ``dy(k) = stride2·(k // D - R)``, ``dx(k) = stride2·(k % D -
R)``, ``R = max_displacement // stride2``; output size as ``correlation_cuda.cc``. Where
NVIDIA's kernel reads outside its zero-padded buffer (kernel_size > 1 with
``max_displacement % stride2 < (K-1)//2``: undefined there) these read zeros. The backward is the
true gradient; NVIDIA's equals it for stride1 = 1 (FlowNet's only setting).

- ``correlation_reference`` / ``correlation_backward_reference``: pure PyTorch, any device and
  floating dtype (half and bfloat16 computed in float32, as the kernels accumulate); autograd
  through the forward reference gives the same gradients. ``correlation_output_shape`` and
  ``check_correlation_inputs``: the output shape and the input checks.
- ``tcvc::correlation`` and ``tcvc::correlation_backward`` (``torch.library.custom_op``): the
  references by default (CPU, MPS, ...; on CUDA also float64 and the settings the compiled kernel
  does not cover: kernel_size > 1, displacement > 32 px, stride1 > 2); other CUDA tensors run the
  kernels of ``ops/csrc/correlation.cu`` (built on the first CUDA call; where they cannot be
  built, the references with one warning, see ``ops._common``). ``register_fake`` gives shapes
  for tracing, ``register_autograd`` calls the backward op, so the CUDA backward is a kernel too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ops._common import (
    _KERNEL_DTYPES,
    _check_4d_float,
    _check_same_dtype_and_device,
    _compute_dtype,
    _cuda_ops,
)

__all__ = [
    "check_correlation_inputs",
    "correlation",
    "correlation_backward_reference",
    "correlation_output_shape",
    "correlation_reference",
]

# Width (in output columns) of the column tiles of the reference correlation: each tile is one
# matrix product whose band holds the result, so wider tiles waste more of the product.
_CORR_TILE = 32
# Mirrors kMaxReach / kMaxStride1 in ops/csrc/correlation_shape.h (shared-memory tile bounds).
_CORR_MAX_REACH = 32
_CORR_MAX_STRIDE1 = 2


# --------------------------------------------------------------------------------------------
# reference
# --------------------------------------------------------------------------------------------


def correlation_output_shape(
    shape: tuple[int, ...] | torch.Size,
    *,
    pad_size: int,
    kernel_size: int,
    max_displacement: int,
    stride1: int,
    stride2: int,
) -> tuple[int, int, int, int]:
    """Output shape B×D²×H_out×W_out of the correlation of two B×C×H×W maps.

    As NVIDIA's ``correlation_cuda.cc``: ``D = 2·(max_displacement // stride2) + 1``,
    ``H_out = ceil((H + 2·pad_size - 2·(max_displacement + (kernel_size - 1)//2)) / stride1)``.
    Raises ``ValueError`` for a setting without a defined output (negative sizes, zero strides,
    an empty output).
    """
    if len(shape) != 4:
        raise ValueError(f"correlation inputs must be B×C×H×W, got shape {tuple(shape)}")
    for name, value, low in (
        ("pad_size", pad_size, 0),
        ("kernel_size", kernel_size, 1),
        ("max_displacement", max_displacement, 0),
        ("stride1", stride1, 1),
        ("stride2", stride2, 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"correlation: {name} must be an int ≥ {low}, got {value!r}")
    batch, _, height, width = (int(s) for s in shape)
    border = max_displacement + (kernel_size - 1) // 2
    rad = max_displacement // stride2
    out_h = -(-(height + 2 * pad_size - 2 * border) // stride1)
    out_w = -(-(width + 2 * pad_size - 2 * border) // stride1)
    if out_h <= 0 or out_w <= 0:
        raise ValueError(
            f"correlation: input H×W = {height}×{width} with pad_size={pad_size}, "
            f"kernel_size={kernel_size}, max_displacement={max_displacement}, stride1={stride1} "
            f"gives an empty output ({out_h}×{out_w}); need H + 2·pad_size > "
            f"2·(max_displacement + (kernel_size - 1)//2) = {2 * border}"
        )
    return batch, (2 * rad + 1) ** 2, out_h, out_w


def check_correlation_inputs(input1: Tensor, input2: Tensor, **params: int) -> None:
    """Raise ``ValueError`` unless the two maps and the setting make a defined correlation."""
    _check_4d_float("input1", input1)
    _check_4d_float("input2", input2)
    if input1.shape != input2.shape:
        raise ValueError(
            f"correlation inputs must have the same shape, got {tuple(input1.shape)} and "
            f"{tuple(input2.shape)}"
        )
    _check_same_dtype_and_device("correlation inputs", input1, input2)
    correlation_output_shape(input1.shape, **params)


class _CorrelationPlan:
    """Index bookkeeping shared by the reference forward and backward.

    The correlation is computed on a grid of product positions ``P`` (the output centres when
    kernel_size is 1, otherwise every pixel the windows touch; a box filter then averages P over
    each window). For one vertical displacement and one tile of T columns, the products of all
    horizontal displacements are the band of one (T×C)·(C×L) matrix product.
    """

    def __init__(self, shape: torch.Size, params: dict[str, int]) -> None:
        self.batch, self.out_channels, self.out_h, self.out_w = correlation_output_shape(
            shape, **params
        )
        _, self.channels, self.height, self.width = (int(s) for s in shape)
        self.kernel_size = params["kernel_size"]
        self.stride1 = params["stride1"]
        self.stride2 = params["stride2"]
        self.rad = params["max_displacement"] // self.stride2
        self.size = 2 * self.rad + 1  # displacements per axis
        half = (self.kernel_size - 1) // 2
        self.window = 2 * half + 1  # the original sums offsets -half..half (even K: fewer)
        # P-grid step and size: centres only when there is no window to average over.
        self.step = self.stride1 if self.window == 1 else 1
        self.rows = (self.out_h - 1) * self.stride1 // self.step + self.window
        self.cols = (self.out_w - 1) * self.stride1 // self.step + self.window
        self.tile = min(_CORR_TILE, self.cols)
        self.tiles = -(-self.cols // self.tile)
        self.reach = self.rad * self.stride2  # largest |displacement| in pixels
        # Length of the f2 row segment one column tile needs (the matrix product's width).
        self.span = self.step * (self.tile - 1) + 2 * self.reach + 1
        # First P position, in unpadded input coordinates.
        self.y0 = params["max_displacement"] - params["pad_size"] - half
        self.x0 = self.y0
        # Extents (inclusive) of the f1 window and of the f2 window in input coordinates.
        last_row = self.y0 + self.step * (self.rows - 1)
        last_col = self.x0 + self.step * (self.tiles * self.tile - 1)
        self.f1_box = (self.y0, last_row, self.x0, last_col)
        self.f2_box = (
            self.y0 - self.reach,
            last_row + self.reach,
            self.x0 - self.reach,
            last_col + self.reach,
        )

    def crop_pad(self, x: Tensor, box: tuple[int, int, int, int]) -> Tensor:
        """``x[..., top:bottom+1, left:right+1]`` with zeros where the box leaves the image."""
        top, bottom, left, right = box
        return F.pad(x, (-left, right - (self.width - 1), -top, bottom - (self.height - 1)))

    def uncrop_pad(self, g: Tensor, box: tuple[int, int, int, int]) -> Tensor:
        """The adjoint of ``crop_pad``: the box-shaped gradient placed back on the image."""
        top, bottom, left, right = box
        return F.pad(g, (left, (self.width - 1) - right, top, (self.height - 1) - bottom))

    def f1_tiles(self, f1: Tensor) -> Tensor:
        """B×rows×tiles×T×C (contiguous): f1 at the P positions, channels last, column tiles."""
        win = self.crop_pad(f1, self.f1_box)[..., :: self.step, :: self.step]
        return win.permute(0, 2, 3, 1).reshape(
            self.batch, self.rows, self.tiles, self.tile, self.channels
        )

    def f2_tiles(self, f2: Tensor) -> Tensor:
        """B×rows2×tiles×span×C (contiguous): each tile's f2 row segments, channels last.

        Materialised once, so that every vertical displacement is a view and each product a
        plain batched matrix multiplication (no per-displacement copies).
        """
        win = self.crop_pad(f2, self.f2_box).permute(0, 2, 3, 1)
        return win.unfold(2, self.span, self.step * self.tile).transpose(-1, -2).contiguous()

    def f2_tiles_adjoint(self, grad_tiles: Tensor) -> Tensor:
        """The adjoint of ``f2_tiles``: overlapping segments summed back onto the image."""
        top, bottom, left, right = self.f2_box
        shape = [self.batch, bottom - top + 1, right - left + 1, self.channels]
        grad_win = torch.ops.aten.unfold_backward(
            grad_tiles.transpose(-1, -2), shape, 2, self.span, self.step * self.tile
        )
        return self.uncrop_pad(grad_win.permute(0, 3, 1, 2), self.f2_box)

    def at_dy(self, tiles: Tensor, tj: int) -> Tensor:
        """rows×tiles×… : the tiles of one image at vertical displacement index tj."""
        start = tj * self.stride2
        return tiles[start : start + self.step * (self.rows - 1) + 1 : self.step]

    def band(self, products: Tensor) -> Tensor:
        """The D horizontal displacements of each position: a strided view of the products.

        ``products`` is contiguous N×T×span; element (n, t, k) of the N×T×D view is
        ``products[n, t, step·t + stride2·k]``.
        """
        n, t, span = products.shape
        return products.as_strided(
            (n, t, self.size), (t * span, span + self.step, self.stride2), products.storage_offset()
        )

    def pool(self, p: Tensor) -> Tensor:
        """Sum P over each kernel window (stride1) and divide by K² as the original does."""
        if self.window == 1:  # an even kernel_size of 2 sums one tap but still divides by 4
            return p / self.kernel_size**2 if self.kernel_size > 1 else p
        pooled = F.avg_pool2d(p, self.window, stride=self.stride1)
        return pooled * (self.window**2 / self.kernel_size**2)

    def unpool(self, g: Tensor) -> Tensor:
        """The adjoint of ``pool``: the output gradient spread over the P grid."""
        if self.window == 1:
            return g / self.kernel_size**2 if self.kernel_size > 1 else g
        ones = g.new_ones(g.shape[1], 1, self.window, self.window) / self.kernel_size**2
        return F.conv_transpose2d(g, ones, stride=self.stride1, groups=g.shape[1])


def correlation_reference(
    input1: Tensor,
    input2: Tensor,
    *,
    pad_size: int = 20,
    kernel_size: int = 1,
    max_displacement: int = 20,
    stride1: int = 1,
    stride2: int = 2,
) -> Tensor:
    """FlowNet correlation (cost volume) of two feature maps, pure PyTorch.

    Args:
        input1, input2: B×C×H×W feature maps (same shape, dtype, device), any real values.
        pad_size, kernel_size, max_displacement, stride1, stride2: as NVIDIA's ``Correlation``.

    Returns:
        B×D²×H_out×W_out (see ``correlation_output_shape``), input dtype. For FlowNetC
        (20, 1, 20, 1, 2) and H×W maps: B×441×H×W, channel k ↔ displacement
        ``(dy, dx) = (2·(k // 21 - 10), 2·(k % 21 - 10))``, the channel mean of the product.

    Vectorised as a loop over the D vertical displacements (and column tiles) of batched
    matrix products; autograd through it gives the exact gradient.
    """
    params = {
        "pad_size": pad_size,
        "kernel_size": kernel_size,
        "max_displacement": max_displacement,
        "stride1": stride1,
        "stride2": stride2,
    }
    check_correlation_inputs(input1, input2, **params)
    plan = _CorrelationPlan(input1.shape, params)
    dtype = _compute_dtype(input1.dtype)
    a = plan.f1_tiles(input1.to(dtype))
    f2_tiles = plan.f2_tiles(input2.to(dtype))
    segments = plan.tiles * plan.rows
    per_image = []
    for b in range(plan.batch):
        a_b = a[b].reshape(segments, plan.tile, plan.channels)
        per_dy = []
        for tj in range(plan.size):
            f2_rows = plan.at_dy(f2_tiles[b], tj).reshape(segments, plan.span, plan.channels)
            products = torch.bmm(a_b, f2_rows.transpose(1, 2))  # segments×T×span
            band = plan.band(products).reshape(plan.rows, -1, plan.size)  # rows×cols×D
            per_dy.append(band[:, : plan.cols].permute(2, 0, 1))
        per_image.append(torch.cat(per_dy))
    p = torch.stack(per_image) / plan.channels
    return plan.pool(p).to(input1.dtype).contiguous()


def correlation_backward_reference(
    grad_output: Tensor,
    input1: Tensor,
    input2: Tensor,
    *,
    pad_size: int = 20,
    kernel_size: int = 1,
    max_displacement: int = 20,
    stride1: int = 1,
    stride2: int = 2,
) -> tuple[Tensor, Tensor]:
    """Gradients (B×C×H×W each) of ``correlation_reference`` w.r.t. input1 and input2.

    ``grad_output`` has the output's shape. Each vertical displacement's banded product is
    transposed: the band of the output gradient becomes a sparse T×span matrix.
    """
    params = {
        "pad_size": pad_size,
        "kernel_size": kernel_size,
        "max_displacement": max_displacement,
        "stride1": stride1,
        "stride2": stride2,
    }
    check_correlation_inputs(input1, input2, **params)
    plan = _CorrelationPlan(input1.shape, params)
    expected = (plan.batch, plan.out_channels, plan.out_h, plan.out_w)
    if tuple(grad_output.shape) != expected:
        raise ValueError(
            f"correlation grad_output must be {expected}, got {tuple(grad_output.shape)}"
        )
    dtype = _compute_dtype(input1.dtype)
    a = plan.f1_tiles(input1.to(dtype))
    f2_tiles = plan.f2_tiles(input2.to(dtype))
    grad_p = plan.unpool(grad_output.to(dtype)) / plan.channels  # B×D²×rows×cols
    # Column-pad the P-grid gradient to whole tiles: B×D×D×rows×tiles×T.
    grad_p = F.pad(grad_p, (0, plan.tiles * plan.tile - plan.cols))
    grad_p = grad_p.reshape(plan.batch, plan.size, plan.size, plan.rows, plan.tiles, plan.tile)
    grad_a = torch.zeros_like(a)
    grad_f2_tiles = torch.zeros_like(f2_tiles)
    segments = plan.tiles * plan.rows
    for b in range(plan.batch):
        a_b = a[b].reshape(segments, plan.tile, plan.channels)
        grad_a_b = grad_a[b].view(segments, plan.tile, plan.channels)
        for tj in range(plan.size):
            f2_rows = plan.at_dy(f2_tiles[b], tj).reshape(segments, plan.span, plan.channels)
            # The band of the output gradient as a dense segments×T×span matrix.
            dense = grad_p.new_zeros(segments, plan.tile, plan.span)
            g_tj = grad_p[b, tj].permute(1, 2, 3, 0).reshape(segments, plan.tile, plan.size)
            plan.band(dense).copy_(g_tj)
            grad_a_b += torch.bmm(dense, f2_rows)
            grad_rows = torch.bmm(dense.transpose(1, 2), a_b)  # segments×span×C
            plan.at_dy(grad_f2_tiles[b], tj).add_(
                grad_rows.view(plan.rows, plan.tiles, *grad_rows.shape[1:])
            )
    # grad_a back to the f1 window (P positions on a stride-`step` lattice), then the image.
    grad_a = grad_a.reshape(plan.batch, plan.rows, -1, plan.channels).permute(0, 3, 1, 2)
    top, bottom, left, right = plan.f1_box
    grad_win = grad_a.new_zeros(plan.batch, plan.channels, bottom - top + 1, right - left + 1)
    grad_win[..., :: plan.step, :: plan.step] = grad_a
    grad1 = plan.uncrop_pad(grad_win, plan.f1_box)
    grad2 = plan.f2_tiles_adjoint(grad_f2_tiles)
    return grad1.to(input1.dtype).contiguous(), grad2.to(input2.dtype).contiguous()


# --------------------------------------------------------------------------------------------
# custom ops
# --------------------------------------------------------------------------------------------


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
        (see ``correlation_reference``). Raises ``ValueError`` for mismatched inputs or a setting
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
