"""`colorize(cfg)`: colour black-and-white videos (see conf/colorize.yaml).

Three ways of working, one colouring path (``ColorizeJob.colour`` over
``tcvc.inference.colorize_video``):

- one input, streamed (the default): the video goes through the network clip by clip, so memory
  does not grow with its length; decoding and encoding run on their own threads (``io_threads``).
  The output is written to a hidden temporary file beside the target and renamed into place only
  when complete, so a failure or Ctrl-C leaves the output folder as it was;
- one input in segments (``resume=true``, ``workers=N`` / ``devices=[...]``, ``shard=k/n``):
  ``tcvc.tasks.segmented``, which survives a kill and spreads a film over processes or jobs;
- many inputs (``input=`` a folder of videos or a glob, ``output=`` a folder):
  ``tcvc.tasks.batch``, one output per input, finished ones skipped, failures reported.

``start`` / ``duration`` colour a part of the input (a preview), ``saturation`` scales the
predicted chroma and ``side_by_side=true`` writes gray | colour; ``references`` (coloured frames)
and ``hints`` (colour dots) guide the colours (``tcvc.inference.guidance``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from tcvc.errors import UserError
from tcvc.inference import SceneCutDetector, network_fn, network_size
from tcvc.tasks.batch import batch_inputs, colorize_many
from tcvc.tasks.colorize_job import (
    ColorizeJob,
    finished_line,
    log_start,
    output_kind,
    progress_bar,
    remove_empty,
)
from tcvc.tasks.config import refuse_renamed_config
from tcvc.tasks.segmented import WorkFolder, colorize_segmented

log = logging.getLogger("tcvc")

__all__ = ["colorize", "colorize_file", "output_kind"]


def colorize(cfg: DictConfig, *, net: torch.nn.Module | None = None) -> dict[str, Any]:
    """Colour ``cfg.input`` into ``cfg.output`` with the network of ``cfg.ckpt``.

    Args:
        cfg: the composed ``conf/colorize.yaml``.
        net: a ready ``TCVCNet`` to use instead of loading ``cfg.ckpt`` (tests, benchmarks).

    Returns:
        one input: ``{"frames", "seconds", "output", "cuts", "stopped_at"}``: frames written,
        wall time of the colouring, the output path, the scene cuts found (frame indices of the
        coloured range), and the frame where decoding stopped with ``on_decode_error=keep``
        (else None); a segmented run adds ``"segments"`` (coloured here / in all) and
        ``"joined"``. Many inputs: ``colorize_many``'s summary.

    Raises ``UserError`` / ``VideoError`` (one-line messages naming the path and the problem)
    for bad options, a missing or unreadable input, an existing output without
    ``overwrite=true``, or missing weights.
    """
    refuse_renamed_config("colorize", cfg)
    inputs = None if OmegaConf.is_missing(cfg, "input") else batch_inputs(cfg.get("input"))
    if inputs is not None:
        return colorize_many(cfg, inputs, colour_one=colorize_file, net=net)
    return colorize_file(ColorizeJob.from_config(cfg), net=net)


def colorize_file(job: ColorizeJob, *, net: torch.nn.Module | None = None) -> dict[str, Any]:
    """Colour one input as ``job`` says (streamed, or in segments); see ``colorize``."""
    job.check_target()
    if job.segmented:
        return colorize_segmented(job, net=net)
    work = WorkFolder(job)
    if work.root.exists():
        with work.lock(shared=False):  # refused while a run in segments works there
            pass
        log.warning(
            "%s: an earlier run in segments left its work there; this run starts afresh "
            "(resume=true would go on from it)",
            work.root,
        )
    with job.open_reader() as probe:
        info, index = probe.info, probe.index
    span = job.frame_range(info.num_frames, info.fps)
    network_size(info.height, info.width, job.options.resolution)  # fails early on a bad size
    if net is None:
        net = job.load_net()
    net = net.to(job.options.device).eval()
    detector = SceneCutDetector(threshold=job.options.scene_cut_threshold)
    guidance = job.guidance(info.num_frames, (info.height, info.width), span)
    log_start(job, info, span)
    target = job.target
    missing_parents = [p for p in target.absolute().parents if not p.exists()]
    start = time.perf_counter()
    with job.open_reader(start=span.start, stop=span.stop, index=index) as reader:
        try:
            with (
                job.open_writer(
                    target,
                    fps=info.fps,
                    frame_size=(info.height, info.width),
                    audio_from=None if info.is_frame_folder else info.path,
                    source_start=span.start / info.fps,
                    overwrite=job.overwrite,
                ) as writer,
                progress_bar(job, total=len(span), desc=job.source.name) as bar,
            ):
                job.colour(
                    network_fn(net, job.options),
                    reader,
                    writer,
                    bar=bar,
                    detector=detector,
                    guidance=guidance,
                )
                if writer.frames_written == 0:
                    raise UserError(
                        f"{job.source}: no frame could be decoded ({reader.decode_error})"
                    )
        except BaseException:
            # the writer removed its temporary output; remove the folders it made for it too
            remove_empty(missing_parents)
            raise
        stopped_at = reader.stopped_at
    seconds = time.perf_counter() - start
    count = writer.frames_written
    if stopped_at is not None:
        log.warning(
            "%s: decoding failed at frame %d; the output holds the %d frames before it",
            job.source,
            stopped_at,
            count,
        )
    print(finished_line(job, info, count, seconds, detector.cuts, first=span.start))
    return {
        "frames": count,
        "seconds": seconds,
        "output": str(target),
        "cuts": list(detector.cuts),
        "stopped_at": stopped_at,
    }
