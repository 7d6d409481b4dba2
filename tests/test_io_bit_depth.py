"""Sources of more than 8 bits: `VideoReader(bit_depth="full")` reads them as uint16 RGB, and
`frame_to_L` / `frames_to_L` read uint16 frames, so the L the network sees keeps their steps."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from helpers.media import gradient, make_deep_video
from PIL import Image

from tcvc.inference import frame_to_L, frames_to_L
from tcvc.io import VideoReader, image_bit_depth, read_frames, read_image


@pytest.mark.parametrize(
    ("codec", "pixel_format", "suffix", "bits"),
    [
        ("libx264", "yuv420p10le", "mp4", 10),
        ("ffv1", "yuv444p12le", "mkv", 12),
        ("ffv1", "yuv444p16le", "mkv", 16),
    ],
)
def test_deep_video_reads_at_full_precision(tmp_path, codec, pixel_format, suffix, bits):
    path = make_deep_video(tmp_path / f"deep.{suffix}", codec, pixel_format)
    with VideoReader(path) as reader:  # the default: uint8, as before
        assert reader.info.bit_depth == bits and reader.dtype == np.uint8
        eight = reader.read_all()
    with VideoReader(path, bit_depth="full") as reader:
        assert reader.info.bit_depth == bits and reader.dtype == np.uint16
        full = reader.read_all()
    assert eight.dtype == np.uint8 and full.dtype == np.uint16 and full.shape == eight.shape
    # the same picture, 8 more bits of it
    assert np.abs(full.astype(np.float64) / 257 - eight).max() <= 1.5  # 8-bit: dithered
    error = np.abs(full.astype(np.float64) - gradient()[None]).max()
    assert error <= 65535 * 2.0 ** -(bits - 3)  # within a few steps of the source (its YUV)

    L8 = frames_to_L(torch.from_numpy(eight))
    L16 = frames_to_L(torch.from_numpy(full))
    assert (L16 - L8).abs().max() < 0.01  # (L* − 50)/100: under one L* level apart
    row8, row16 = L8[0, 0, 24], L16[0, 0, 24]  # one row across the ramp
    assert len(torch.unique(row16)) >= 1.5 * len(torch.unique(row8))  # more distinct L values
    assert row16.diff().abs().max() < row8.diff().abs().max() / 2  # in smaller steps


def test_an_8_bit_video_read_at_full_depth_stays_uint8(sample_video_dir):
    path = sample_video_dir / "carphone_pristine.mp4"
    with VideoReader(path, bit_depth="full", stop=3) as reader:
        assert reader.info.bit_depth == 8 and reader.dtype == np.uint8
        np.testing.assert_array_equal(reader.read_all(), read_frames(path, max_frames=3))
    with pytest.raises(ValueError, match="bit_depth must be '8' or 'full', got '16'"):
        VideoReader(path, bit_depth="16")


def write_png48(path: Path, rgb: np.ndarray) -> Path:
    """A 16-bit RGB PNG (FFmpeg's encoder: PIL writes 8-bit colour only)."""
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png", rate=1)
        stream.height, stream.width = rgb.shape[:2]
        stream.pix_fmt = "rgb48be"
        picture = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(format="rgb48be")
        picture.pts = 0
        container.mux(stream.encode(picture))
        container.mux(stream.encode())
    return path


def test_16_bit_frame_folders_read_at_full_precision(tmp_path):
    rgb = gradient(8, 16)
    gray = rgb[..., 0]
    write_png48(tmp_path / "0.png", rgb)
    Image.fromarray(gray).save(tmp_path / "1.png")  # 16-bit gray, PIL's "I;16"
    Image.fromarray(gray).save(tmp_path / "2.tif")
    Image.fromarray((rgb // 257).astype(np.uint8)).save(tmp_path / "3.png")  # one 8-bit frame
    assert [image_bit_depth(tmp_path / n) for n in ("0.png", "1.png", "2.tif", "3.png")] == [
        16,
        16,
        16,
        8,
    ]
    with VideoReader(tmp_path, bit_depth="full") as reader:
        assert reader.info.bit_depth == 16 and reader.dtype == np.uint16
        frames = reader.read_all()
    assert frames.dtype == np.uint16
    np.testing.assert_array_equal(frames[0], rgb)
    np.testing.assert_array_equal(frames[1], np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(frames[2], frames[1])
    np.testing.assert_array_equal(frames[3], (rgb // 257).astype(np.uint16) * 257)  # 8 bits, ×257

    eight = read_frames(tmp_path)  # the default, as before: 8 bits
    assert eight.dtype == np.uint8
    assert np.abs(eight.astype(int) - frames.astype(int) // 257).max() <= 1
    assert read_image(tmp_path / "3.png", bit_depth="full").dtype == np.uint8  # 8-bit stays 8


@pytest.mark.parametrize("lightness", ["lab", "gray_value"])
def test_a_uint16_frame_gives_the_L_of_its_uint8_frame(lightness):
    rng = np.random.default_rng(3)
    colour = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    gray = np.repeat(rng.integers(0, 256, (12, 16, 1), dtype=np.uint8), 3, axis=2)
    for frame in (colour, gray):
        deep = frame.astype(np.uint16) * 257
        torch.testing.assert_close(
            frame_to_L(deep, lightness=lightness),
            frame_to_L(frame, lightness=lightness),
            atol=1e-6,
            rtol=0,
        )
    batch = np.stack([colour, gray])
    torch.testing.assert_close(
        frames_to_L(torch.from_numpy(batch.astype(np.uint16) * 257), lightness=lightness),
        frames_to_L(torch.from_numpy(batch), lightness=lightness),
        atol=1e-6,
        rtol=0,
    )
    with pytest.raises(ValueError, match="uint8 or uint16"):
        frame_to_L(colour.astype(np.int32), lightness=lightness)
