"""IDC (SIGGRAPH'17 generator): layout, values against an independent functional version and
against the original code's anchor outputs, hints, shape errors, strict loading."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import LAYOUT, REFERENCE, SEED
from helpers.nets import functional_idc

from tcvc.nets import IDC, CheckpointError, load_backbone
from tcvc.testing import synthetic_state_dict


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
    """Frames 0 and T−1 of the original TCVC_IDC output are its IDC's ab of those frames (the
    original passes no hints: zeros), with hints omitted or given as zeros."""
    reference = torch.load(REFERENCE, weights_only=True)
    assert reference["seed"] == SEED
    for case in reference["cases"].values():
        L, ab = case["L"], case["ab"]
        frames = torch.cat([L[:, 0], L[:, -1]])
        zeros = torch.zeros_like(frames)
        with torch.no_grad():
            anchors, _ = idc(frames)
            zero_hinted, _ = idc(frames, ab_hint=zeros.repeat(1, 2, 1, 1), hint_mask=zeros)
        assert torch.equal(zero_hinted, anchors)
        anchors = torch.stack(anchors.chunk(2), dim=1)
        error = (anchors - ab[:, [0, -1]]).abs().max().item()
        assert error <= 1e-5, error


def test_zero_hints_equal_no_hints(idc):
    L = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1)) - 0.5
    with torch.no_grad():
        ab, feature = idc(L)
        ab_hinted, feature_hinted = idc(
            L, ab_hint=torch.zeros(2, 2, 16, 16), hint_mask=torch.zeros(2, 1, 16, 16)
        )
        ab_other, _ = idc(
            L, ab_hint=torch.full((2, 2, 16, 16), 0.5), hint_mask=torch.ones(2, 1, 16, 16)
        )
    assert torch.equal(ab, ab_hinted) and torch.equal(feature, feature_hinted)  # bit for bit
    assert (ab - ab_other).abs().max() > 1e-3  # hints reach the network


def hint_at(y: int, x: int, *, size: int = 64, ab=(0.6, -0.4)) -> tuple[torch.Tensor, torch.Tensor]:
    """A one-pixel hint: B×2×H×W ab / 110 and B×1×H×W mask, zero elsewhere."""
    ab_hint, mask = torch.zeros(1, 2, size, size), torch.zeros(1, 1, size, size)
    ab_hint[0, :, y, x] = torch.tensor(ab)
    mask[0, 0, y, x] = 1
    return ab_hint, mask


@pytest.mark.parametrize(("y", "x"), [(20, 40), (50, 10)])
def test_a_hint_changes_the_colours_near_it(idc, y, x):
    """One hinted pixel: the ab changes most within a few pixels of it and little far away
    (measured with these weights: ~0.3 at the hint, a median of ~0.002 over the image)."""
    L = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)) - 0.5
    ab_hint, mask = hint_at(y, x)
    with torch.no_grad():
        ab, _ = idc(L)
        hinted, _ = idc(L, ab_hint=ab_hint, hint_mask=mask)
        unmasked, _ = idc(L, ab_hint=ab_hint, hint_mask=torch.zeros_like(mask))
    change = (hinted - ab).abs().amax(dim=1)[0]  # H×W, the larger of the a and b changes
    peak_y, peak_x = divmod(change.argmax().item(), 64)
    assert max(abs(peak_y - y), abs(peak_x - x)) <= 3, (peak_y, peak_x)
    near = change[y - 2 : y + 3, x - 2 : x + 3].max()
    assert near > 0.05 and near > 20 * change.median()
    assert not torch.equal(unmasked, hinted)  # the mask is an input of its own


@pytest.mark.parametrize(
    ("shape", "message"),
    [((1, 1, 20, 16), "multiples of 8"), ((1, 3, 16, 16), r"B×1×H×W"), ((16, 16), r"B×1×H×W")],
)
def test_bad_input_shapes_are_named(shape, message):
    with pytest.raises(ValueError, match=message):
        IDC()(torch.zeros(shape))


@pytest.mark.parametrize(
    ("ab_shape", "mask_shape", "message"),
    [
        (
            (1, 2, 8, 8),
            (1, 1, 16, 16),
            (
                r"ab_hint must be B×2×H×W = \(1, 2, 16, 16\) for L of "
                r"shape \(1, 1, 16, 16\), got \(1, 2, 8, 8\)"
            ),
        ),
        ((1, 3, 16, 16), (1, 1, 16, 16), r"ab_hint must be B×2×H×W .* got \(1, 3, 16, 16\)"),
        (
            (1, 2, 16, 16),
            (2, 1, 16, 16),
            (
                r"hint_mask must be B×1×H×W = \(1, 1, 16, 16\) .* "
                r"got \(2, 1, 16, 16\)"
            ),
        ),
        ((1, 2, 16, 16), (1, 16, 16), r"hint_mask must be B×1×H×W .* got \(1, 16, 16\)"),
    ],
)
def test_bad_hint_shapes_are_named(ab_shape, mask_shape, message):
    with pytest.raises(ValueError, match=message):
        IDC()(
            torch.zeros(1, 1, 16, 16),
            ab_hint=torch.zeros(ab_shape),
            hint_mask=torch.zeros(mask_shape),
        )


@pytest.mark.parametrize("given", ["ab_hint", "hint_mask"])
def test_a_hint_tensor_alone_is_refused(given):
    tensors = {"ab_hint": torch.zeros(1, 2, 16, 16), "hint_mask": torch.zeros(1, 1, 16, 16)}
    with pytest.raises(ValueError, match=f"{given} given without"):
        IDC()(torch.zeros(1, 1, 16, 16), **{given: tensors[given]})


def first_conv_input(idc: IDC, *args, **kwargs) -> torch.Tensor:
    """What ``model1.0`` (the first conv) receives in ``idc(*args, **kwargs)``."""
    seen = []
    handle = idc.model1[0].register_forward_hook(lambda module, inputs, out: seen.append(inputs[0]))
    try:
        with torch.no_grad():
            idc(*args, **kwargs)
    finally:
        handle.remove()
    (received,) = seen
    return received


def test_first_conv_input_is_the_originals():
    """The 4 input channels, against the originals' formulas written here from their code, on
    Lab in its own units (L* 0 … 100, ab about ±110, mask 0 / 1, soft values in between):
    - siggraph17.py (richzhang/colorization; the released weights): ``cat(normalize_l(L),
      normalize_ab(ab), mask_B)``, ``(L − 50) / 100``, ``ab / 110``, the mask as it is;
    - colorization-pytorch (its retrained weights, ``--mask_cent .5``): ``mask_B − mask_cent``.
    """
    generator = torch.Generator().manual_seed(3)
    L_lab = 100 * torch.rand(2, 1, 16, 24, generator=generator)
    ab_lab = 220 * torch.rand(2, 2, 16, 24, generator=generator) - 110
    mask = (torch.rand(2, 1, 16, 24, generator=generator) < 0.3).float()
    mask[0, 0, 0, :4] = torch.tensor([0.25, 0.5, 0.75, 1.0])  # soft hints pass as they are
    hint = ab_lab * mask  # no hint: ab 0
    L, ab_hint = (L_lab - 50.0) / 100.0, hint / 110.0

    released = first_conv_input(IDC().eval(), L, ab_hint=ab_hint, hint_mask=mask)
    original = torch.cat(((L_lab - 50.0) / 100.0, hint / 110.0, mask), dim=1)
    assert torch.equal(released, original)
    retrained = first_conv_input(IDC(mask_center=0.5).eval(), L, ab_hint=ab_hint, hint_mask=mask)
    assert torch.equal(retrained, torch.cat(((L_lab - 50.0) / 100.0, hint / 110.0, mask - 0.5), 1))
    # no hints: ab 0 and mask 0 (the originals' defaults), centred likewise
    assert torch.equal(
        first_conv_input(IDC().eval(), L), torch.cat([L, torch.zeros(2, 3, 16, 24)], 1)
    )
    without = first_conv_input(IDC(mask_center=0.5).eval(), L)
    assert torch.equal(without[:, 3:], torch.full((2, 1, 16, 24), -0.5))


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
