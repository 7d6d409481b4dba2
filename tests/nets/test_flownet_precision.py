"""``TCVCNet.flownet_fp32``: under bf16 autocast FlowNet2 can run in float32 all the same, so
the flows the heads warp with are the full-precision ones (the heads stay bf16)."""

from __future__ import annotations

import torch

from tcvc.nets import TCVCNet


def test_flownet_fp32_gives_the_float32_flow_under_bf16_autocast():
    torch.manual_seed(0)
    net = TCVCNet().eval()
    L_a, L_b = torch.rand(2, 1, 1, 64, 64) - 0.5
    with torch.no_grad():
        reference = net.estimate_flow(L_a, L_b)  # float32 throughout
        with torch.autocast("cpu", dtype=torch.bfloat16):
            rounded = net.estimate_flow(L_a, L_b)
            net.flownet_fp32 = True
            full = net.estimate_flow(L_a, L_b)
    assert full.dtype == torch.float32
    assert torch.equal(full, reference)
    # without it, FlowNet2's convolutions run in bf16: the flow is another one
    assert rounded.dtype == torch.bfloat16
    assert (rounded.float() - reference).abs().max() > 0
