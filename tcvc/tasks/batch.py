"""Many inputs in one colorize.py run: ``input=`` a folder of videos or a glob, ``output=`` a folder.

One output per input (``<output>/<input name>.mp4``), the network loaded once; an output that
exists is a film done before and is skipped (``overwrite=true`` colours it again); a bad input is
reported and skipped, the others done. A summary ends the run (done / skipped / failed with the
reason); when any failed, the run ends with ``BatchFailed`` (exit status 1).
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tcvc.errors import UserError
from tcvc.io.frames import IMAGE_SUFFIXES
from tcvc.tasks.colorize_job import ColorizeJob

log = logging.getLogger("tcvc")

__all__ = ["VIDEO_SUFFIXES", "BatchFailed", "batch_inputs", "colorize_many"]

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"}
    | {".ogv", ".3gp", ".mxf", ".dv"}
)
_GLOB = frozenset("*?[")


class BatchFailed(UserError):
    """Some inputs of a batch failed; ``summary`` is ``colorize_many``'s."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


def batch_inputs(value: Any) -> list[Path] | None:
    """The inputs of a batch run, or None for one input (a file, or a folder of frames).

    A glob (``films/*.mp4``) gives its matches that are files; a folder that holds video files
    (by suffix) and no images gives those videos. Raises ``UserError`` for a glob without a
    match, or a folder that holds both.
    """
    if value in (None, ""):
        return None
    text = str(value)
    if _GLOB & set(text):
        matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not matches:
            raise UserError(f"input={text}: no file matches")
        return matches
    folder = Path(text)
    if not folder.is_dir():
        return None
    files = [p for p in folder.iterdir() if p.is_file()]
    videos = sorted(p for p in files if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        return None  # a folder of frames
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
        raise UserError(
            f"{folder}: holds both videos and images; give input='{folder}/*.mp4' for the "
            "videos, or a folder of frames alone"
        )
    return videos


def colorize_many(
    cfg: DictConfig,
    inputs: list[Path],
    *,
    colour_one: Callable[..., dict[str, Any]],
    net=None,
) -> dict[str, Any]:
    """Colour every input into ``cfg.output`` (a folder), one at a time with one network.

    Returns ``{"done": [...], "skipped": [...], "failed": [(input, reason), ...]}`` (paths as
    strings); raises ``BatchFailed`` with it when any failed.
    """
    from tcvc.tasks.errors import one_line, user_error_types

    if OmegaConf.is_missing(cfg, "output") or cfg.get("output") in (None, ""):
        raise UserError("no output: set output=FOLDER (one .mp4 per input goes there)")
    folder = Path(str(cfg.output))
    if folder.suffix.lower() == ".mp4" or folder.is_file():
        raise UserError(f"output={folder}: many inputs need an output folder (one .mp4 each)")
    targets = _targets(inputs, folder)
    first = ColorizeJob.for_paths(cfg, inputs[0], targets[0])  # bad options: before any work
    summary: dict[str, Any] = {"done": [], "skipped": [], "failed": []}
    print(f"{len(inputs)} inputs -> {folder}")
    for number, (source, target) in enumerate(zip(inputs, targets, strict=True), 1):
        prefix = f"[{number}/{len(inputs)}] {source.name}"
        if target.exists() and not first.overwrite:
            print(f"{prefix}: skipped, {target} exists (overwrite=true colours it again)")
            summary["skipped"].append(str(source))
            continue
        print(f"{prefix} -> {target}")
        try:
            job = ColorizeJob.for_paths(cfg, source, target)
            if net is None:
                net = job.load_net()  # once, for every input
            colour_one(job, net=net)
        except user_error_types() as error:
            reason = one_line(error)
            print(f"{prefix}: failed: {reason}")
            summary["failed"].append((str(source), reason))
            continue
        summary["done"].append(str(source))
    print(_summary_table(summary))
    if summary["failed"]:
        raise BatchFailed(
            f"{len(summary['failed'])} of {len(inputs)} inputs failed (see the summary above)",
            summary,
        )
    return summary


def _targets(inputs: list[Path], folder: Path) -> list[Path]:
    """``<folder>/<stem>.mp4`` per input; two inputs of one name are refused up front."""
    targets = [folder / f"{source.stem}.mp4" for source in inputs]
    seen: dict[Path, Path] = {}
    for source, target in zip(inputs, targets, strict=True):
        if target in seen:
            raise UserError(
                f"{seen[target]} and {source} would both be coloured into {target}; "
                "rename one or colour them separately"
            )
        seen[target] = source
    return targets


def _summary_table(summary: dict[str, Any]) -> str:
    counts = {key: len(summary[key]) for key in ("done", "skipped", "failed")}
    lines = [", ".join(f"{key} {count}" for key, count in counts.items())]
    # a reason names its input already when it is the input's own error
    lines += [
        f"  failed: {reason if reason.startswith(f'{source}:') else f'{source}: {reason}'}"
        for source, reason in summary["failed"]
    ]
    return "\n".join(lines)
