"""tcvc::correlation: reference vs naive loops, FlowNetC's formula, backward, opcheck, gradcheck;
the kernels of ops/csrc/correlation_kernels.cuh emulated on the CPU and, on a GPU, compiled."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ops_testing import DEVICES, assert_emulated_close, assert_relative_close, run_emulated

from ops import correlation
from ops._build import CSRC_DIR
from ops.correlation import (
    correlation_backward_reference,
    correlation_output_shape,
    correlation_reference,
)

FLOWNETC = {"pad_size": 20, "kernel_size": 1, "max_displacement": 20, "stride1": 1, "stride2": 2}

# (pad_size, kernel_size, max_displacement, stride1, stride2): FlowNetC scaled down, no padding,
# more padding than displacement, a strided output, max_displacement not a multiple of stride2,
# windows (odd and even) with strides.
SETTINGS = [
    (4, 1, 4, 1, 2),
    (0, 1, 3, 1, 1),
    (6, 1, 2, 1, 1),
    (3, 1, 3, 2, 2),
    (2, 1, 4, 3, 3),
    (3, 3, 3, 1, 2),
    (5, 3, 4, 2, 2),
    (2, 2, 2, 1, 1),
]

# (pad_size, max_displacement, stride1, stride2) with kernel_size 1, inside the CUDA kernel's
# range (reach ≤ 32, stride1 ≤ 2): FlowNetC, scaled-down FlowNetC, no padding, more padding than
# displacement, strided outputs, max_displacement not a multiple of stride2, a single offset.
KERNEL_SETTINGS = [
    (20, 20, 1, 2),
    (4, 4, 1, 2),
    (0, 3, 1, 1),
    (6, 2, 1, 1),
    (3, 3, 2, 2),
    (2, 4, 2, 3),
    (0, 0, 1, 1),
]


def _params(setting) -> dict[str, int]:
    keys = ("pad_size", "kernel_size", "max_displacement", "stride1", "stride2")
    return dict(zip(keys, setting))


def naive_correlation(f1, f2, p):
    """Loop transcription of NVIDIA's kernel on its zero-padded buffers (float64 numpy).

    Returns (forward, vjp) where vjp(grad) gives the two input gradients by the same loops.
    The buffers get an extra zero margin where the original would read outside its own.
    """
    a, b = f1.double().numpy(), f2.double().numpy()
    n_b, c, h, w = a.shape
    pad, k, md, s1, s2 = (
        p[key] for key in ("pad_size", "kernel_size", "max_displacement", "stride1", "stride2")
    )
    r = (k - 1) // 2
    rad = md // s2
    size = 2 * rad + 1
    out_h = math.ceil((h + 2 * pad - 2 * (r + md)) / s1)
    out_w = math.ceil((w + 2 * pad - 2 * (r + md)) / s1)
    m = pad + md + k  # buffer margin: the padding plus room for undefined reads
    pa = np.zeros((n_b, c, h + 2 * m, w + 2 * m))
    pb = np.zeros_like(pa)
    pa[:, :, m : m + h, m : m + w] = a
    pb[:, :, m : m + h, m : m + w] = b
    off = m - pad  # padded-buffer coordinate -> our buffer coordinate
    taps = []  # (out index, f1 index, f2 index)
    for oy in range(out_h):
        for ox in range(out_w):
            y1 = oy * s1 + md + off
            x1 = ox * s1 + md + off
            for tj in range(size):
                for ti in range(size):
                    y2 = y1 + (tj - rad) * s2
                    x2 = x1 + (ti - rad) * s2
                    for j in range(-r, r + 1):
                        for i in range(-r, r + 1):
                            taps.append(
                                ((tj * size + ti, oy, ox), (y1 + j, x1 + i), (y2 + j, x2 + i))
                            )
    out = np.zeros((n_b, size * size, out_h, out_w))
    norm = k * k * c
    for (d, oy, ox), (y1, x1), (y2, x2) in taps:
        out[:, d, oy, ox] += (pa[:, :, y1, x1] * pb[:, :, y2, x2]).sum(1) / norm

    def vjp(grad):
        g = grad.double().numpy()
        ga, gb = np.zeros_like(pa), np.zeros_like(pb)
        for (d, oy, ox), (y1, x1), (y2, x2) in taps:
            ga[:, :, y1, x1] += g[:, d, oy, ox][:, None] * pb[:, :, y2, x2] / norm
            gb[:, :, y2, x2] += g[:, d, oy, ox][:, None] * pa[:, :, y1, x1] / norm
        crop = (slice(None), slice(None), slice(m, m + h), slice(m, m + w))
        return torch.from_numpy(ga[crop]), torch.from_numpy(gb[crop])

    return torch.from_numpy(out), vjp


def flownetc_formula(f1, f2):
    """FlowNetC's cost volume as FlowNet2's code defines it: channel k ↔ (dy, dx) =
    (2(k//21 - 10), 2(k%21 - 10)), mean over C."""
    b, _, h, w = f1.shape
    out = torch.zeros(b, 441, h, w, dtype=f1.dtype)
    for k in range(441):
        dy, dx = 2 * (k // 21 - 10), 2 * (k % 21 - 10)
        ys, ye = max(0, -dy), min(h, h - dy)
        xs, xe = max(0, -dx), min(w, w - dx)
        if ys < ye and xs < xe:
            prod = f1[:, :, ys:ye, xs:xe] * f2[:, :, ys + dy : ye + dy, xs + dx : xe + dx]
            out[:, k, ys:ye, xs:xe] = prod.mean(1)
    return out


@pytest.mark.parametrize("setting", SETTINGS, ids=str)
def test_matches_naive_loops(setting):
    p = _params(setting)
    torch.manual_seed(0)
    f1 = torch.randn(2, 3, 7, 9, dtype=torch.float64)
    f2 = torch.randn(2, 3, 7, 9, dtype=torch.float64)
    expected, vjp = naive_correlation(f1, f2, p)
    out = correlation(f1, f2, **p)
    assert out.shape == expected.shape == correlation_output_shape(f1.shape, **p)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(out)
    g1, g2 = correlation_backward_reference(grad, f1, f2, **p)
    n1, n2 = vjp(grad)
    torch.testing.assert_close(g1, n1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g2, n2, rtol=1e-12, atol=1e-12)


def test_flownetc_setting_matches_formula():
    torch.manual_seed(1)
    # Wider than the displacement range one way, narrower the other; several column tiles.
    f1 = torch.randn(2, 5, 9, 70, dtype=torch.float64)
    f2 = torch.randn(2, 5, 9, 70, dtype=torch.float64)
    out = correlation(f1, f2)  # FlowNetC defaults
    assert out.shape == (2, 441, 9, 70)
    torch.testing.assert_close(out, flownetc_formula(f1, f2), rtol=1e-12, atol=1e-12)


def test_flownetc_known_values():
    # Constant maps: every displacement that stays inside sees 1·2 = 2 per channel.
    f1 = torch.ones(1, 4, 5, 5)
    f2 = torch.full((1, 4, 5, 5), 2.0)
    out = correlation(f1, f2)
    centre = 220  # dy = dx = 0
    assert torch.equal(out[0, centre], torch.full((5, 5), 2.0))
    # dx = +2 (k = 221): the last two columns look outside.
    assert torch.equal(out[0, 221, :, :3], torch.full((5, 3), 2.0))
    assert torch.equal(out[0, 221, :, 3:], torch.zeros(5, 2))
    # dy = -20: always outside a 5-row map.
    assert torch.equal(out[0, :21], torch.zeros(21, 5, 5))


def test_autograd_matches_explicit_backward():
    """Autograd through the reference forward and the op's backward (explicit) agree."""
    torch.manual_seed(2)
    p = _params((5, 3, 4, 2, 2))
    f1 = torch.randn(2, 3, 11, 8, dtype=torch.float64, requires_grad=True)
    f2 = torch.randn(2, 3, 11, 8, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(correlation_output_shape(f1.shape, **p), dtype=torch.float64)
    a1, a2 = torch.autograd.grad(correlation_reference(f1, f2, **p), (f1, f2), grad)
    o1, o2 = torch.autograd.grad(correlation(f1, f2, **p), (f1, f2), grad)
    torch.testing.assert_close(o1, a1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(o2, a2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("setting", [(4, 1, 4, 1, 2), (3, 3, 3, 2, 2)], ids=str)
def test_gradcheck_float64(setting):
    p = _params(setting)
    torch.manual_seed(3)
    f1 = torch.randn(2, 2, 5, 7, dtype=torch.float64, requires_grad=True)
    f2 = torch.randn(2, 2, 5, 7, dtype=torch.float64, requires_grad=True)
    # Windows (kernel_size 3) make the full Jacobian slow to build; fast mode checks projections.
    fast = p["kernel_size"] > 1
    assert torch.autograd.gradcheck(lambda a, b: correlation(a, b, **p), (f1, f2), fast_mode=fast)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device, dtype):
    torch.manual_seed(4)
    f1 = torch.randn(2, 3, 6, 5, dtype=dtype).to(device).requires_grad_(True)
    f2 = torch.randn(2, 3, 6, 5, dtype=dtype).to(device).requires_grad_(True)
    args = (f1, f2, 4, 1, 4, 1, 2)
    torch.library.opcheck(torch.ops.tcvc.correlation.default, args)
    grad = torch.randn(2, 25, 6, 5, dtype=dtype).to(device)
    torch.library.opcheck(
        torch.ops.tcvc.correlation_backward.default, (grad, f1.detach(), f2.detach(), 4, 1, 4, 1, 2)
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_matches_float32(dtype):
    torch.manual_seed(5)
    f1 = torch.randn(2, 16, 7, 9)
    f2 = torch.randn(2, 16, 7, 9)
    expected = correlation(f1, f2, pad_size=4, max_displacement=4)
    out = correlation(f1.to(dtype), f2.to(dtype), pad_size=4, max_displacement=4)
    assert out.dtype == dtype
    # Only the rounding of inputs and output: float32 accumulation.
    exact = correlation(f1.to(dtype).float(), f2.to(dtype).float(), pad_size=4, max_displacement=4)
    torch.testing.assert_close(out.float(), exact.to(dtype).float(), rtol=0, atol=0)
    torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=2e-2)


def test_compiles_with_fake_tensors():
    f1 = torch.randn(1, 3, 8, 8)
    f2 = torch.randn(1, 3, 8, 8)
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        out = correlation(
            mode.from_tensor(f1), mode.from_tensor(f2), pad_size=2, max_displacement=2, stride2=1
        )
    assert out.shape == (1, 25, 8, 8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stride2": 0}, "stride2"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"pad_size": -1}, "pad_size"),
        ({"pad_size": 0, "max_displacement": 8}, "empty output"),
    ],
)
def test_invalid_settings_raise(kwargs, match):
    f = torch.randn(1, 2, 9, 9)
    with pytest.raises(ValueError, match=match):
        correlation(f, f, **{"pad_size": 4, "max_displacement": 4, **kwargs})


def test_mismatched_inputs_raise():
    with pytest.raises(ValueError, match="same shape"):
        correlation(torch.randn(1, 2, 8, 8), torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="4-D"):
        correlation(torch.randn(2, 8, 8), torch.randn(2, 8, 8))


# ---------------------------------------------------------------------------------------------
# the CUDA kernels: emulated on the CPU, compiled on a GPU
# ---------------------------------------------------------------------------------------------


def test_python_routing_mirrors_kernel_limits():
    """ops/correlation.py sends to the kernel exactly the settings correlation_shape.h accepts."""
    import re

    from ops.correlation import _CORR_MAX_REACH, _CORR_MAX_STRIDE1, _correlation_kernel_covers

    header = (CSRC_DIR / "correlation_shape.h").read_text()
    reach = int(re.search(r"kMaxReach = (\d+);", header).group(1))
    stride1 = int(re.search(r"kMaxStride1 = (\d+);", header).group(1))
    assert (_CORR_MAX_REACH, _CORR_MAX_STRIDE1) == (reach, stride1)
    covers = _correlation_kernel_covers
    assert covers(torch.float32, 1, 20, 1, 2)  # FlowNetC
    assert covers(torch.bfloat16, 1, reach, stride1, 1)
    assert not covers(torch.float32, 1, reach + 1, 1, 1)
    assert not covers(torch.float32, 3, 20, 1, 2)
    assert not covers(torch.float64, 1, 20, 1, 2)


def kernel_params(setting: tuple[int, int, int, int]) -> dict[str, int]:
    """A ``KERNEL_SETTINGS`` entry (pad, max displacement, stride1, stride2) as the op's
    keyword arguments (kernel size 1, the compiled kernel's)."""
    pad, md, s1, s2 = setting
    return {"pad_size": pad, "kernel_size": 1, "max_displacement": md, "stride1": s1, "stride2": s2}


@pytest.mark.parametrize("setting", KERNEL_SETTINGS, ids=str)
def test_kernel_emulation(emulator, tmp_path, setting):
    pad, md, s1, s2 = setting
    params = kernel_params(setting)
    torch.manual_seed(0)
    # 40 channels: two forward chunks (32 + 8), one partial grad-input1 chunk, two grad-input2
    # chunks; 37 columns: a full and a partial column tile.
    size = (2, 40, 9, 37) if md >= 20 else (2, 40, 7, 37)
    f1 = torch.randn(size, dtype=torch.float64)
    f2 = torch.randn(size, dtype=torch.float64)
    expected = correlation_reference(f1, f2, **params)
    ints = [*size, pad, md, s1, s2]
    (out,) = run_emulated(emulator, tmp_path, "corr_fwd", ints, [f1.float(), f2.float()], 1)
    assert_emulated_close(out, expected)
    grad = torch.randn_like(expected)
    g1, g2 = correlation_backward_reference(grad, f1, f2, **params)
    got1, got2 = run_emulated(
        emulator, tmp_path, "corr_bwd", ints, [grad.float(), f1.float(), f2.float()], 2
    )
    assert_emulated_close(got1, g1)
    assert_emulated_close(got2, g2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("setting", KERNEL_SETTINGS, ids=str)
@pytest.mark.parametrize("device", DEVICES)
def test_op_matches_reference(device, setting, dtype):
    """The op (on CUDA the compiled kernels) against the float64 reference, forward and backward."""
    params = kernel_params(setting)
    torch.manual_seed(3)
    f1 = torch.randn(2, 67, 29, 45, dtype=torch.float64)
    f2 = torch.randn(2, 67, 29, 45, dtype=torch.float64)
    # The reference on the dtype-rounded inputs: only accumulation and output rounding differ.
    a, b = f1.to(dtype).double(), f2.to(dtype).double()
    expected = correlation_reference(a, b, **params)
    ga = a.to(device).to(dtype).requires_grad_(True)
    gb = b.to(device).to(dtype).requires_grad_(True)
    out = correlation(ga, gb, **params)
    assert out.dtype == dtype
    assert_relative_close(out.cpu(), expected, dtype)
    grad = torch.randn_like(expected).to(dtype).double()
    e1, e2 = correlation_backward_reference(grad, a, b, **params)
    out.backward(grad.to(device).to(dtype))
    assert_relative_close(ga.grad.cpu(), e1, dtype)
    assert_relative_close(gb.grad.cpu(), e2, dtype)
