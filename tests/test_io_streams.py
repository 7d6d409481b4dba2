"""tcvc.io.streams through VideoWriter: the source's audio, subtitles, data streams and metadata
copied into the output mp4, whole or from a window of the source (a preview of a range)."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from helpers.media import (
    BURSTS,
    FPS,
    RATE,
    SUBTITLES,
    bursts,
    decode_audio,
    make_source,
    subtitle_events,
    tone_pattern,
)

from tcvc.io import VideoReader, VideoWriter


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
    wave, rate = decode_audio(tmp_path / "out.mp4")
    assert rate == RATE
    found = bursts(wave)
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
    wave, rate = decode_audio(tmp_path / "out.mp4")
    assert rate == RATE
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
    wave, rate = decode_audio(tmp_path / "out.mp4")
    assert rate == RATE
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
