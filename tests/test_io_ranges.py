"""VideoReader(start=, stop=): a range of frames, bit for bit the frames of a reading from 0, found
by seeking where the frame index maps to a timestamp (and by decoding from 0 where it does not)."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tcvc.io import FrameIndex, VideoError, VideoReader, read_frames
from tcvc.io.timeline import FrameGrid, GridCheck, table_step

FALLBACK = "decoding from frame 0"


def moving_frames(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Frames that all differ (a gradient that shifts, a square that moves): a frame taken from
    the wrong place shows."""
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for t in range(count):
        frames[t, ..., 0] = (40 + 150 * x / width + 7 * t) % 256
        frames[t, ..., 1] = 60 + 120 * y / height
        frames[t, ..., 2] = (90 + 3 * t) % 256
        left = (2 * t) % (width - 16)
        frames[t, 10:26, left : left + 16] = (220, 40, 60)
    return frames


def make_h264(
    path: Path,
    frames: np.ndarray,
    *,
    pts: list[int] | None = None,
    options: dict[str, str] | None = None,
    faststart: bool = False,
) -> Path:
    """H.264 with a short GOP (10) and B-frames (3) unless `options` say otherwise; `pts` (in
    1/25 s) makes a variable frame rate."""
    flags = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", container_options=flags) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = options or {"g": "10", "bf": "3"}
        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = index if pts is None else pts[index]
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    return path


@pytest.fixture
def count_decoded(monkeypatch):
    """A list that gets one entry per frame the reader decodes (yielded or dropped)."""
    decoded: list[int | None] = []
    original = VideoReader._decode

    def counting(self):
        for frame in original(self):
            decoded.append(frame.pts)
            yield frame

    monkeypatch.setattr(VideoReader, "_decode", counting)
    return decoded


# -- the frame grid --------------------------------------------------------------------------


def test_frame_grid_maps_indices_and_timestamps_both_ways():
    grid = FrameGrid(first_pts=7200, step=3600)  # MPEG-TS: 90 kHz, 25 fps, starting at 0.08 s
    assert [grid.pts(i) for i in (0, 1, 250)] == [7200, 10800, 907200]
    assert [grid.index(p) for p in (7200, 10800, 907200)] == [0, 1, 250]
    assert grid.index(7200 + 1800) is None and grid.index(None) is None  # between two frames
    ntsc = FrameGrid(first_pts=0, step=1000 / (30000 / 1001))  # 29.97 fps in milliseconds
    assert [ntsc.index(round(i * 1001 / 30)) for i in range(1000)] == list(range(1000))


def test_table_step_and_grid_check_see_gaps_and_uneven_steps():
    assert table_step([-1024, -512, 0, 512, 1024]) == 512
    assert table_step([0, 512, 1536, 2048]) is None  # a frame missing
    assert table_step([0, 33, 67, 100, 133]) is not None  # ms rounding of 30 fps
    check = GridCheck(step=512)
    for pts in (1024, 0, 512, 2048, 1536):  # any order (B-frames), every slot filled
        check.add(pts)
    assert check.grid_step == 512
    check.add(3584)  # a gap at 3072
    assert check.grid_step is None
    odd = GridCheck(step=512)
    odd.add(0)
    odd.add(700)  # off the grid
    assert odd.grid_step is None
    # one timestamp twice and a gap elsewhere: as many timestamps as slots, but not a grid
    twice = GridCheck(step=512)
    for pts in (0, 512, 1024, 1536, 2560, 2560, 3072):
        twice.add(pts)
    assert twice.grid_step is None


# -- ranges of real files --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ranges"),
    [
        # bikes: B-frames, key frames at 0, 30, 76, 137, 187, 242
        (
            "bikes.mp4",
            [
                (1, 6),
                (29, 31),
                (30, 35),
                (31, 33),
                (75, 77),
                (76, 80),
                (77, 79),
                (136, 138),
                (137, 140),
                (200, None),
                (241, 243),
                (242, None),
                (249, None),
            ],
        ),
        ("carphone_pristine.mp4", [(1, 6), (60, 63), (117, None)]),  # B-frames, one GOP
        ("bigbuckbunny.mp4", [(1, 3), (40, 42)]),  # 720p, no B-frames, one GOP, with audio
    ],
)
def test_a_range_of_a_sample_video_is_the_same_frames(sample_video_dir, name, ranges, caplog):
    path = sample_video_dir / name
    total = VideoReader(path).info.num_frames
    every = read_frames(path, max_frames=max(stop or total for _, stop in ranges))
    with caplog.at_level(logging.INFO):
        for start, stop in ranges:
            with VideoReader(path, start=start, stop=stop) as reader:
                assert len(reader) == (stop or total) - start
                assert reader.info.num_frames == total  # the whole video's, always
                got = reader.read_all()
            np.testing.assert_array_equal(got, every[start:stop], err_msg=f"{name}[{start}:{stop}]")
    assert FALLBACK not in caplog.text  # every one of them was a seek


def test_a_late_start_does_not_decode_what_comes_before(sample_video_dir, count_decoded):
    path = sample_video_dir / "bikes.mp4"
    with VideoReader(path, start=242, stop=250) as reader:  # a key frame
        assert len(reader.read_all()) == 8
    assert len(count_decoded) <= 1 + 8  # frame 0 (it anchors the timestamps), then 242 on
    count_decoded.clear()
    with VideoReader(path, start=241, stop=243) as reader:  # from the key frame before: 187
        assert len(reader.read_all()) == 2
    assert len(count_decoded) <= 1 + (243 - 187)


@pytest.mark.parametrize("suffix", ["mkv", "ts", "mov", "mp4", "avi"])
def test_ranges_of_short_gops_with_b_frames_in_each_container(tmp_path, suffix, caplog):
    """mkv, ts and avi have no sample table: the frames' grid is checked while counting packets.
    MPEG-TS starts its clock at 0.08 s, and its seeks land on the next key frame."""
    if suffix == "avi":  # no B-frames in AVI: every frame a key frame (MJPEG)
        path = tmp_path / "clip.avi"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("mjpeg", rate=25)
            stream.height, stream.width, stream.pix_fmt = 48, 64, "yuvj420p"
            for index, frame in enumerate(moving_frames(60)):
                picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
                picture.pts = index
                container.mux(stream.encode(picture))
            container.mux(stream.encode())
    else:
        path = make_h264(tmp_path / f"clip.{suffix}", moving_frames(60))
    every = read_frames(path)
    assert len(every) == 60
    with caplog.at_level(logging.INFO):
        for start, stop in [(20, 30), (21, 22), (29, None), (30, 45), (43, None), (59, None)]:
            np.testing.assert_array_equal(
                read_frames(path, start=start, stop=stop),
                every[start:stop],
                err_msg=f"{path.name}[{start}:{stop}]",
            )
    assert FALLBACK not in caplog.text


@pytest.mark.parametrize("suffix", ["mkv", "mp4"])
def test_variable_frame_rate_decodes_from_frame_0(tmp_path, suffix, caplog, count_decoded):
    """Frames at uneven times: an index is not a timestamp, so the reader decodes from 0."""
    pts = [0, 1, 2, 4, 5, 7, 8, 9, 12, 13, 14, 15, 17, 18, 19, 20, 22, 24, 25, 26, 27, 29, 30, 31]
    path = make_h264(tmp_path / f"vfr.{suffix}", moving_frames(len(pts)), pts=pts)
    every = read_frames(path)
    assert len(every) == len(pts)
    count_decoded.clear()
    with caplog.at_level(logging.INFO), VideoReader(path, start=10, stop=20) as reader:
        np.testing.assert_array_equal(reader.read_all(), every[10:20])
    assert f"{path}: {FALLBACK} to reach frame 10 (its frames are not all on one" in caplog.text
    assert len(count_decoded) == 20  # frames 0 ... 19, and not one more


def test_a_seek_that_cannot_be_trusted_falls_back(tmp_path, monkeypatch, caplog):
    """A seek that lands off the grid (as a frame rate in a header that is not the stream's would
    make) is noticed, and the reader starts again from frame 0."""
    path = make_h264(tmp_path / "clip.mkv", moving_frames(40))
    every = read_frames(path)
    with caplog.at_level(logging.INFO), VideoReader(path, start=25) as reader:
        monkeypatch.setattr(FrameGrid, "index", lambda self, pts: None)  # nothing on the grid
        np.testing.assert_array_equal(reader.read_all(), every[25:])
    assert "did not land on a key frame on the grid" in caplog.text


# -- a count reused ----------------------------------------------------------------------------


@pytest.fixture
def counts(monkeypatch):
    """A list that gets one entry per frame count a reader makes (a demuxing pass for mkv)."""
    made: list[Path] = []
    original = VideoReader._count

    def counting(self, *args):
        made.append(self.path)
        return original(self, *args)

    monkeypatch.setattr(VideoReader, "_count", counting)
    return made


def test_a_reader_given_an_index_does_not_count_again(tmp_path, counts, caplog):
    """A long mkv is demuxed once to count its frames and see their grid; readers of its ranges
    given that index seek without counting, and read the same frames."""
    path = make_h264(tmp_path / "clip.mkv", moving_frames(60))
    with VideoReader(path) as first:
        every, index = first.read_all(), first.index
    # counted from packets (an estimate), on a grid of 40 ticks (mkv's time base is 1 ms)
    assert (index.num_frames, index.exact, index.grid_step) == (60, False, Fraction(40))
    assert len(counts) == 1
    for start, stop in [(20, 30), (43, None), (59, None)]:
        with (
            caplog.at_level(logging.INFO),
            VideoReader(
                path, start=start, stop=stop, index=FrameIndex.from_json(index.to_json())
            ) as reader,
        ):
            np.testing.assert_array_equal(reader.read_all(), every[start:stop])
            assert reader.index == index
    assert len(counts) == 1
    assert FALLBACK not in caplog.text

    # the file changed since (here: only its time): counted again, and the new index kept
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with caplog.at_level(logging.INFO), VideoReader(path, start=30, index=index) as reader:
        np.testing.assert_array_equal(reader.read_all(), every[30:])
        assert reader.index.mtime_ns == stat.st_mtime_ns + 1_000_000
    assert len(counts) == 2
    assert f"{path}: not the file or not as it was when the index was made" in caplog.text

    # another file of the same size and time is not the file the index was made of
    twin = tmp_path / "twin.mkv"
    twin.write_bytes(path.read_bytes())
    os.utime(twin, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with VideoReader(twin, start=30, index=reader.index) as other:
        assert other.index.path == str(twin.resolve()) and len(other) == 30
    assert len(counts) == 3


def test_an_index_without_a_grid_still_reads_the_right_frames(tmp_path, counts, caplog):
    """A variable-rate mkv has no grid: its index says so, and a reader given it decodes from
    frame 0, as one that counted would."""
    pts = [0, 1, 2, 4, 5, 7, 8, 9, 12, 13, 14, 15, 17, 18, 19, 20]
    path = make_h264(tmp_path / "vfr.mkv", moving_frames(len(pts)), pts=pts)
    with VideoReader(path) as first:
        every, index = first.read_all(), first.index
    assert index.grid_step is None and index.num_frames == len(pts)
    with caplog.at_level(logging.INFO), VideoReader(path, start=9, index=index) as reader:
        np.testing.assert_array_equal(reader.read_all(), every[9:])
    assert len(counts) == 1
    assert f"{FALLBACK} to reach frame 9" in caplog.text


def test_an_mp4_index_holds_its_sample_table_grid(tmp_path):
    """mp4's count is its sample table (exact, nothing demuxed), and its grid step the table's
    (PyAV's mp4 time base for 25 fps: 1/12800, so 512 ticks a frame); a frame folder has none."""
    path = make_h264(tmp_path / "clip.mp4", moving_frames(30))
    with VideoReader(path) as reader:
        index = reader.index
    assert (index.num_frames, index.exact, index.grid_step) == (30, True, Fraction(512))
    assert index == FrameIndex.from_json(index.to_json())
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.fromarray(moving_frames(1)[0]).save(folder / "f0.png")
    assert VideoReader(folder).index is None


# -- range bookkeeping -----------------------------------------------------------------------


def test_bad_ranges_name_the_path_and_the_values(sample_video_dir):
    path = sample_video_dir / "carphone_pristine.mp4"  # 120 frames
    for kwargs, problem in [
        ({"start": -1}, "start=-1 is negative"),
        ({"start": 120}, r"start=120 is past the last frame \(the video has 120 frames\)"),
        ({"start": 10, "stop": 10}, "stop=10 is not after start=10"),
        ({"start": 10, "stop": 3}, "stop=3 is not after start=10"),
    ]:
        with pytest.raises(VideoError, match=problem) as error:
            VideoReader(path, **kwargs)
        assert str(path) in str(error.value)
    with VideoReader(path, start=100, stop=500) as reader:  # a stop past the end: to the end
        assert (reader.stop, len(reader)) == (120, 20)
        assert "frames 100:120 of 120 frames" in repr(reader)


def test_start_time_frames_read_and_stopped_at(sample_video_dir, tmp_path):
    with VideoReader(sample_video_dir / "bikes.mp4", start=50, stop=60) as reader:
        assert reader.start_time == pytest.approx(2.0)  # 25 fps
        head = [frame for _, frame in zip(range(4), reader)]
        assert reader.frames_read == 4
        rest = reader.read_all()
    assert len(head) + len(rest) == 10 and reader.frames_read == 10
    assert VideoReader(sample_video_dir / "bikes.mp4").start_time == 0.0

    # no B-frames, index up front: cutting the file where frame 12 starts leaves exactly 12
    full = make_h264(
        tmp_path / "full.mp4", moving_frames(30), options={"bf": "0", "g": "5"}, faststart=True
    )
    with av.open(str(full)) as container:
        cut_at = container.streams.video[0].index_entries[12].pos
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[:cut_at])
    with VideoReader(cut, start=5, on_decode_error="keep") as reader:
        kept = reader.read_all()
    assert len(kept) == 7 and reader.stopped_at == 12 and reader.frames_read == 7
    with pytest.raises(VideoError, match="after 12 of 30 frames"):
        read_frames(cut, start=5)
    np.testing.assert_array_equal(read_frames(cut, start=5, stop=12), read_frames(full)[5:12])


def test_a_range_of_a_frame_folder_is_a_slice_of_its_files(tmp_path):
    for index in range(12):
        value = np.full((8, 10, 3), index * 20, np.uint8)
        Image.fromarray(value).save(tmp_path / f"f{index}.png")
    every = read_frames(tmp_path)
    with VideoReader(tmp_path, start=3, stop=9, fps=10) as reader:
        assert (len(reader), reader.info.num_frames, reader.start_time) == (6, 12, 0.3)
        np.testing.assert_array_equal(reader.read_all(), every[3:9])
    (tmp_path / "f10.png").write_bytes(b"broken")
    with VideoReader(tmp_path, start=8, on_decode_error="keep") as reader:
        assert len(reader.read_all()) == 2 and reader.stopped_at == 10  # an index in the folder
    np.testing.assert_array_equal(read_frames(tmp_path, start=11), every[11:])
    with pytest.raises(VideoError, match=r"start=12 is past the last frame"):
        VideoReader(tmp_path, start=12)
