"""The flow cache: flows stay the flows of the augmented frames; the cache holds what FlowNet2
gives on the full frames; training reads it instead of running FlowNet2."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.media import make_small_root

from ops import resample2d
from tcvc.data.augment import Augmentation
from tcvc.data.clips import ClipDataset, video_location
from tcvc.data.flow_cache import (
    build_flow_cache,
    cache_dir_of,
    clip_flow_pairs,
    read_clip_flows,
    row_of,
    video_flows,
    weights_fingerprint,
)
from tcvc.data.frames import read_frame


def smooth_flow(height: int, width: int, seed: int) -> torch.Tensor:
    """1×2×H×W: a smooth random field of a few pixels (bilinear-upsampled noise)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, 2, 4, 4, generator=generator) * 3
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear")


@pytest.mark.parametrize(("hflip", "vflip", "transpose"), list(itertools.product([0, 1], repeat=3)))
def test_augmented_flow_warps_the_augmented_frame(hflip, vflip, transpose):
    """warp(A(image), A_flow(flow)) == A(warp(image, flow)) for every flip / transpose."""
    image = torch.rand(1, 3, 48, 48)
    flow = smooth_flow(48, 48, seed=hflip + 2 * vflip + 4 * transpose)
    augmentation = Augmentation(0, 0, 48, bool(hflip), bool(vflip), bool(transpose))
    expected = augmentation.apply(resample2d(image, flow))
    warped = resample2d(augmentation.apply(image), augmentation.apply_to_flow(flow))
    torch.testing.assert_close(warped, expected, atol=1e-5, rtol=0)


def test_augmented_flow_with_a_crop_inside():
    """A crop leaves flow values alone: away from the crop's border the warps agree."""
    image = torch.rand(1, 3, 64, 64)
    flow = smooth_flow(64, 64, seed=9).clamp(-3, 3)
    augmentation = Augmentation(10, 14, 40, hflip=True, vflip=False, transpose=True)
    expected = augmentation.apply(resample2d(image, flow))
    warped = resample2d(augmentation.apply(image), augmentation.apply_to_flow(flow))
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    torch.testing.assert_close(warped[inner], expected[inner], atol=1e-5, rtol=0)
    assert not torch.allclose(warped, expected, atol=1e-3)  # at the border they may not


def test_clip_flow_pairs_and_rows():
    assert clip_flow_pairs(4, (1, -1, -2)) == [
        (0, 1), (1, 2), (2, 3), (1, 0), (2, 1), (3, 2), (2, 0), (3, 1)
    ]  # fmt: skip
    assert (row_of(5, 1), row_of(5, -1), row_of(5, -2)) == (5, 4, 3)


def fake_flow(L_a: torch.Tensor, L_b: torch.Tensor) -> torch.Tensor:
    """A pointwise stand-in for FlowNet2: F(a, b) = (10·(L_a − L_b), L_a + L_b)."""
    return torch.cat([10 * (L_a - L_b), L_a + L_b], dim=1)


@pytest.fixture()
def small_root(tmp_path) -> Path:
    return make_small_root(tmp_path)


def test_a_cache_of_other_flownet_weights_is_computed_again(small_root):
    """Flows made with random FlowNet2 weights are not reused once the real file is given."""
    from tcvc.nets.flownet2 import FlowNet2

    dataset = ClipDataset([small_root], interval=2, crop_size=64, train=True)
    videos = [(*video_location(v), v.frames) for v in dataset.videos]
    calls = []

    def counted_flow(L_a, L_b):
        calls.append(L_a.shape[0])
        return fake_flow(L_a, L_b)

    torch.manual_seed(0)
    random_net, real_net = FlowNet2(), FlowNet2()
    same_net = FlowNet2()
    same_net.load_state_dict(random_net.state_dict())
    first = weights_fingerprint(random_net)
    assert weights_fingerprint(same_net) == first != weights_fingerprint(real_net)
    assert build_flow_cache(videos, counted_flow, fingerprint=first) == 2
    assert (cache_dir_of(small_root, "a") / "flownet.fingerprint").read_text().strip() == first
    assert build_flow_cache(videos, counted_flow, fingerprint=first) == 0
    done = len(calls)
    assert build_flow_cache(videos, counted_flow, fingerprint=weights_fingerprint(real_net)) == 2
    assert len(calls) == 2 * done  # every flow computed again


def test_cache_holds_the_full_frame_flows_and_clips_read_them(small_root):
    dataset = ClipDataset(
        [small_root], interval=2, crop_size=64, train=True, flow_offsets=(1, -1, -2)
    )
    videos = [(*video_location(v), v.frames) for v in dataset.videos]
    assert build_flow_cache(videos, fake_flow, offsets=(1, -1, -2)) == 2
    assert build_flow_cache(videos, fake_flow, offsets=(1, -1, -2)) == 0  # complete: kept
    folder = cache_dir_of(small_root, "a")
    assert folder == small_root.parent / "train.flows" / "a"
    assert sorted(p.name for p in folder.iterdir()) == [
        "offset_+1.npy", "offset_-1.npy", "offset_-2.npy"
    ]  # fmt: skip
    assert np.load(folder / "offset_-2.npy").shape == (5, 2, 96, 96)

    from tcvc.color import rgb_to_lab_normalized

    frames = dataset.videos[0].frames
    L, _ = rgb_to_lab_normalized(torch.stack([read_frame(p) for p in frames]))
    direct = fake_flow(L[4:5], L[2:3])[0]  # F(4, 2)
    cached = read_clip_flows(folder, 2, [(2, 0)])[0]  # clip from frame 2: its (2, 0) is F(4, 2)
    torch.testing.assert_close(cached, direct, atol=2e-2, rtol=1e-3)  # float16 storage

    torch.manual_seed(0)
    sample = dataset[0]
    pairs = clip_flow_pairs(4, (1, -1, -2))
    assert sample["flows"].shape == (len(pairs), 2, 64, 64)
    assert sample["flow_pairs"].tolist() == [list(p) for p in pairs]
    # the same draws again give the augmentation: the clip's flows are the cache's, augmented
    torch.manual_seed(0)
    start = int(torch.randint(0, 7 - 4 + 1, ()).item())
    from tcvc.data.augment import random_augmentation

    augmentation = random_augmentation(96, 96, 64)
    expected = augmentation.apply_to_flow(read_clip_flows(folder, start, pairs))
    assert sample["start"] == start and torch.equal(sample["flows"], expected)


def test_a_relative_root_caches_beside_its_folder(small_root, monkeypatch):
    """`data.roots=[.]` (training from inside the root): the cache is `<root>.flows` beside the
    root's folder (bug: `Path(".").with_name` raised ValueError)."""
    monkeypatch.chdir(small_root)
    dataset = ClipDataset(["."], interval=2, crop_size=64, train=True, flow_offsets=(1, -1, -2))
    videos = [(*video_location(v), v.frames) for v in dataset.videos]
    assert build_flow_cache(videos, fake_flow, offsets=(1, -1, -2)) == 2
    folder = small_root.parent.resolve() / "train.flows" / "a"
    assert cache_dir_of(".", "a") == folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "offset_+1.npy", "offset_-1.npy", "offset_-2.npy"
    ]  # fmt: skip
    assert [v.name for v in dataset.videos] == ["train/a", "train/b"]
    assert dataset[0]["flows"].shape == (8, 2, 64, 64)  # read back from the cache
    monkeypatch.chdir(small_root.parent)
    assert cache_dir_of("train", "a") == folder  # a relative root below the working folder


def test_video_flows_pads_to_multiples_of_64():
    seen = []

    def recording(L_a, L_b):
        seen.append(tuple(L_a.shape))
        return fake_flow(L_a, L_b)

    L = torch.rand(5, 1, 70, 100) - 0.5
    flows = video_flows(L, recording, -1, batch_size=3)
    assert seen == [(3, 1, 128, 128), (1, 1, 128, 128)]
    torch.testing.assert_close(flows, fake_flow(L[1:], L[:-1]))


def test_training_step_uses_the_cache_instead_of_flownet(small_root):
    """With the cache covering every pair, a step runs FlowNet2 zero times."""
    from tcvc.models import TCVCModule
    from tcvc.nets import TCVCNet

    net = TCVCNet()
    module = TCVCModule(net=net)
    dataset = ClipDataset(
        [small_root], interval=2, crop_size=64, train=True, flow_offsets=(1, -1, -2)
    )
    videos = [(*video_location(v), v.frames) for v in dataset.videos]
    with torch.no_grad():
        build_flow_cache(videos, net.estimate_flow, offsets=(1, -1, -2))
    batch = torch.utils.data.default_collate([dataset[0]])
    calls = []
    handle = net.flownet.register_forward_hook(lambda *args: calls.append(1))
    try:
        terms, ab = module._step(batch)
        assert calls == []
        assert torch.isfinite(terms["loss"]) and ab.shape == (1, 4, 2, 64, 64)
        del batch["flows"], batch["flow_pairs"]  # without the cache: FlowNet2 on the crops
        module._step(batch)
        assert len(calls) == 1  # all pairs in one batched call
    finally:
        handle.remove()
