"""``ColorizeJob``: one colorize.py run over one input, its options read and checked once.

``colorize.py``'s three ways of working share it: the plain stream (``tcvc.tasks.colorize``),
the segmented run that survives a kill and spreads over workers (``tcvc.tasks.segmented``) and
many inputs at once (``tcvc.tasks.batch``). Every bad value raises ``UserError`` naming the
option as it is spelled in ``conf/colorize.yaml``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from tcvc.errors import UserError
from tcvc.inference import (
    FrameGuidance,
    InferenceOptions,
    KnownCuts,
    NetFn,
    SceneCutDetector,
    colorize_video,
    guidance_within,
    load_hints,
    load_net,
    load_references,
    merge_guidance,
    pick_device,
    reference_files,
)
from tcvc.io import FrameFolderWriter, FrameIndex, VideoReader, VideoWriter
from tcvc.io.threads import BackgroundWriter, Prefetch

log = logging.getLogger("tcvc")

__all__ = [
    "ColorizeJob",
    "FrameRange",
    "finished_line",
    "log_start",
    "output_kind",
    "parse_time",
    "progress_bar",
    "remove_empty",
]

ON_DECODE_ERROR = ("raise", "keep")
IO_DEPTH = 8  # frames read ahead and waiting to be written (io_threads=true)
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")


def parse_time(value: Any, *, name: str) -> int | float | None:
    """``start`` / ``duration`` as given: an int is frames, ``"12s"`` / ``"1.5s"`` seconds,
    ``"1:30"`` / ``"01:02:03.5"`` a clock time (seconds); None stays None. Returns frames (int)
    or seconds (float)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise UserError(f"{name} must be frames (120) or a time (4.8s, 1:30), got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise UserError(f"{name} must be ≥ 0, got {value}")
        return value
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    clock = _CLOCK.match(text)
    if clock:
        hours, minutes, seconds = clock.groups()
        # m:ss or h:mm:ss (minutes and seconds below 60 where a larger unit is given)
        if (hours is None or int(minutes) < 60) and float(seconds) < 60:
            return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    if text.endswith("s"):
        try:
            seconds = float(text[:-1])
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    raise UserError(
        f"{name} must be frames (a whole number, 120) or a time (4.8s, 1:30, 0:01:30.5), "
        f"got {value!r}"
    )


@dataclass(frozen=True)
class FrameRange:
    """Frames ``start`` … ``stop − 1`` of the input (the whole input, or a preview's part)."""

    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def _frames(value: float, fps: float) -> int:
    return value if isinstance(value, int) else round(value * fps)


def output_kind(target: Path) -> str:
    """The kind of output: ``video`` for an ``.mp4`` path, ``frames`` for a folder (a path
    without suffix, or an existing folder)."""
    if target.suffix.lower() == ".mp4":
        return "video"
    if target.is_dir() or not target.suffix:
        return "frames"
    raise UserError(
        f"{target}: the output must be an .mp4 file or a folder for PNG frames "
        f"(not {target.suffix})"
    )


@dataclass(frozen=True)
class ColorizeJob:
    """The options of one colorize.py run (``conf/colorize.yaml``), checked."""

    source: Path
    target: Path
    kind: str  # video | frames
    options: InferenceOptions
    ckpt: str | None
    flownet_weights: str | None
    idc_weights: str | None
    fps: float | None
    on_decode_error: str
    overwrite: bool
    crf: int
    progress: bool
    io_threads: bool
    saturation: float
    side_by_side: bool
    start: int | float | None
    duration: int | float | None
    resume: bool
    workers: int
    devices: tuple[str, ...] | None
    shard: tuple[int, int] | None
    segment_seconds: float
    references: Any = None  # a folder of <frame index>.png, or index:path pairs
    hints: str | None = None  # a JSON file of colour dots

    @classmethod
    def from_config(cls, cfg: DictConfig) -> ColorizeJob:
        source = Path(_required(cfg, "input", "a video file or a folder of frames"))
        target = Path(_required(cfg, "output", "an .mp4 file or a folder for PNG frames"))
        return cls.for_paths(cfg, source, target)

    @classmethod
    def for_paths(cls, cfg: DictConfig, source: Path, target: Path) -> ColorizeJob:
        """The job of ``cfg`` with this input and output (one of many inputs: ``batch``)."""
        model = cfg.get("model") or {}
        on_decode_error = cfg.get("on_decode_error", "raise")
        if on_decode_error not in ON_DECODE_ERROR:
            raise UserError(
                f"on_decode_error must be one of {', '.join(ON_DECODE_ERROR)}, "
                f"got {on_decode_error!r}"
            )
        saturation = _number(cfg.get("saturation", 1.0), "saturation")
        if saturation < 0:
            raise UserError(f"saturation must be ≥ 0 (1: as predicted, 0: gray), got {saturation}")
        workers = cfg.get("workers", 1)
        if not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1):
            raise UserError(f"workers must be an integer ≥ 1, got {workers!r}")
        devices = cfg.get("devices")
        if devices is not None:
            devices = tuple(
                str(d) for d in (devices if not isinstance(devices, str) else [devices])
            )
            if not devices:
                raise UserError("devices must list at least one device, e.g. [cuda:0,cuda:1]")
            for device in devices:
                pick_device(device, name="devices")  # one line for a bad or absent device
        segment_seconds = _number(cfg.get("segment_seconds", 10), "segment_seconds")
        if segment_seconds <= 0:
            raise UserError(f"segment_seconds must be > 0, got {segment_seconds}")
        duration = parse_time(cfg.get("duration"), name="duration")
        if duration is not None and duration <= 0:
            raise UserError(f"duration must be > 0, got {cfg.get('duration')!r}")
        job = cls(
            source=source,
            target=target,
            kind=output_kind(target),
            options=InferenceOptions.from_config(cfg.get("inference") or {}),
            ckpt=None if OmegaConf.is_missing(cfg, "ckpt") else _text(cfg.get("ckpt")),
            flownet_weights=_text(model.get("flownet_weights")),
            idc_weights=_text(model.get("idc_weights")),
            fps=cfg.get("fps"),
            on_decode_error=on_decode_error,
            overwrite=bool(cfg.get("overwrite", False)),
            crf=int(cfg.get("crf", 15)),
            progress=bool(cfg.get("progress", True)),
            io_threads=bool(cfg.get("io_threads", True)),
            saturation=saturation,
            side_by_side=bool(cfg.get("side_by_side", False)),
            start=parse_time(cfg.get("start"), name="start"),
            duration=duration,
            resume=bool(cfg.get("resume", False)),
            workers=len(devices) if devices else workers,
            devices=devices,
            shard=_shard(cfg.get("shard")),
            segment_seconds=segment_seconds,
            references=_plain_container(cfg.get("references")),
            hints=_text(cfg.get("hints")),
        )
        job.options.intervals  # noqa: B018  (a sweep of intervals is refused here, in one line)
        if job.segmented and on_decode_error == "keep":
            raise UserError(
                "on_decode_error=keep cannot be used with resume, workers or shard (a segmented "
                "run needs every frame); use on_decode_error=raise"
            )
        return job

    @property
    def guided(self) -> bool:
        """Whether ``references`` or ``hints`` guide the colours."""
        return self.references is not None or self.hints is not None

    @property
    def segmented(self) -> bool:
        """Whether the run goes segment by segment (``tcvc.tasks.segmented``)."""
        return self.resume or self.workers > 1 or self.shard is not None

    def with_device(self, device: str) -> ColorizeJob:
        """This job on another device (a worker's, ``devices=...``)."""
        options = dataclasses.replace(self.options, device=pick_device(device, name="devices"))
        return dataclasses.replace(self, options=options)

    # ---- reading and writing --------------------------------------------------------------------
    def open_reader(
        self, *, start: int = 0, stop: int | None = None, index: FrameIndex | None = None
    ) -> VideoReader:
        """The input's frames ``start`` … ``stop − 1`` (indices of the input), at full bit depth
        (10- and 16-bit inputs give uint16 frames: L at full precision); ``index``: an earlier
        reader's, so that the input's frames are not counted again."""
        return VideoReader(
            self.source,
            fps=self.fps,
            on_decode_error=self.on_decode_error,
            start=start,
            stop=stop,
            bit_depth="full",
            index=index,
        )

    def guidance(
        self,
        num_frames: int,
        frame_size: tuple[int, int],
        span: FrameRange,
        *,
        quiet: bool = False,
    ) -> dict[int, FrameGuidance]:
        """The colour guidance of ``references`` and ``hints`` (``tcvc.inference.guidance``;
        dots over a reference of the same frame) for the frames of ``span``, by their index in
        it; {} without either. ``quiet``: without the log lines naming the guided frames and
        the warnings of resized references (a run in segments reads them again in each process)."""
        guides = []
        with warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore", UserWarning)
            if self.references is not None:
                guides.append(
                    load_references(self.references, num_frames=num_frames, frame_size=frame_size)
                )
            if self.hints is not None:
                guides.append(load_hints(self.hints, num_frames=num_frames, frame_size=frame_size))
        merged = merge_guidance(*guides) if guides else {}
        inside = guidance_within(merged, span.start, span.stop)
        if quiet:
            return inside
        if len(inside) < len(merged):
            log.info(
                "%d guided frame(s) outside frames %d–%d, not used",
                len(merged) - len(inside),
                span.start,
                span.stop - 1,
            )
        if inside:
            shown = ", ".join(str(i + span.start) for i in sorted(inside)[:10])
            log.info("guided frames (anchors): %s%s", shown, ", ..." if len(inside) > 10 else "")
        return inside

    def frame_range(self, num_frames: int, fps: float) -> FrameRange:
        """The frames to colour of an input of ``num_frames`` at ``fps`` (``start``,
        ``duration``); a range past the end is cut there, a start past it is a ``UserError``."""
        start = 0 if self.start is None else _frames(self.start, fps)
        if start >= num_frames:
            at = f"frame {self.start}" if isinstance(self.start, int) else f"{self.start:g} s"
            raise UserError(
                f"start ({at}) is past the end of {self.source}: it has "
                f"{num_frames} frames ({num_frames / fps:.2f} s at {fps:g} fps)"
            )
        stop = num_frames if self.duration is None else start + _frames(self.duration, fps)
        if stop <= start:
            raise UserError(f"duration={self.duration}: less than one frame at {fps:g} fps")
        return FrameRange(start, min(stop, num_frames))

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The written frame size of an input frame size (side by side: twice as wide)."""
        return height, width * (2 if self.side_by_side else 1)

    def pixel_format(self, height: int, width: int) -> str:
        height, width = self.output_size(height, width)
        return "yuv444p" if height % 2 or width % 2 else "yuv420p"

    def open_writer(
        self,
        path: Path,
        *,
        fps: float,
        frame_size: tuple[int, int],
        audio_from: Path | None,
        source_start: float = 0.0,
        overwrite: bool,
    ) -> VideoWriter | FrameFolderWriter:
        """The writer of an output (or of a segment's piece) at ``path``: PNG frames for a
        folder, H.264 for an .mp4 (yuv444p when a side is odd), atomic either way."""
        if self.kind == "frames":
            return FrameFolderWriter(path, overwrite=overwrite)
        return VideoWriter(
            path,
            fps=fps,
            audio_from=audio_from,
            source_start=source_start,
            crf=self.crf,
            pixel_format=self.pixel_format(*frame_size),
            overwrite=overwrite,
        )

    def colour(
        self,
        net_fn: NetFn,
        reader: VideoReader,
        writer: VideoWriter | FrameFolderWriter,
        *,
        bar: tqdm,
        detector: SceneCutDetector | KnownCuts,
        starts_at_shared_anchor: bool = False,
        guidance: Mapping[int, FrameGuidance] | None = None,
    ) -> None:
        """Every frame of ``reader`` coloured (``colorize_video``) into ``writer``: decoding
        and encoding on their own threads with bounded queues when ``io_threads``."""
        source = Prefetch(reader, depth=IO_DEPTH) if self.io_threads else reader
        frames = colorize_video(
            net_fn,
            source,
            self.options,
            detector=detector,
            starts_at_shared_anchor=starts_at_shared_anchor,
            saturation=self.saturation,
            side_by_side=self.side_by_side,
            guidance=guidance,
        )
        try:
            if not self.io_threads:
                for frame in frames:
                    writer.write(frame.cpu().numpy())
                    bar.update(1)
                return
            sink = BackgroundWriter(writer, depth=IO_DEPTH, convert=lambda f: f.cpu().numpy())
            try:
                for frame in frames:
                    sink.write(frame)
                    bar.update(1)
            except BaseException:
                sink.abort()
                raise
            sink.close()
        finally:
            if self.io_threads:
                source.close()  # before the reader closes under its thread

    def load_net(self):
        """The network of ``ckpt`` (and the backbone files), on the CPU in eval mode."""
        return load_net(
            self.ckpt, flownet_weights=self.flownet_weights, idc_weights=self.idc_weights
        )

    def check_target(self) -> None:
        """Refuse before any work: an existing output (without overwrite) or the input itself."""
        source, target = self.source, self.target
        if target.exists() and source.exists() and target.resolve() == source.resolve():
            raise UserError(f"{target}: is the input; choose another output")
        folder = self.kind == "frames"
        empty_folder = folder and target.is_dir() and not any(target.iterdir())
        if target.exists() and not empty_folder and not self.overwrite:
            raise UserError(f"{target}: already exists; pass overwrite=true to replace it")
        if target.exists() and folder != target.is_dir():
            raise UserError(f"{target}: exists and is {'a file' if folder else 'a folder'}")

    def settings(self) -> dict[str, Any]:
        """What decides the output's frames, by option name (a resumed run must match them):
        the inference options but the device, the weights, and the colour and range options."""
        inference = {
            f"inference.{key}": _plain(value)
            for key, value in dataclasses.asdict(self.options).items()
            if key != "device"
        }
        weights = {
            key: _file_identity(value)
            for key, value in (
                ("ckpt", self.ckpt),
                ("model.flownet_weights", self.flownet_weights),
                ("model.idc_weights", self.idc_weights),
            )
        }
        return {
            **inference,
            **weights,
            "fps": self.fps,
            "crf": self.crf,
            "saturation": self.saturation,
            "side_by_side": self.side_by_side,
            "start": self.start,
            "duration": self.duration,
            "segment_seconds": self.segment_seconds,
            "references": (
                None
                if self.references is None
                else [
                    [frame, _file_identity(path)]
                    for frame, path in reference_files(self.references)
                ]
            ),
            "hints": _file_identity(self.hints),
        }


def _required(cfg: DictConfig, key: str, what: str) -> str:
    if OmegaConf.is_missing(cfg, key) or cfg.get(key) in (None, ""):
        raise UserError(f"no {key}: set {key}=PATH ({what})")
    return str(cfg.get(key))


def _plain_container(value: Any) -> Any:
    """A config list or mapping as a plain one (OmegaConf's are not ``list`` / ``dict``)."""
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise UserError(f"{name} must be a number, got {value!r}") from error
    if math.isnan(number) or isinstance(value, bool):
        raise UserError(f"{name} must be a number, got {value!r}")
    return number


def _shard(value: Any) -> tuple[int, int] | None:
    """``shard=k/n``: this process colours the segments k, k + n, k + 2n, … (0 ≤ k < n)."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(value))
    if not match or not int(match[1]) < int(match[2]):
        raise UserError(f"shard must be k/n with 0 ≤ k < n (e.g. shard=0/4), got {value!r}")
    return int(match[1]), int(match[2])


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def _file_identity(path: str | Path | None) -> Any:
    """A file (weights, a reference, hints) as the run saw it: path, size and modification
    time (None: none)."""
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        return str(path)
    stat = file.stat()
    return [str(file.resolve()), stat.st_size, stat.st_mtime_ns]


# ---- shared by the ways of working -------------------------------------------------------------


def progress_bar(job: ColorizeJob, *, total: int, desc: str, initial: int = 0) -> tqdm:
    return tqdm(
        total=total,
        initial=initial,
        unit="frame",
        desc=desc,
        disable=not job.progress,
        dynamic_ncols=True,
    )


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders made for an output that failed, if they are still empty."""
    for folder in folders:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def log_start(job: ColorizeJob, info, span) -> None:
    options = job.options
    part = "" if len(span) == info.num_frames else f", frames {span.start}–{span.stop - 1}"
    log.info(
        "colorizing %s (%d×%d, %d frames at %g fps%s) on %s, %s, working size %s, interval %s",
        job.source,
        info.width,
        info.height,
        info.num_frames,
        info.fps,
        part,
        options.device,
        options.precision,
        options.resolution,
        "+".join(map(str, options.intervals)),
    )
    if job.kind == "video" and job.pixel_format(info.height, info.width) == "yuv444p":
        log.warning(
            "%d×%d has an odd side: writing yuv444p (full-resolution colour; some players "
            "cannot play it)",
            *job.output_size(info.height, info.width)[::-1],
        )


def finished_line(
    job: ColorizeJob, info, count: int, seconds: float, cuts: list[int], *, first: int
) -> str:
    """The run's last line. ``cuts``: indices in the coloured range, which starts at the input's
    frame ``first``; shown as the input's frame numbers, as every other line of the run."""
    shown = ", ".join(str(cut + first) for cut in cuts[:10]) + (", ..." if len(cuts) > 10 else "")
    width, height = job.output_size(info.height, info.width)[::-1]
    return (
        f"colorized {count} frames ({width}×{height}, {info.fps:g} fps) in "
        f"{seconds:.1f} s ({count / max(seconds, 1e-9):.2f} frames/s), "
        f"{len(cuts)} scene cut(s){f' at {shown}' if shown else ''}: {job.target}"
    )
