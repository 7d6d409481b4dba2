"""`colorize(cfg)`: colour a black-and-white video file or frame folder (see conf/colorize.yaml).

The video streams through the network clip by clip (``tcvc.inference.colorize_video``), so
memory does not grow with its length; decoding and encoding run on their own threads with
bounded queues (``io_threads``, ``tcvc.io.threads``), so the network does not wait for FFmpeg.
The output is written to a hidden temporary file or folder beside the target and renamed into
place only when complete (``tcvc.io`` writers), so a failure or Ctrl-C leaves the output folder
as it was.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from tcvc.errors import UserError
from tcvc.inference import (
    InferenceOptions,
    SceneCutDetector,
    colorize_video,
    load_net,
    network_fn,
    network_size,
)
from tcvc.io import FrameFolderWriter, VideoReader, VideoWriter
from tcvc.io.threads import BackgroundWriter, Prefetch
from tcvc.tasks.config import refuse_renamed_config

log = logging.getLogger("tcvc")

__all__ = ["colorize", "output_kind"]

ON_DECODE_ERROR = ("raise", "keep")
IO_DEPTH = 8  # frames read ahead and waiting to be written (io_threads=true)


def colorize(cfg: DictConfig, *, net: torch.nn.Module | None = None) -> dict[str, Any]:
    """Colour ``cfg.input`` into ``cfg.output`` with the network of ``cfg.ckpt``.

    Args:
        cfg: the composed ``conf/colorize.yaml``.
        net: a ready ``TCVCNet`` to use instead of loading ``cfg.ckpt`` (tests, benchmarks).

    Returns:
        ``{"frames", "seconds", "output", "cuts", "stopped_at"}``: frames written, wall time of
        the colouring, the output path, the scene cuts found (frame indices), and the frame
        where decoding stopped with ``on_decode_error=keep`` (else None).

    Raises ``UserError`` / ``VideoError`` (one-line messages naming the path and the problem)
    for bad options, a missing or unreadable input, an existing output without
    ``overwrite=true``, or missing weights.
    """
    refuse_renamed_config("colorize", cfg)
    source = Path(_required(cfg, "input", "a video file or a folder of frames"))
    target = Path(_required(cfg, "output", "an .mp4 file or a folder for PNG frames"))
    kind = output_kind(target)
    options = InferenceOptions.from_config(cfg.get("inference") or {})
    intervals = options.intervals
    on_decode_error = cfg.get("on_decode_error", "raise")
    if on_decode_error not in ON_DECODE_ERROR:
        raise UserError(
            f"on_decode_error must be one of {', '.join(ON_DECODE_ERROR)}, got {on_decode_error!r}"
        )
    overwrite = bool(cfg.get("overwrite", False))
    _check_target(source, target, kind=kind, overwrite=overwrite)

    with VideoReader(source, fps=cfg.get("fps"), on_decode_error=on_decode_error) as reader:
        info = reader.info
        network_size(info.height, info.width, options.resolution)  # fails early on a bad size
        if net is None:
            model = cfg.get("model") or {}
            ckpt = None if OmegaConf.is_missing(cfg, "ckpt") else cfg.get("ckpt")
            net = load_net(
                ckpt,
                flownet_weights=model.get("flownet_weights"),
                idc_weights=model.get("idc_weights"),
            )
        net = net.to(options.device).eval()
        detector = SceneCutDetector(threshold=options.scene_cut_threshold)
        log.info(
            "colorizing %s (%d×%d, %d frames at %g fps) on %s, %s, working size %s, interval %s",
            source,
            info.width,
            info.height,
            info.num_frames,
            info.fps,
            options.device,
            options.precision,
            options.resolution,
            "+".join(map(str, intervals)),
        )
        io_threads = bool(cfg.get("io_threads", True))
        source_frames = Prefetch(reader, depth=IO_DEPTH) if io_threads else reader
        frames = colorize_video(network_fn(net, options), source_frames, options, detector=detector)
        start = time.perf_counter()
        missing_parents = [p for p in target.absolute().parents if not p.exists()]
        try:
            with (
                _open_writer(cfg, target, kind=kind, info=info, overwrite=overwrite) as writer,
                tqdm(
                    total=info.num_frames,
                    unit="frame",
                    desc=source.name,
                    disable=not cfg.get("progress", True),
                    dynamic_ncols=True,
                ) as bar,
            ):
                _write_all(frames, writer, bar, threaded=io_threads)
                if writer.frames_written == 0:
                    raise UserError(f"{source}: no frame could be decoded ({reader.decode_error})")
        except BaseException:
            # the writer removed its temporary output; remove the folders it made for it too
            for folder in missing_parents:
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            raise
        finally:
            if io_threads:
                source_frames.close()  # before the reader closes under its thread
        seconds = time.perf_counter() - start
        stopped_at = reader.stopped_at

    count = writer.frames_written
    if stopped_at is not None:
        log.warning(
            "%s: decoding failed at frame %d; the output holds the %d frames before it",
            source,
            stopped_at,
            count,
        )
    cuts = ", ".join(map(str, detector.cuts[:10])) + (", ..." if len(detector.cuts) > 10 else "")
    print(
        f"colorized {count} frames ({info.width}×{info.height}, {info.fps:g} fps) in "
        f"{seconds:.1f} s ({count / max(seconds, 1e-9):.2f} frames/s), "
        f"{len(detector.cuts)} scene cut(s){f' at {cuts}' if cuts else ''}: {target}"
    )
    return {
        "frames": count,
        "seconds": seconds,
        "output": str(target),
        "cuts": list(detector.cuts),
        "stopped_at": stopped_at,
    }


# ---- options -------------------------------------------------------------------------------------


def _write_all(frames, writer, bar, *, threaded: bool) -> None:
    """Every frame (H×W×3 uint8 tensors) to ``writer``; on its own thread when ``threaded``."""
    if not threaded:
        for frame in frames:
            writer.write(frame.cpu().numpy())
            bar.update(1)
        return
    sink = BackgroundWriter(writer, depth=IO_DEPTH, convert=lambda frame: frame.cpu().numpy())
    try:
        for frame in frames:
            sink.write(frame)
            bar.update(1)
    except BaseException:
        sink.abort()
        raise
    sink.close()


def _required(cfg: DictConfig, key: str, what: str) -> str:
    if OmegaConf.is_missing(cfg, key) or cfg.get(key) in (None, ""):
        raise UserError(f"no {key}: set {key}=PATH ({what})")
    return str(cfg.get(key))


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


def _check_target(source: Path, target: Path, *, kind: str, overwrite: bool) -> None:
    """Refuse before any work: an existing output (without overwrite) or the input itself."""
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise UserError(f"{target}: is the input; choose another output")
    empty_folder = kind == "frames" and target.is_dir() and not any(target.iterdir())
    if target.exists() and not empty_folder and not overwrite:
        raise UserError(f"{target}: already exists; pass overwrite=true to replace it")
    if target.exists() and (kind == "frames") != target.is_dir():
        raise UserError(f"{target}: exists and is {'a file' if kind == 'frames' else 'a folder'}")


def _open_writer(cfg: DictConfig, target: Path, *, kind: str, info, overwrite: bool):
    if kind == "frames":
        return FrameFolderWriter(target, overwrite=overwrite)
    odd = info.width % 2 or info.height % 2
    if odd:
        log.warning(
            "%d×%d has an odd side: writing yuv444p (full-resolution colour; some players "
            "cannot play it)",
            info.width,
            info.height,
        )
    return VideoWriter(
        target,
        fps=info.fps,
        audio_from=None if info.is_frame_folder else info.path,
        crf=int(cfg.get("crf", 15)),
        pixel_format="yuv444p" if odd else "yuv420p",
        overwrite=overwrite,
    )
