"""Oracles and stand-ins for the networks: the SIGGRAPH'17 forward written with
torch.nn.functional (``functional_idc``), a clip-sensitive stand-in network (``clip_net``), and
the comparisons that the exactness and bf16 tests share."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def functional_idc(
    w: dict[str, torch.Tensor], L: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """SIGGRAPH'17 forward written with torch.nn.functional from the facts (zero hints)."""

    def conv(x, name, dilation=1):
        return F.conv2d(
            x, w[f"{name}.weight"], w[f"{name}.bias"], padding=dilation, dilation=dilation
        )

    def up(x, name):
        return F.conv_transpose2d(x, w[f"{name}.weight"], w[f"{name}.bias"], stride=2, padding=1)

    def bn(x, name):  # inference BatchNorm, eps 1e-5 (PyTorch's kernel: its round-off)
        return F.batch_norm(
            x,
            w[f"{name}.running_mean"],
            w[f"{name}.running_var"],
            w[f"{name}.weight"],
            w[f"{name}.bias"],
            training=False,
            eps=1e-5,
        )

    def block(x, name, convs, dilation=1):
        for index in range(convs):
            x = F.relu(conv(x, f"{name}.{2 * index}", dilation))
        return bn(x, f"{name}.{2 * convs}")

    x = torch.cat([L, torch.zeros_like(L).repeat(1, 3, 1, 1)], dim=1)
    c1 = block(x, "model1", 2)
    c2 = block(c1[:, :, ::2, ::2], "model2", 2)
    c3 = block(c2[:, :, ::2, ::2], "model3", 3)
    c4 = block(c3[:, :, ::2, ::2], "model4", 3)
    c7 = block(block(block(c4, "model5", 3, 2), "model6", 3, 2), "model7", 3)
    x = F.relu(up(c7, "model8up.0") + conv(c3, "model3short8.0"))
    c8 = bn(F.relu(conv(F.relu(conv(x, "model8.1")), "model8.3")), "model8.5")
    x = F.relu(up(c8, "model9up.0") + conv(c2, "model2short9.0"))
    c9 = bn(F.relu(conv(x, "model9.1")), "model9.3")
    x = F.relu(up(c9, "model10up.0") + conv(c1, "model1short10.0"))
    feature = F.leaky_relu(conv(x, "model10.1"), 0.2)
    ab = torch.tanh(F.conv2d(feature, w["model_out.0.weight"], w["model_out.0.bias"]))
    return ab, feature


def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


# ---- exactness ----------------------------------------------------------------------------------
# With the same flows, every path equals the original to float32 round-off (TOLERANCE). FlowNet2
# itself is exact on its own (tests/nets/test_flownet2.py), but with generated weights its flow
# moves by ~1e-4 px when only the batch size or the thread count changes (float32 sums in another
# order), and warping turns that into up to ~5e-5 of ab / 110: end to end, paths that batch flows
# differently agree to FLOW_ROUNDOFF.
FLOW_ROUNDOFF = 2e-4


def assert_bf16_close(half: torch.Tensor, full: torch.Tensor) -> None:
    """bf16 autocast against float32, B×T×2×H×W ab / 110. Measured on CPU with these weights:
    the anchors (IDC alone) within 0.011; the inner frames 4.5 % mean relative difference, 99 %
    of values within 0.093 and a few up to 0.33, where bf16's flows (0.1 px off on average)
    move high-contrast edges of the synthetic features."""
    assert half.shape == full.shape
    difference = (half.float() - full).abs()
    assert difference[:, [0, -1]].max() < 0.03
    assert difference.mean() < 0.1 * full.abs().mean()
    assert difference.flatten().quantile(0.99) < 0.2


def clip_net(L):
    """A stand-in network whose every output depends on the whole clip and each frame's place
    in it: a frame coloured in the wrong clip, or out of order, gets another ab."""
    position = torch.arange(L.shape[1], dtype=L.dtype).view(1, -1, 1, 1, 1).expand_as(L)
    return torch.cat([torch.tanh(L * 2 + L.mean(dim=1, keepdim=True)), position / 20], dim=2)
