"""`evaluate(cfg)`: the paper's test protocol on the test roots of a data config, with baselines.

For every video of ``cfg.data.test_roots`` (one folder of frames per video, colour ground truth):
the method (``model=tcvc_idc``: TCVC at each interval of ``eval.interval``, one sampling or the
multi-sampling ensemble; ``model=idc_only``: IDC frame by frame) and the baselines
(``eval.baselines``: ``idc`` frame by frame, ``gray`` the input itself, ``gt`` the ground truth's
own colourfulness / CDC / warp error) are coloured and scored (``tcvc.evaluation``).

Writes into ``cfg.paths.output_dir``: ``metrics.json`` (per video and mean, timings),
``metrics.csv``, ``table.md`` (also printed), ``plots/*.png``, ``comparison/<video>.mp4``
(gray | IDC | TCVC | ground truth) for the first ``eval.num_comparison_videos`` videos,
``frames/<method>/<video>/*.png`` with ``eval.save_frames=true``, ``config.yaml``; and the tables,
plots and videos to W&B with ``logger=wandb``.

Weights (``ckpt`` and the model config's weight paths; nothing else of the model config is read):
- ``model=tcvc_idc``: ``ckpt`` = a project ``.ckpt`` / state dict or the original ``80000_G.pth``
  (or ``model.tcvc_weights``, the same thing); a head-only ``.ckpt`` takes its backbones from
  ``model.flownet2_weights`` / ``model.idc_weights`` or the paths its run recorded.
- ``model=idc_only``: IDC from ``model.idc_weights`` *or* ``ckpt`` (any file holding IDC:
  ``siggraph17-df00044c.pth``, ``80000_G.pth``, a full project checkpoint), not both; FlowNet2
  for the warp error from ``model.flownet2_weights`` or ``ckpt`` if it holds one, else the warp
  error is skipped.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor, nn
from tqdm.auto import tqdm

from tcvc.evaluation import (
    GROUND_TRUTH,
    LOWER_IS_BETTER,
    METRICS,
    flow_at_resolution,
    gray_rgb,
    idc_rgb,
    score_video,
    tcvc_rgb,
    to_uint8,
)
from tcvc.inference import anchor_clips
from tcvc.nets.checkpoints import load_backbone
from tcvc.tasks.common import UserError, load_net, pick_device

log = logging.getLogger("tcvc")

__all__ = ["evaluate"]

BASELINES = ("idc", "gray", GROUND_TRUTH)
SAMPLINGS = ("one", "multi")
DIGITS = {
    "psnr": 2,
    "ssim": 4,
    "lpips": 4,
    "colorfulness": 2,
    "cdc": 6,
    "warp_error": 6,
    "fid": 2,
}
LABELS = {"idc": "IDC", "gray": "gray", GROUND_TRUTH: "ground truth"}


# -- options -------------------------------------------------------------------------------------


@dataclass
class Protocol:
    """The resolved ``eval`` options."""

    kind: str  # "tcvc" | "idc"
    runs: dict[str, list[int]]  # method name -> intervals averaged (TCVC); {"idc": []}
    resolution: int | str | tuple[int, int]
    baselines: list[str]
    metrics: list[str]
    max_frames: int | None
    max_videos: int | None
    batch_size: int
    flow_batch: int
    save_frames: bool
    num_comparison_videos: int
    fps: float
    intervals: list[int] = field(default_factory=list)  # the sweep (one per TCVC method)


def _int_list(value, name: str) -> list[int]:
    values = list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise UserError(f"{name} must be an integer or a list of integers, got {value!r}")
    return values


def _protocol(cfg: DictConfig) -> Protocol:
    options = cfg.eval
    kind = cfg.model.get("method", "tcvc")
    if kind not in ("tcvc", "idc"):
        raise UserError(f"model.method must be tcvc or idc, got {kind!r}")
    sampling = options.sampling
    if sampling not in SAMPLINGS:
        raise UserError(f"eval.sampling must be one of {list(SAMPLINGS)}, got {sampling!r}")
    intervals = _int_list(options.interval, "eval.interval")
    offsets = _int_list(options.multi_offsets, "eval.multi_offsets")
    if min(intervals) < 1 or min(i + d for i in intervals for d in offsets) < 1:
        raise UserError(f"intervals must be ≥ 1, got eval.interval={intervals}")
    runs: dict[str, list[int]] = {}
    if kind == "tcvc":
        for interval in intervals:
            used = [interval + d for d in offsets] if sampling == "multi" else [interval]
            runs["tcvc_" + "+".join(map(str, used))] = used
    else:
        runs["idc"] = []
    resolution = options.resolution
    if isinstance(resolution, (list, ListConfig)):
        resolution = tuple(resolution)
    baselines = list(options.baselines or [])
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise UserError(f"unknown eval.baselines {unknown}; known: {list(BASELINES)}")
    baselines = [b for b in BASELINES if b in baselines and b not in runs]
    names = list(options.metrics)
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise UserError(f"unknown eval.metrics {unknown}; known: {list(METRICS)}")
    return Protocol(
        kind=kind,
        runs=runs,
        resolution=resolution,
        baselines=baselines,
        metrics=[m for m in METRICS if m in names],
        max_frames=options.max_frames,
        max_videos=options.max_videos,
        batch_size=int(options.batch_size),
        flow_batch=int(options.flow_batch),
        save_frames=bool(options.save_frames),
        num_comparison_videos=int(options.num_comparison_videos),
        fps=float(options.fps),
        intervals=intervals if kind == "tcvc" else [],
    )


def _test_roots(data: DictConfig) -> list[str]:
    roots = data.get("test_roots")
    if not roots:
        raise UserError(
            "the data config names no test roots: set data.test_roots=[/path/to/root] (one "
            "folder of frames per video in each), or pick data=davis30 / videvo20 / sample"
        )
    return [str(r) for r in ([roots] if isinstance(roots, str) else roots)]


# -- weights -------------------------------------------------------------------------------------


@dataclass
class Networks:
    tcvc: nn.Module | None
    idc: nn.Module | None
    flownet: nn.Module | None


def _load_networks(cfg: DictConfig, kind: str) -> Networks:
    model = cfg.model
    ckpt = cfg.get("ckpt")
    if kind == "tcvc":
        whole = model.get("tcvc_weights")
        if ckpt and whole and str(ckpt) != str(whole):
            raise UserError(
                f"two TCVC checkpoints given: ckpt={ckpt} and model.tcvc_weights={whole}; give one"
            )
        net = load_net(
            ckpt or whole,
            flownet2_weights=model.get("flownet2_weights"),
            idc_weights=model.get("idc_weights"),
        )
        return Networks(tcvc=net, idc=net.idc, flownet=net.flownet)

    from tcvc.nets.flownet2 import FlowNet2
    from tcvc.nets.idc import IDC

    idc_file = model.get("idc_weights")
    if ckpt and idc_file:
        raise UserError(
            f"model=idc_only takes its IDC weights from ckpt={ckpt} or from "
            f"model.idc_weights={idc_file}, not both"
        )
    if not (ckpt or idc_file):
        raise UserError(
            "model=idc_only needs IDC weights: model.idc_weights=siggraph17-df00044c.pth, or "
            "ckpt= a file that holds them (80000_G.pth, a full project checkpoint)"
        )
    idc = load_backbone(ckpt or idc_file, "idc", IDC())
    flownet = None
    flow_file = model.get("flownet2_weights")
    if flow_file:
        flownet = load_backbone(flow_file, "flownet", FlowNet2())
    elif ckpt:
        flownet = load_backbone(ckpt, "flownet", FlowNet2(), required=False)
    return Networks(tcvc=None, idc=idc, flownet=flownet)


# -- one video -----------------------------------------------------------------------------------


def _counted(fn: Callable, bar: tqdm) -> Callable:
    """``fn`` that advances ``bar`` by one step per call (a clip, or a batch of IDC frames)."""

    def counted(*args, **kwargs):
        out = fn(*args, **kwargs)
        bar.update(1)
        return out

    return counted


def _steps(num_frames: int, protocol: Protocol) -> int:
    """The network calls a video takes: TCVC clips of every interval, IDC batches."""
    steps = sum(
        len(anchor_clips(num_frames, interval))
        for intervals in protocol.runs.values()
        for interval in intervals
    )
    idc_passes = int(protocol.kind == "idc") + int("idc" in protocol.baselines)
    return steps + idc_passes * math.ceil(num_frames / protocol.batch_size)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _read_video(frame_files: Sequence[Path], max_frames: int | None) -> np.ndarray:
    from tcvc.io import read_frames

    return read_frames(frame_files[0].parent, max_frames=max_frames)


def _lightness(gt: Tensor, batch_size: int) -> Tensor:
    """uint8 T×H×W×3 -> T×1×H×W normalised L, in chunks (kornia's Lab holds a few copies)."""
    from tcvc.color import rgb_to_lab_normalized

    parts = []
    for start in range(0, gt.shape[0], 4 * batch_size):
        rgb = gt[start : start + 4 * batch_size].permute(0, 3, 1, 2).float() / 255.0
        parts.append(rgb_to_lab_normalized(rgb)[0])
    return torch.cat(parts)


def _colour_video(
    L: Tensor, networks: Networks, protocol: Protocol, bar: tqdm, device: torch.device
) -> tuple[dict[str, Tensor], dict[str, float]]:
    """{output name: uint8 T×H×W×3} of the method(s) and the colouring baselines; timings."""
    outputs: dict[str, Tensor] = {}
    timing = {"inference_s": 0.0, "baselines_s": 0.0}
    idc = _counted(networks.idc, bar) if networks.idc is not None else None
    with torch.no_grad():
        for name, intervals in protocol.runs.items():
            start = time.perf_counter()
            if protocol.kind == "tcvc":
                net_fn = _counted(
                    functools.partial(networks.tcvc.colorize_clip, flow_batch=protocol.flow_batch),
                    bar,
                )
                rgb = tcvc_rgb(net_fn, L, intervals=intervals, resolution=protocol.resolution)
            else:
                rgb = idc_rgb(
                    idc, L, resolution=protocol.resolution, batch_size=protocol.batch_size
                )
            outputs[name] = to_uint8(rgb)
            _sync(device)
            timing["inference_s"] += time.perf_counter() - start
        start = time.perf_counter()
        if "idc" in protocol.baselines:
            rgb = idc_rgb(idc, L, resolution=protocol.resolution, batch_size=protocol.batch_size)
            outputs["idc"] = to_uint8(rgb)
        if "gray" in protocol.baselines:
            outputs["gray"] = to_uint8(gray_rgb(L))
        _sync(device)
        timing["baselines_s"] = time.perf_counter() - start
    return outputs, timing


# -- outputs ---------------------------------------------------------------------------------------


def _clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _fmt(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "inf"
    return f"{value:.{DIGITS[metric]}f}"


def _label(name: str) -> str:
    if name.startswith("tcvc_"):
        return f"TCVC (interval {name.removeprefix('tcvc_')})"
    return LABELS.get(name, name)


def _markdown(rows: dict[str, dict[str, float]], metric_names: Sequence[str], first: str) -> str:
    header = [first, *(f"{m} {'↓' if m in LOWER_IS_BETTER else '↑'}" for m in metric_names)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in rows.items():
        cells = [_fmt(m, row.get(m)) for m in metric_names]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def _write_tables(
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
            return _clean(obj)
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
                    [video, method, *("" if _clean(v) is None else repr(v) for v in values)]
                )
    mean_table = _markdown({_label(m): report["mean"][m] for m in methods}, metric_names, "method")
    per_video = [
        f"### {video} ({info['num_frames']} frames, {info['width']}×{info['height']})\n\n"
        + _markdown({_label(m): info["scores"][m] for m in methods}, metric_names, "method")
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


def _plots(
    output_dir: Path, report: dict, methods: Sequence[str], protocol: Protocol
) -> list[Path]:
    """plots/per_video.png (a bar group per video, one panel per metric) and, when sweeping,
    plots/cdc_vs_interval.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = output_dir / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    videos = list(report["videos"])
    shown = [
        m
        for m in protocol.metrics
        if m != "fid"
        and any(
            _clean(report["videos"][v]["scores"][n].get(m)) is not None
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
                values = [_clean(report["videos"][v]["scores"][method].get(metric)) for v in videos]
                axis.bar(
                    positions + (index - (len(methods) - 1) / 2) * width,
                    [np.nan if v is None else v for v in values],
                    width,
                    label=_label(method),
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
    if len(protocol.intervals) > 1:
        tracked = [m for m in ("cdc", "psnr") if m in protocol.metrics]
        if tracked:
            figure, axes = plt.subplots(1, len(tracked), figsize=(5.0 * len(tracked), 3.6))
            axes = np.atleast_1d(axes)
            tcvc_methods = list(protocol.runs)
            for axis, metric in zip(axes, tracked, strict=True):
                values = [report["mean"][m].get(metric) for m in tcvc_methods]
                axis.plot(protocol.intervals, values, "o-", label="TCVC")
                for baseline in protocol.baselines:
                    value = _clean(report["mean"][baseline].get(metric))
                    if value is not None:
                        axis.axhline(value, linestyle="--", linewidth=1, label=_label(baseline))
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


def _write_comparison(path: Path, panels: dict[str, Tensor], fps: float) -> None:
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


def _save_frames(folder: Path, video: Tensor) -> None:
    from tcvc.io import FrameFolderWriter

    with FrameFolderWriter(folder, overwrite=True) as writer:
        for frame in video.cpu().numpy():
            writer.write(frame)


def _log(loggers: list, report: dict, methods, metric_names, plots, comparisons) -> None:
    from pytorch_lightning.loggers import WandbLogger

    flat = {
        f"eval/{method}/{metric}": value
        for method in methods
        for metric, value in report["mean"][method].items()
        if _clean(value) is not None
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
                    [_label(m), *(_clean(report["mean"][m].get(k)) for k in metric_names)]
                    for m in methods
                ],
            )
            per_video = wandb.Table(
                columns=["video", *columns],
                data=[
                    [
                        video,
                        _label(m),
                        *(_clean(info["scores"][m].get(k)) for k in metric_names),
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


# -- the task ------------------------------------------------------------------------------------


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Run the test protocol of `cfg` (conf/eval.yaml); returns {"<method>/<metric>": mean}."""
    from tcvc.data.clips import find_videos
    from tcvc.data.sample import prepare_sample_data
    from tcvc.metrics import FrechetDistance

    protocol = _protocol(cfg)
    device = pick_device(str(cfg.get("device", "auto")))
    if cfg.get("seed") is not None:
        torch.manual_seed(cfg.seed)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)

    roots = _test_roots(cfg.data)
    if cfg.data.get("sample_dir"):
        prepare_sample_data(Path(cfg.data.sample_dir))
    videos = find_videos(roots, min_frames=1)[: protocol.max_videos]
    networks = _load_networks(cfg, protocol.kind)
    for module in (networks.tcvc, networks.idc, networks.flownet):
        if module is not None:
            module.to(device).eval()
    flow_fn = None
    if "warp_error" in protocol.metrics:
        if networks.flownet is None:
            log.warning("warp_error skipped: no FlowNet2 weights (model.flownet2_weights=...)")
        else:
            flow_fn = flow_at_resolution(networks.flownet, resolution=protocol.resolution)
    fid = FrechetDistance(device=device) if "fid" in protocol.metrics else None
    loggers = [
        instantiate(entry)
        for entry in (cfg.get("logger") or {}).values()
        if entry is not None and "_target_" in entry
    ]

    methods = [*protocol.runs, *protocol.baselines]
    coloured = [*protocol.runs, *(b for b in protocol.baselines if b != GROUND_TRUTH)]
    report: dict = {
        "ckpt": None if cfg.get("ckpt") is None else str(cfg.ckpt),
        "model": protocol.kind,
        "test_roots": roots,
        "device": str(device),
        "protocol": {
            "runs": protocol.runs,
            "resolution": protocol.resolution,
            "max_frames": protocol.max_frames,
            "description": _description(protocol),
        },
        "methods": methods,
        "videos": {},
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    totals = dict.fromkeys(["read_s", "inference_s", "baselines_s", "metrics_s", "write_s"], 0.0)
    comparisons: list[tuple[str, Path]] = []
    started = time.perf_counter()
    with warnings.catch_warnings():
        # one LPIPS / FID "skipped" line per run, not per video
        warnings.filterwarnings("once", message=".*(LPIPS|FID) skipped")
        for index, video in enumerate(tqdm(videos, desc="videos", unit="video", leave=False)):
            timing: dict[str, float] = {}
            start = time.perf_counter()
            frames = _read_video(video.frames, protocol.max_frames)
            gt = torch.from_numpy(frames).to(device)
            L = _lightness(gt, protocol.batch_size)
            timing["read_s"] = time.perf_counter() - start
            with tqdm(
                total=_steps(len(frames), protocol), desc=video.name, unit="step", leave=False
            ) as bar:
                outputs, colour_timing = _colour_video(L, networks, protocol, bar, device)
            timing.update(colour_timing)
            if GROUND_TRUTH in protocol.baselines:
                outputs[GROUND_TRUTH] = gt
            start = time.perf_counter()
            log.info(  # minutes on a CPU (the warp error runs FlowNet2 twice a frame)
                "%s: scoring %d outputs (%s)", video.name, len(outputs), ", ".join(protocol.metrics)
            )
            with torch.no_grad():
                scores = score_video(
                    outputs,
                    gt,
                    metric_names=protocol.metrics,
                    flow_fn=flow_fn,
                    batch_size=protocol.batch_size,
                )
                if fid is not None and fid.available:
                    fid.add(GROUND_TRUTH, gt)
                    for name in coloured:
                        fid.add(name, outputs[name])
            _sync(device)
            timing["metrics_s"] = time.perf_counter() - start
            start = time.perf_counter()
            if protocol.save_frames:
                for name in protocol.runs:
                    _save_frames(output_dir / "frames" / name / video.name, outputs[name])
            if index < protocol.num_comparison_videos:
                panels = {
                    _label(name): outputs[name]
                    for name in ("gray", "idc", next(iter(protocol.runs)))
                    if name in outputs
                }
                panels[_label(GROUND_TRUTH)] = gt
                path = output_dir / "comparison" / (video.name.replace("/", "__") + ".mp4")
                _write_comparison(path, panels, protocol.fps)
                comparisons.append((video.name, path))
            timing["write_s"] = time.perf_counter() - start
            for key, value in timing.items():
                totals[key] += value
            report["videos"][video.name] = {
                "num_frames": int(frames.shape[0]),
                "height": int(frames.shape[1]),
                "width": int(frames.shape[2]),
                "scores": scores,
                "timing": timing,
            }
            log.info("%s: %s", video.name, _summary(scores, protocol.metrics))

    mean: dict[str, dict[str, float]] = {}
    for method in methods:
        row = {}
        for metric in protocol.metrics:
            if metric == "fid":
                continue
            values = [info["scores"][method].get(metric) for info in report["videos"].values()]
            values = [v for v in values if v is not None]
            if values:
                row[metric] = float(np.mean(values))
        if fid is not None and method in coloured:
            row["fid"] = fid.distance(method, GROUND_TRUTH) if fid.available else math.nan
        mean[method] = row
    report["mean"] = mean
    totals["total_s"] = time.perf_counter() - started
    totals["evaluation_over_inference"] = (
        totals["total_s"] / totals["inference_s"] if totals["inference_s"] > 0 else math.nan
    )
    report["timing"] = totals
    notes = []
    for metric in protocol.metrics:
        if all(_clean(mean[m].get(metric)) is None for m in methods):
            notes.append(f"{metric}: not computed (weights missing or video too short; see log)")
    report["notes"] = notes

    mean_table = _write_tables(output_dir, report, methods, protocol.metrics)
    plots = _plots(output_dir, report, methods, protocol)
    _log(loggers, report, methods, protocol.metrics, plots, comparisons)

    print(f"\n{_description(protocol)} — mean over {len(videos)} video(s)\n")
    print(mean_table)
    for note in notes:
        print(f"  note: {note}")
    outputs_written = {
        "metrics": output_dir / "metrics.json",
        "tables": output_dir / "table.md",
        "plots": output_dir / "plots",
    }
    if comparisons:
        outputs_written["comparison"] = output_dir / "comparison"
    if protocol.save_frames:
        outputs_written["frames"] = output_dir / "frames"
    width = max(map(len, outputs_written))
    print("\n".join(f"{k:>{width}}: {v}" for k, v in outputs_written.items()))
    return {
        f"{method}/{metric}": value for method, row in mean.items() for metric, value in row.items()
    }


def _description(protocol: Protocol) -> str:
    size = protocol.resolution
    size = f"{size}×{size}" if isinstance(size, int) else str(size)
    if protocol.kind == "idc":
        what = "IDC frame by frame"
    else:
        what = "TCVC, " + ", ".join(
            f"interval {'+'.join(map(str, i))}" for i in protocol.runs.values()
        )
        if any(len(i) > 1 for i in protocol.runs.values()):
            what += " (multi-sampling: RGB mean)"
    frames = f", first {protocol.max_frames} frames" if protocol.max_frames else ""
    return f"{what}; working size {size}{frames}"


def _summary(scores: dict[str, dict[str, float]], metric_names: Sequence[str]) -> str:
    main = next(iter(scores))
    return ", ".join(
        f"{m} {_fmt(m, scores[main].get(m))}" for m in metric_names if m in scores[main]
    )
