"""tcvc.inference.guidance: reference frames and hint dots as hints, their working size, carrying
them along a shot by flow; and the stand-ins of tcvc.testing that colour with their hints.

Lab values are checked against an independent float64 sRGB -> CIELAB (D65) written out here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tcvc.errors import UserError
from tcvc.inference.guidance import (
    FrameGuidance,
    carry_guidance,
    carry_pairs,
    flow_consistency,
    guidance_at_network_size,
    load_hints,
    load_references,
    merge_guidance,
)
from tcvc.nets import TCVCNet
from tcvc.nets.hints import Hints
from tcvc.testing import FixedFlow, ForwardCopyHead, HintEchoIDC

AB = 110.0  # ab / 110: the hints' units


# ---- an independent Lab -----------------------------------------------------------------------
def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """…×3 sRGB in [0, 1] -> …×3 CIELAB (D65 white), float64, the textbook formulas."""
    rgb = np.asarray(rgb, dtype=np.float64)
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    matrix = np.array(
        [
            [0.412453, 0.357580, 0.180423],
            [0.212671, 0.715160, 0.072169],
            [0.019334, 0.119193, 0.950227],
        ]
    )
    xyz = linear @ matrix.T / np.array([0.95047, 1.0, 1.08883])
    delta = 6 / 29
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3 * delta**2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


def lab_ab_of(image: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 -> 2×H×W float64 ab / 110 of its Lab (the oracle)."""
    lab = srgb_to_lab(image / 255.0)
    return torch.from_numpy(lab[..., 1:]).permute(2, 0, 1) / AB


def test_the_oracle_gives_known_lab():
    assert srgb_to_lab([1.0, 0.0, 0.0]) == pytest.approx([53.24, 80.09, 67.20], abs=0.01)
    assert srgb_to_lab([0.0, 0.0, 1.0]) == pytest.approx([32.30, 79.19, -107.86], abs=0.01)
    assert srgb_to_lab([1.0, 1.0, 1.0]) == pytest.approx([100.0, 0.0, 0.0], abs=0.01)


def assert_ab_close(actual: torch.Tensor, expected: torch.Tensor, *, lab_units: float = 0.01):
    """ab / 110 within ``lab_units`` of Lab a and b (kornia computes in float32)."""
    error = (actual.double() - expected.double()).abs().max().item() * AB
    assert error <= lab_units, f"ab differs by {error:.4f} Lab units"


# ---- reference frames -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frames(decode_video) -> np.ndarray:
    return decode_video("carphone_pristine.mp4", 3)  # 3×144×176×3 uint8, real colours


FRAME_SIZE = (144, 176)


def save(image: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def test_references_from_a_folder(tmp_path, frames):
    folder = tmp_path / "references"
    save(frames[0], folder / "00000.png")
    save(frames[2], folder / "00007.bmp")
    (folder / ".DS_Store").write_bytes(b"\0junk")  # hidden files are skipped

    guides = load_references(folder, num_frames=10, frame_size=FRAME_SIZE)

    assert list(guides) == [0, 7]
    for frame, image in ((0, frames[0]), (7, frames[2])):
        guide = guides[frame]
        assert isinstance(guide, FrameGuidance)
        assert guide.ab.shape == (2, *FRAME_SIZE) and guide.ab.dtype == torch.float32
        assert_ab_close(guide.ab, lab_ab_of(image))
        assert torch.equal(guide.mask, torch.ones(1, *FRAME_SIZE))
    assert guides[7].source == str(folder / "00007.bmp")
    # the frames' colours are real: far from gray
    assert guides[0].ab.abs().max() * AB > 20


def test_references_from_a_list_a_string_and_a_mapping(tmp_path, frames):
    first, second = save(frames[0], tmp_path / "a.png"), save(frames[1], tmp_path / "b.tif")
    as_list = load_references(
        [f"2:{first}", f" 5 : {second} "], num_frames=6, frame_size=FRAME_SIZE
    )
    as_string = load_references(f"2:{first},5:{second}", num_frames=6, frame_size=FRAME_SIZE)
    as_mapping = load_references({2: str(first), "5": second}, num_frames=6, frame_size=FRAME_SIZE)
    as_pairs = load_references([(2, first), (5, str(second))], num_frames=6, frame_size=FRAME_SIZE)
    for guides in (as_list, as_string, as_mapping, as_pairs):
        assert list(guides) == [2, 5]
        assert_ab_close(guides[2].ab, lab_ab_of(frames[0]))
        assert_ab_close(guides[5].ab, lab_ab_of(frames[1]))
        assert guides[5].source == str(second)
        assert guides[5].mask.min() == 1
    assert load_references(None, num_frames=6, frame_size=FRAME_SIZE) == {}
    assert load_references([], num_frames=6, frame_size=FRAME_SIZE) == {}


def test_a_reference_of_another_size_is_resized_with_a_warning(tmp_path, frames):
    big = np.repeat(np.repeat(frames[0], 2, axis=0), 2, axis=1)  # 288×352
    path = save(big, tmp_path / "big.png")
    with pytest.warns(UserWarning, match=r"big\.png.*288×352 image .* frame size 72×88"):
        guides = load_references([f"1:{path}"], num_frames=3, frame_size=(72, 88))
    # area averaging: each frame pixel is the mean ab of a 4×4 block of the image's pixels
    expected = lab_ab_of(big).reshape(2, 72, 4, 88, 4).mean(dim=(2, 4))
    assert_ab_close(guides[1].ab, expected)
    assert guides[1].mask.shape == (1, 72, 88) and guides[1].mask.min() == 1

    small = save(frames[0][::2, ::2], tmp_path / "small.png")  # 72×88, to 144×176: bilinear
    with pytest.warns(UserWarning, match=r"small\.png.*72×88 image .* frame size 144×176"):
        guides = load_references([f"0:{small}"], num_frames=3, frame_size=FRAME_SIZE)
    upsampled = torch.nn.functional.interpolate(
        lab_ab_of(frames[0][::2, ::2])[None], size=FRAME_SIZE, mode="bilinear"
    )[0]
    assert_ab_close(guides[0].ab, upsampled)


def one_line_user_error(run, match: str) -> str:
    with pytest.raises(UserError, match=match) as caught:
        run()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_reference_errors_name_the_file_and_entry(tmp_path, frames):
    good = save(frames[0][:16, :16], tmp_path / "good.png")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not a png")

    def refs(value, num_frames=5):
        return lambda: load_references(value, num_frames=num_frames, frame_size=(16, 16))

    one_line_user_error(refs([f"5:{good}"]), r"entry 0 .*good\.png.*frame 5 is outside .*0 … 4")
    one_line_user_error(refs([f"0:{good}", f"-1:{good}"]), r"entry 1 .* frame -1 is outside")
    one_line_user_error(refs([f"1:{garbage}"]), r"entry 0 .*garbage\.png.*cannot read the image")
    for malformed in ("good.png", "x:good.png", "3:", ":good.png"):
        one_line_user_error(
            refs([malformed]), rf"entry 0 \('{malformed}'\): expected <frame index>"
        )
    one_line_user_error(refs([42]), r"entry 0 \(42\): expected <frame index>:<image path>")
    one_line_user_error(refs(tmp_path / "nowhere"), r"references .*nowhere: folder not found")
    one_line_user_error(refs(str(tmp_path / "nowhere")), r"nowhere: folder not found")
    one_line_user_error(refs(str(good)), r"good\.png: not a folder")
    one_line_user_error(refs(f"1:{tmp_path / 'missing.png'}"), r"entry 0 .*missing\.png not found")
    one_line_user_error(
        refs(f"3:{good},3:{good}"),
        r"entry 1 .*: a second reference for frame 3 \(the first: entry 0",
    )
    one_line_user_error(refs(42), r"references must be a folder .* got int")
    one_line_user_error(refs([f"1:{tmp_path}"]), r"entry 0 .* is not a file")

    def folder(*names: str) -> Path:
        where = tmp_path / f"folder{len(list(tmp_path.iterdir()))}"
        where.mkdir()
        for name in names:
            (where / name).write_bytes(good.read_bytes())
        return where

    one_line_user_error(
        refs(folder("00001.png", "notes.txt")), r"notes\.txt: not a reference image"
    )
    one_line_user_error(refs(folder("frame1.png")), r"frame1\.png: not a reference image")
    one_line_user_error(refs(folder("2.png", "002.jpg")), r"a second reference for frame 2")
    one_line_user_error(refs(folder("00005.png")), r"00005\.png: frame 5 is outside")
    one_line_user_error(refs(folder()), r"holds no images")
    broken = folder("00001.png")
    (broken / "00002.png").write_bytes(b"not an image")
    one_line_user_error(refs(broken), r"00002\.png: cannot read the image")


# ---- hint dots --------------------------------------------------------------------------------
def write_hints(tmp_path: Path, dots, name: str = "hints.json") -> Path:
    path = tmp_path / name
    path.write_text(dots if isinstance(dots, str) else json.dumps(dots))
    return path


def disk(size: tuple[int, int], x: float, y: float, radius: float) -> torch.Tensor:
    """H×W bools: pixel centres (column j, row i) within ``radius`` of (x, y)."""
    rows, columns = np.mgrid[: size[0], : size[1]]
    return torch.from_numpy((columns - x) ** 2 + (rows - y) ** 2 <= radius**2)


def test_hint_dots_paint_disks_of_their_lab_colour(tmp_path):
    size = (40, 60)
    path = write_hints(
        tmp_path,
        [
            {"frame": 1, "x": 10, "y": 20, "color": "#ff0000", "radius": 3},
            {"frame": 3, "x": 50.5, "y": 7.25, "color": [40, -20]},  # radius 2 by default
            {"frame": 1, "x": 40, "y": 30, "color": "#1E90FF", "radius": 0},  # one pixel
        ],
    )
    guides = load_hints(path, num_frames=4, frame_size=size)
    assert list(guides) == [1, 3]
    assert guides[1].source == f"{path} entries 0, 2" and guides[3].source == f"{path} entry 1"

    red = disk(size, 10, 20, 3)
    assert int(red.sum()) == 29  # the 29 pixel centres within 3 of a pixel centre
    dodger_blue = disk(size, 40, 30, 0)
    assert int(dodger_blue.sum()) == 1
    frame1 = guides[1]
    assert torch.equal(frame1.mask[0], (red | dodger_blue).float())
    red_ab = torch.tensor(srgb_to_lab([1.0, 0.0, 0.0])[1:]) / AB
    blue_ab = torch.tensor(srgb_to_lab(np.array([0x1E, 0x90, 0xFF]) / 255.0)[1:]) / AB
    assert_ab_close(frame1.ab[:, red], red_ab[:, None].expand(2, 29))
    assert_ab_close(frame1.ab[:, dodger_blue], blue_ab[:, None])
    assert frame1.ab[:, ~(red | dodger_blue)].abs().max() == 0

    ring = disk(size, 50.5, 7.25, 2)
    frame3 = guides[3]
    assert torch.equal(frame3.mask[0], ring.float())
    assert torch.allclose(frame3.ab[:, ring], torch.tensor([[40.0], [-20.0]]) / AB)
    assert frame3.ab[:, ~ring].abs().max() == 0


def test_a_later_dot_overwrites_an_earlier_one_and_a_dot_at_a_border_is_clipped(tmp_path):
    path = write_hints(
        tmp_path,
        [
            {"frame": 0, "x": 0, "y": 0, "color": [10, 10], "radius": 4},
            {"frame": 0, "x": 2, "y": 2, "color": [-30, 50], "radius": 1.5},
            {"frame": 0, "x": 6.4, "y": 3.6, "color": [5, 5], "radius": 0},  # nearest: (4, 6)
        ],
    )
    guide = load_hints(path, num_frames=1, frame_size=(8, 8))[0]
    first, second = disk((8, 8), 0, 0, 4), disk((8, 8), 2, 2, 1.5)
    nearest = torch.zeros(8, 8, dtype=torch.bool)
    nearest[4, 6] = True
    assert torch.equal(guide.mask[0], (first | second | nearest).float())
    assert torch.allclose(guide.ab[:, second], torch.tensor([[-30.0], [50.0]]) / AB)
    assert torch.allclose(guide.ab[:, first & ~second], torch.tensor([[10.0], [10.0]]) / AB)
    assert torch.allclose(guide.ab[:, 4, 6], torch.tensor([5.0, 5.0]) / AB)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("[{]", r"not JSON \(.* at line 1, column 3\)"),
        ('{"frame": 0}', r"expected a JSON list of dots .* got an object"),
        ("[[1, 2]]", r"entry 0: expected an object .* got a list"),
        ([{"frame": 0, "x": 1, "y": 1}], r"entry 0: missing field 'color'"),
        ([{"x": 1, "y": 1, "color": "#000000"}], r"entry 0: missing field 'frame'"),
        ([{"frame": 0, "x": 1, "y": 1, "colour": "#000000"}], r"entry 0: unknown field 'colour'"),
        (
            [{"frame": 9, "x": 1, "y": 1, "color": "#000000"}],
            r"field 'frame' is 9, outside .*0 … 3",
        ),
        ([{"frame": -1, "x": 1, "y": 1, "color": "#000000"}], r"field 'frame' is -1"),
        ([{"frame": 1.5, "x": 1, "y": 1, "color": "#000000"}], r"'frame' must be an integer"),
        ([{"frame": True, "x": 1, "y": 1, "color": "#000000"}], r"'frame' must be an integer"),
        ([{"frame": 0, "x": 20, "y": 1, "color": "#000000"}], r"'x' is 20, outside .*0 … 19"),
        ([{"frame": 0, "x": -0.5, "y": 1, "color": "#000000"}], r"'x' is -0.5, outside"),
        ([{"frame": 0, "x": 1, "y": 10, "color": "#000000"}], r"'y' is 10, outside .*0 … 9"),
        ([{"frame": 0, "x": "1", "y": 1, "color": "#000000"}], r"'x' must be a number"),
        ([{"frame": 0, "x": 1, "y": 1, "color": "#ff00"}], r"'color' must be \"#rrggbb\""),
        ([{"frame": 0, "x": 1, "y": 1, "color": "red"}], r"'color' must be .*got \"red\""),
        ([{"frame": 0, "x": 1, "y": 1, "color": [1, 2, 3]}], r"'color' must be"),
        ([{"frame": 0, "x": 1, "y": 1, "color": [200, 0]}], r"'color' .* within ±128"),
        ([{"frame": 0, "x": 1, "y": 1, "color": "#000000", "radius": -1}], r"'radius' .* ≥ 0"),
    ],
)
def test_hint_errors_name_the_file_entry_and_field(tmp_path, content, match):
    if isinstance(content, list):  # the bad dot is entry 1, after a good one
        content = [{"frame": 0, "x": 0, "y": 0, "color": "#808080"}, *content]
        match = match.replace("entry 0", "entry 1")
        match = match if "entry" in match else f"entry 1: .*{match}"
    path = write_hints(tmp_path, content)
    message = one_line_user_error(
        lambda: load_hints(path, num_frames=4, frame_size=(10, 20)), match
    )
    assert message.startswith(f"hints {path}")


def test_missing_hints_file(tmp_path):
    one_line_user_error(
        lambda: load_hints(tmp_path / "none.json", num_frames=1, frame_size=(4, 4)),
        r"none\.json: file not found",
    )
    assert load_hints(write_hints(tmp_path, []), num_frames=1, frame_size=(4, 4)) == {}


# ---- merging ----------------------------------------------------------------------------------
def test_dots_win_over_a_reference_of_their_frame(tmp_path, frames):
    reference = load_references(
        [f"1:{save(frames[0], tmp_path / 'ref.png')}", f"2:{tmp_path / 'ref.png'}"],
        num_frames=4,
        frame_size=FRAME_SIZE,
    )
    dots = load_hints(
        write_hints(tmp_path, [{"frame": 1, "x": 30, "y": 40, "color": [60, 0], "radius": 5}]),
        num_frames=4,
        frame_size=FRAME_SIZE,
    )
    dots[3] = FrameGuidance(
        ab=torch.full((2, *FRAME_SIZE), 0.1), mask=torch.ones(1, *FRAME_SIZE), source="x"
    )
    merged = merge_guidance(reference, dots)
    assert list(merged) == [1, 2, 3]
    assert merged[2] is reference[2] and merged[3] is dots[3]
    inside = disk(FRAME_SIZE, 30, 40, 5)
    assert torch.equal(merged[1].mask, torch.ones(1, *FRAME_SIZE))
    assert torch.equal(merged[1].ab[:, inside], dots[1].ab[:, inside])
    assert torch.equal(merged[1].ab[:, ~inside], reference[1].ab[:, ~inside])
    assert "ref.png" in merged[1].source and "hints.json entry 0" in merged[1].source
    # the other order: the reference covers the dots
    assert torch.equal(merge_guidance(dots, reference)[1].ab, reference[1].ab)


# ---- the network's working size ---------------------------------------------------------------
def test_a_dense_hint_keeps_its_mean_ab(frames):
    ab = lab_ab_of(frames[0]).float()  # 144×176 -> 48×88: 3×2 blocks
    guide = FrameGuidance(ab=ab, mask=torch.ones(1, *FRAME_SIZE), source="dense")
    small_ab, small_mask = guidance_at_network_size(guide, (48, 88), (48, 88))
    assert small_ab.shape == (2, 48, 88) and small_mask.shape == (1, 48, 88)
    torch.testing.assert_close(small_ab, ab.reshape(2, 48, 3, 88, 2).mean(dim=(2, 4)))
    torch.testing.assert_close(small_ab.mean(dim=(1, 2)), ab.mean(dim=(1, 2)))
    torch.testing.assert_close(small_mask, torch.ones(1, 48, 88))


def test_a_single_dot_gives_its_area_fraction_and_keeps_its_colour():
    ab, mask = torch.zeros(2, 256, 256), torch.zeros(1, 256, 256)
    ab[:, 6, 5] = torch.tensor([0.4, -0.2])
    mask[:, 6, 5] = 1
    ab[:, 100:102, 200:204] = torch.tensor([-0.3, 0.5])[:, None, None]  # 2×4: half of a block
    mask[:, 100:102, 200:204] = 1
    guide = FrameGuidance(ab=ab, mask=mask, source="dots")
    small_ab, small_mask = guidance_at_network_size(guide, (64, 64), (64, 64))
    expected_mask = torch.zeros(1, 64, 64)
    expected_mask[0, 1, 1] = 1 / 16  # one pixel of the 4×4 block
    expected_mask[0, 25, 50] = 8 / 16
    torch.testing.assert_close(small_mask, expected_mask)
    # the mean ab of the hinted pixels, not diluted by the block's unhinted ones
    torch.testing.assert_close(small_ab[:, 1, 1], torch.tensor([0.4, -0.2]))
    torch.testing.assert_close(small_ab[:, 25, 50], torch.tensor([-0.3, 0.5]))
    assert small_ab[:, small_mask[0] == 0].abs().max() == 0


def test_native_resolution_pads_without_hints_and_upsampling_keeps_colours():
    ab, mask = torch.rand(2, 100, 150) - 0.5, (torch.rand(1, 100, 150) > 0.5).float()
    ab = ab * mask
    guide = FrameGuidance(ab=ab, mask=mask, source="random")
    padded_ab, padded_mask = guidance_at_network_size(guide, (128, 192), "native")
    assert torch.equal(padded_ab[:, :100, :150], ab) and torch.equal(
        padded_mask[:, :100, :150], mask
    )
    assert padded_ab[:, 100:].abs().max() == 0 and padded_ab[:, :, 150:].abs().max() == 0
    assert padded_mask[:, 100:].max() == 0 and padded_mask[:, :, 150:].max() == 0
    with pytest.raises(ValueError, match="smaller"):
        guidance_at_network_size(guide, (64, 192), "native")

    # 32×32 -> 64×64 (bilinear): a patch of one colour stays that colour, its edge soft
    ab, mask = torch.zeros(2, 32, 32), torch.zeros(1, 32, 32)
    ab[:, 8:16, 8:20] = torch.tensor([0.25, -0.5])[:, None, None]
    mask[:, 8:16, 8:20] = 1
    big_ab, big_mask = guidance_at_network_size(
        FrameGuidance(ab=ab, mask=mask, source="patch"), (64, 64), 64
    )
    soft = (big_mask > 0) & (big_mask < 1)
    assert soft.any() and big_mask.min() >= 0 and big_mask.max() <= 1
    hinted = big_mask[0] > 0
    expected = torch.tensor([[0.25], [-0.5]]).expand(2, int(hinted.sum()))
    torch.testing.assert_close(big_ab[:, hinted], expected)
    assert big_ab[:, ~hinted].abs().max() == 0


# ---- carrying guidance along a shot -----------------------------------------------------------
def constant_flow(dx: float, dy: float, *, batch: int = 2, size: tuple[int, int] = (32, 48)):
    flow = torch.empty(batch, 2, *size)
    flow[:, 0], flow[:, 1] = dx, dy
    return flow


def shot_flows(dx: float, dy: float, steps: range, **kwargs) -> dict[tuple[int, int], torch.Tensor]:
    """Consistent flows of a shot moving by (−dx, −dy) px a frame: F(i, i−1) = (dx, dy), F(i−1,
    i) = (−dx, −dy)."""
    return {
        pair: constant_flow(dx, dy, **kwargs) if pair[0] == i else constant_flow(-dx, -dy, **kwargs)
        for i in steps
        for pair in ((i, i - 1), (i - 1, i))
    }


@pytest.fixture
def guidance() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    mask = (torch.rand(2, 1, 32, 48, generator=generator) > 0.3).float()
    ab = (torch.rand(2, 2, 32, 48, generator=generator) - 0.5) * mask
    return ab, mask


def test_zero_flow_keeps_the_guidance_with_decay(guidance):
    ab, mask = guidance
    steps = range(1, 6)
    carried_ab, carried_mask = carry_guidance(ab, mask, shot_flows(0, 0, steps), steps=steps)
    torch.testing.assert_close(carried_ab, ab)
    torch.testing.assert_close(carried_mask, mask * 0.98**5)
    none_ab, none_mask = carry_guidance(ab, mask, {}, steps=range(1, 1))
    assert none_ab is ab and none_mask is mask


def test_an_integer_shift_moves_the_hints(guidance):
    ab, mask = guidance
    steps = range(1, 4)  # 3 steps of F(i, i−1) = (+2, −1): frame i = frame i−1 at x + 2, y − 1
    carried_ab, carried_mask = carry_guidance(
        ab, mask, shot_flows(2, -1, steps), steps=steps, decay=0.9
    )
    rolled_ab = torch.roll(ab, shifts=(3, -6), dims=(-2, -1))  # ab_3(x, y) = ab_0(x + 6, y − 3)
    rolled_mask = torch.roll(mask, shifts=(3, -6), dims=(-2, -1))
    inside = (slice(None), slice(None), slice(3, None), slice(None, 48 - 6))
    torch.testing.assert_close(carried_ab[inside], rolled_ab[inside])
    torch.testing.assert_close(carried_mask[inside], rolled_mask[inside] * 0.9**3)
    # what came from outside the frame: no hints
    assert carried_mask[..., :3, :].max() == 0 and carried_mask[..., 48 - 6 :].max() == 0
    assert carried_ab[..., :3, :].abs().max() == 0 and carried_ab[..., 48 - 6 :].abs().max() == 0


def test_backward_in_time_uses_the_other_flows(guidance):
    ab, mask = guidance
    steps = range(4, 1, -1)  # frame 5 -> 4 -> 3 -> 2, F(i, i+1) = (−1, 0)
    flows = {}
    for i in steps:
        flows[(i, i + 1)], flows[(i + 1, i)] = constant_flow(-1, 0), constant_flow(1, 0)
    assert carry_pairs(steps) == list(flows)
    carried_ab, carried_mask = carry_guidance(ab, mask, flows, steps=steps, decay=1.0)
    torch.testing.assert_close(carried_ab[..., 3:], ab[..., :-3])
    torch.testing.assert_close(carried_mask[..., 3:], mask[..., :-3])
    assert carried_mask[..., :3].max() == 0


def test_half_pixel_motion_keeps_the_colour_at_a_soft_edge():
    ab, mask = torch.zeros(1, 2, 32, 48), torch.zeros(1, 1, 32, 48)
    ab[:, :, 10:20, 10:20] = torch.tensor([0.3, -0.6])[:, None, None]
    mask[:, :, 10:20, 10:20] = 1
    steps = range(1, 2)
    carried_ab, carried_mask = carry_guidance(
        ab, mask, shot_flows(0.5, 0, steps, batch=1), steps=steps, decay=1.0
    )
    torch.testing.assert_close(carried_mask[0, 0, 15, 9], torch.tensor(0.5))  # half a hint
    torch.testing.assert_close(carried_ab[0, :, 15, 9], torch.tensor([0.3, -0.6]))  # its colour
    torch.testing.assert_close(carried_mask[0, 0, 15, 19], torch.tensor(0.5))


def test_where_the_flow_back_disagrees_the_mask_is_zero(guidance):
    ab, mask = guidance
    steps = range(1, 3)
    flows = shot_flows(0, 0, steps)
    for i in steps:  # F(i−1, i) says 5 px of motion in rows 4–11, columns 20–29; F(i, i−1) none
        flows[(i - 1, i)][:, 0, 4:12, 20:30] = 5.0
    carried_ab, carried_mask = carry_guidance(ab, mask, flows, steps=steps)
    region = torch.zeros(32, 48, dtype=torch.bool)
    region[4:12, 20:30] = True
    assert carried_mask[..., region].max() == 0 and carried_ab[..., region].abs().max() == 0
    torch.testing.assert_close(carried_mask[..., ~region], mask[..., ~region] * 0.98**2)
    torch.testing.assert_close(carried_ab[..., ~region], ab[..., ~region])

    consistency = flow_consistency(flows[(1, 0)], flows[(0, 1)])
    assert consistency.shape == (2, 1, 32, 48)
    assert torch.equal(consistency[0, 0], (~region).float())


def test_the_consistency_bound_follows_sundaram():
    flow = constant_flow(10, 0, batch=1)
    # |w + w'|² = 1 against 0.01·(100 + 81) + 0.5 = 2.31: consistent; 2² = 4 is not
    assert flow_consistency(flow, constant_flow(-9, 0, batch=1))[..., :30].min() == 1
    assert flow_consistency(flow, constant_flow(-8, 0, batch=1)).max() == 0
    # the last 10 columns sample outside the frame
    assert flow_consistency(flow, constant_flow(-10, 0, batch=1))[..., 38:].max() == 0
    assert flow_consistency(flow, constant_flow(-10, 0, batch=1))[..., :38].min() == 1


def test_below_min_confidence_the_mask_is_zero(guidance):
    ab, mask = guidance
    for count, kept in ((4, True), (5, False)):  # 0.5⁴ = 0.0625 ≥ 0.05 > 0.5⁵
        steps = range(1, count + 1)
        carried_ab, carried_mask = carry_guidance(
            ab, mask, shot_flows(0, 0, steps), steps=steps, decay=0.5
        )
        if kept:
            torch.testing.assert_close(carried_mask, mask * 0.5**count)
            torch.testing.assert_close(carried_ab, ab)
        else:
            assert carried_mask.max() == 0 and carried_ab.abs().max() == 0


def test_carry_pairs_and_what_propagation_lacks():
    assert carry_pairs(range(1, 3)) == [(1, 0), (0, 1), (2, 1), (1, 2)]
    for num_frames in (2, 3, 7):
        lacking = set(carry_pairs(range(1, num_frames))) - set(
            TCVCNet.propagation_pairs(num_frames)
        )
        assert lacking == {(num_frames - 1, num_frames - 2), (0, 1)}


def test_carry_guidance_checks_its_inputs(guidance):
    ab, mask = guidance
    flows = shot_flows(0, 0, range(1, 3))
    with pytest.raises(ValueError, match=r"lack the pairs \[\(3, 2\), \(2, 3\)\]"):
        carry_guidance(ab, mask, flows, steps=range(1, 4))
    with pytest.raises(ValueError, match="mask B×1×h×w"):
        carry_guidance(ab, mask[:, 0], flows, steps=range(1, 3))
    flows[(1, 0)] = flows[(1, 0)][:1]
    with pytest.raises(ValueError, match=r"flows must be B×2×h×w = \(2, 2, 32, 48\)"):
        carry_guidance(ab, mask, flows, steps=range(1, 3))
    with pytest.raises(TypeError, match="range"):
        carry_pairs([1, 2])


# ---- the stand-ins ----------------------------------------------------------------------------
def clip_hints(batch: int, size: int = 64) -> Hints:
    """Frame 0: a 10×12 patch of (0.5, −0.3); frame T−1: a different patch and colour."""
    ab, mask = torch.zeros(batch, 2, 2, size, size), torch.zeros(batch, 2, 1, size, size)
    ab[:, 0, :, 20:30, 30:42] = torch.tensor([0.5, -0.3])[:, None, None]
    mask[:, 0, :, 20:30, 30:42] = 1
    ab[:, 1, :, 40:50, 5:15] = torch.tensor([-0.2, 0.7])[:, None, None]
    mask[:, 1, :, 40:50, 5:15] = 0.5
    return Hints(ab, mask)


def test_the_stand_ins_colour_every_inner_frame_with_the_first_anchors_hints():
    net = TCVCNet(idc=HintEchoIDC(), flownet=FixedFlow(), head=ForwardCopyHead()).eval()
    L = torch.rand(2, 5, 1, 64, 64) - 0.5
    hints = clip_hints(2)
    first, last = hints.ab[:, 0] * hints.mask[:, 0], hints.ab[:, 1] * hints.mask[:, 1]
    ab = net.colorize_clip(L, anchor_hints=hints)
    assert ab.shape == (2, 5, 2, 64, 64)
    for frame in range(4):
        assert torch.equal(ab[:, frame], first)
    assert torch.equal(ab[:, 4], last)
    with torch.no_grad():
        assert torch.equal(net(L, anchor_hints=hints), ab)  # the exact path
    assert net.colorize_clip(L).abs().max() == 0  # no hints: no colour


def test_fixed_flow_moves_the_first_anchors_hints():
    flownet = FixedFlow(dx=2, dy=-1)
    image = torch.rand(3, 3, 64, 128)
    flow = flownet(image, image)
    assert flow.shape == (3, 2, 64, 128) and flow.dtype == image.dtype
    assert torch.equal(flow[:, 0], torch.full((3, 64, 128), 2.0))
    assert torch.equal(flow[:, 1], torch.full((3, 64, 128), -1.0))

    net = TCVCNet(idc=HintEchoIDC(channels=8), flownet=flownet, head=ForwardCopyHead())
    L = torch.zeros(1, 4, 1, 64, 64)
    hints = clip_hints(1)
    ab = net.colorize_clip(L, anchor_hints=hints)
    first = hints.ab[:, 0] * hints.mask[:, 0]
    for frame in (1, 2):  # frame i = frame 0 at (x + 2i, y − i): the patch moves left and down
        expected = torch.roll(first, shifts=(frame, -2 * frame), dims=(-2, -1))
        torch.testing.assert_close(ab[:, frame], expected)


def test_hint_echo_idc_checks_its_hints():
    idc = HintEchoIDC(channels=4)
    L = torch.zeros(2, 1, 8, 8)
    ab, feature = idc(L)
    assert ab.shape == (2, 2, 8, 8) and feature.shape == (2, 4, 8, 8)
    hint, mask = torch.full((2, 2, 8, 8), 0.4), torch.full((2, 1, 8, 8), 0.5)
    ab, feature = idc(L, ab_hint=hint, hint_mask=mask)
    torch.testing.assert_close(ab, torch.full((2, 2, 8, 8), 0.2))
    torch.testing.assert_close(idc.model_out(feature), ab)
    assert feature[:, 2:].abs().max() == 0
    with pytest.raises(ValueError, match="both"):
        idc(L, ab_hint=hint)
    with pytest.raises(ValueError, match="hint_mask must be"):
        idc(L, ab_hint=hint, hint_mask=mask[:1])
    with pytest.raises(ValueError, match="channels"):
        HintEchoIDC(channels=1)
