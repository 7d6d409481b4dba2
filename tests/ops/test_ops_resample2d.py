"""tcvc::resample2d: reference vs NVIDIA's kernel as loops, grid_sample, backward, opcheck; the
kernels of ops/csrc/resample2d_kernels.cuh emulated on the CPU and, on a GPU, compiled."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ops_testing import DEVICES, assert_emulated_close, assert_relative_close, run_emulated

from ops import resample2d
from ops.resample2d import resample2d_backward_reference, resample2d_reference


def naive_resample2d(image, flow, grad):
    """NVIDIA's forward and both backward kernels transcribed as per-pixel loops (float64)."""
    img, fl, g = image.double().numpy(), flow.double().numpy(), grad.double().numpy()
    b, _, h, w = img.shape
    out = np.zeros_like(img)
    g_img = np.zeros_like(img)
    g_flow = np.zeros_like(fl)
    for n in range(b):
        for y in range(h):
            for x in range(w):
                xf, yf = x + fl[n, 0, y, x], y + fl[n, 1, y, x]
                alpha, beta = xf - math.floor(xf), yf - math.floor(yf)
                xl = min(max(math.floor(xf), 0), w - 1)
                xr = min(max(math.floor(xf) + 1, 0), w - 1)
                yt = min(max(math.floor(yf), 0), h - 1)
                yb = min(max(math.floor(yf) + 1, 0), h - 1)
                taps = [
                    ((1 - alpha) * (1 - beta), yt, xl),
                    (alpha * (1 - beta), yt, xr),
                    ((1 - alpha) * beta, yb, xl),
                    (alpha * beta, yb, xr),
                ]
                for wgt, yy, xx in taps:
                    out[n, :, y, x] += wgt * img[n, :, yy, xx]
                    g_img[n, :, yy, xx] += wgt * g[n, :, y, x]
                gx = (1 - beta) * (img[n, :, yt, xr] - img[n, :, yt, xl]) + beta * (
                    img[n, :, yb, xr] - img[n, :, yb, xl]
                )
                gy = (1 - alpha) * (img[n, :, yb, xl] - img[n, :, yt, xl]) + alpha * (
                    img[n, :, yb, xr] - img[n, :, yt, xr]
                )
                g_flow[n, 0, y, x] = (g[n, :, y, x] * gx).sum()
                g_flow[n, 1, y, x] = (g[n, :, y, x] * gy).sum()
    return tuple(torch.from_numpy(a) for a in (out, g_img, g_flow))


def _inputs(kind: str, seed: int = 0, size=(2, 3, 7, 9)):
    torch.manual_seed(seed)
    b, c, h, w = size
    image = torch.randn(b, c, h, w, dtype=torch.float64)
    if kind == "zero":
        flow = torch.zeros(b, 2, h, w, dtype=torch.float64)
    elif kind == "outside":  # many points beyond every border, by up to 3 image sizes
        flow = (torch.rand(b, 2, h, w, dtype=torch.float64) - 0.5) * 6 * max(h, w)
    elif kind == "integer":  # on pixel centres, exercising floor/clamp ties
        flow = torch.randint(-3, 4, (b, 2, h, w)).double()
    else:
        flow = torch.randn(b, 2, h, w, dtype=torch.float64) * 2
    return image, flow


@pytest.mark.parametrize("kind", ["random", "zero", "outside", "integer"])
def test_matches_naive_loops(kind):
    image, flow = _inputs(kind)
    grad = torch.randn_like(image)
    out, g_img, g_flow = naive_resample2d(image, flow, grad)
    torch.testing.assert_close(resample2d(image, flow), out, rtol=1e-12, atol=1e-12)
    r_img, r_flow = resample2d_backward_reference(grad, image, flow)
    torch.testing.assert_close(r_img, g_img, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(r_flow, g_flow, rtol=1e-12, atol=1e-12)


def test_zero_flow_is_identity():
    image, flow = _inputs("zero")
    assert torch.equal(resample2d(image, flow), image)


def test_constant_shift_known_values():
    # Row 0..W-1 holds x; a flow of +1.5 samples x + 1.5, clamped to W - 1.
    w = 6
    image = torch.arange(w, dtype=torch.float32).expand(1, 1, 3, w).contiguous()
    flow = torch.zeros(1, 2, 3, w)
    flow[:, 0] = 1.5
    out = resample2d(image, flow)
    expected = torch.tensor([1.5, 2.5, 3.5, 4.5, 5.0, 5.0]).expand(1, 1, 3, w)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("kind", ["random", "zero", "outside", "integer"])
def test_forward_equals_grid_sample_border(kind):
    image, flow = _inputs(kind, seed=1)
    _, _, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    gx = (xs + flow[:, 0]) / (w - 1) * 2 - 1
    gy = (ys + flow[:, 1]) / (h - 1) * 2 - 1
    grid = torch.stack([gx, gy], dim=-1)
    expected = F.grid_sample(image, grid, "bilinear", padding_mode="border", align_corners=True)
    torch.testing.assert_close(resample2d(image, flow), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["random", "outside", "integer"])
def test_autograd_matches_explicit_backward(kind):
    image, flow = _inputs(kind, seed=2)
    image.requires_grad_(True)
    flow.requires_grad_(True)
    grad = torch.randn_like(image)
    expected = torch.autograd.grad(resample2d_reference(image, flow), (image, flow), grad)
    got = torch.autograd.grad(resample2d(image, flow), (image, flow), grad)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["random", "outside"])
def test_gradcheck_float64(kind):
    image, flow = _inputs(kind, seed=3, size=(2, 2, 5, 6))
    # Keep sample points off integer coordinates, where the bilinear weights have kinks.
    flow = flow + 0.25
    image.requires_grad_(True)
    flow.requires_grad_(True)
    assert torch.autograd.gradcheck(resample2d, (image, flow))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device, dtype):
    image, flow = _inputs("random", seed=4)
    image = image.to(device, dtype).requires_grad_(True)
    flow = flow.to(device, dtype).requires_grad_(True)
    torch.library.opcheck(torch.ops.tcvc.resample2d.default, (image, flow))
    grad = torch.randn_like(image)
    torch.library.opcheck(
        torch.ops.tcvc.resample2d_backward.default, (grad, image.detach(), flow.detach())
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_uses_float32_coordinates(dtype):
    # At x ≈ 200, bfloat16 cannot hold x + u; the reference computes coordinates in float32.
    image, flow = _inputs("random", seed=5, size=(1, 2, 4, 256))
    image, flow = image.float(), flow.float()
    expected = resample2d(image.to(dtype).float(), flow.to(dtype).float())
    out = resample2d(image.to(dtype), flow.to(dtype))
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), expected.to(dtype).float(), rtol=0, atol=0)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="B×2×H×W"):
        resample2d(torch.randn(1, 3, 8, 8), torch.randn(1, 2, 8, 9))
    with pytest.raises(ValueError, match="B×2×H×W"):
        resample2d(torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="flow"):
        resample2d(torch.randn(1, 3, 8, 8), torch.zeros(1, 2, 8, 8, dtype=torch.int64))


def test_mixed_float_dtypes_warp_in_the_wider_one():
    """Under autocast a bf16 feature meets a float32 flow: the warp runs in float32, so the
    flow's sub-pixel part is not rounded to bf16 (3 significant digits), and gradients come
    back in each input's own dtype."""
    torch.manual_seed(0)
    image = torch.randn(2, 3, 64, 80).bfloat16().requires_grad_()
    # 20 px with a fraction, mostly inside the image: bf16 rounds 20.37 to 20.375
    flow = (torch.randn(2, 2, 64, 80) + 20.37).requires_grad_()
    out = resample2d(image, flow)
    assert out.dtype == torch.float32
    assert torch.equal(out, resample2d(image.detach().float(), flow.detach()))
    rounded = resample2d(image.detach(), flow.detach().bfloat16()).float()
    assert (rounded - out).abs().max() > 1e-2  # what casting the flow down would have cost
    out.sum().backward()
    assert image.grad.dtype == torch.bfloat16 and flow.grad.dtype == torch.float32
    both64 = resample2d(image.detach().double(), flow.detach().double())
    assert resample2d(image.detach().double(), flow.detach()).dtype == torch.float64
    assert torch.equal(resample2d(image.detach().double(), flow.detach()), both64)


# ---------------------------------------------------------------------------------------------
# the CUDA kernels: emulated on the CPU, compiled on a GPU
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["random", "zero", "outside", "integer"])
def test_kernel_emulation(emulator, tmp_path, kind):
    torch.manual_seed(1)
    b, c, h, w = 2, 3, 13, 21
    image = torch.randn(b, c, h, w, dtype=torch.float64)
    flow = {
        "random": torch.randn(b, 2, h, w, dtype=torch.float64) * 3,
        "zero": torch.zeros(b, 2, h, w, dtype=torch.float64),
        "outside": (torch.rand(b, 2, h, w, dtype=torch.float64) - 0.5) * 6 * w,
        "integer": torch.randint(-4, 5, (b, 2, h, w)).double(),
    }[kind]
    # Compare in float32 coordinates: the kernel's and the reference's floor must see the same
    # numbers (a float64 flow could round across an integer in float32).
    flow = flow.float().double()
    (out,) = run_emulated(emulator, tmp_path, "resample_fwd", [b, c, h, w], [image, flow], 1)
    assert_emulated_close(out, resample2d_reference(image, flow))
    grad = torch.randn_like(image)
    g_image, g_flow = resample2d_backward_reference(grad, image, flow)
    got_image, got_flow = run_emulated(
        emulator, tmp_path, "resample_bwd", [b, c, h, w], [grad, image, flow], 2
    )
    assert_emulated_close(got_image, g_image)
    assert_emulated_close(got_flow, g_flow, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("device", DEVICES)
def test_op_matches_reference(device, dtype):
    """The op (on CUDA the compiled kernels) against the reference, forward and backward."""
    torch.manual_seed(4)
    image = torch.randn(2, 5, 33, 47, dtype=torch.float64).to(dtype).double()
    flow = ((torch.rand(2, 2, 33, 47, dtype=torch.float64) - 0.5) * 80).to(dtype).double()
    gi = image.to(device).to(dtype).requires_grad_(True)
    gf = flow.to(device).to(dtype).requires_grad_(True)
    out = resample2d(gi, gf)
    # float32 reference: the same coordinate arithmetic as the kernel (x + u in float32).
    assert_relative_close(out.cpu(), resample2d_reference(image.float(), flow.float()), dtype)
    grad = torch.randn_like(image).to(dtype).double()
    out.backward(grad.to(device).to(dtype))
    e_image, e_flow = resample2d_backward_reference(grad.float(), image.float(), flow.float())
    assert_relative_close(gi.grad.cpu(), e_image, dtype)
    assert_relative_close(gf.grad.cpu(), e_flow, dtype)
