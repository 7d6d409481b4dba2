"""tcvc::channel_norm: known values, naive loops, NVIDIA's backward at 0, opcheck, gradcheck;
the kernels of ops/csrc/channel_norm_kernels.cuh emulated on the CPU and, on a GPU, compiled."""

from __future__ import annotations

import pytest
import torch
from ops_testing import DEVICES, assert_emulated_close, assert_relative_close, run_emulated

from ops import channel_norm
from ops.channel_norm import channel_norm_backward_reference, channel_norm_reference


def naive_channel_norm(x, grad):
    """Per-pixel loops of NVIDIA's forward and backward kernels (float64)."""
    b, c, h, w = x.shape
    out = torch.zeros(b, 1, h, w, dtype=torch.float64)
    g_x = torch.zeros(b, c, h, w, dtype=torch.float64)
    for n in range(b):
        for y in range(h):
            for i in range(w):
                total = sum(float(x[n, k, y, i]) ** 2 for k in range(c))
                out[n, 0, y, i] = total**0.5
                for k in range(c):
                    g_x[n, k, y, i] = grad[n, 0, y, i] * x[n, k, y, i] / (total**0.5 + 1e-9)
    return out, g_x


def test_known_values():
    x = torch.zeros(1, 2, 1, 3)
    x[0, :, 0, 0] = torch.tensor([3.0, 4.0])
    x[0, :, 0, 1] = torch.tensor([-5.0, 12.0])
    assert torch.equal(channel_norm(x), torch.tensor([[[[5.0, 13.0, 0.0]]]]))


def test_matches_naive_loops_with_zero_pixels():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    x[:, :, 1, 2] = 0  # a zero vector: norm 0, gradient 0
    grad = torch.randn(2, 1, 5, 7, dtype=torch.float64)
    out, g_x = naive_channel_norm(x, grad)
    torch.testing.assert_close(channel_norm(x), out, rtol=1e-12, atol=1e-12)
    x.requires_grad_(True)
    (got,) = torch.autograd.grad(channel_norm(x), x, grad)
    torch.testing.assert_close(got, g_x, rtol=1e-12, atol=1e-12)
    assert torch.equal(got[:, :, 1, 2], torch.zeros(2, 3, dtype=torch.float64))
    torch.testing.assert_close(
        channel_norm_backward_reference(grad, x.detach(), out), g_x, rtol=1e-12, atol=1e-12
    )


def test_autograd_of_reference_agrees():
    torch.manual_seed(1)
    x = torch.randn(2, 4, 3, 5, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(2, 1, 3, 5, dtype=torch.float64)
    (expected,) = torch.autograd.grad(channel_norm_reference(x), x, grad)
    (got,) = torch.autograd.grad(channel_norm(x), x, grad)
    torch.testing.assert_close(got, expected, rtol=1e-7, atol=1e-12)


def test_gradcheck_float64():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(channel_norm, (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device, dtype):
    torch.manual_seed(3)
    x = torch.randn(2, 3, 4, 5, dtype=dtype).to(device).requires_grad_(True)
    torch.library.opcheck(torch.ops.tcvc.channel_norm.default, (x,))
    norm = channel_norm(x.detach())
    grad = torch.randn_like(norm)
    torch.library.opcheck(torch.ops.tcvc.channel_norm_backward.default, (grad, x.detach(), norm))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_accumulates_in_float32(dtype):
    x = torch.full((1, 4096, 1, 1), 1.0).to(dtype)
    # float32 accumulation: exactly 64 (a half/bf16 running sum would stall or round).
    assert channel_norm(x).item() == 64.0
    assert channel_norm(x).dtype == dtype


def test_bad_input_raises():
    with pytest.raises(ValueError, match="B×C×H×W"):
        channel_norm(torch.randn(3, 4, 5))


# ---------------------------------------------------------------------------------------------
# the CUDA kernels: emulated on the CPU, compiled on a GPU
# ---------------------------------------------------------------------------------------------


def test_kernel_emulation(emulator, tmp_path):
    torch.manual_seed(2)
    b, c, h, w = 2, 5, 17, 19
    x = torch.randn(b, c, h, w, dtype=torch.float64)
    x[:, :, 3, 4] = 0
    (out,) = run_emulated(emulator, tmp_path, "norm_fwd", [b, c, h, w], [x], 1)
    norm = channel_norm_reference(x)
    assert_emulated_close(out, norm)
    grad = torch.randn_like(norm)
    (g_x,) = run_emulated(emulator, tmp_path, "norm_bwd", [b, c, h, w], [grad, x, norm], 1)
    assert_emulated_close(g_x, channel_norm_backward_reference(grad, x, norm))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("device", DEVICES)
def test_op_matches_reference(device, dtype):
    """The op (on CUDA the compiled kernels) against the reference, forward and backward."""
    torch.manual_seed(4)
    image = torch.randn(2, 5, 33, 47, dtype=torch.float64).to(dtype).double()
    x = image.to(device).to(dtype).requires_grad_(True)
    norm = channel_norm(x)
    expected = channel_norm_reference(image)
    assert_relative_close(norm.cpu(), expected, dtype)
    g = torch.randn_like(expected).to(dtype).double()
    norm.backward(g.to(device).to(dtype))
    assert_relative_close(
        x.grad.cpu(), channel_norm_backward_reference(g, image, norm.detach().cpu().double()), dtype
    )
