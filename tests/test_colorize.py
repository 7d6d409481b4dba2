"""`python colorize.py`: real videos in, coloured videos out (frames, size, rate, audio, the
input's L), and bad inputs refused with one line, leaving the output folder as it was.

The network has the released layout with synthetic weights (`original_checkpoint`): the colours
are meaningless, the pipeline is the real one. It runs at resolution=64 on short clips.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT
from helpers.configs import compose_colorize
from helpers.media import NTSC, lab_L, make_clips

from tcvc.color import rgb_to_lab_normalized, rgb_uint8_to_float
from tcvc.errors import UserError
from tcvc.io import VideoError, VideoReader, read_frames
from tcvc.tasks.colorize import colorize
from tcvc.tasks.errors import report_user_errors


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    return make_clips(tmp_path_factory.mktemp("clips"))


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_gray_video_keeps_frames_size_rate_and_luminance(clips, original_checkpoint, tmp_path):
    out = tmp_path / "color.mp4"
    result = colorize(
        compose_colorize(
            input=clips["gray"], output=out, ckpt=original_checkpoint, lightness="gray_value"
        )
    )
    assert result["frames"] == 24 and result["cuts"] == [] and result["stopped_at"] is None
    assert listing(tmp_path) == ["color.mp4"]  # nothing left beside it
    with VideoReader(out) as reader:
        info = reader.info
        colour = reader.read_all()
    assert (info.num_frames, info.width, info.height) == (24, 176, 144)
    assert Fraction(info.fps).limit_denominator(1001) == NTSC
    assert not info.has_audio
    gray = read_frames(clips["gray"])[..., 0]
    # gray frames are L/100 (the original's reading); the output's Lab L is that L
    error = (lab_L(colour) - torch.as_tensor(gray).float() / 2.55).abs()
    assert error.mean() < 1.0 and error.quantile(0.99) < 6.0  # H.264 4:2:0 at crf 15
    # and colours were added
    assert rgb_to_lab_normalized(rgb_uint8_to_float(colour))[1].abs().mean() * 110 > 0.5


def test_colour_video_with_audio(clips, original_checkpoint, tmp_path):
    out = tmp_path / "bunny_color.mp4"
    colorize(compose_colorize(input=clips["bunny"], output=out, ckpt=original_checkpoint))
    with VideoReader(out) as reader:
        info = reader.info
        colour = reader.read_all()
    assert (info.num_frames, info.width, info.height, info.fps) == (12, 1280, 720, 25.0)
    assert info.has_audio
    source = read_frames(clips["bunny"])
    error = (lab_L(colour) - lab_L(source)).abs()  # a colour input is turned gray: its Lab L
    assert error.mean() < 1.0 and error.quantile(0.99) < 6.0


def test_frame_folders_in_and_out_keep_luminance_exactly(clips, original_checkpoint, tmp_path):
    out = tmp_path / "colored"
    colorize(
        compose_colorize(
            input=clips["frames"], output=out, ckpt=original_checkpoint, lightness="gray_value"
        )
    )
    assert listing(tmp_path) == ["colored"]
    assert listing(out) == [f"{i:05d}.png" for i in range(10)]
    colour = read_frames(out)
    gray = read_frames(clips["frames"])[..., 0]
    assert colour.shape == (10, 51, 69, 3)
    error = (lab_L(colour) - torch.as_tensor(gray).float() / 2.55).abs()
    assert error.max() < 1.0  # lossless PNG: only uint8 rounding of the RGB


class ZeroNet(torch.nn.Module):
    """A network that adds no colour (ab = 0): what comes out is the L the input was read as."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def colorize_clip(self, L, **kwargs):
        return L.new_zeros((*L.shape[:2], 2, *L.shape[3:]))


def test_a_gray_film_keeps_its_gray_levels(clips, tmp_path):
    """Bug: gray frames read as L* = 100·gray/255 came back darker (128 -> 119). By default
    (lightness=lab) a gray frame is the L of its Lab: uncoloured, it comes back as it went in."""
    gray = read_frames(clips["frames"])
    kept = tmp_path / "kept"
    colorize(compose_colorize(input=clips["frames"], output=kept, ckpt="unused"), net=ZeroNet())
    assert np.abs(read_frames(kept).astype(int) - gray).max() <= 1
    darker = tmp_path / "original_reading"
    colorize(
        compose_colorize(
            input=clips["frames"], output=darker, ckpt="unused", lightness="gray_value"
        ),
        net=ZeroNet(),
    )
    shift = read_frames(darker).astype(int) - gray
    assert shift.mean() < -3  # the original's reading, kept as an option, is darker


def test_threads_and_batched_clips_change_nothing_in_the_output(clips, tmp_path):
    """Decoding / encoding on threads and clips coloured several at a time: the same frames
    as the plain loop, one clip at a time (a random network: colours that show a difference)."""
    from tcvc.nets import TCVCNet

    torch.manual_seed(0)
    net = TCVCNet().eval()
    outputs = {}
    for io_threads, clips_per_batch in [("false", 1), ("true", 1), ("true", 3)]:
        out = tmp_path / f"{io_threads}_{clips_per_batch}"
        colorize(
            compose_colorize(
                input=clips["frames"],
                output=out,
                ckpt="unused",
                interval=2,
                io_threads=io_threads,
                clips_per_batch=clips_per_batch,
            ),
            net=net,
        )
        outputs[io_threads, clips_per_batch] = read_frames(out)
    plain = outputs["false", 1]
    assert np.array_equal(outputs["true", 1], plain)
    assert np.abs(outputs["true", 3].astype(int) - plain).max() <= 1  # batched FlowNet2 round-off


def test_odd_sized_folder_to_mp4_at_native_resolution(clips, original_checkpoint, tmp_path):
    out = tmp_path / "odd.mp4"
    colorize(
        compose_colorize(
            input=clips["frames"], output=out, ckpt=original_checkpoint, resolution="native", fps=12
        )
    )
    with VideoReader(out) as reader:
        assert (reader.info.num_frames, reader.info.width, reader.info.height) == (10, 69, 51)
        assert reader.info.fps == 12


def test_scene_cut_with_multi_sampling(clips, original_checkpoint, tmp_path):
    out = tmp_path / "bikes"
    result = colorize(
        compose_colorize(
            input=clips["bikes"],
            output=out,
            ckpt=original_checkpoint,
            sampling="multi",
            interval=3,
            multi_offsets="[0,2]",
        )
    )
    assert result["cuts"] == [8]
    assert len(listing(out)) == 18


def test_existing_output_needs_overwrite(clips, original_checkpoint, tmp_path):
    out = tmp_path / "color.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(UserError, match="already exists; pass overwrite=true"):
        colorize(compose_colorize(input=clips["frames"], output=out, ckpt=original_checkpoint))
    assert out.read_bytes() == b"precious"
    colorize(
        compose_colorize(
            input=clips["frames"], output=out, ckpt=original_checkpoint, overwrite="true"
        )
    )
    assert listing(tmp_path) == ["color.mp4"]
    with VideoReader(out) as reader:
        assert reader.info.num_frames == 10


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("truncated", r"decoding stopped after \d+ of 24 frames \(file truncated or corrupt\)"),
        ("random", "not a video file"),
        ("empty", "holds no frames"),
        ("missing.mp4", "no such file or folder"),
    ],
)
def test_bad_input_gives_one_line_and_leaves_nothing(
    clips, original_checkpoint, tmp_path, capsys, name, problem
):
    source = clips.get(name, tmp_path / name)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "other.txt").write_text("untouched")
    # interval 4: clips are coloured and written before the truncated file fails
    cfg = compose_colorize(
        input=source, output=out_dir / "color.mp4", ckpt=original_checkpoint, interval=4
    )
    with pytest.raises(SystemExit) as exit_info:
        report_user_errors(colorize)(cfg)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {source}: ")
    assert re.search(problem, err[0])
    assert listing(out_dir) == ["other.txt"]
    if name == "truncated":  # folders made for the output are removed as well
        with pytest.raises(SystemExit):
            report_user_errors(colorize)(
                compose_colorize(
                    input=source,
                    output=out_dir / "new" / "deeper" / "color.mp4",
                    ckpt=original_checkpoint,
                    interval=4,
                )
            )
        assert listing(out_dir) == ["other.txt"]


def test_truncated_input_kept_up_to_the_failure(clips, original_checkpoint, tmp_path):
    with VideoReader(clips["truncated"], on_decode_error="keep") as reader:
        decoded = len(reader.read_all())
    assert 4 < decoded < 24 and reader.stopped_at == decoded
    out = tmp_path / "kept"
    result = colorize(
        compose_colorize(
            input=clips["truncated"],
            output=out,
            ckpt=original_checkpoint,
            on_decode_error="keep",
            interval=4,
        )
    )
    assert result["stopped_at"] == decoded and result["frames"] == decoded
    assert len(listing(out)) == decoded
    # tracebacks: the error itself, with its traceback
    cfg = compose_colorize(
        input=clips["truncated"],
        output=tmp_path / "x.mp4",
        ckpt=original_checkpoint,
        tracebacks=True,
    )
    with pytest.raises(VideoError, match="decoding stopped"):
        report_user_errors(colorize)(cfg)
    assert listing(tmp_path) == ["kept"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ckpt": None}, "no weights"),
        ({"input": None}, "no input: set input=PATH"),
        ({"resolution": 100}, "multiples of 64"),
        ({"sampling": "many"}, "sampling must be one of single, multi"),
        ({"interval": 0}, "interval must be integers ≥ 1"),
        ({"scene_cut_threshold": -1}, "scene_cut_threshold must be ≥ 0"),
        ({"output": "OUT/color.avi"}, "must be an .mp4 file or a folder"),
        ({"precision": "fp16"}, "precision must be one of fp32, tf32, bf16"),
        ({"gamut": "wide"}, "gamut must be one of keep_luminance, clip"),
        ({"on_decode_error": "skip"}, "on_decode_error must be one of raise, keep"),
        ({"flow_batch": 0}, "flow_batch must be an integer ≥ 1"),
        (
            {"compile": "fast"},
            "compile must be null \\(eager\\) or one of default, reduce-overhead",
        ),
    ],
)
def test_bad_options_are_user_errors(clips, tmp_path, options, message):
    options = {"input": clips["frames"], "output": tmp_path / "c.mp4", **options}
    if str(options["output"]).startswith("OUT"):
        options["output"] = tmp_path / str(options["output"])[4:]
    with pytest.raises(UserError, match=message):
        colorize(compose_colorize(**options))
    assert listing(tmp_path) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only messages")
def test_cuda_options_without_cuda(clips, tmp_path):
    for options, message in [
        ({"device": "cuda"}, "CUDA is not available"),
        ({"precision": "bf16"}, "precision=bf16 runs on CUDA only"),
        ({"compile": "reduce-overhead"}, "captures CUDA graphs: CUDA only"),
    ]:
        with pytest.raises(UserError, match=message):
            colorize(compose_colorize(input=clips["frames"], output=tmp_path / "c.mp4", **options))


def test_ctrl_c_leaves_no_partial_output(clips, tmp_path, capsys):
    from tcvc.nets import TCVCNet

    class InterruptedNet(TCVCNet):
        calls = 0

        def colorize_clip(self, L, **kwargs):
            InterruptedNet.calls += 1
            if InterruptedNet.calls == 2:  # after the first clip's frames are written
                raise KeyboardInterrupt
            return super().colorize_clip(L, **kwargs)

    out = tmp_path / "color.mp4"
    with pytest.raises(SystemExit) as exit_info:
        report_user_errors(lambda cfg: colorize(cfg, net=InterruptedNet()))(
            compose_colorize(input=clips["gray"], output=out, ckpt="unused", interval=4)
        )
    assert exit_info.value.code == 130 and InterruptedNet.calls == 2
    assert listing(tmp_path) == []


def run_colorize(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python colorize.py OVERRIDES`` as a user runs it, in ``cwd``."""
    return subprocess.run(
        [sys.executable, str(ROOT / "colorize.py"), *overrides],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "TCVC_ROOT": str(ROOT)},
        timeout=120,
    )


def test_command_line_error_is_one_line(clips, tmp_path):
    out = tmp_path / "color.mp4"
    run = run_colorize(
        f"input={clips['random']}",
        f"output={out}",
        "ckpt=weights.pth",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines[-1] == (
        f"error: {clips['random']}: not a video file, or a corrupt or truncated one: "
        "Invalid data found when processing input"
    )
    assert not out.exists() and listing(tmp_path) == ["run"]


def test_an_old_option_on_the_command_line_names_its_new_spelling(tmp_path):
    """Refused before Hydra composes anything (which would say only "not in struct")."""
    run = run_colorize("input=a.mp4", "output=b.mp4", "ckpt=c", "resolution=128", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip() == "error: colorize: resolution is now inference.resolution"
    assert listing(tmp_path) == []
