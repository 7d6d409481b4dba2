"""tcvc::correlation: reference vs naive loops, FlowNetC's formula, backward, opcheck, gradcheck."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ops import correlation
from ops.reference import (
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
    """The issue's definition: channel k ↔ (dy, dx) = (2(k//21 - 10), 2(k%21 - 10)), mean over C."""
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
def test_opcheck(dtype):
    torch.manual_seed(4)
    f1 = torch.randn(2, 3, 6, 5, dtype=dtype, requires_grad=True)
    f2 = torch.randn(2, 3, 6, 5, dtype=dtype, requires_grad=True)
    args = (f1, f2, 4, 1, 4, 1, 2)
    torch.library.opcheck(torch.ops.tcvc.correlation.default, args)
    grad = torch.randn(2, 25, 6, 5, dtype=dtype)
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
