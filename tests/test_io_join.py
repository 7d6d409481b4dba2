"""join_pieces: VideoWriter's mp4 pieces joined by stream copy into one atomic mp4, with the
source's audio, subtitles and metadata: the frames of the pieces one after another, bit for bit."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import numpy as np
import pytest
from helpers.media import RATE, bursts, decode_audio, make_source, subtitle_events

from tcvc.io import VideoError, VideoReader, VideoWriter, join_pieces, read_frames


def write_pieces(folder: Path, frames: np.ndarray, cuts: list[int], **options) -> list[Path]:
    """frames[cuts[i]:cuts[i+1]] to folder/piece<i>.mp4 with VideoWriter's defaults (B-frames)."""
    pieces = []
    fps = options.pop("fps", 25)
    for index, (start, stop) in enumerate(itertools.pairwise(cuts)):
        piece = folder / f"piece{index}.mp4"
        with VideoWriter(piece, fps=fps, **options) as writer:
            for frame in frames[start:stop]:
                writer.write(frame)
        pieces.append(piece)
    return pieces


@pytest.fixture(scope="module")
def footage(sample_video_dir) -> np.ndarray:
    """60 frames of real footage (a crop of bikes.mp4, where things move)."""
    return read_frames(sample_video_dir / "bikes.mp4", max_frames=60)[:, 40:136, 200:328]


def video_packets(path: Path) -> list[tuple[int, int]]:
    with av.open(str(path)) as container:
        return [(p.pts, p.dts) for p in container.demux(video=0) if p.size]


def test_joined_pieces_decode_to_the_pieces_frames(tmp_path, footage, sample_video_dir):
    # pieces of 2 and 1 frames have no B-frames (their decode times start at 0), the others do
    # (from -2 frames): the joined decode times must still rise
    pieces = write_pieces(tmp_path, footage, [0, 2, 3, 30, 31, 60])
    source = sample_video_dir / "bigbuckbunny.mp4"  # with audio (aac)
    target = tmp_path / "out" / "joined.mp4"
    assert join_pieces(pieces, target, audio_from=source) == 60
    assert sorted(p.name for p in target.parent.iterdir()) == ["joined.mp4"]  # no partial file

    joined = read_frames(target)
    np.testing.assert_array_equal(joined, np.concatenate([read_frames(p) for p in pieces]))
    with VideoReader(target) as reader:
        info = reader.info
    assert (info.num_frames, info.fps, info.has_audio) == (60, 25.0, True)
    with av.open(str(target)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert float(video.duration * video.time_base) == pytest.approx(60 / 25)
        assert float(audio.duration * audio.time_base) == pytest.approx(60 / 25, abs=0.05)
        assert video.codec_context.name == "h264"
    packets = video_packets(target)
    dts = [d for _, d in packets]
    assert all(b > a for a, b in itertools.pairwise(dts))  # decode times rise
    assert [p for p, _ in packets] != sorted(p for p, _ in packets)  # B-frames: reordered
    assert dts[0] < 0  # and the first piece's decode starts before 0, as VideoWriter's does
    # a stream copy: the packets are the pieces' own bytes
    with av.open(str(target)) as container:
        out = [bytes(p) for p in container.demux(video=0) if p.size]
    ins = []
    for piece in pieces:
        with av.open(str(piece)) as container:
            ins += [bytes(p) for p in container.demux(video=0) if p.size]
    assert out == ins
    # and evenly stepped decode times: the joined file seeks like any other
    np.testing.assert_array_equal(read_frames(target, start=31, stop=40), joined[31:40])


def test_joined_pieces_take_the_sources_window(tmp_path, footage):
    """Pieces of frames 25:75 of a 4 s source joined with source_start=1 s: its audio and
    subtitles from 1 s to 3 s, shifted to 0."""
    source = make_source(tmp_path / "src.mkv", audio="pcm_s16le")
    pieces = write_pieces(tmp_path, footage[:50], [0, 20, 50])
    target = tmp_path / "preview.mp4"
    assert join_pieces(pieces, target, audio_from=source, source_start=1.0) == 50
    assert subtitle_events(target) == [(0.0, 0.2, "one"), (0.5, 1.2, "two"), (1.5, 1.9, "three")]
    wave, rate = decode_audio(target)
    assert rate == RATE
    assert len(wave) / RATE == pytest.approx(2.0, abs=0.03)
    [(start, end, hz)] = bursts(wave)
    assert (start, end, hz) == (
        pytest.approx(0.5, abs=0.015),
        pytest.approx(1.5, abs=0.015),
        pytest.approx(440, abs=5),
    )
    with av.open(str(target)) as container:
        assert container.metadata["title"] == "A film"


def test_a_piece_that_differs_is_named(tmp_path, footage):
    first = write_pieces(tmp_path, footage, [0, 5])[0]
    others = {}
    for name, options, frames in [
        ("size", {}, footage[:5, :64]),
        ("rate", {"fps": 30}, footage[:5]),
        ("format", {"pixel_format": "yuv444p"}, footage[:5]),
        ("settings", {"preset": "ultrafast"}, footage[:5]),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        others[name] = write_pieces(folder, frames, [0, 5], **options)[0]
    mpeg4 = tmp_path / "mpeg4.mp4"
    with av.open(str(mpeg4), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.height, stream.width = footage.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for index, frame in enumerate(footage[:5]):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = index
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    others["codec"] = mpeg4
    target = tmp_path / "joined.mp4"
    for what, problem in [
        ("size", "its size is 128×64, the first piece's 128×96"),
        ("rate", "its frame rate is 30 fps, the first piece's 25 fps"),
        ("format", "its pixel format is yuv444p, the first piece's yuv420p"),
        ("codec", "its codec is mpeg4, the first piece's h264"),
        ("settings", "it was encoded with other settings (its H.264 parameter sets differ)"),
    ]:
        with pytest.raises(VideoError) as error:
            join_pieces([first, first, others[what]], target)
        assert str(error.value) == f"{others[what]}: cannot be joined to {first}: {problem}"
    with pytest.raises(VideoError, match="no such file"):
        join_pieces([first, tmp_path / "missing.mp4"], target)
    with pytest.raises(VideoError, match="no pieces to join"):
        join_pieces([], target)
    assert not target.exists()


def test_join_is_atomic(tmp_path, footage, monkeypatch):
    pieces = write_pieces(tmp_path, footage[:20], [0, 10, 20])
    target = tmp_path / "out" / "joined.mp4"
    join_pieces(pieces, target)
    with pytest.raises(VideoError, match="already exists"):
        join_pieces(pieces, target)
    before = target.read_bytes()

    def broken(self, packet):
        raise KeyboardInterrupt  # Ctrl-C in the middle of the join

    monkeypatch.setattr(av.container.OutputContainer, "mux", broken)
    with pytest.raises(KeyboardInterrupt):
        join_pieces(pieces, target, overwrite=True)
    monkeypatch.undo()
    assert target.read_bytes() == before  # the old file, untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["joined.mp4"]  # no partial file
    assert join_pieces(pieces[::-1], target, overwrite=True) == 20
    np.testing.assert_array_equal(
        read_frames(target), np.concatenate([read_frames(pieces[1]), read_frames(pieces[0])])
    )


def test_a_single_piece_is_a_copy(tmp_path, footage):
    [piece] = write_pieces(tmp_path, footage[:12], [0, 12])
    assert join_pieces([piece], tmp_path / "copy.mp4") == 12
    np.testing.assert_array_equal(read_frames(tmp_path / "copy.mp4"), read_frames(piece))
    assert video_packets(tmp_path / "copy.mp4") == video_packets(piece)
