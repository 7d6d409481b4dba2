"""colorize.py for films: segments that survive a kill (resume), workers and shards, many inputs,
previews and colour controls; every one on real sample clips, against a plain run.

The network is a TCVCNet with random weights (seed 0; a state-dict file where another process
loads it): the colours are meaningless, equal frames are what is checked. resolution=64 and
interval 4 keep the clips short on 2 cores.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from helpers import ROOT
from helpers.configs import compose_colorize
from helpers.media import gradient, lab_L, make_clips, make_deep_video

from tcvc.errors import UserError
from tcvc.io import VideoReader, read_frames
from tcvc.tasks.batch import BatchFailed
from tcvc.tasks.colorize import colorize
from tcvc.tasks.segmented import work_folder

FAST = {"interval": 4, "resolution": 64, "progress": False}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """test_colorize's clips: bikes (18 frames, a hard cut at 8), bunny (12, audio), gray, ..."""
    return make_clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def net():
    from tcvc.nets import TCVCNet

    torch.manual_seed(0)
    return TCVCNet().eval()


@pytest.fixture(scope="module")
def net_file(net, tmp_path_factory) -> Iterator[Path]:
    """The ``net`` fixture's weights as a state-dict file (``ckpt=`` for other processes)."""
    path = tmp_path_factory.mktemp("weights") / "net.pth"
    torch.save(net.state_dict(), path)
    yield path
    shutil.rmtree(path.parent)  # 800 MB: not left for the rest of the session


def pngs(folder: Path) -> np.ndarray:
    return read_frames(folder)


def run(net, **options):
    return colorize(compose_colorize(**{**FAST, **options}), net=net)


def work_of(**options):
    """The work folder (``tcvc.tasks.segmented.WorkFolder``) of a run with ``options``."""
    from tcvc.tasks.colorize_job import ColorizeJob
    from tcvc.tasks.segmented import WorkFolder

    return WorkFolder(ColorizeJob.from_config(compose_colorize(**{**FAST, **options})))


# ---- segments ---------------------------------------------------------------------------------


def test_segments_give_the_frames_of_one_run(clips, net, tmp_path):
    """bikes: 18 frames, a hard cut at 8. In segments of ≥ 5 frames (0.2 s at 25 fps), the
    PNG frames are bit for bit those of one streamed run, and the work folder is gone."""
    plain = tmp_path / "plain"
    run(net, input=clips["bikes"], output=plain)
    segmented = tmp_path / "segmented"
    result = run(net, input=clips["bikes"], output=segmented, resume=True, segment_seconds=0.2)
    assert result["segments"]["total"] >= 3 and result["joined"]
    assert result["cuts"] == [8] and result["frames"] == 18
    assert sorted(p.name for p in segmented.iterdir()) == sorted(p.name for p in plain.iterdir())
    np.testing.assert_array_equal(pngs(segmented), pngs(plain))
    assert not work_folder(segmented).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "segmented"]


def remux(source: Path, target: Path) -> Path:
    """``source``'s video stream copied into another container (by ``target``'s suffix)."""
    with av.open(str(source)) as reading, av.open(str(target), "w") as writing:
        video = reading.streams.video[0]
        copied = writing.add_stream_from_template(video)
        for packet in reading.demux(video):
            if packet.dts is not None:
                packet.stream = copied
                writing.mux(packet)
    return target


def test_a_film_without_a_sample_table_is_counted_once(clips, net, tmp_path, monkeypatch):
    """bikes in mkv, where counting frames means demuxing the whole file: the plain run counts
    once (not again for its range), and so does a run in segments (the plan holds the count and
    grid for every segment's reader); the frames are the mp4's."""
    film = remux(clips["bikes"], tmp_path / "bikes.mkv")
    counted = []
    original = VideoReader._count
    monkeypatch.setattr(
        VideoReader, "_count", lambda self, *args: counted.append(1) or original(self, *args)
    )
    run(net, input=film, output=tmp_path / "plain")
    assert len(counted) == 1
    result = run(net, input=film, output=tmp_path / "segmented", resume=True, segment_seconds=0.2)
    assert result["segments"]["total"] >= 3 and len(counted) == 2
    run(net, input=clips["bikes"], output=tmp_path / "from_mp4")
    np.testing.assert_array_equal(pngs(tmp_path / "segmented"), pngs(tmp_path / "from_mp4"))
    np.testing.assert_array_equal(pngs(tmp_path / "plain"), pngs(tmp_path / "from_mp4"))


DRIVER = """
import sys, time, torch
from hydra import compose, initialize_config_dir
from tcvc.nets import TCVCNet
from tcvc.tasks.colorize import colorize

class SlowNet(TCVCNet):  # time for the test to kill it between two segments
    def colorize_clip(self, L, **kwargs):
        time.sleep(0.4)
        return super().colorize_clip(L, **kwargs)

torch.manual_seed(0)
net = SlowNet().eval()
with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
    cfg = compose(config_name="colorize", overrides=sys.argv[2:])
colorize(cfg, net=net)
"""


def test_a_killed_run_resumes_to_the_frames_of_an_uninterrupted_one(clips, net, tmp_path):
    """A real run is killed (SIGKILL: a power cut) after its second segment; resume=true goes
    on from there, and every decoded frame of the output equals an uninterrupted run's. A
    changed option between the two is refused, naming it."""
    out = tmp_path / "film.mp4"
    options = {**FAST, "input": clips["bikes"], "output": out, "resume": True}
    options["segment_seconds"] = 0.2
    overrides = [
        f"{'inference.' if k in ('interval', 'resolution') else ''}{k}={v}"
        for k, v in options.items()
    ]
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    process = subprocess.Popen(
        [sys.executable, str(script), str(ROOT / "conf"), *overrides],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    pieces = work_folder(out) / "pieces"
    deadline = time.monotonic() + 300
    while len(list(pieces.glob("[0-9]*.mp4"))) < 2:
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    done_before = len(list(pieces.glob("[0-9]*.mp4")))
    assert not out.exists() and done_before >= 2

    with pytest.raises(UserError, match=r"another saturation; run with the same options"):
        colorize(compose_colorize(**options, saturation=1.5), net=net)

    result = colorize(compose_colorize(**options), net=net)
    assert result["segments"]["before"] == done_before
    assert result["segments"]["coloured"] == result["segments"]["total"] - done_before
    uninterrupted = tmp_path / "uninterrupted.mp4"
    colorize(compose_colorize(**{**options, "output": uninterrupted}), net=net)
    with VideoReader(out) as a, VideoReader(uninterrupted) as b:
        assert a.info.num_frames == b.info.num_frames == 18
        np.testing.assert_array_equal(a.read_all(), b.read_all())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "driver.py",
        "film.mp4",
        "uninterrupted.mp4",
    ]


@pytest.mark.parametrize("guided", [False, True])
def test_two_workers_give_the_frames_of_one(clips, net, net_file, tmp_path, guided):
    """workers=2: two processes (loading ckpt themselves, one CPU thread each on 2 cores)
    share the segments; the frames are those of one streamed run on one thread (the thread
    count changes the order of a convolution's sums, which can move a level in the last bit).
    Guided (a reference, dots), each worker reads the guidance itself."""
    guide = guidance_files(clips, tmp_path / "guidance") if guided else {}
    out = tmp_path / "out"
    out.mkdir()
    plain = out / "plain"
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))
    try:
        run(net, input=clips["bikes"], output=plain, **guide)
    finally:
        torch.set_num_threads(threads)
    two = out / "two"
    result = run(
        None,
        input=clips["bikes"],
        output=two,
        ckpt=net_file,
        workers=2,
        segment_seconds=0.2,
        **guide,
    )
    assert result["joined"] and result["segments"]["coloured"] == result["segments"]["total"]
    assert result["segments"]["total"] == (2 if guided else 3)
    np.testing.assert_array_equal(pngs(two), pngs(plain))
    assert sorted(p.name for p in out.iterdir()) == ["plain", "two"]


def test_shards_share_a_film_and_the_last_joins(clips, net, tmp_path):
    plain = tmp_path / "plain"
    run(net, input=clips["bikes"], output=plain)
    out = tmp_path / "sharded"
    options = {"input": clips["bikes"], "output": out, "segment_seconds": 0.2}
    first = run(net, **options, shard="1/2")
    assert not first["joined"] and not out.exists()
    second = run(net, **options, shard="0/2")
    assert second["joined"]
    assert (
        first["segments"]["coloured"] + second["segments"]["coloured"] == first["segments"]["total"]
    )
    np.testing.assert_array_equal(pngs(out), pngs(plain))
    assert not work_folder(out).exists()


# ---- many inputs ------------------------------------------------------------------------------


def test_a_folder_of_films(clips, net, tmp_path, capsys):
    """Two good films and a broken one: two outputs, one failure named, exit status 1
    (BatchFailed); the second run skips the finished ones."""
    films = tmp_path / "films"
    films.mkdir()
    for name in ("gray", "bikes", "random"):
        (films / f"{name}.mp4").write_bytes(clips[name].read_bytes())
    out = tmp_path / "coloured"
    with pytest.raises(BatchFailed, match="1 of 3 inputs failed") as failure:
        run(net, input=films, output=out)
    summary = failure.value.summary
    assert [Path(p).name for p in summary["done"]] == ["bikes.mp4", "gray.mp4"]
    assert [Path(p).name for p, _ in summary["failed"]] == ["random.mp4"]
    assert "random.mp4" in summary["failed"][0][1]
    assert sorted(p.name for p in out.iterdir()) == ["bikes.mp4", "gray.mp4"]
    with VideoReader(out / "gray.mp4") as reader:
        assert reader.info.num_frames == 24
    printed = capsys.readouterr().out
    assert "done 2, skipped 0, failed 1" in printed
    for number, name in enumerate(["bikes", "gray", "random"], 1):  # each input as it starts
        assert f"[{number}/3] {name}.mp4 -> {out / name}.mp4" in printed
    assert f"\n  failed: {summary['failed'][0][1]}" in printed  # its path once
    assert summary["failed"][0][1].startswith(str(films / "random.mp4"))

    with pytest.raises(BatchFailed) as again:
        run(net, input=str(films / "*.mp4"), output=out)
    assert len(again.value.summary["skipped"]) == 2 and not again.value.summary["done"]


def test_many_inputs_need_an_output_folder(clips, net, tmp_path):
    with pytest.raises(UserError, match="many inputs need an output folder"):
        run(net, input=str(clips["bikes"].parent / "*.mp4"), output=tmp_path / "one.mp4")
    with pytest.raises(UserError, match="no file matches"):
        run(net, input=str(tmp_path / "*.mkv"), output=tmp_path / "out")


# ---- preview and controls -------------------------------------------------------------------


def test_a_preview_colours_a_part_with_its_audio(clips, net, tmp_path):
    """start=0.2s duration=8 of the 12-frame bunny clip at 25 fps: frames 5–11 (7: the clip
    ends), their L as the input's, the audio cut to the part."""
    out = tmp_path / "preview.mp4"
    result = run(net, input=clips["bunny"], output=out, start="0.2s", duration=8)
    assert result["frames"] == 7
    with VideoReader(out) as reader:
        assert reader.info.num_frames == 7 and reader.info.has_audio
        preview = reader.read_all()
    source = read_frames(clips["bunny"])
    error = (lab_L(preview) - lab_L(source[5:12])).abs().mean()
    assert error < 1.0  # the input's L, of the right frames:
    assert (lab_L(preview) - lab_L(source[:7])).abs().mean() > 2 * error


@pytest.mark.parametrize("segmented", [False, True])
def test_the_last_line_gives_cuts_as_the_inputs_frames(clips, net, tmp_path, capsys, segmented):
    """bikes has a hard cut at frame 8: from start=3 it is the coloured range's frame 5 (the
    summary's), shown as frame 8, as the log's range and guided frames are numbered."""
    options = {"resume": True, "segment_seconds": 0.2} if segmented else {}
    result = run(net, input=clips["bikes"], output=tmp_path / "part", start=3, **options)
    assert result["cuts"] == [5]
    assert "1 scene cut(s) at 8:" in capsys.readouterr().out


def test_saturation_and_side_by_side(clips, net, tmp_path):
    """saturation=0 gives gray frames; side_by_side writes [that gray | the colour frame]."""
    colour, gray, both = tmp_path / "colour", tmp_path / "gray", tmp_path / "both"
    source = clips["bikes"]
    run(net, input=source, output=colour, duration=6)
    run(net, input=source, output=gray, duration=6, saturation=0)
    run(net, input=source, output=both, duration=6, side_by_side=True)
    colour, gray, both = pngs(colour), pngs(gray), pngs(both)
    width = colour.shape[2]
    assert both.shape[2] == 2 * width
    np.testing.assert_array_equal(both[:, :, width:], colour)
    np.testing.assert_array_equal(both[:, :, :width], gray)
    assert np.abs(gray[..., 0].astype(int) - gray[..., 2]).max() <= 1  # no chroma
    stronger = pngs_of(run, net, source, tmp_path / "strong", saturation=2)
    chroma = lambda frames: frames.astype(float).std(axis=-1).mean()
    assert chroma(stronger) > 1.5 * chroma(colour) > 0


def pngs_of(run_fn, net, source, out, **options):
    run_fn(net, input=source, output=out, duration=6, **options)
    return pngs(out)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"saturation": -1}, "saturation must be ≥ 0"),
        ({"saturation": "vivid"}, "saturation must be a number"),
        ({"start": "soon"}, "start must be frames"),
        ({"start": 1000}, r"start \(frame 1000\) is past the end of .*: it has 18 frames"),
        ({"start": "1:30"}, r"start \(90 s\) is past the end of .*: it has 18 frames \(0.72 s"),
        ({"duration": 0}, "duration must be > 0"),
        ({"workers": 0}, "workers must be an integer ≥ 1"),
        ({"shard": "2/2"}, "shard must be k/n with 0 ≤ k < n"),
        ({"segment_seconds": 0}, "segment_seconds must be > 0"),
        ({"resume": True, "on_decode_error": "keep"}, "on_decode_error=keep cannot be used"),
        ({"devices": "[cpu,nowhere]"}, "devices: "),
    ],
)
def test_bad_film_options_are_one_line(clips, net, tmp_path, options, message):
    out = tmp_path / "out.mp4"
    with pytest.raises(UserError, match=message):
        run(net, input=clips["bikes"], output=out, **options)
    assert list(tmp_path.iterdir()) == []


# ---- guidance ---------------------------------------------------------------------------------


def test_references_and_hints_end_to_end(clips, net, tmp_path, monkeypatch):
    """bunny (12 frames, audio), interval 4: a reference for frame 2 (another size: resized,
    with a warning) and colour dots on frame 9 make those frames anchors: clips 0–2, 2–7, 7–9,
    9–11, each with hints (carried from frame 2 on); the output has the frames, size and audio
    of a run without guidance."""
    from PIL import Image

    from tcvc.nets import TCVCNet

    source = read_frames(clips["bunny"])
    references = tmp_path / "references"
    references.mkdir()
    Image.fromarray(source[2, ::2, ::2]).save(references / "00002.png")
    dots = tmp_path / "dots.json"
    dots.write_text('[{"frame": 9, "x": 600, "y": 300, "color": "#c03020", "radius": 8}]')
    calls = []
    propagate = TCVCNet.propagate

    def recording(self, L, flows, *, anchor_hints=None):
        calls.append((L.shape[1], anchor_hints is not None))
        return propagate(self, L, flows, anchor_hints=anchor_hints)

    monkeypatch.setattr(TCVCNet, "propagate", recording)
    guided = tmp_path / "guided.mp4"
    with pytest.warns(UserWarning, match="00002.png"):
        run(net, input=clips["bunny"], output=guided, references=references, hints=dots)
    assert calls == [(3, True), (6, True), (3, True), (3, True)]
    calls.clear()
    plain = tmp_path / "plain.mp4"
    run(net, input=clips["bunny"], output=plain)
    assert calls == [(6, False), (6, False), (2, False)]
    with VideoReader(guided) as a, VideoReader(plain) as b:
        assert (a.info.num_frames, a.info.width, a.info.height, a.info.has_audio) == (
            b.info.num_frames,
            b.info.width,
            b.info.height,
            b.info.has_audio,
        )
        assert a.info.num_frames == 12 and a.info.has_audio


def guidance_files(clips, folder: Path) -> dict[str, Path]:
    """For bikes (18 frames, a cut at 8): a reference for frame 3 (with colours of its own) and
    colour dots on frame 12, in ``folder``; colorize's ``references`` and ``hints``."""
    from PIL import Image

    (folder / "references").mkdir(parents=True)
    Image.fromarray(255 - read_frames(clips["bikes"])[3]).save(folder / "references/00003.png")
    dots = folder / "dots.json"
    dots.write_text('[{"frame": 12, "x": 20, "y": 20, "color": "#c03020", "radius": 6}]')
    return {"references": folder / "references", "hints": dots}


def test_a_guided_film_in_segments_gives_the_frames_of_one_run(clips, net, tmp_path):
    """bikes (18 frames, a cut at 8) with a reference for frame 3 and dots on frame 12: in
    segments (resume, shards) they start only at the cut, where carried hints stop, and the PNG
    frames equal a guided run in one go bit for bit. A reference changed between two shards is
    refused, naming it."""
    guide = {"input": clips["bikes"], **guidance_files(clips, tmp_path)}
    reference = guide["references"] / "00003.png"
    run(net, **guide, output=tmp_path / "one")
    run(net, input=clips["bikes"], output=tmp_path / "unguided")
    assert not np.array_equal(pngs(tmp_path / "one"), pngs(tmp_path / "unguided"))

    resumed = run(net, **guide, output=tmp_path / "resumed", resume=True, segment_seconds=0.2)
    # unguided, segments of ≥ 5 frames start at 0, 8 and 16 (and there the hints carried from
    # frame 12 would stop: 19 % of the values differ); guided, only at the cut
    assert resumed["segments"]["total"] == 2 and resumed["cuts"] == [8]
    np.testing.assert_array_equal(pngs(tmp_path / "resumed"), pngs(tmp_path / "one"))

    sharded = {**guide, "output": tmp_path / "sharded", "segment_seconds": 0.2}
    assert not run(net, **sharded, shard="0/2")["joined"]
    stat = reference.stat()
    os.utime(reference, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(UserError, match="holds a run with another references"):
        run(net, **sharded, shard="1/2")
    os.utime(reference, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run(net, **sharded, shard="1/2")["joined"]
    np.testing.assert_array_equal(pngs(tmp_path / "sharded"), pngs(tmp_path / "one"))


def test_empty_or_unused_guidance_keeps_the_usual_segments(clips, net, tmp_path):
    """references=[] is no guidance, and a reference outside start/duration guides nothing:
    neither restricts the segments to scene cuts."""
    options = {"input": clips["bikes"], "resume": True, "segment_seconds": 0.2}
    usual = run(net, **options, output=tmp_path / "usual")["segments"]["total"]
    assert (
        run(net, **options, output=tmp_path / "empty", references="[]")["segments"]["total"]
        == usual
    )
    guide = guidance_files(clips, tmp_path / "guidance")
    late = {**options, "start": 9}
    usual_late = run(net, **late, output=tmp_path / "usual_late")["segments"]["total"]
    unused = run(net, **late, output=tmp_path / "unused", references=guide["references"])
    assert unused["segments"]["total"] == usual_late > 1
    np.testing.assert_array_equal(pngs(tmp_path / "unused"), pngs(tmp_path / "usual_late"))


def test_quiet_guidance_warns_nothing(clips, tmp_path):
    """The processes of a run in segments read the guidance quietly: a resized reference warns
    once, when the plan is made, not again in each worker."""
    import warnings

    from PIL import Image

    from tcvc.tasks.colorize_job import ColorizeJob, FrameRange

    folder = tmp_path / "references"
    folder.mkdir()
    frame = read_frames(clips["bikes"])[3]
    Image.fromarray(frame[::2, ::2]).save(folder / "00003.png")
    job = ColorizeJob.from_config(
        compose_colorize(input=clips["bikes"], output=tmp_path / "out", references=folder)
    )
    size = frame.shape[:2]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet = job.guidance(18, size, FrameRange(0, 18), quiet=True)
        assert not seen
        loud = job.guidance(18, size, FrameRange(0, 18))
    assert [str(w.message) for w in seen if "00003.png" in str(w.message)]
    assert quiet.keys() == loud.keys() == {3}
    torch.testing.assert_close(quiet[3].ab, loud[3].ab, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"references": "[40:missing.png]"}, "frame 40|outside"),
        ({"hints": "nowhere.json"}, "nowhere.json"),
    ],
)
def test_bad_guidance_is_one_line(clips, net, tmp_path, options, message):
    with pytest.raises(UserError, match=message):
        run(net, input=clips["bikes"], output=tmp_path / "out.mp4", **options)
    assert not (tmp_path / "out.mp4").exists()


def test_a_10_bit_film_is_read_at_full_precision(net, tmp_path, monkeypatch):
    """A lossless 10-bit ramp: with saturation=0 the output is the gray of the input's L; read
    at full precision that gray is closer to the ramp's exact one than when read as 8 bits."""
    from kornia.color import lab_to_rgb, rgb_to_lab

    from tcvc.io import VideoReader as Reader
    from tcvc.tasks import colorize_job

    source = make_deep_video(tmp_path / "deep.mp4", "libx264", "yuv420p10le", frames=3)
    with Reader(source, bit_depth="full") as reader:
        assert reader.info.bit_depth == 10
    rgb = torch.as_tensor(gradient().astype(np.float32) / 65535).permute(2, 0, 1)
    lab = rgb_to_lab(rgb)
    lab[1:] = 0
    exact = lab_to_rgb(lab).permute(1, 2, 0).numpy() * 255  # the gray of the exact L

    def error(out):
        run(net, input=source, output=out, saturation=0)
        return np.abs(pngs(out).astype(float) - exact).mean()

    full = error(tmp_path / "full")
    original = colorize_job.ColorizeJob.open_reader

    def eight_bit(self, **kwargs):
        reader = original(self, **kwargs)
        reader.close()
        return Reader(self.source, fps=self.fps, bit_depth="8", **kwargs)

    monkeypatch.setattr(colorize_job.ColorizeJob, "open_reader", eight_bit)
    eight = error(tmp_path / "eight")
    assert full < 0.75 * eight, (full, eight)


# ---- what a failure leaves ----------------------------------------------------------------------


class InterruptedNet:
    """Makes ``net`` raise KeyboardInterrupt (Ctrl-C) at its ``at``-th clip."""

    def __init__(self, net, at: int) -> None:
        self.net, self.at, self.calls = net, at, 0

    def __enter__(self):
        original = type(self.net).colorize_clip

        def interrupted(net, L, **kwargs):
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
            return original(net, L, **kwargs)

        self.original = original
        type(self.net).colorize_clip = interrupted
        return self

    def __exit__(self, *exc_info):
        type(self.net).colorize_clip = self.original


def test_a_refused_run_keeps_the_work_of_an_earlier_one(clips, net, tmp_path):
    """Ctrl-C keeps a resumable folder; a later run with other options (even one that would
    remove its own folder on failure: workers=2, no resume) is refused and leaves it."""
    out = tmp_path / "film.mp4"
    options = {"input": clips["bikes"], "output": out, "segment_seconds": 0.2}
    with InterruptedNet(net, at=4), pytest.raises(KeyboardInterrupt):
        run(net, **options, resume=True)
    pieces = sorted(p.name for p in (work_folder(out) / "pieces").glob("[0-9]*"))
    assert pieces
    with pytest.raises(UserError, match="another saturation"):
        run(net, **options, workers=2, saturation=1.5)
    assert sorted(p.name for p in (work_folder(out) / "pieces").glob("[0-9]*")) == pieces


def test_a_second_run_on_the_same_output_is_refused_while_the_first_works(
    clips, net, tmp_path, caplog
):
    """run.lock: a run holds it exclusively, shards share it. A second run (or a shard beside a
    run, or a run beside a shard) is refused in one line and leaves the folder as it was; when
    the first has ended (its lock gone with it), the same command goes on."""
    out = tmp_path / "film"
    options = {"input": clips["bikes"], "output": out, "segment_seconds": 0.2}
    work = work_of(**options)
    for held, second in [
        (False, {"resume": True}),
        (False, {"shard": "0/2"}),
        (True, {"resume": True}),
    ]:
        with (
            work.lock(shared=held),
            pytest.raises(UserError, match="another colorize run") as error,
        ):
            run(net, **options, **second)
        assert "\n" not in str(error.value) and str(out) in str(error.value)
        assert sorted(p.name for p in work.root.iterdir()) == ["run.lock"] and not out.exists()
    with work.lock(shared=True):  # another shard of the film
        assert not run(net, **options, shard="1/2")["joined"]
    assert run(net, **options, resume=True)["joined"]
    assert len(list(out.iterdir())) == 18 and not work.root.exists()
    assert "kept" not in caplog.text  # a refused run says only why


def test_a_file_system_without_locks_runs_with_a_warning(clips, net, tmp_path, caplog, monkeypatch):
    import errno
    import fcntl

    def no_flock(file, operation):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    out = tmp_path / "film"
    assert run(net, input=clips["bikes"], output=out, resume=True, segment_seconds=0.2)["joined"]
    assert "cannot lock run.lock (Function not implemented)" in caplog.text
    assert len(list(out.iterdir())) == 18


def test_pieces_without_a_plan_are_not_joined(clips, net, tmp_path, caplog, monkeypatch):
    """Pieces in a work folder without plan.json (nothing says what they are) are removed by a
    run, with a warning, and coloured again; a shard leaves them (another shard's, maybe, whose
    plan it does not see yet), and a shard that fails before its plan leaves the folder (shards
    started together all found none)."""
    from tcvc.tasks import segmented

    plain = tmp_path / "plain"
    run(net, input=clips["bikes"], output=plain)
    out = tmp_path / "film"
    stray = work_folder(out) / "pieces" / "00000"

    def place_stray():
        stray.mkdir(parents=True)
        (stray / "frame00000.png").write_bytes(b"not this run's")

    def interrupted(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(segmented, "make_plan", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run(net, input=clips["bikes"], output=out, shard="0/2", segment_seconds=0.2)
        assert work_folder(out).is_dir()  # the other shards' folder too
        place_stray()
        with pytest.raises(KeyboardInterrupt):
            run(net, input=clips["bikes"], output=out, shard="0/2", segment_seconds=0.2)
        assert (stray / "frame00000.png").is_file()
    result = run(net, input=clips["bikes"], output=out, resume=True, segment_seconds=0.2)
    assert result["segments"]["before"] == 0 and result["joined"]
    assert "1 piece(s) without a plan, removed" in caplog.text
    np.testing.assert_array_equal(pngs(out), pngs(plain))


def test_a_streamed_run_beside_an_earlier_runs_work_says_so(clips, net, tmp_path, caplog):
    """Refused while a run in segments works there; once it has ended, the streamed run goes on
    and says the earlier run's work is left there."""
    out = tmp_path / "film.mp4"
    options = {"input": clips["bikes"], "output": out, "segment_seconds": 0.2}
    with InterruptedNet(net, at=4), pytest.raises(KeyboardInterrupt):
        run(net, **options, resume=True)
    work = work_of(**options)
    with work.lock(shared=False), pytest.raises(UserError, match="another colorize run"):
        run(net, **options)
    assert not out.exists()
    run(net, **options)
    assert "an earlier run in segments left its work there" in caplog.text
    assert work_folder(out).is_dir()  # left for resume=true (it refuses other options)


def test_a_failed_join_leaves_no_lock_and_a_dead_joiners_lock_is_taken_over(
    clips, net, tmp_path, monkeypatch
):
    from tcvc.tasks import segmented

    out = tmp_path / "sharded"
    options = {"input": clips["bikes"], "output": out, "segment_seconds": 0.2}
    run(net, **options, shard="1/2")
    join = segmented.join_frame_folders

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(segmented, "join_frame_folders", killed)
    with pytest.raises(KeyboardInterrupt):
        run(net, **options, shard="0/2")
    lock = work_folder(out) / "join.lock"
    assert not lock.exists() and not out.exists()
    monkeypatch.setattr(segmented, "join_frame_folders", join)
    import socket

    lock.write_text(f"{socket.gethostname()} 999999999")  # a joiner that died
    assert run(net, **options, shard="0/2")["joined"]
    assert len(list(out.iterdir())) == 18


def test_frame_folder_pieces_join_in_numeric_order(tmp_path):
    from tcvc.tasks.segmented import join_frame_folders

    pieces = [tmp_path / "p0", tmp_path / "p1"]
    for piece, names in zip(pieces, (["99999", "100000"], ["00000"]), strict=True):
        piece.mkdir()
        for name in names:
            (piece / f"{name}.png").write_text(name)
    assert join_frame_folders(pieces, tmp_path / "out") == 3
    assert [(p.name, p.read_text()) for p in sorted((tmp_path / "out").iterdir())] == [
        ("00000.png", "99999"),
        ("00001.png", "100000"),
        ("00002.png", "00000"),
    ]


@pytest.mark.parametrize("value", ["1:75", "infs", "1:60:00", "-2s"])
def test_times_that_are_not_times(value):
    from tcvc.tasks.colorize_job import parse_time

    with pytest.raises(UserError, match="start must be frames"):
        parse_time(value, name="start")


def test_times():
    from tcvc.tasks.colorize_job import parse_time

    assert parse_time("1:30", name="t") == 90
    assert parse_time("0:01:30.5", name="t") == 90.5
    assert parse_time("90:00", name="t") == 5400
    assert parse_time("4.8s", name="t") == 4.8
    assert parse_time(120, name="t") == 120 and parse_time("120", name="t") == 120
