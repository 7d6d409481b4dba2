"""The clip dataset, augmentations, sample data and DataModule, on the real sample frames."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tcvc.color import lab_normalized_to_rgb
from tcvc.data import ClipDataset, DataError, TCVCDataModule, find_videos
from tcvc.data.augment import center_crop, random_crop_and_flip
from tcvc.data.frames import read_frame
from tcvc.data.sample import SAMPLE_VIDEOS


def test_sample_data_layout(sample_dir):
    for name, (num_train, num_val) in SAMPLE_VIDEOS.items():
        stem = Path(name).stem
        train = sorted((sample_dir / "train" / stem).glob("*.png"))
        val = sorted((sample_dir / "val" / stem).glob("*.png"))
        assert (len(train), len(val)) == (num_train, num_val)
        assert train[0].name == "00000.png"
        with Image.open(train[0]) as image:
            assert image.size == (300, 300)
            assert image.mode == "RGB"


def test_sample_splits_do_not_share_frames(sample_dir):
    # the validation video continues where the training video stops, so their frames differ
    a = read_frame(sample_dir / "train" / "bikes" / "00059.png")
    b = read_frame(sample_dir / "val" / "bikes" / "00000.png")
    assert not torch.equal(a, b)


def test_train_clip_shapes_and_ranges(sample_dir):
    dataset = ClipDataset([sample_dir / "train"], interval=4, crop_size=128, train=True)
    assert len(dataset) == 3
    sample = dataset[0]
    assert sample["L"].shape == (6, 1, 128, 128)
    assert sample["ab"].shape == (6, 2, 128, 128)
    assert sample["L"].min() >= -0.5 - 1e-6 and sample["L"].max() <= 0.5 + 1e-6
    assert sample["ab"].abs().max() <= 1.0
    assert sample["video"] == "train/bigbuckbunny"  # natural order: bigbuckbunny, bikes, carphone
    assert 0 <= sample["start"] <= 60 - 6


def test_random_start_covers_the_video(sample_dir):
    torch.manual_seed(0)
    dataset = ClipDataset([sample_dir / "train"], interval=2, crop_size=64, train=True)
    starts = {dataset[1]["start"] for _ in range(40)}
    # the original always began at frame 0; ours draws any start of the 57 possible
    assert len(starts) > 10
    assert min(starts) >= 0 and max(starts) <= 60 - 4


def test_validation_clips_are_fixed_and_lab_round_trips(sample_dir):
    dataset = ClipDataset(
        [sample_dir / "val"], interval=4, crop_size=256, train=False, clips_per_video=2
    )
    assert len(dataset) == 6
    first, again = dataset[1], dataset[1]
    assert torch.equal(first["L"], again["L"]) and first["start"] == again["start"] == 24
    # L and ab convert back to the frame file's pixels (centre crop) within 1e-3
    video = dataset.videos[0]
    rgb = torch.stack([read_frame(p) for p in video.frames[24:30]])
    back = lab_normalized_to_rgb(first["L"], first["ab"])
    assert (back - center_crop(rgb, 256)).abs().max() < 1e-3


def _coordinate_clip(num_frames: int, size: int) -> torch.Tensor:
    """A T×3×H×W clip whose channels hold (row, column, frame index)."""
    rows = torch.arange(size, dtype=torch.float32).view(size, 1).expand(size, size)
    cols = torch.arange(size, dtype=torch.float32).view(1, size).expand(size, size)
    return torch.stack(
        [torch.stack([rows, cols, torch.full((size, size), float(t))]) for t in range(num_frames)]
    )


def test_crop_and_flips_are_the_same_for_every_frame():
    clip = _coordinate_clip(5, 32)
    for seed in range(20):
        torch.manual_seed(seed)
        out = random_crop_and_flip(clip, 16)
        assert out.shape == (5, 3, 16, 16)
        for t in range(5):
            assert torch.equal(out[t, :2], out[0, :2])  # same pixels moved the same way
            assert torch.all(out[t, 2] == t)
        # the result is a mirror/transpose of one 16×16 window: rows and columns stay ranges
        rows, cols = out[0, 0], out[0, 1]
        assert (rows.max() - rows.min()).item() == 15
        assert (cols.max() - cols.min()).item() == 15


def test_vertical_flip_mirrors_rows(monkeypatch):
    clip = _coordinate_clip(2, 8)
    # rand() < 0.5 picks each of (hflip, vflip, transpose): force only the vertical flip
    monkeypatch.setattr(torch, "rand", lambda n: torch.tensor([0.9, 0.1, 0.9]))
    out = random_crop_and_flip(clip, 8)
    assert torch.equal(out[:, 0], clip[:, 0].flip(-2))  # rows reversed
    assert torch.equal(out[:, 1], clip[:, 1])  # columns untouched: a mirror, not a rotation


def _make_root(root: Path, videos: dict[str, int], size: int = 64) -> Path:
    rng = np.random.default_rng(0)
    for name, count in videos.items():
        folder = root / name
        folder.mkdir(parents=True)
        for index in range(count):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"frame{index}.png")
    return root


def test_mixed_roots_sample_videos_uniformly(tmp_path):
    davis = _make_root(tmp_path / "davis", {"a": 40})
    videvo = _make_root(tmp_path / "videvo", {"b": 6, "c": 6, "d": 6})
    dataset = ClipDataset([davis, videvo], interval=2, crop_size=None, train=True)
    names = [dataset[i]["video"] for i in range(len(dataset))]
    # one clip per video per epoch, whichever root and however long the video is
    assert sorted(names) == ["davis/a", "videvo/b", "videvo/c", "videvo/d"]


def test_natural_sort_of_frames(tmp_path):
    root = _make_root(tmp_path / "root", {"v": 12})
    (video,) = find_videos([root], min_frames=1)
    assert [p.name for p in video.frames[:3]] == ["frame0.png", "frame1.png", "frame2.png"]
    assert video.frames[-1].name == "frame11.png"


def test_missing_root_is_named(tmp_path):
    with pytest.raises(DataError, match="nowhere"):
        ClipDataset([tmp_path / "nowhere"], interval=2, crop_size=None, train=True)


def test_empty_video_folder_is_named(tmp_path):
    root = _make_root(tmp_path / "root", {"good": 6})
    (root / "empty").mkdir()
    with pytest.raises(DataError, match=re.escape(str(root / "empty")) + ": holds no frames"):
        ClipDataset([root], interval=2, crop_size=None, train=True)


def test_hidden_entries_are_ignored(tmp_path):
    """Notebook checkpoints and macOS resource forks are not videos or frames."""
    root = _make_root(tmp_path / "root", {"v": 4, ".ipynb_checkpoints": 0})
    (root / "v" / "._frame0.png").write_bytes(b"AppleDouble")
    (video,) = find_videos([root], min_frames=4)
    assert [p.name for p in video.frames] == [f"frame{i}.png" for i in range(4)]


def test_unlistable_root_is_a_data_error(tmp_path, monkeypatch):
    root = _make_root(tmp_path / "root", {"v": 4})

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", refuse)
    with pytest.raises(DataError, match=f"data root {re.escape(str(root))}: cannot list it"):
        find_videos([root], min_frames=1)


def test_sixteen_bit_frames_are_scaled_to_eight_bits(tmp_path):
    folder = tmp_path / "root" / "v"
    folder.mkdir(parents=True)
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(folder / "00000.png")
    Image.fromarray(np.full((8, 8), 257 * 40, dtype=np.uint16)).save(folder / "00001.png")
    white, gray = read_frame(folder / "00000.png"), read_frame(folder / "00001.png")
    assert white.shape == (3, 8, 8) and torch.all(white == 1.0)
    assert torch.allclose(gray, torch.full_like(gray, 40 / 255))


def test_short_videos_are_skipped_with_a_warning(tmp_path, caplog):
    root = _make_root(tmp_path / "root", {"long": 8, "short": 3})
    with caplog.at_level(logging.WARNING):
        dataset = ClipDataset([root], interval=4, crop_size=None, train=True)
    assert [v.name for v in dataset.videos] == ["root/long"]
    assert "short" in caplog.text and "3 frames" in caplog.text
    shutil.rmtree(root / "long")
    with pytest.raises(DataError, match="interval"):
        ClipDataset([root], interval=4, crop_size=None, train=True)


def test_corrupt_frame_is_named(tmp_path):
    root = _make_root(tmp_path / "root", {"v": 4})
    (root / "v" / "frame2.png").write_bytes(b"not a png")
    dataset = ClipDataset([root], interval=2, crop_size=None, train=False)
    with pytest.raises(DataError, match="frame2.png"):
        dataset[0]


def test_a_worker_error_is_reported_as_one_line(tmp_path, capsys):
    """In a DataLoader worker (data.num_workers > 0) the error comes back wrapped with the
    worker's traceback; the entry points still print only the message."""
    from tcvc.tasks.errors import report_user_errors

    root = _make_root(tmp_path / "root", {"v": 4})
    (root / "v" / "frame2.png").write_bytes(b"not a png")
    dataset = ClipDataset([root], interval=2, crop_size=None, train=False)
    loader = torch.utils.data.DataLoader(dataset, num_workers=1)

    def task(cfg):
        next(iter(loader))

    with pytest.raises(SystemExit) as exit_info:
        report_user_errors(task)({})
    assert exit_info.value.code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: frame {root / 'v' / 'frame2.png'}: cannot read the image")


def test_crop_larger_than_frames_is_named(tmp_path):
    root = _make_root(tmp_path / "root", {"v": 4}, size=64)
    dataset = ClipDataset([root], interval=2, crop_size=128, train=True)
    with pytest.raises(DataError, match="crop_size=128"):
        dataset[0]


def test_datamodule_batches(sample_dir):
    datamodule = TCVCDataModule(
        roots=[str(sample_dir / "train")],
        val_roots=[str(sample_dir / "val")],
        interval=3,
        crop_size=64,
        batch_size=2,
        sample_dir=str(sample_dir),
    )
    datamodule.prepare_data()  # already built: a no-op
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["L"].shape == (2, 5, 1, 64, 64)
    assert batch["ab"].shape == (2, 5, 2, 64, 64)
    assert len(batch["video"]) == 2
    val = next(iter(datamodule.val_dataloader()))
    assert val["start"].tolist() == [0, 0]
