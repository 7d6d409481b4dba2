"""tcvc.color: known Lab values, round trips on real video frames, the uint8 helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tcvc.color import (
    gray_to_L,
    lab_normalized_to_rgb,
    rgb_float_to_uint8,
    rgb_to_lab_normalized,
    rgb_uint8_to_float,
)


@pytest.fixture(scope="module")
def real_frames(decode_video) -> np.ndarray:
    return decode_video("carphone_pristine.mp4", 4)  # 4×144×176×3


def pixel(r: float, g: float, b: float) -> torch.Tensor:
    return torch.tensor([r, g, b], dtype=torch.float64).view(1, 3, 1, 1)


# Standard sRGB (D65) → CIELAB values of the primaries and white.
KNOWN_LAB = [
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((1.0, 0.0, 0.0), (53.24, 80.09, 67.20)),
    ((0.0, 1.0, 0.0), (87.73, -86.18, 83.18)),
    ((0.0, 0.0, 1.0), (32.30, 79.19, -107.86)),
]


@pytest.mark.parametrize(("rgb", "lab"), KNOWN_LAB)
def test_known_colours_in_normalised_lab(rgb, lab):
    L, ab = rgb_to_lab_normalized(pixel(*rgb))
    assert L.shape == (1, 1, 1, 1) and ab.shape == (1, 2, 1, 1)
    assert L.item() == pytest.approx((lab[0] - 50.0) / 100.0, abs=1e-4)
    assert ab[0, 0].item() * 110.0 == pytest.approx(lab[1], abs=0.02)
    assert ab[0, 1].item() * 110.0 == pytest.approx(lab[2], abs=0.02)


def test_white_is_L100_and_neutral():
    L, ab = rgb_to_lab_normalized(pixel(1.0, 1.0, 1.0))
    assert L.item() == pytest.approx(0.5, abs=1e-6)  # (100 − 50) / 100
    assert ab.abs().max().item() * 110.0 < 0.01


def test_lab_round_trip_on_real_frames(real_frames):
    rgb = rgb_uint8_to_float(real_frames)  # T×3×H×W float32
    L, ab = rgb_to_lab_normalized(rgb)
    assert L.shape == (4, 1, 144, 176) and ab.shape == (4, 2, 144, 176)
    assert -0.5 - 1e-5 <= L.min() and L.max() <= 0.5 + 1e-5
    assert ab.abs().max() < 1.2
    back = lab_normalized_to_rgb(L, ab)
    assert (back - rgb).abs().max().item() < 1e-3
    # The error is far below half a grey level, so the uint8 frames come back exactly.
    np.testing.assert_array_equal(rgb_float_to_uint8(back), real_frames)


def test_leading_dims_match_per_frame(real_frames):
    rgb = rgb_uint8_to_float(real_frames[:, :32, :48])  # T×3×32×48
    L_batch, ab_batch = rgb_to_lab_normalized(rgb.view(2, 2, 3, 32, 48))
    assert L_batch.shape == (2, 2, 1, 32, 48) and ab_batch.shape == (2, 2, 2, 32, 48)
    L_one, ab_one = rgb_to_lab_normalized(rgb[3])
    torch.testing.assert_close(L_batch[1, 1], L_one)
    torch.testing.assert_close(ab_batch[1, 1], ab_one)
    torch.testing.assert_close(
        lab_normalized_to_rgb(L_batch, ab_batch).view(4, 3, 32, 48), rgb, atol=1e-3, rtol=0
    )


def test_out_of_gamut_lab_is_clipped():
    L = torch.full((1, 1, 2, 2), 0.5)
    ab = torch.tensor([1.0, -1.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    rgb = lab_normalized_to_rgb(L, ab)
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert rgb.max() == 1.0  # it really was out of gamut


def test_gray_to_L_takes_gray_as_lightness():
    gray = torch.tensor([0.0, 0.25, 0.5, 1.0])
    torch.testing.assert_close(gray_to_L(gray), torch.tensor([-0.5, -0.25, 0.0, 0.5]))
    # A gray value is L/100, not an sRGB value: mid-grey sRGB 0.5 has L ≈ 53.39, not 50.
    L_srgb, _ = rgb_to_lab_normalized(pixel(0.5, 0.5, 0.5))
    assert L_srgb.item() == pytest.approx(0.0339, abs=1e-3)


def test_uint8_helpers_layout_and_values():
    frame = np.zeros((2, 3, 3), dtype=np.uint8)
    frame[0, 1] = (255, 0, 51)
    rgb = rgb_uint8_to_float(frame)
    assert rgb.shape == (3, 2, 3) and rgb.dtype == torch.float32
    assert rgb[:, 0, 1].tolist() == pytest.approx([1.0, 0.0, 0.2])
    assert rgb_uint8_to_float(torch.from_numpy(frame), device="cpu").equal(rgb)
    back = rgb_float_to_uint8(torch.tensor([-0.5, 0.5 / 255 - 1e-4, 1.7]).view(3, 1, 1))
    assert back.shape == (1, 1, 3) and back.dtype == np.uint8
    assert back.ravel().tolist() == [0, 0, 255]


@pytest.mark.parametrize(
    "call",
    [
        lambda: rgb_to_lab_normalized(torch.rand(1, 4, 8, 8)),
        lambda: rgb_to_lab_normalized(torch.rand(8, 8)),
        lambda: lab_normalized_to_rgb(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8)),
        lambda: lab_normalized_to_rgb(torch.rand(1, 1, 8, 8), torch.rand(1, 2, 8, 9)),
        lambda: lab_normalized_to_rgb(torch.rand(2, 1, 8, 8), torch.rand(3, 2, 8, 8)),
        lambda: rgb_uint8_to_float(np.zeros((4, 4, 3), dtype=np.float32)),
        lambda: rgb_uint8_to_float(np.zeros((4, 4, 4), dtype=np.uint8)),
        lambda: rgb_float_to_uint8(torch.rand(1, 8, 8)),
    ],
)
def test_bad_shapes_raise_value_error(call):
    with pytest.raises(ValueError, match="expected"):
        call()
