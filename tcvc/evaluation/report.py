"""The report of an evaluation: tables, plots, comparison videos, saved frames and W&B.

Everything here reads the ``report`` dict that ``tcvc.tasks.evaluate`` builds (per video: sizes,
``scores`` {run name: {metric: value}}, timings; ``mean``; ``labels`` {run name: label}) and
writes files into the output folder:

- ``metrics.json`` (the report, nan as null), ``metrics.csv``, ``table.md`` (``write_tables``);
- ``plots/per_video.png`` and, for an interval sweep, ``plots/cdc_vs_interval.png``
  (``write_plots``);
- ``comparison/<root>__<video>.mp4`` (``write_comparison``: gray | IDC | TCVC | ground truth
  under a label strip) and ``frames/<run>/<video>/*.png`` (``save_frames``);
- the tables, plots and videos to W&B (``log_report``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from tcvc.evaluation.scoring import LOWER_IS_BETTER

__all__ = [
    "DIGITS",
    "clean",
    "fmt",
    "log_report",
    "save_frames",
    "summary",
    "write_comparison",
    "write_plots",
    "write_tables",
]

DIGITS = {
    "psnr": 2,
    "ssim": 4,
    "lpips": 4,
    "colorfulness": 2,
    "cdc": 6,
    "warp_error": 6,
    "fid": 2,
}


def clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def fmt(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "inf"
    return f"{value:.{DIGITS[metric]}f}"


def _markdown(rows: dict[str, dict[str, float]], metric_names: Sequence[str], first: str) -> str:
    header = [first, *(f"{m} {'↓' if m in LOWER_IS_BETTER else '↑'}" for m in metric_names)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in rows.items():
        cells = [fmt(m, row.get(m)) for m in metric_names]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def write_tables(
    output_dir: Path,
    report: dict,
    methods: Sequence[str],
    metric_names: Sequence[str],
) -> str:
    """metrics.json, metrics.csv and table.md; returns the mean table (Markdown)."""

    def cleaned(obj):
        if isinstance(obj, dict):
            return {k: cleaned(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [cleaned(v) for v in obj]
        if isinstance(obj, float):
            return clean(obj)
        return obj

    (output_dir / "metrics.json").write_text(json.dumps(cleaned(report), indent=2) + "\n")
    with (output_dir / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "method", *metric_names])
        rows = [(video, info["scores"]) for video, info in report["videos"].items()]
        for video, scores in [*rows, ("mean", report["mean"])]:
            for method in methods:
                values = [scores.get(method, {}).get(m) for m in metric_names]
                writer.writerow(
                    [video, method, *("" if clean(v) is None else repr(v) for v in values)]
                )
    mean_table = _markdown(
        {report["labels"][m]: report["mean"][m] for m in methods}, metric_names, "method"
    )
    per_video = [
        f"### {video} ({info['num_frames']} frames, {info['width']}×{info['height']})\n\n"
        + _markdown(
            {report["labels"][m]: info["scores"][m] for m in methods}, metric_names, "method"
        )
        for video, info in report["videos"].items()
    ]
    protocol = report["protocol"]
    text = (
        f"## Mean over {len(report['videos'])} videos\n\n"
        f"{protocol['description']}\n\n{mean_table}\n\n## Per video\n\n"
        + "\n\n".join(per_video)
        + "\n"
    )
    (output_dir / "table.md").write_text(text)
    return mean_table


def write_plots(
    output_dir: Path,
    report: dict,
    methods: Sequence[str],
    metric_names: Sequence[str],
    *,
    sweep: Mapping[str, int] | None = None,
    baselines: Sequence[str] = (),
) -> list[Path]:
    """plots/per_video.png (a bar group per video, one panel per metric) and, for an interval
    sweep (``sweep``: {run name: interval}, more than one), plots/cdc_vs_interval.png with the
    ``baselines`` as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = output_dir / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    videos = list(report["videos"])
    shown = [
        m
        for m in metric_names
        if m != "fid"
        and any(
            clean(report["videos"][v]["scores"][n].get(m)) is not None
            for v in videos
            for n in methods
        )
    ]
    if shown:
        figure, axes = plt.subplots(
            len(shown),
            1,
            figsize=(max(6.0, 1.2 * len(videos) * len(methods) / 2), 2.6 * len(shown)),
        )
        axes = np.atleast_1d(axes)
        width = 0.8 / len(methods)
        positions = np.arange(len(videos))
        for axis, metric in zip(axes, shown, strict=True):
            for index, method in enumerate(methods):
                values = [clean(report["videos"][v]["scores"][method].get(metric)) for v in videos]
                axis.bar(
                    positions + (index - (len(methods) - 1) / 2) * width,
                    [np.nan if v is None else v for v in values],
                    width,
                    label=report["labels"][method],
                )
            arrow = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
            axis.set_ylabel(metric)
            axis.set_title(f"{metric} ({arrow})", fontsize=9)
            axis.set_xticks(positions, [v.split("/")[-1] for v in videos], fontsize=8)
        axes[0].legend(fontsize=7, ncols=min(len(methods), 4))
        figure.tight_layout()
        path = folder / "per_video.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    if sweep is not None and len(sweep) > 1:
        tracked = [m for m in ("cdc", "psnr") if m in metric_names]
        if tracked:
            figure, axes = plt.subplots(1, len(tracked), figsize=(5.0 * len(tracked), 3.6))
            axes = np.atleast_1d(axes)
            for axis, metric in zip(axes, tracked, strict=True):
                values = [report["mean"][m].get(metric) for m in sweep]
                axis.plot(list(sweep.values()), values, "o-", label="TCVC")
                for baseline in baselines:
                    value = clean(report["mean"][baseline].get(metric))
                    if value is not None:
                        axis.axhline(
                            value, linestyle="--", linewidth=1, label=report["labels"][baseline]
                        )
                axis.set_xlabel("interval (frames between anchors)")
                axis.set_ylabel(metric)
                axis.set_title(f"{metric} vs interval", fontsize=9)
                axis.legend(fontsize=7)
            figure.tight_layout()
            path = folder / "cdc_vs_interval.png"
            figure.savefig(path, dpi=100)
            plt.close(figure)
            written.append(path)
    return written


def _header(labels: Sequence[str], width: int, height: int = 20) -> np.ndarray:
    """A black strip with one label centred over each of the equally wide panels."""
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (width * len(labels), height))
    draw = ImageDraw.Draw(strip)
    for index, label in enumerate(labels):
        left, top, right, bottom = draw.textbbox((0, 0), label)
        x = index * width + (width - (right - left)) // 2
        draw.text((x, (height - (bottom - top)) // 2 - top), label, fill=(255, 255, 255))
    return np.asarray(strip)


def write_comparison(path: Path, panels: dict[str, Tensor], fps: float) -> None:
    """An mp4 of the panels side by side under a label strip (sizes cropped to even numbers)."""
    from tcvc.io import VideoWriter

    videos = [p.cpu().numpy() for p in panels.values()]
    num_frames, _, width = videos[0].shape[:3]
    header = _header(list(panels), width)
    with VideoWriter(path, fps=fps, overwrite=True, preset="fast") as writer:
        for t in range(num_frames):
            frame = np.concatenate([header, np.concatenate([v[t] for v in videos], axis=1)])
            writer.write(
                np.ascontiguousarray(frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2])
            )


def save_frames(folder: Path, video: Tensor) -> None:
    from tcvc.io import FrameFolderWriter

    with FrameFolderWriter(folder, overwrite=True) as writer:
        for frame in video.cpu().numpy():
            writer.write(frame)


def log_report(loggers: list, report: dict, methods, metric_names, plots, comparisons) -> None:
    from pytorch_lightning.loggers import WandbLogger

    flat = {
        f"eval/{method}/{metric}": value
        for method in methods
        for metric, value in report["mean"][method].items()
        if clean(value) is not None
    }
    for logger in loggers:
        logger.log_hyperparams(report["config"])
        logger.log_metrics(flat)
        if isinstance(logger, WandbLogger):
            import wandb

            columns = ["method", *metric_names]
            mean = wandb.Table(
                columns=columns,
                data=[
                    [report["labels"][m], *(clean(report["mean"][m].get(k)) for k in metric_names)]
                    for m in methods
                ],
            )
            per_video = wandb.Table(
                columns=["video", *columns],
                data=[
                    [
                        video,
                        report["labels"][m],
                        *(clean(info["scores"][m].get(k)) for k in metric_names),
                    ]
                    for video, info in report["videos"].items()
                    for m in methods
                ],
            )
            media = {"eval/metrics": mean, "eval/metrics_per_video": per_video}
            media.update({f"eval/plots/{p.stem}": wandb.Image(str(p)) for p in plots})
            media.update(
                {
                    f"eval/comparison/{name}": wandb.Video(str(p), format="mp4")
                    for name, p in comparisons
                }
            )
            logger.experiment.log(media)
        logger.finalize("success")
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()


def summary(scores: Mapping[str, Mapping[str, float]], metric_names: Sequence[str]) -> str:
    """One log line of the first run's scores: ``psnr 24.10, cdc 0.004321, ...``."""
    main = next(iter(scores))
    return ", ".join(
        f"{m} {fmt(m, scores[main].get(m))}" for m in metric_names if m in scores[main]
    )
