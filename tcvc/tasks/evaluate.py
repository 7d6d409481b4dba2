"""`evaluate(cfg)`: the paper's test protocol on the test roots of a data config, with baselines.

For every video of ``cfg.data.test_roots`` (one folder of frames per video, colour ground truth)
the method under test (``method=tcvc``: TCVC at each interval of ``inference.interval``, one
sampling or the multi-sampling ensemble; ``method=idc``: IDC frame by frame) and the baselines
(``eval.baselines``) are coloured and scored (``tcvc.evaluation``), all through the inference
options of ``conf/inference/paper.yaml`` unless overridden.

Writes into ``cfg.paths.output_dir``: ``metrics.json`` (per video and mean, timings),
``metrics.csv``, ``table.md`` (also printed), ``plots/*.png``, ``comparison/<root>__<video>.mp4``
(gray | IDC | TCVC | ground truth) for the first ``eval.num_comparison_videos`` videos,
``frames/<run>/<video>/*.png`` with ``eval.save_frames=true``, ``config.yaml``; and the tables,
plots and videos to W&B with ``logger=wandb``.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from tcvc.errors import UserError
from tcvc.evaluation import (
    GROUND_TRUTH,
    METRICS,
    Entry,
    TestVideo,
    Weights,
    colorize_and_score,
    flow_at_resolution,
    mean_scores,
)
from tcvc.evaluation import report as reporting
from tcvc.inference import InferenceOptions, frames_to_L
from tcvc.tasks.config import refuse_renamed_config
from tcvc.tasks.loggers import build_loggers

log = logging.getLogger("tcvc")

__all__ = ["evaluate"]


@dataclass(frozen=True)
class EvalOptions:
    """The resolved ``eval`` options (conf/eval.yaml)."""

    metrics: list[str]
    baselines: list[str]
    max_frames: int | None
    max_videos: int | None
    batch_size: int
    save_frames: bool
    num_comparison_videos: int
    fps: float


def _eval_options(cfg: DictConfig) -> EvalOptions:
    options = cfg.eval
    names = list(options.metrics)
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise UserError(f"unknown eval.metrics {unknown}; known: {list(METRICS)}")
    known = list(cfg.get("methods") or {})
    baselines = list(options.baselines or [])
    unknown = sorted(set(baselines) - set(known))
    if unknown:
        raise UserError(f"unknown eval.baselines {unknown}; known: {known}")
    return EvalOptions(
        metrics=[m for m in METRICS if m in names],
        baselines=[b for b in known if b in baselines],
        max_frames=options.max_frames,
        max_videos=options.max_videos,
        batch_size=int(options.batch_size),
        save_frames=bool(options.save_frames),
        num_comparison_videos=int(options.num_comparison_videos),
        fps=float(options.fps),
    )


def _test_roots(data: DictConfig) -> list[str]:
    roots = data.get("test_roots")
    if not roots:
        raise UserError(
            "the data config names no test roots: set data.test_roots=[/path/to/root] (one "
            "folder of frames per video in each), or pick data=davis30 / videvo20 / sample"
        )
    return [str(r) for r in ([roots] if isinstance(roots, str) else roots)]


def _description(entries: list[Entry], method, options: InferenceOptions, max_frames) -> str:
    size = options.resolution
    size = f"{size}×{size}" if isinstance(size, int) else str(size)
    tested = [e.run for e in entries if e.method is method]
    what = ", ".join(run.label for run in tested)
    if any(len(run.intervals) > 1 for run in tested):
        what += " (multi-sampling: RGB mean)"
    frames = f", first {max_frames} frames" if max_frames else ""
    return f"{what}; working size {size}, gamut {options.gamut}{frames}"


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Run the test protocol of `cfg` (conf/eval.yaml); returns {"<run>/<metric>": mean}."""
    from tcvc.data.clips import find_videos
    from tcvc.data.sample import prepare_sample_data
    from tcvc.io import read_frames
    from tcvc.metrics import FrechetDistance

    refuse_renamed_config("eval", cfg)
    options = InferenceOptions.from_config(cfg.inference)
    settings = _eval_options(cfg)
    method = instantiate(cfg.method)
    if cfg.get("references") is not None and not hasattr(method, "references"):
        raise UserError(
            f"references={cfg.references}: the exemplar protocols colour with TCVC (method=tcvc), "
            f"not {type(method).__name__}"
        )
    entries = [Entry(method, run) for run in method.runs(options)]
    for name in settings.baselines:
        baseline = instantiate(cfg.methods[name])
        if type(baseline) is not type(method):  # method=idc: IDC is the method, not a baseline
            entries += [Entry(baseline, run) for run in baseline.runs(options)]
    names = [e.run.name for e in entries]
    if cfg.get("seed") is not None:
        torch.manual_seed(cfg.seed)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)

    roots = _test_roots(cfg.data)
    if cfg.data.get("sample_dir"):
        prepare_sample_data(Path(cfg.data.sample_dir))
    videos = find_videos(roots, min_frames=1)[: settings.max_videos]
    model = cfg.get("model") or {}
    weights = Weights(
        ckpt=cfg.get("ckpt"), flownet=model.get("flownet_weights"), idc=model.get("idc_weights")
    )
    networks = method.load(weights).to(options.device)
    flow_fn = None
    if "warp_error" in settings.metrics:
        if networks.flownet is None:
            log.warning("warp_error skipped: no FlowNet2 weights (model.flownet_weights=...)")
        else:
            flow_fn = flow_at_resolution(networks.flownet, resolution=options.resolution)
    fid = FrechetDistance(device=options.device) if "fid" in settings.metrics else None
    loggers = build_loggers(cfg)

    description = _description(entries, method, options, settings.max_frames)
    report: dict = {
        "ckpt": None if weights.ckpt is None else str(weights.ckpt),
        "method": type(method).__name__,
        "test_roots": roots,
        "device": str(options.device),
        "protocol": {
            "runs": {e.run.name: list(e.run.intervals) for e in entries if e.method is method},
            "resolution": options.resolution,
            "gamut": options.gamut,
            "precision": options.precision,
            "max_frames": settings.max_frames,
            "description": description,
        },
        "methods": names,
        "labels": {e.run.name: e.run.label for e in entries},
        "videos": {},
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    totals = dict.fromkeys(["read_s", "inference_s", "baselines_s", "metrics_s", "write_s"], 0.0)
    comparisons: list[tuple[str, Path]] = []
    started = time.perf_counter()
    with warnings.catch_warnings():
        # one LPIPS / FID "skipped" line per run, not per video
        warnings.filterwarnings("once", message=".*(LPIPS|FID) skipped")
        for index, found in enumerate(tqdm(videos, desc="videos", unit="video", leave=False)):
            start = time.perf_counter()
            frames = read_frames(found.frames[0].parent, max_frames=settings.max_frames)
            gt = torch.from_numpy(frames).to(options.device)
            video = TestVideo(
                name=found.name, gt=gt, L=frames_to_L(gt, lightness=options.lightness)
            )
            timing = {"read_s": time.perf_counter() - start}
            steps = sum(
                e.method.steps(e.run, len(frames), options, settings.batch_size) for e in entries
            )
            log.info(  # minutes on a CPU (the warp error runs FlowNet2 twice a frame)
                "%s: colouring (%d runs) and scoring (%s)",
                found.name,
                len(entries),
                ", ".join(settings.metrics),
            )
            with tqdm(total=steps, desc=found.name, unit="step", leave=False) as bar:
                outputs, scores, colour_timing = colorize_and_score(
                    video,
                    entries,
                    networks,
                    options,
                    metric_names=settings.metrics,
                    flow_fn=flow_fn,
                    batch_size=settings.batch_size,
                    step=lambda: bar.update(1),
                    method_under_test=method,
                )
            timing.update(colour_timing)
            if fid is not None and fid.available:
                with torch.no_grad():
                    fid.add(GROUND_TRUTH, gt)
                    for name in names:
                        if name != GROUND_TRUTH:
                            fid.add(name, outputs[name])
            start = time.perf_counter()
            if settings.save_frames:
                for entry in entries:
                    if entry.method is method:
                        reporting.save_frames(
                            output_dir / "frames" / entry.run.name / found.name,
                            outputs[entry.run.name],
                        )
            if index < settings.num_comparison_videos:
                shown = [n for n in ("gray", "idc") if n in outputs] + [entries[0].run.name]
                panels = {report["labels"][n]: outputs[n] for n in dict.fromkeys(shown)}
                panels["ground truth"] = gt
                path = output_dir / "comparison" / (found.name.replace("/", "__") + ".mp4")
                reporting.write_comparison(path, panels, settings.fps)
                comparisons.append((found.name, path))
            timing["write_s"] = time.perf_counter() - start
            for key, value in timing.items():
                totals[key] += value
            report["videos"][found.name] = {
                "num_frames": int(frames.shape[0]),
                "height": int(frames.shape[1]),
                "width": int(frames.shape[2]),
                "scores": scores,
                "timing": timing,
            }
            log.info("%s: %s", found.name, reporting.summary(scores, settings.metrics))

    mean = mean_scores(report["videos"], names, settings.metrics, fid=fid)
    report["mean"] = mean
    totals["total_s"] = time.perf_counter() - started
    totals["evaluation_over_inference"] = (
        totals["total_s"] / totals["inference_s"] if totals["inference_s"] > 0 else math.nan
    )
    report["timing"] = totals
    report["notes"] = [
        f"{metric}: not computed (weights missing or video too short; see log)"
        for metric in settings.metrics
        if all(reporting.clean(mean[n].get(metric)) is None for n in names)
    ]

    mean_table = reporting.write_tables(output_dir, report, names, settings.metrics)
    tested = [e.run for e in entries if e.method is method]
    sweep = dict(zip([r.name for r in tested], options.interval)) if tested[0].intervals else {}
    plots = reporting.write_plots(
        output_dir,
        report,
        names,
        settings.metrics,
        sweep=sweep,
        baselines=[e.run.name for e in entries if e.method is not method],
    )
    reporting.log_report(loggers, report, names, settings.metrics, plots, comparisons)

    print(f"\n{description} — mean over {len(videos)} video(s)\n")
    print(mean_table)
    for note in report["notes"]:
        print(f"  note: {note}")
    written = {
        "metrics": output_dir / "metrics.json",
        "tables": output_dir / "table.md",
        "plots": output_dir / "plots",
    }
    if comparisons:
        written["comparison"] = output_dir / "comparison"
    if settings.save_frames:
        written["frames"] = output_dir / "frames"
    width = max(map(len, written))
    print("\n".join(f"{k:>{width}}: {v}" for k, v in written.items()))
    return {
        f"{name}/{metric}": value for name, row in mean.items() for metric, value in row.items()
    }
