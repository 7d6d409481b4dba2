"""tcvc.losses: SRL and the total loss on hand-computed cases, the original's loop, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from tcvc.losses import PixelLoss, SRLoss, TCVCLoss, srl_flow_pairs

E = math.exp


def zero_flows(batch: int, num_frames: int, height: int, width: int, steps=(1, 2)) -> dict:
    return {
        pair: torch.zeros(batch, 2, height, width) for pair in srl_flow_pairs(num_frames, steps)
    }


def grid_sample_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Independent warp: grid_sample at (x + u, y + v), bilinear, border, align_corners=True."""
    _, _, height, width = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=image.dtype),
        torch.arange(width, dtype=image.dtype),
        indexing="ij",
    )
    x = (xs + flow[:, 0]) / (width - 1) * 2 - 1
    y = (ys + flow[:, 1]) / (height - 1) * 2 - 1
    grid = torch.stack([x, y], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


# -- flow pairs --------------------------------------------------------------------------------


def test_flow_pairs_cover_every_t_with_t_plus_k_inside():
    assert srl_flow_pairs(4, (1, 2)) == [(1, 0), (2, 1), (3, 2), (2, 0), (3, 1)]
    assert srl_flow_pairs(12, [1, 2]) == [(t + 1, t) for t in range(11)] + [
        (t + 2, t) for t in range(10)
    ]
    assert srl_flow_pairs(3, (3,)) == []


@pytest.mark.parametrize("steps", [(), (0,), (1, 1), (-1, 2)])
def test_bad_steps_raise(steps):
    with pytest.raises(ValueError, match="distinct positive"):
        srl_flow_pairs(5, steps)
    with pytest.raises(ValueError, match="distinct positive"):
        SRLoss(steps=steps)


# -- hand-computed values ----------------------------------------------------------------------


def tiny_clip() -> tuple[torch.Tensor, torch.Tensor]:
    """T = 3, B = 1, 2×2 frames; the expected losses below are worked out from these numbers."""
    L = torch.zeros(1, 3, 1, 2, 2)
    L[0, 1, 0, 0, 1] = 0.1
    L[0, 2, 0, 1, 0] = 0.2
    ab = torch.zeros(1, 3, 2, 2, 2)
    ab[0, 1, 0, 0, 0] = 1.0  # frame 1, a at (0, 0)
    ab[0, 1, 1, 0, 1] = 1.0  # frame 1, b at (0, 1)
    ab[0, 2, 0, 1, 0] = 1.0  # frame 2, a at (1, 0)
    ab[0, 2, 1, 1, 1] = 2.0  # frame 2, b at (1, 1)
    return ab, L


# Zero flow: warp is the identity, m = exp(−50 ΔL²), SRL_k = Σ (m Δab)² / (pairs · 2 · 4).
# k = 1, pair (1, 0): ΔL = 0.1 at (0,1) → m = e^−0.5 there. Δa(0,0) = 1 (m 1) → 1;
#   Δb(0,1) = 1 (m e^−0.5) → e^−1.
# k = 1, pair (2, 1): ΔL = −0.1 at (0,1), 0.2 at (1,0) → m = e^−0.5, e^−2. Δa(0,0) = −1 → 1;
#   Δa(1,0) = 1 → e^−4; Δb(0,1) = −1 → e^−1; Δb(1,1) = 2 → 4.
# k = 2, pair (2, 0): ΔL = 0.2 at (1,0) → e^−2. Δa(1,0) = 1 → e^−4; Δb(1,1) = 2 → 4.
EXPECTED_SRL_1 = (1 + E(-1) + 1 + E(-4) + E(-1) + 4) / 16
EXPECTED_SRL_2 = (E(-4) + 4) / 8


def test_srl_hand_computed_zero_flow():
    ab, L = tiny_clip()
    terms = SRLoss(steps=(1, 2), alpha=50.0)(ab, L, zero_flows(1, 3, 2, 2))
    assert list(terms) == ["srl_1", "srl_2"]
    assert terms["srl_1"].item() == pytest.approx(EXPECTED_SRL_1, rel=1e-6)
    assert terms["srl_2"].item() == pytest.approx(EXPECTED_SRL_2, rel=1e-6)


def test_srl_alpha_zero_is_plain_mse_of_differences():
    ab, L = tiny_clip()
    terms = SRLoss(steps=(1, 2), alpha=0.0)(ab, L, zero_flows(1, 3, 2, 2))
    assert terms["srl_1"].item() == pytest.approx((1 + 1 + 1 + 1 + 1 + 4) / 16)
    assert terms["srl_2"].item() == pytest.approx((1 + 4) / 8)


def test_srl_warps_source_onto_target_grid_with_border_clamp():
    # One row of 3 pixels; F(1, 0) = +0.5 px: warp(ab_0)[x] = ab_0 at x + 0.5, clamped at the end:
    # a_0 = [0, 2, 4] → [1, 3, 4].
    L = torch.zeros(1, 2, 1, 1, 3)
    ab = torch.zeros(1, 2, 2, 1, 3)
    ab[0, 0, 0] = torch.tensor([0.0, 2.0, 4.0])
    ab[0, 1, 0] = torch.tensor([1.0, 3.0, 4.0])
    flow = torch.zeros(1, 2, 1, 3)
    flow[:, 0] = 0.5
    loss = SRLoss(steps=(1,))
    assert loss(ab, L, {(1, 0): flow})["srl_1"].item() == pytest.approx(0.0, abs=1e-12)
    ab[0, 1] = 0.0
    assert loss(ab, L, {(1, 0): flow})["srl_1"].item() == pytest.approx((1 + 9 + 16) / 6)


def test_srl_flicker_is_positive_with_known_value():
    base = torch.rand(2, 1, 2, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.5
    sign = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0]).view(1, 5, 1, 1, 1)
    ab = base + 0.1 * sign  # every other frame ±0.1: k = 1 differences 0.2, k = 2 none
    L = torch.full((2, 5, 1, 16, 16), 0.1)  # static L: the mask is 1
    terms = SRLoss()(ab, L, zero_flows(2, 5, 16, 16))
    assert terms["srl_1"].item() == pytest.approx(0.04, rel=1e-5)
    assert terms["srl_2"].item() == pytest.approx(0.0, abs=1e-12)


# -- a moving scene with its true flow ---------------------------------------------------------


def translating_clip(num_frames: int, shift: int, *, height: int = 24, width: int = 32):
    """Frames cut from a wider canvas, the scene moving right by `shift` px a frame.

    frame_t(x) = canvas(x + (T−1−t)·shift), so frame_{t+k}(x) = frame_t(x − k·shift): the flow
    from frame t+k's grid to frame t is u = −k·shift. The canvas is constant on its left part,
    which is what the warp's border clamp fills in at the left edge.
    """
    generator = torch.Generator().manual_seed(1)
    span = (num_frames - 1) * shift
    canvas_L = torch.rand(2, 1, height, width + span, generator=generator) - 0.5
    canvas_ab = torch.rand(2, 2, height, width + span, generator=generator) * 2 - 1
    canvas_L[..., : span + 1] = 0.2
    canvas_ab[..., : span + 1] = 0.3
    offsets = [(num_frames - 1 - t) * shift for t in range(num_frames)]
    L = torch.stack([canvas_L[..., o : o + width] for o in offsets], dim=1)
    ab = torch.stack([canvas_ab[..., o : o + width] for o in offsets], dim=1)
    return ab, L


def test_srl_is_zero_for_a_translation_with_its_true_flow():
    num_frames, shift = 4, 2
    ab, L = translating_clip(num_frames, shift)

    def true_flow(target: int, source: int) -> torch.Tensor:
        flow = torch.zeros(2, 2, 24, 32)
        flow[:, 0] = -(target - source) * shift
        return flow

    terms = SRLoss()(ab, L, true_flow)
    assert terms["srl_1"].item() < 1e-12 and terms["srl_2"].item() < 1e-12
    # The same clip with a wrong (zero) flow is penalised: the test can fail.
    wrong = SRLoss()(ab, L, zero_flows(2, num_frames, 24, 32))
    assert wrong["srl_1"].item() > 1e-3 and wrong["srl_2"].item() > 1e-3


# -- the original's definition -----------------------------------------------------------------


def original_srl(ab, L, flows, alpha=50.0):
    """The released code's terms, loop by loop: k = 1 for t = 0 … T−2 (the forward propagation
    loop), k = 2 for t = 0 … T−3; frames stacked, then nn.MSELoss; warp by grid_sample."""
    num_frames = ab.shape[1]
    out = {}
    for k, sources in ((1, range(num_frames - 1)), (2, range(num_frames - 2))):
        warped, masks = [], []
        for t in sources:
            flow = flows[(t + k, t)]
            warp_L = grid_sample_warp(L[:, t], flow)
            masks.append(
                torch.exp(-alpha * torch.sum(L[:, t + k] - warp_L, dim=1).pow(2)).unsqueeze(1)
            )
            warped.append(grid_sample_warp(ab[:, t], flow))
        mask, warped = torch.stack(masks, dim=1), torch.stack(warped, dim=1)
        out[f"srl_{k}"] = torch.nn.MSELoss()(mask * ab[:, k:], mask * warped)
    return out


def test_srl_matches_the_original_loop_with_random_flows():
    generator = torch.Generator().manual_seed(2)
    batch, num_frames, height, width = 2, 5, 8, 10
    ab = torch.rand(batch, num_frames, 2, height, width, generator=generator, dtype=torch.float64)
    L = torch.rand(batch, num_frames, 1, height, width, generator=generator, dtype=torch.float64)
    L = 0.1 * L  # small ΔL so the mask takes values all over (0, 1]
    flows = {
        pair: 6 * torch.rand(batch, 2, height, width, generator=generator, dtype=torch.float64) - 3
        for pair in srl_flow_pairs(num_frames, (1, 2))
    }
    expected = original_srl(ab, L, flows)
    ours = SRLoss()(ab, L, flows)
    ours_fn = SRLoss()(ab, L, lambda target, source: flows[(target, source)])
    for key in ("srl_1", "srl_2"):
        assert ours[key].item() == pytest.approx(expected[key].item(), rel=1e-10)
        assert ours_fn[key].item() == pytest.approx(expected[key].item(), rel=1e-10)
        assert 0 < expected[key].item()


# -- gradients ---------------------------------------------------------------------------------


def test_gradients_reach_both_sides_not_flow_or_L():
    generator = torch.Generator().manual_seed(3)
    ab = torch.rand(1, 4, 2, 6, 6, generator=generator).requires_grad_()
    L = (0.05 * torch.rand(1, 4, 1, 6, 6, generator=generator)).requires_grad_()
    flows = {
        pair: torch.rand(1, 2, 6, 6, generator=generator).requires_grad_()
        for pair in srl_flow_pairs(4, (1, 2))
    }
    total = TCVCLoss()(ab, L, flows)["loss"]
    total.backward()
    assert L.grad is None
    assert all(flow.grad is None for flow in flows.values())
    # Frame 0 is only ever warped (source), frame 3 only ever a target: both get gradient.
    per_frame = ab.grad.abs().sum(dim=(0, 2, 3, 4))
    assert (per_frame > 0).all()


def test_gradient_is_antisymmetric_for_zero_flow():
    # T = 2, zero flow, mask 1: loss = mean((ab1 − ab0)²), d/d ab1 = −d/d ab0 = 2 (ab1 − ab0) / N.
    ab = torch.rand(1, 2, 2, 3, 3, generator=torch.Generator().manual_seed(4)).requires_grad_()
    L = torch.zeros(1, 2, 1, 3, 3)
    SRLoss(steps=(1,))(ab, L, zero_flows(1, 2, 3, 3, (1,)))["srl_1"].backward()
    expected = 2 * (ab[0, 1] - ab[0, 0]).detach() / 18
    torch.testing.assert_close(ab.grad[0, 1], expected)
    torch.testing.assert_close(ab.grad[0, 0], -expected)


def test_gradcheck_float64():
    generator = torch.Generator().manual_seed(5)
    ab = torch.rand(1, 3, 2, 4, 5, generator=generator, dtype=torch.float64).requires_grad_()
    L = 0.1 * torch.rand(1, 3, 1, 4, 5, generator=generator, dtype=torch.float64)
    flows = {
        pair: 1.3 * torch.rand(1, 2, 4, 5, generator=generator, dtype=torch.float64) - 0.6
        for pair in srl_flow_pairs(3, (1, 2))
    }
    loss = SRLoss()

    def srl_sum(x):
        terms = loss(x, L, flows)
        return terms["srl_1"] + terms["srl_2"]

    assert torch.autograd.gradcheck(srl_sum, (ab,))


# -- the total ---------------------------------------------------------------------------------


def test_total_combines_weighted_terms():
    ab, L = tiny_clip()
    target = torch.zeros_like(ab)
    flows = zero_flows(1, 3, 2, 2)
    abs_sum, sq_sum = 1 + 1 + 1 + 2, 1 + 1 + 1 + 4  # |ab| and ab² over the 24 elements
    l1 = TCVCLoss(srl_weight=0.5, pixel_weight=2.0, pixel_type="l1")(ab, L, flows, ab_target=target)
    assert l1["pixel"].item() == pytest.approx(abs_sum / 24)
    assert l1["loss"].item() == pytest.approx(
        0.5 * (EXPECTED_SRL_1 + EXPECTED_SRL_2) + 2.0 * abs_sum / 24, rel=1e-6
    )
    mse = TCVCLoss(pixel_weight=1.0, pixel_type="mse")(ab, L, flows, ab_target=target)
    assert mse["pixel"].item() == pytest.approx(sq_sum / 24)
    assert list(mse) == ["loss", "srl_1", "srl_2", "pixel"]


def test_pixel_reported_but_not_added_at_weight_zero():
    ab, L = tiny_clip()
    flows = zero_flows(1, 3, 2, 2)
    loss = TCVCLoss()  # the released config: SRL only
    no_target = loss(ab, L, flows)
    assert set(no_target) == {"loss", "srl_1", "srl_2"}
    assert no_target["loss"].item() == pytest.approx(EXPECTED_SRL_1 + EXPECTED_SRL_2, rel=1e-6)
    with_target = loss(ab, L, flows, ab_target=torch.ones_like(ab))
    assert with_target["pixel"].item() > 0
    assert with_target["loss"].item() == pytest.approx(no_target["loss"].item())


def test_pixel_weight_without_target_raises():
    ab, L = tiny_clip()
    with pytest.raises(ValueError, match="no ab_target"):
        TCVCLoss(pixel_weight=1.0)(ab, L, zero_flows(1, 3, 2, 2))


def test_config_style_arguments():
    cfg = OmegaConf.create(
        {
            "srl_weight": 1.0,
            "srl_steps": [1, 2],
            "srl_alpha": 50.0,
            "pixel_weight": 0.0,
            "pixel_type": "l1",
        }
    )
    loss = TCVCLoss(**cfg)
    assert loss.srl_steps == (1, 2)
    assert srl_flow_pairs(3, loss.srl_steps) == [(1, 0), (2, 1), (2, 0)]
    single = TCVCLoss(srl_steps=[1])
    ab, L = tiny_clip()
    assert set(single(ab, L, zero_flows(1, 3, 2, 2, (1,)))) == {"loss", "srl_1"}


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ab_shape", "L_shape", "match"),
    [
        ((1, 3, 3, 4, 4), (1, 3, 1, 4, 4), "ab must be"),
        ((3, 2, 4, 4), (3, 1, 4, 4), "ab must be"),
        ((1, 3, 2, 4, 4), (1, 3, 1, 4, 5), "L must be"),
        ((1, 3, 2, 4, 4), (1, 2, 1, 4, 4), "L must be"),
        ((1, 2, 2, 4, 4), (1, 2, 1, 4, 4), "longer than 2 frames"),
    ],
)
def test_bad_clip_shapes_raise(ab_shape, L_shape, match):
    flows = zero_flows(1, 3, 4, 4)
    with pytest.raises(ValueError, match=match):
        SRLoss()(torch.zeros(ab_shape), torch.zeros(L_shape), flows)


def test_missing_or_misshaped_flow_raises():
    ab, L = tiny_clip()
    flows = zero_flows(1, 3, 2, 2)
    del flows[(2, 0)]
    with pytest.raises(ValueError, match=r"no flow for frame pair \(2, 0\)"):
        SRLoss()(ab, L, flows)
    flows[(2, 0)] = torch.zeros(1, 2, 2, 3)
    with pytest.raises(ValueError, match=r"\(2, 0\) must be B×2×H×W = \(1, 2, 2, 2\)"):
        SRLoss()(ab, L, flows)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="alpha"):
        SRLoss(alpha=-1.0)
    with pytest.raises(ValueError, match="'l1' or 'mse'"):
        PixelLoss(kind="huber")
    with pytest.raises(ValueError, match="weights must be >= 0"):
        TCVCLoss(srl_weight=-1.0)
    with pytest.raises(ValueError, match="must match"):
        PixelLoss()(torch.zeros(1, 2), torch.zeros(2, 1))


# -- mixed precision -------------------------------------------------------------------------------


def test_srl_of_bf16_predictions_keeps_the_float32_flows():
    """Under bf16 autocast the head's ab is bf16 while flows and L are float32: the warps run in
    float32 (the flows are not rounded to bf16) and the loss equals SRL of the same ab upcast."""
    torch.manual_seed(3)
    L = torch.rand(2, 4, 1, 16, 16) - 0.5
    ab = (torch.rand(2, 4, 2, 16, 16) - 0.5).bfloat16().requires_grad_()
    flows = {pair: torch.randn(2, 2, 16, 16) * 2 + 0.37 for pair in srl_flow_pairs(4, (1, 2))}
    srl = SRLoss()
    terms = srl(ab, L, flows)
    reference = srl(ab.detach().float(), L, flows)
    for name, value in terms.items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, reference[name], rtol=1e-6, atol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total = sum(srl(ab, L, flows).values())
    total.backward()
    assert ab.grad.dtype == torch.bfloat16 and ab.grad.abs().sum() > 0
