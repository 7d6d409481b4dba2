"""Pictures of a colorized clip: a strip of frames and the clip itself (``write_sample``), after
each validation (``ValidationMedia``) and at the end of training (``tcvc.tasks.train``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.loggers import WandbLogger

from tcvc.color import lab_normalized_to_rgb, rgb_float_to_uint8
from tcvc.io import VideoWriter

log = logging.getLogger(__name__)

__all__ = ["ValidationMedia", "clip_strip", "write_sample"]


def clip_strip(L: torch.Tensor, ab: torch.Tensor, ab_target: torch.Tensor | None) -> np.ndarray:
    """One clip as an image: a row per frame, columns gray input | prediction | ground truth.

    L T×1×H×W, ab and ab_target T×2×H×W (normalised) → (T·H)×(k·W)×3 uint8, k = 2 or 3.
    """
    columns = [lab_normalized_to_rgb(L, torch.zeros_like(ab)), lab_normalized_to_rgb(L, ab)]
    if ab_target is not None:
        columns.append(lab_normalized_to_rgb(L, ab_target))
    rows = torch.cat(columns, dim=-1)  # T×3×H×(k·W)
    return rgb_float_to_uint8(torch.cat(list(rows), dim=-2))


def write_sample(
    folder: Path,
    stem: str,
    L: torch.Tensor,
    ab: torch.Tensor,
    ab_target: torch.Tensor | None = None,
    *,
    fps: float,
    strip_frames: int | None = None,
) -> tuple[Path, Path]:
    """A colorized clip as ``folder/<stem>.png`` (``clip_strip`` of its frames, or of
    ``strip_frames`` of them evenly spaced) and ``folder/<stem>.mp4`` (every frame, in colour).

    L T×1×H×W, ab and ab_target T×2×H×W, normalised. Returns (strip path, clip path).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    strip_path, clip_path = folder / f"{stem}.png", folder / f"{stem}.mp4"
    shown = slice(None)
    if strip_frames is not None and strip_frames < len(L):
        shown = torch.linspace(0, len(L) - 1, strip_frames).round().long()
    target = None if ab_target is None else ab_target[shown]
    Image.fromarray(clip_strip(L[shown], ab[shown], target)).save(strip_path)
    with VideoWriter(clip_path, fps=fps, overwrite=True) as writer:
        for frame in rgb_float_to_uint8(lab_normalized_to_rgb(L, ab)):
            writer.write(frame)
    return strip_path, clip_path


class ValidationMedia(pl.Callback):
    """After each validation, the first validation clip as `samples/step_XXXXXX.png` (a strip of
    gray | prediction | ground truth) and `samples/step_XXXXXX.mp4` (the colorized clip), in the
    run folder, and the same in W&B when a WandbLogger is attached."""

    def __init__(self, *, dirpath: str, max_frames: int = 12, fps: float = 6.0) -> None:
        self.dirpath = Path(dirpath)
        self.max_frames = max_frames
        self.fps = fps
        self._first: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._first = None

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if self._first is None and outputs is not None and "ab" in outputs:
            frames = slice(0, self.max_frames)
            target = batch.get("ab")
            self._first = (
                batch["L"][0, frames].detach().float().cpu(),
                outputs["ab"][0, frames].detach().float().cpu(),
                None if target is None else target[0, frames].detach().float().cpu(),
            )

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self._first is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        L, ab, target = self._first
        strip, clip = write_sample(
            self.dirpath, f"step_{trainer.global_step:06d}", L, ab, target, fps=self.fps
        )
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                import wandb

                logger.experiment.log(
                    {
                        "val/samples": wandb.Image(
                            str(strip), caption="gray | prediction | ground truth"
                        ),
                        "val/clip": wandb.Video(str(clip), format="mp4"),
                        "trainer/global_step": trainer.global_step,
                    }
                )
