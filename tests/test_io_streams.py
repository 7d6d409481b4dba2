"""tcvc.io.streams through VideoWriter: the source's audio, subtitles, data streams and metadata
copied into the output mp4, whole or from a window of the source (a preview of a range)."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.subtitles.subtitle import SubtitleSet
from test_io import audio_frame

from tcvc.io import VideoReader, VideoWriter

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


def colour(source: Path, target: Path, *, start: int = 0, stop: int | None = None) -> None:
    """Copy frames start:stop of `source` to `target` with its streams from the same moment."""
    with (
        VideoReader(source, start=start, stop=stop) as reader,
        VideoWriter(
            target, fps=reader.info.fps, audio_from=source, source_start=reader.start_time
        ) as writer,
    ):
        for frame in reader:
            writer.write(frame)


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


def decode_audio(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.sample_rate == RATE
        return np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(stream)])


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


@pytest.mark.parametrize(
    ("container", "audio", "subtitles"),
    [
        ("mkv", "pcm_s16le", "subrip"),  # transcoded to AAC, converted to mov_text
        ("mp4", "aac", "mov_text"),  # both remuxed
    ],
)
def test_the_whole_source_is_copied(tmp_path, container, audio, subtitles, caplog):
    source = make_source(tmp_path / f"src.{container}", audio=audio, subtitles=subtitles)
    with caplog.at_level(logging.INFO):
        colour(source, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as output:
        assert output.metadata["title"] == "A film"
        assert output.metadata["comment"] == "made for a test"
        assert [(s.type, s.metadata.get("language")) for s in output.streams] == [
            ("video", "fra"),
            ("audio", "eng"),
            ("subtitle", "deu"),
        ]
        assert output.streams.audio[0].codec_context.name == "aac"
    assert subtitle_events(tmp_path / "out.mp4") == [
        (start, end, words) for start, end, words in SUBTITLES
    ]
    found = bursts(decode_audio(tmp_path / "out.mp4"))
    assert [hz for *_, hz in found] == pytest.approx([hz for *_, hz in BURSTS], abs=5)
    for (start, end, _), (want_start, want_end, _) in zip(found, BURSTS):
        assert start == pytest.approx(want_start, abs=0.015)
        assert end == pytest.approx(want_end, abs=0.015)
    done = (
        "converting to mov_text subtitle #2 (srt"
        if subtitles == "subrip"
        else "copying subtitle #2 (mov_text"
    )
    assert f"{done}, deu) from {source}" in caplog.text


@pytest.mark.parametrize(
    ("container", "audio", "subtitles"),
    [
        ("mkv", "pcm_s16le", "subrip"),
        ("mp4", "aac", "mov_text"),
    ],
)
def test_a_window_takes_the_streams_from_its_start(tmp_path, container, audio, subtitles):
    """Frames 25:75 (1 s to 3 s): the audio and subtitles of that window, shifted to 0."""
    source = make_source(tmp_path / f"src.{container}", audio=audio, subtitles=subtitles)
    colour(source, tmp_path / "out.mp4", start=25, stop=75)
    with VideoReader(tmp_path / "out.mp4") as reader:
        assert reader.info.num_frames == 50
    # "one" (0.5-1.2 s) shows across the start: from 0 for what is left; "four" is after the end
    assert subtitle_events(tmp_path / "out.mp4") == [
        (0.0, 0.2, "one"),
        (0.5, 1.2, "two"),
        (1.5, 1.9, "three"),
    ]
    wave = decode_audio(tmp_path / "out.mp4")
    assert len(wave) / RATE == pytest.approx(2.0, abs=0.03)  # cut at the end (one AAC frame)
    found = bursts(wave)
    assert len(found) == 1  # the 880 Hz burst is before the window, the 660 Hz one after
    start, end, hz = found[0]
    assert (start, end, hz) == (
        pytest.approx(0.5, abs=0.015),
        pytest.approx(1.5, abs=0.015),
        pytest.approx(440, abs=5),
    )


def test_a_window_cuts_transcoded_audio_at_the_sample(tmp_path):
    """PCM in one packet of 4 s (PyAV encodes the whole wave at once): a window inside it starts
    at its own sample, not at the packet's."""
    source = make_source(tmp_path / "src.mkv", audio="pcm_s16le")
    colour(source, tmp_path / "out.mp4", start=40, stop=60)  # 1.6 s to 2.4 s: inside the 440 Hz
    wave = decode_audio(tmp_path / "out.mp4")
    expected = tone_pattern()[round(1.6 * RATE) : round(2.4 * RATE)]
    # AAC at 192 kb/s of a pure tone: the same samples within a little noise, aligned
    assert len(wave) == pytest.approx(len(expected), abs=1024)
    length = min(len(wave), len(expected)) - 2048
    lag = np.argmax(
        np.correlate(wave[1024 : 1024 + length], expected[1024 - 64 : 1024 + 64 + length], "valid")
    )
    assert abs(lag - 64) <= 1  # no shift between the output and the source's window


def test_data_streams_and_timecode(tmp_path, caplog):
    """mp4 carries a timecode (the muxer writes it from the video's tag) but not KLV."""
    source = tmp_path / "src.mov"
    with av.open(str(source), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.metadata["timecode"] = "01:00:00:00"  # the mov muxer writes a tmcd track
        for index in range(10):
            picture = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            picture.pts = index
            container.mux(video.encode(picture))
        container.mux(video.encode())
    with av.open(str(source)) as container:
        assert [s.type for s in container.streams] == ["video", "data"]
    colour(source, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as output:
        assert output.streams.video[0].metadata["timecode"] == "01:00:00:00"
        assert [s.type for s in output.streams] == ["video", "data"]  # its tmcd track

    klv = tmp_path / "src.ts"
    with av.open(str(klv), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        data = container.add_data_stream("klv")
        for index in range(10):
            picture = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            picture.pts = index
            container.mux(video.encode(picture))
            packet = av.Packet(b"\x06\x0e\x2b\x34" + bytes(12))
            packet.stream, packet.time_base = data, Fraction(1, 90000)
            packet.pts = packet.dts = index * 3600
            container.mux(packet)
        container.mux(video.encode())
    with caplog.at_level(logging.INFO):
        colour(klv, tmp_path / "klv.mp4")
    with av.open(str(tmp_path / "klv.mp4")) as output:
        assert [s.type for s in output.streams] == ["video"]
    assert "skipping data #1 (klv) of" in caplog.text and "mp4 cannot carry it" in caplog.text


def test_bitmap_subtitles_are_skipped_with_a_reason(tmp_path, caplog):
    source = tmp_path / "src.mkv"
    with av.open(str(source), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        container.add_stream("dvd_subtitle")
        for index in range(5):
            picture = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            picture.pts = index
            container.mux(video.encode(picture))
        container.mux(video.encode())
    with caplog.at_level(logging.INFO):
        colour(source, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as output:
        assert [s.type for s in output.streams] == ["video"]
    assert "skipping subtitle #1 (dvdsub) of" in caplog.text
    assert "mp4 carries text subtitles only" in caplog.text
