"""The training progress bar: optimizer steps against ``trainer.max_steps``, metrics with their
digits.

Lightning's own bars count the batches of an epoch and name the epoch against ``max_epochs``
(``Epoch 1/-2`` for a run bounded by ``max_steps``, ``max_epochs=-1``), and print every metric as
``.3f``, so an SRL loss of 3e-4 reads ``0.000``. This bar is one bar for the whole run:
``step 3/24`` (across epochs, and from the resumed step), metrics as ``3.00e-04`` or ``0.083``.
"""

from __future__ import annotations

import math
import sys
from numbers import Number

import torch
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

__all__ = ["StepProgressBar", "format_metric"]


def format_metric(value: object) -> object:
    """A metric as the bar shows it: three significant digits, in exponent form below 0.01 or
    from 10 000 up (``3.00e-04``, ``0.0830``, ``12.5``); ints and strings as they are."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Number) or isinstance(value, int):
        return value
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if 1e-2 <= abs(value) < 1e4:
        return f"{value:#.3g}"
    return f"{value:.2e}"


class StepProgressBar(TQDMProgressBar):
    """A ``TQDMProgressBar`` over the run's optimizer steps (``trainer.global_step`` against
    ``trainer.max_steps``); with ``max_steps=-1`` it counts each epoch's batches, as Lightning's.

    ``conf/callbacks/default.yaml`` adds it to every run (a progress bar callback replaces
    Lightning's default one).
    """

    # the training bar's description holds the step count ("step 3/24"): the bar does not repeat it
    TRAIN_BAR_FORMAT = "{l_bar}{bar}| [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"

    @staticmethod
    def step_description(trainer) -> str:
        """``step <global step>/<max_steps>`` (``epoch <n>`` for a run without ``max_steps``)."""
        if trainer.max_steps is None or trainer.max_steps < 0:
            return f"epoch {trainer.current_epoch}"
        return f"step {trainer.global_step}/{trainer.max_steps}"

    def init_train_tqdm(self) -> Tqdm:
        """Lightning's training bar, in ``TRAIN_BAR_FORMAT``, described by ``step_description``."""
        return Tqdm(
            desc="step",
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            bar_format=self.TRAIN_BAR_FORMAT,
        )

    def get_metrics(self, trainer, pl_module) -> dict[str, object]:
        """Lightning's progress-bar metrics, formatted by ``format_metric``."""
        items = super().get_metrics(trainer, pl_module)
        return {name: format_metric(value) for name, value in items.items()}

    def _counts_steps(self, trainer) -> bool:
        return trainer.max_steps is not None and trainer.max_steps > 0

    def _show_step(self, trainer, pl_module=None) -> None:
        bar = self.train_progress_bar
        if bar.disable:
            return
        bar.n = trainer.global_step
        bar.set_description(self.step_description(trainer), refresh=False)
        if pl_module is not None:
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
        bar.refresh()

    def on_train_epoch_start(self, trainer, *args) -> None:
        if not self._counts_steps(trainer):
            super().on_train_epoch_start(trainer, *args)
            self.train_progress_bar.set_description(self.step_description(trainer))
            return
        bar = self.train_progress_bar
        if bar.total != trainer.max_steps:  # the first epoch: one bar for every step of the run
            bar.reset(total=trainer.max_steps)
            bar.initial = 0
        self._show_step(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if not self._counts_steps(trainer):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            return
        step = trainer.global_step
        if self._should_update(step, self.train_progress_bar.total):
            self._show_step(trainer, pl_module)
