"""`train(cfg)`: build data, model, callbacks, loggers and trainer from a composed config, fit."""

from __future__ import annotations

import copy
import json
import logging
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.loggers import WandbLogger

from tcvc.errors import UserError
from tcvc.nets import SIZE_MULTIPLE
from tcvc.tasks.config import refuse_renamed_config
from tcvc.tasks.loggers import build_loggers, instantiate_group

log = logging.getLogger("tcvc")

__all__ = ["EVAL_ONLY_DATA_KEYS", "build_datamodule", "check_train_config", "train"]

# Keys of a data config (conf/data/*.yaml) that eval.py alone reads (tcvc.tasks.evaluate), so
# that one data config names a data set's training, validation and test roots; the DataModule
# does not take them.
EVAL_ONLY_DATA_KEYS = ("test_roots",)


def build_datamodule(data: DictConfig) -> pl.LightningDataModule:
    """The DataModule of a data config (its ``_target_``), without ``EVAL_ONLY_DATA_KEYS``."""
    data = copy.deepcopy(data)  # still under its root config: ${paths.data_dir} resolves
    with open_dict(data):
        for key in EVAL_ONLY_DATA_KEYS:
            data.pop(key, None)
    return instantiate(data)


def _check_data_roots(data: DictConfig) -> None:
    """Every training and validation root is a folder, or lies in ``data.sample_dir`` (whose
    sample data ``prepare_data`` builds)."""
    sample_dir = data.get("sample_dir")
    for key in ("roots", "val_roots"):
        if key not in data:
            continue
        if OmegaConf.is_missing(data, key):
            raise UserError(
                f"data.{key} is not set: set data.{key}=[/path/to/root,...] (folders of "
                "<video>/00000.png ... frame folders)"
            )
        roots = data[key]
        for root in [roots] if isinstance(roots, str) else roots or []:
            path = Path(root)
            if sample_dir is not None and path.resolve().is_relative_to(Path(sample_dir).resolve()):
                continue
            if not path.is_dir():
                raise UserError(
                    f"data root {path} does not exist: set data.{key}=[/path/to/root,...] (folders "
                    "of <video>/00000.png ... frame folders; scripts/prepare_frames.py makes them)"
                )


def _check_accelerator(trainer: DictConfig) -> None:
    accelerator = str(trainer.get("accelerator", "auto")).lower()
    if accelerator not in ("gpu", "cuda") or torch.cuda.is_available():
        return
    if accelerator == "gpu" and torch.backends.mps.is_available():
        return
    raise UserError(
        f"trainer.accelerator={accelerator}, but this machine has no CUDA GPU: train on the CPU "
        "with trainer=cpu (slow), or run on a machine with a GPU"
    )


def check_train_config(cfg: DictConfig) -> None:
    """What a run needs that can be checked before anything is built (each a one-line
    ``UserError`` naming the option to set): no renamed option, the data roots, a crop size the
    network takes, the accelerator, the checkpoint to resume from."""
    refuse_renamed_config("train", cfg)
    _check_data_roots(cfg.data)
    crop_size = cfg.data.get("crop_size")
    if crop_size is not None and crop_size % SIZE_MULTIPLE:
        raise UserError(
            f"data.crop_size={crop_size} is not a multiple of {SIZE_MULTIPLE} (FlowNet2 needs one)"
        )
    _check_accelerator(cfg.trainer)
    resume = cfg.get("resume")
    if resume not in (None, "last") and not Path(resume).is_file():
        raise UserError(f"resume={resume}: no such checkpoint (give a .ckpt file, or resume=last)")


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the model of `cfg` on its data; returns the final logged metrics as floats.

    Writes into `cfg.paths.output_dir`: `checkpoints/` (every `callbacks.model_checkpoint.
    every_n_train_steps` steps, and `last.ckpt`, also written at the end), `samples/` (frames and
    clips of each validation), the logger's files, and `config.yaml` (the resolved config, also
    stored inside every checkpoint). `resume`: null (a new run), `last` (this run folder's
    `checkpoints/last.ckpt`, if any) or a checkpoint file.
    """
    check_train_config(cfg)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)

    datamodule = build_datamodule(cfg.data)
    # random backbones (no weight files) are announced by tcvc.nets.build_tcvc_net, once
    model: pl.LightningModule = instantiate(cfg.model)
    model.hparams["config"] = resolved  # the resolved run config travels inside each checkpoint
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = build_loggers(cfg)
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(resolved)

    # The frozen backbones are in eval mode on purpose (TCVCNet.train keeps them there).
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    trainer.fit(model, datamodule=datamodule, ckpt_path=_resume_path(cfg.get("resume"), output_dir))

    metrics = {
        k: float(v)
        for k, v in trainer.callback_metrics.items()
        if torch.is_tensor(v) or isinstance(v, float)
    }
    if trainer.fast_dev_run:
        return _write_metrics(trainer, output_dir, metrics)
    # last.ckpt holds the end of the run (rewritten here in case the run did not end on a
    # checkpointing step): one file to resume from and to colourise with. Every DDP rank calls
    # save_checkpoint (it synchronises them); rank 0 writes.
    last = output_dir / "checkpoints" / "last.ckpt"
    trainer.save_checkpoint(last, weights_only=False)  # with the optimizer: resumable
    metrics = _write_metrics(trainer, output_dir, metrics)
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


def _resume_path(resume: str | None, output_dir: Path) -> str | None:
    """The checkpoint `trainer.fit` resumes from: `resume`, or for `last` this run's last.ckpt."""
    if resume != "last":
        return resume
    last = output_dir / "checkpoints" / "last.ckpt"
    if not last.exists():
        log.warning(
            "resume=last, but %s does not exist: starting afresh (to go on with an earlier run, "
            "give its folder: hydra.run.dir=<that run's folder>)",
            last,
        )
        return None
    return str(last)


def _write_metrics(
    trainer: pl.Trainer, output_dir: Path, metrics: dict[str, float]
) -> dict[str, float]:
    """The run's final metrics as metrics.json, for scripts/sweep_report.py (and readers
    without W&B); returns them. A resumed run that had no step left to train logs nothing: the
    metrics.json of the run that trained those steps is kept, and returned."""
    path = output_dir / "metrics.json"
    if not metrics and path.is_file():
        log.info("no step trained (max_steps reached before): %s kept", path)
        return json.loads(path.read_text())
    if trainer.is_global_zero:
        path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def _final_sample(model, datamodule, folder: Path, options: DictConfig) -> dict[str, Path]:
    """The first validation video coloured by the trained network, at ``options.resolution``:
    ``final.mp4`` and a ``final.png`` strip of six of its frames (``write_sample``: gray |
    colour | ground truth, as the validation samples)."""
    from tcvc.callbacks.media import write_sample
    from tcvc.color import rgb_to_lab_normalized
    from tcvc.data import find_videos, read_frame
    from tcvc.inference import colorize_frames

    video = find_videos(datamodule.val_roots, min_frames=1)[0]
    rgb = torch.stack([read_frame(path) for path in video.frames[: options.max_frames]])
    L, ab_target = rgb_to_lab_normalized(rgb)
    net = model.net.eval()
    with torch.no_grad():
        ab = colorize_frames(
            lambda clip: net.colorize_clip(clip.to(model.device)).cpu(),
            L,
            interval=datamodule.interval,
            resolution=options.resolution,
        )
    strip, clip = write_sample(folder, "final", L, ab, ab_target, fps=options.fps, strip_frames=6)
    return {"sample clip": clip, "sample frames": strip}
