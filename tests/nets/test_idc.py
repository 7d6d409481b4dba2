"""IDC (SIGGRAPH'17 generator): layout, values against an independent functional version and
against the original code's anchor outputs, hints, shape errors, strict loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tcvc.nets import IDC, CheckpointError, load_backbone
from tcvc.testing import synthetic_state_dict

LAYOUT = Path(__file__).resolve().parents[1] / "data" / "original_tcvc_idc_layout.json"
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "tcvc_reference.pt"
SEED = 17  # scripts/reference/make_tcvc_reference.py


@pytest.fixture(scope="module")
def idc_layout() -> dict[str, list[int]]:
    layout = json.loads(LAYOUT.read_text())
    return {k.removeprefix("fea_key."): v for k, v in layout.items() if k.startswith("fea_key.")}


@pytest.fixture(scope="module")
def idc_weights(idc_layout) -> dict[str, torch.Tensor]:
    # The weights the reference file was made with: the fea_key part of the full layout.
    full = {f"fea_key.{k}": v for k, v in idc_layout.items()}
    return {k.removeprefix("fea_key."): v for k, v in synthetic_state_dict(full, seed=SEED).items()}


@pytest.fixture(scope="module")
def idc(idc_weights) -> IDC:
    net = IDC()
    net.load_state_dict(idc_weights, strict=True)
    return net.eval()


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


def test_state_dict_has_the_released_names_shapes_and_order(idc_layout):
    state = IDC().state_dict()
    assert list(state) == list(idc_layout)
    assert {k: list(v.shape) for k, v in state.items()} == idc_layout


def test_matches_functional_version(idc, idc_weights):
    L = torch.rand(2, 1, 32, 48, generator=torch.Generator().manual_seed(0)) - 0.5
    with torch.no_grad():
        ab, feature = idc(L)
    ab_ref, feature_ref = functional_idc(idc_weights, L)
    assert ab.shape == (2, 2, 32, 48) and feature.shape == (2, 128, 32, 48)
    assert ab.abs().max() < 1 and ab.std() > 0.05  # not saturated: the comparison means something
    torch.testing.assert_close(feature, feature_ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(ab, ab_ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(idc.model_out(feature), ab, rtol=0, atol=0)


def test_anchor_frames_match_the_original_code(idc):
    """Frames 0 and T−1 of the original TCVC_IDC output are its IDC's ab of those frames."""
    reference = torch.load(REFERENCE, weights_only=True)
    assert reference["seed"] == SEED
    for case in reference["cases"].values():
        L, ab = case["L"], case["ab"]
        with torch.no_grad():
            anchors = torch.stack([idc(L[:, 0])[0], idc(L[:, -1])[0]], dim=1)
        error = (anchors - ab[:, [0, -1]]).abs().max().item()
        assert error <= 1e-5, error


def test_zero_hints_equal_no_hints(idc):
    L = torch.rand(1, 1, 16, 16) - 0.5
    with torch.no_grad():
        ab, _ = idc(L)
        ab_hinted, _ = idc(
            L, ab_hint=torch.zeros(1, 2, 16, 16), hint_mask=torch.zeros(1, 1, 16, 16)
        )
        ab_other, _ = idc(
            L, ab_hint=torch.full((1, 2, 16, 16), 0.5), hint_mask=torch.ones(1, 1, 16, 16)
        )
    torch.testing.assert_close(ab, ab_hinted, rtol=0, atol=0)
    assert (ab - ab_other).abs().max() > 1e-3  # hints reach the network


@pytest.mark.parametrize(
    ("shape", "message"),
    [((1, 1, 20, 16), "multiples of 8"), ((1, 3, 16, 16), r"B×1×H×W"), ((16, 16), r"B×1×H×W")],
)
def test_bad_input_shapes_are_named(shape, message):
    with pytest.raises(ValueError, match=message):
        IDC()(torch.zeros(shape))


def test_bad_hint_shape_is_named():
    with pytest.raises(ValueError, match=r"ab_hint must be \(1, 2, 16, 16\), got \(1, 2, 8, 8\)"):
        IDC()(torch.zeros(1, 1, 16, 16), ab_hint=torch.zeros(1, 2, 8, 8))


def test_loading_idc_is_strict(tmp_path, idc_weights):
    path = tmp_path / "siggraph17-df00044c.pth"
    torch.save(idc_weights, path)
    loaded = load_backbone(path, "idc", IDC())
    assert not loaded.training
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, idc_weights[key]), key

    damaged = dict(idc_weights)
    damaged["model1.0.weight_renamed"] = damaged.pop("model1.0.weight")
    damaged["model_out.0.weight"] = torch.zeros(3, 128, 1, 1)
    torch.save(damaged, path)
    with pytest.raises(CheckpointError) as error:
        load_backbone(path, "idc", IDC())
    text = str(error.value)
    assert "missing keys (1): model1.0.weight" in text
    assert "unexpected keys (1): model1.0.weight_renamed" in text
    assert "model_out.0.weight: file (3, 128, 1, 1) vs network (2, 128, 1, 1)" in text
