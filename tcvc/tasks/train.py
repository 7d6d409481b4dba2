"""`train(cfg)`: build data, model, callbacks, loggers and trainer from a composed config, fit."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import WandbLogger

log = logging.getLogger("tcvc")

__all__ = ["train"]


def _instantiate_group(group: DictConfig | None) -> list:
    """Every `_target_` entry of a config group (callbacks, logger) as objects."""
    if not group:
        return []
    return [
        instantiate(entry) for entry in group.values() if entry is not None and "_target_" in entry
    ]


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the model of `cfg` on its data; returns the final logged metrics as floats.

    Writes into `cfg.paths.output_dir`: `checkpoints/` (every `callbacks.model_checkpoint.
    every_n_train_steps` steps, and `last.ckpt`, also written at the end), `samples/` (frames and
    clips of each validation), the logger's files, and `config.yaml` (the resolved config, also
    stored inside every checkpoint).
    """
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)

    datamodule: pl.LightningDataModule = instantiate(cfg.data)
    model: pl.LightningModule = instantiate(cfg.model)
    model.hparams["config"] = resolved  # the resolved run config travels inside each checkpoint
    random = {"flownet", "idc"} - set(getattr(model, "backbone_files", dict)())
    if random:
        log.warning(
            "!!! RANDOM backbones (%s): the colours will be meaningless; give "
            "model.flownet2_weights / model.idc_weights (or model.tcvc_weights) !!!",
            ", ".join(sorted(random)),
        )
    callbacks = _instantiate_group(cfg.get("callbacks"))
    loggers = _instantiate_group(cfg.get("logger"))
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(resolved)

    # The frozen backbones are in eval mode on purpose (TCVCNet.train keeps them there).
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path == "last":
        last = output_dir / "checkpoints" / "last.ckpt"
        ckpt_path = str(last) if last.exists() else None
        if ckpt_path is None:
            log.warning("ckpt_path=last, but %s does not exist: starting afresh", last)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)

    metrics = {
        k: float(v)
        for k, v in trainer.callback_metrics.items()
        if torch.is_tensor(v) or isinstance(v, float)
    }
    if trainer.fast_dev_run:
        _write_metrics(trainer, output_dir, metrics)
        return metrics
    # last.ckpt holds the end of the run (rewritten here in case the run did not end on a
    # checkpointing step): one file to resume from and to colourise with. Every DDP rank calls
    # save_checkpoint (it synchronises them); rank 0 writes.
    last = output_dir / "checkpoints" / "last.ckpt"
    trainer.save_checkpoint(last, weights_only=False)  # with the optimizer: resumable
    _write_metrics(trainer, output_dir, metrics)
    if not trainer.is_global_zero:
        return metrics
    outputs = {"checkpoint": last}
    if cfg.get("final_sample"):
        outputs.update(_final_sample(model, datamodule, output_dir / "samples", cfg.final_sample))
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            outputs["W&B run"] = Path(logger.experiment.dir).parent
    width = max(map(len, outputs))
    print("\n".join(f"{name:>{width}}: {path}" for name, path in outputs.items()))
    return metrics


def _write_metrics(trainer: pl.Trainer, output_dir: Path, metrics: dict[str, float]) -> None:
    """The run's final metrics as metrics.json, for scripts/sweep_report.py (and readers
    without W&B)."""
    if trainer.is_global_zero:
        text = json.dumps(metrics, indent=2, sort_keys=True) + "\n"
        (output_dir / "metrics.json").write_text(text)


def _final_sample(model, datamodule, folder: Path, options: DictConfig) -> dict[str, Path]:
    """The first validation video coloured by the trained network: ``final.mp4`` and a
    ``final.png`` strip (gray above colour, a few frames), at ``options.resolution``."""
    from PIL import Image

    from tcvc.color import lab_normalized_to_rgb, rgb_float_to_uint8, rgb_to_lab_normalized
    from tcvc.data.clips import find_videos, read_frame
    from tcvc.inference import colorize_frames
    from tcvc.io import VideoWriter

    video = find_videos(datamodule.val_roots, min_frames=1)[0]
    rgb = torch.stack([read_frame(path) for path in video.frames[: options.max_frames]])
    L, _ = rgb_to_lab_normalized(rgb)
    net = model.net.eval()
    with torch.no_grad():
        ab = colorize_frames(
            lambda clip: net.colorize_clip(clip.to(model.device)).cpu(),
            L,
            interval=datamodule.interval,
            resolution=options.resolution,
        )
    frames = rgb_float_to_uint8(lab_normalized_to_rgb(L, ab))
    folder.mkdir(parents=True, exist_ok=True)
    clip_path, strip_path = folder / "final.mp4", folder / "final.png"
    with VideoWriter(clip_path, fps=options.fps, overwrite=True) as writer:
        for frame in frames:
            writer.write(frame)
    gray = rgb_float_to_uint8(lab_normalized_to_rgb(L, torch.zeros_like(ab)))
    shown = list(range(0, len(frames), max(1, len(frames) // 6)))[:6]
    strip = np.concatenate([np.concatenate([gray[i], frames[i]], axis=0) for i in shown], axis=1)
    Image.fromarray(strip).save(strip_path)
    return {"sample clip": clip_path, "sample frames": strip_path}
