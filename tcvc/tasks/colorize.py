"""`colorize(cfg)`: colour a black-and-white video file or frame folder (see conf/colorize.yaml).

The video streams through the network clip by clip (``tcvc.inference.colorize_stream``), so
memory does not grow with its length; the output is written to a hidden temporary file or
folder beside the target and renamed into place only when complete (``tcvc.io`` writers), so a
failure or Ctrl-C leaves the output folder as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor
from tqdm import tqdm

from tcvc.inference import (
    Resolution,
    SceneCutDetector,
    colorize_stream,
    network_size,
)
from tcvc.io import FrameFolderWriter, VideoReader, VideoWriter
from tcvc.tasks.common import UserError, load_net, pick_device

log = logging.getLogger("tcvc")

__all__ = ["colorize", "output_kind", "parse_resolution"]

SAMPLINGS = ("single", "multi")
PRECISIONS = ("fp32", "bf16")
CHOICES = {
    "input_kind": ("auto", "gray", "color"),
    "gamut": ("keep_luminance", "clip"),
    "on_decode_error": ("raise", "keep"),
}


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
    source = Path(_required(cfg, "input", "a video file or a folder of frames"))
    target = Path(_required(cfg, "output", "an .mp4 file or a folder for PNG frames"))
    kind = output_kind(target)
    intervals = _intervals(cfg)
    resolution = parse_resolution(cfg.get("resolution", 256))
    threshold = _threshold(cfg.get("scene_cut_threshold"))
    device = pick_device(str(cfg.get("device", "auto")))
    precision = str(cfg.get("precision", "fp32"))
    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16" and device.type != "cuda":
        raise UserError(
            "precision=bf16 runs on CUDA only (the CPU kernels of FlowNet2's ops are float32); "
            "use precision=fp32"
        )
    for key, allowed in CHOICES.items():
        if cfg.get(key, allowed[0]) not in allowed:
            raise UserError(f"{key} must be one of {', '.join(allowed)}, got {cfg.get(key)!r}")
    flow_batch = cfg.get("flow_batch", 8)
    if flow_batch is not None and not (isinstance(flow_batch, int) and flow_batch >= 1):
        raise UserError(f"flow_batch must be an integer ≥ 1 or null, got {flow_batch!r}")
    overwrite = bool(cfg.get("overwrite", False))
    _check_target(source, target, kind=kind, overwrite=overwrite)

    with VideoReader(
        source, fps=cfg.get("fps"), on_decode_error=cfg.get("on_decode_error", "raise")
    ) as reader:
        info = reader.info
        network_size(info.height, info.width, resolution)  # fails early on a bad size
        if net is None:
            model = cfg.get("model") or {}
            ckpt = None if OmegaConf.is_missing(cfg, "ckpt") else cfg.get("ckpt")
            net = load_net(
                ckpt,
                flownet2_weights=model.get("flownet2_weights"),
                idc_weights=model.get("idc_weights"),
            )
        net = net.to(device).eval()
        net_fn = _net_fn(net, precision=precision, flow_batch=flow_batch)
        detector = SceneCutDetector(threshold=threshold)
        log.info(
            "colorizing %s (%d×%d, %d frames at %g fps) on %s, %s, working size %s, interval %s",
            source,
            info.width,
            info.height,
            info.num_frames,
            info.fps,
            device,
            precision,
            resolution,
            "+".join(map(str, intervals)),
        )
        frames = colorize_stream(
            net_fn,
            reader,
            interval=intervals,
            resolution=resolution,
            input_kind=cfg.get("input_kind", "auto"),
            gamut=cfg.get("gamut", "keep_luminance"),
            device=device,
            detector=detector,
        )
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
                for frame in frames:
                    writer.write(frame)
                    bar.update(1)
                if writer.frames_written == 0:
                    raise UserError(f"{source}: no frame could be decoded ({reader.decode_error})")
        except BaseException:
            # the writer removed its temporary output; remove the folders it made for it too
            for folder in missing_parents:
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            raise
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


def parse_resolution(value: Any) -> Resolution:
    """``256`` / ``"256"`` -> 256, ``"native"``, ``[h, w]`` -> (h, w); checked (multiples of 64)."""
    if isinstance(value, ListConfig | list | tuple):
        resolution: Resolution = tuple(int(v) for v in value)
    elif isinstance(value, str) and value.strip().isdigit():
        resolution = int(value)
    else:
        resolution = value
    try:
        network_size(64, 64, resolution)
    except ValueError as error:
        raise UserError(f"resolution: {error}") from error
    return resolution


def _intervals(cfg: DictConfig) -> tuple[int, ...]:
    sampling = str(cfg.get("sampling", "single"))
    if sampling not in SAMPLINGS:
        raise UserError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    values = cfg.get("multi_intervals", [17, 19]) if sampling == "multi" else [cfg.get("interval")]
    intervals = tuple(values)
    if not intervals or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 1 for i in intervals
    ):
        name = "multi_intervals" if sampling == "multi" else "interval"
        raise UserError(f"{name} must be integers ≥ 1, got {values}")
    return intervals


def _threshold(value: Any) -> float | None:
    if value is None or value is False:
        return None
    try:
        threshold = float(value)
    except (TypeError, ValueError) as error:
        raise UserError(f"scene_cut_threshold must be a number or null, got {value!r}") from error
    if threshold < 0:
        raise UserError(f"scene_cut_threshold must be ≥ 0 (0 or null: off), got {threshold}")
    return threshold or None


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


def _net_fn(
    net: torch.nn.Module, *, precision: str, flow_batch: int | None
) -> Callable[[Tensor], Tensor]:
    """B×T×1×h×w -> B×T×2×h×w float32 ab, under bf16 autocast when asked."""
    device_type = next(net.parameters()).device.type

    def run(L: Tensor) -> Tensor:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            return net.colorize_clip(L, flow_batch=flow_batch).float()

    return run
