"""Pure-PyTorch references of FlowNet2's three custom ops, and their explicit backward passes.

They run on any device and any floating dtype; half and bfloat16 inputs are computed in float32
and the result is cast back, as the CUDA kernels accumulate in float32. The semantics are those of
NVIDIA's flownet2-pytorch CUDA kernels (``correlation_package``, ``resample2d_package``,
``channelnorm_package``), written from their definitions:

- correlation: ``out[n, k, y, x] = 1/(K²C) Σ_{j,i,c} f1[n, c, cy+j, cx+i] ·
  f2[n, c, cy+j+dy(k), cx+i+dx(k)]`` with zeros outside the image, the output grid
  ``cy = y·stride1 + max_displacement - pad_size``, window offsets ``j, i ∈ [-(K-1)//2,
  (K-1)//2]`` (K = kernel_size), ``dy(k) = stride2·(k // D - R)``, ``dx(k) = stride2·(k % D -
  R)``, ``R = max_displacement // stride2``, ``D = 2R + 1``; output size as
  ``correlation_cuda.cc``. Where NVIDIA's kernel reads outside its zero-padded buffer (kernel_size
  > 1 with ``max_displacement % stride2 < (K-1)//2``: undefined there) these read zeros. Its
  backward is the true gradient; NVIDIA's equals it for stride1 = 1 (FlowNet's only setting).
- resample2d: bilinear sample of the image at ``(x + u, y + v)``, both corners clamped to the
  image (border); the flow gradient is the one-sided derivative NVIDIA's kernel computes.
- channel_norm: ``sqrt(Σ_c x²)``; its backward is ``grad · x / (norm + 1e-9)`` (zero at 0).

The ``*_backward_reference`` functions give the gradients the CUDA kernels compute. The forward
references are also differentiable by autograd with the same gradients (except channel_norm at
x = 0, where autograd gives NaN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "CHANNEL_NORM_EPS",
    "channel_norm_backward_reference",
    "channel_norm_reference",
    "check_correlation_inputs",
    "check_resample2d_inputs",
    "correlation_backward_reference",
    "correlation_output_shape",
    "correlation_reference",
    "resample2d_backward_reference",
    "resample2d_reference",
]

# NVIDIA's channel-norm backward divides by (norm + 1e-9), which makes the gradient 0 at x = 0.
CHANNEL_NORM_EPS = 1e-9
# Width (in output columns) of the column tiles of the reference correlation: each tile is one
# matrix product whose band holds the result, so wider tiles waste more of the product.
_CORR_TILE = 32


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half/bfloat16 (accumulate like the kernels), the dtype itself otherwise."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _check_4d_float(name: str, tensor: Tensor) -> None:
    if tensor.dim() != 4:
        raise ValueError(f"{name} must be B×C×H×W (4-D), got shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got dtype {tensor.dtype}")


# --------------------------------------------------------------------------------------------
# correlation
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
    if input1.dtype != input2.dtype or input1.device != input2.device:
        raise ValueError(
            f"correlation inputs must share dtype and device, got {input1.dtype}/{input1.device} "
            f"and {input2.dtype}/{input2.device}"
        )
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
# resample2d
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
    if image.dtype != flow.dtype or image.device != flow.device:
        raise ValueError(
            f"resample2d: image and flow must share dtype and device, got "
            f"{image.dtype}/{image.device} and {flow.dtype}/{flow.device}"
        )


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
# channel_norm
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
