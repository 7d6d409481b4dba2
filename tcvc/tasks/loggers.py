"""Objects of the ``_target_`` config groups (loggers, callbacks), built in one place.

``conf/logger/wandb.yaml`` reads ``offline: ${wandb_offline:}``: W&B runs online only for a user
with credentials here (``WANDB_MODE=offline`` still forces offline). The resolver is registered
by ``tcvc.tasks.config.configure``, before Hydra composes a config.
"""

from __future__ import annotations

import netrc
import os

from hydra.utils import instantiate
from omegaconf import DictConfig

__all__ = ["build_loggers", "instantiate_group", "wandb_logged_in"]


def wandb_logged_in() -> bool:
    """True when W&B has credentials here (``WANDB_API_KEY`` or ``wandb login``'s netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def instantiate_group(group: DictConfig | None) -> list:
    """Every `_target_` entry of a config group (callbacks, logger) as objects, in order."""
    if not group:
        return []
    return [
        instantiate(entry) for entry in group.values() if entry is not None and "_target_" in entry
    ]


def build_loggers(cfg: DictConfig) -> list:
    """The Lightning loggers of ``cfg.logger`` (``logger=csv``, ``logger=wandb``, ...)."""
    return instantiate_group(cfg.get("logger"))
