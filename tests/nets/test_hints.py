"""SIGGRAPH'17's training hints (tcvc.nets.hints): the sampling's statistics against the
original's recipe (colorization-pytorch util/util.py), the hint values, gray images, seeds."""

from __future__ import annotations

import pytest
import torch

from tcvc.nets.hints import Hints, HintSampler, Patch, draw_patches, is_colourful, paint_hints


def many_draws(count: int, *, height: int = 64, width: int = 64, **settings) -> list[list[Patch]]:
    generator = torch.Generator().manual_seed(0)
    return [draw_patches(height, width, generator=generator, **settings) for _ in range(count)]


@pytest.mark.parametrize("p", [0.125, 0.5])
def test_the_number_of_points_is_geometric(p):
    """Points are drawn while rand() < 1 − p: P(k points) = (1 − p)^k p, mean (1 − p) / p (7 at
    the original's p = 1/8). 3000 draws: the mean within 4 standard errors."""
    draws = many_draws(3000, p=p)
    counts = torch.tensor([len(patches) for patches in draws], dtype=torch.float64)
    mean, std = (1 - p) / p, (1 - p) ** 0.5 / p
    assert abs(counts.mean().item() - mean) < 4 * std / len(draws) ** 0.5, counts.mean()
    assert abs((counts == 0).double().mean().item() - p) < 0.03  # P(no point) = p


def test_patch_sizes_and_places():
    """Sides uniform in 1 … max_patch; every patch inside the image; corners normal around the
    centre, N((H − P + 1) / 2, (H − P + 1) / 4) clipped: about 68 % within a quarter of the range
    of the middle (a uniform corner: 50 %)."""
    height, width = 48, 80
    patches = [patch for draw in many_draws(600, height=height, width=width) for patch in draw]
    sizes = torch.tensor([patch.size for patch in patches])
    assert len(patches) > 3000
    assert set(sizes.tolist()) == set(range(1, 10))
    share = torch.bincount(sizes, minlength=10)[1:].double() / len(patches)
    assert (share - 1 / 9).abs().max() < 0.03
    assert all(
        0 <= top <= height - size and 0 <= left <= width - size for top, left, size in patches
    )
    for extent, corner in ((height, 0), (width, 1)):
        span = torch.tensor([extent - patch.size + 1 for patch in patches], dtype=torch.float64)
        offset = torch.tensor([patch[corner] for patch in patches], dtype=torch.float64) - span / 2
        middle = (offset.abs() < span / 4).double().mean().item()
        assert 0.6 < middle < 0.76, middle
        standard_error = offset.std().item() / len(patches) ** 0.5
        assert abs(offset.mean().item() + 0.5) < 4 * standard_error  # int() truncates: −0.5
    smaller = [patch.size for draw in many_draws(300, max_patch=3) for patch in draw]
    assert set(smaller) == {1, 2, 3}


def test_a_hint_is_the_mean_of_its_patch():
    """Each patch's hint is the ground truth's per-channel mean over the patch (here on dyadic
    values, whose sums are exact: the mean of float64 sums, rounded once), mask 1 over it, zeros
    elsewhere; a later patch overwrites an earlier one."""
    generator = torch.Generator().manual_seed(1)
    ab = torch.randint(-64, 65, (2, 2, 16, 16), generator=generator).float() / 64
    patches = [[Patch(2, 3, 5), Patch(4, 6, 3)], [Patch(10, 0, 1)]]
    hints = paint_hints(ab, patches)
    assert isinstance(hints, Hints) and hints.ab.shape == (2, 2, 16, 16)
    assert hints.mask.shape == (2, 1, 16, 16)

    expected_ab, expected_mask = torch.zeros_like(ab), torch.zeros(2, 1, 16, 16)
    for image, image_patches in enumerate(patches):
        for top, left, size in image_patches:
            for channel in range(2):
                values = ab[image, channel, top : top + size, left : left + size].double()
                mean = (values.sum() / values.numel()).float()
                expected_ab[image, channel, top : top + size, left : left + size] = mean
            expected_mask[image, 0, top : top + size, left : left + size] = 1
    assert torch.equal(hints.ab, expected_ab) and torch.equal(hints.mask, expected_mask)
    assert hints.mask.sum() == 25 + 9 - 3 * 2 + 1  # the 3×2 overlap counted once
    assert torch.equal(hints.ab[1, :, 10, 0], ab[1, :, 10, 0])  # a 1×1 patch: the pixel itself


def test_nearly_gray_images_get_no_hints():
    """The original's test: a range + b range ≥ ab_thresh / ab_norm = 5 / 110 on ab / 110 keeps
    an image; below it, no hints however many points (p = 0.01: ~99 a colourful image)."""
    ab = torch.full((4, 2, 32, 32), 0.2)  # uniform colour: the ranges count, not the values
    ab[1, 0, 5, 5], ab[1, 1, 6, 6] = 0.2 + 2.0 / 110, 0.2 + 2.9 / 110  # ranges 2 + 2.9 < 5
    ab[2, 0, 5, 5], ab[2, 1, 6, 6] = 0.2 + 2.0 / 110, 0.2 + 3.1 / 110  # 2 + 3.1 ≥ 5
    ab[3] = torch.rand(2, 32, 32, generator=torch.Generator().manual_seed(0)) - 0.5
    assert is_colourful(ab).tolist() == [False, False, True, True]
    assert is_colourful(ab, min_ab_range=1.0).tolist() == [False, True, True, True]

    hints = HintSampler(p=0.01)(ab, generator=torch.Generator().manual_seed(0))
    marked = hints.mask.flatten(1).sum(1)
    assert marked[:2].tolist() == [0, 0] and (marked[2:] > 100).all()
    assert not hints.ab[:2].any()


def test_the_sampler_paints_the_drawn_patches():
    ab = torch.rand(3, 2, 32, 48, generator=torch.Generator().manual_seed(2)) - 0.5
    hints = HintSampler(p=0.2, max_patch=5)(ab, generator=torch.Generator().manual_seed(7))
    generator = torch.Generator().manual_seed(7)
    patches = [draw_patches(32, 48, p=0.2, max_patch=5, generator=generator) for _ in range(3)]
    assert sum(map(len, patches)) > 0
    expected = paint_hints(ab, patches)
    assert torch.equal(hints.ab, expected.ab) and torch.equal(hints.mask, expected.mask)


def test_a_seed_gives_the_same_hints():
    ab = torch.rand(4, 2, 32, 32, generator=torch.Generator().manual_seed(3)) - 0.5
    sampler = HintSampler()
    first, again, other = (
        sampler(ab, generator=torch.Generator().manual_seed(seed)) for seed in (5, 5, 6)
    )
    assert torch.equal(first.ab, again.ab) and torch.equal(first.mask, again.mask)
    assert not torch.equal(first.mask, other.mask)
    torch.manual_seed(11)  # generator=None: torch's global generator, seeded likewise
    from_global = sampler(ab)
    torch.manual_seed(11)
    assert torch.equal(sampler(ab).mask, from_global.mask)


def test_disabled_draws_nothing():
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    assert HintSampler(enabled=False)(torch.rand(2, 2, 16, 16), generator=generator) is None
    assert torch.equal(generator.get_state(), state)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"p": 0.0}, r"p must be in \(0, 1\], got 0.0"),
        ({"p": 1.5}, r"p must be in \(0, 1\], got 1.5"),
        ({"max_patch": 0}, "max_patch must be an integer ≥ 1, got 0"),
        ({"max_patch": 2.5}, "max_patch must be an integer ≥ 1, got 2.5"),
        ({"min_ab_range": -1.0}, "min_ab_range must be ≥ 0"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        HintSampler(**settings)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"ab must be B×2×H×W, got shape \(2, 3, 16, 16\)"):
        HintSampler()(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"1 lists of patches for ab of shape \(2, 2, 16, 16\)"):
        paint_hints(torch.zeros(2, 2, 16, 16), [[]])
    with pytest.raises(ValueError, match=r"up to 9×9 need an image at least that large.* 8×64"):
        draw_patches(8, 64, p=0.5, generator=torch.Generator().manual_seed(0))
