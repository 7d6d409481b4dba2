"""What the entry points need around Hydra: the project root, the resolvers, renamed options.

``run_task(task, fn)`` is the whole of train.py, eval.py and colorize.py: ``configure()``, the
renamed-option check of the command line, then Hydra composes ``conf/<task>.yaml`` and runs
``fn(cfg)`` with user errors as one line (``tcvc.tasks.errors``).

``configure()`` runs before Hydra composes a config (``run_task``; the tests' conftest too): it
points ``TCVC_ROOT`` (``conf/paths/default.yaml``) at the project folder unless the environment
sets it, and registers the ``wandb_offline`` resolver.

``check_renamed(task, keys)``: an option that has a new name is refused with one line naming it,
on the command line (``refuse_renamed_overrides``, before Hydra would say only "not in struct")
and in a composed config (a config file may still set an old key).

``resolve_released(cfg)`` (``run_task``, before the task sees the config): an option of
``RELEASED_OPTIONS`` set to ``released`` (``ckpt=released``, ``model.idc_weights=released``, ...)
becomes the path of that released file in the weights cache (``tcvc.weights``), or a one-line
error saying how to fetch it.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tcvc.errors import UserError

__all__ = [
    "RELEASED_OPTIONS",
    "RENAMED",
    "ROOT",
    "check_renamed",
    "configure",
    "refuse_renamed_config",
    "refuse_renamed_overrides",
    "resolve_released",
    "run_task",
]

ROOT = Path(__file__).resolve().parents[2]

_INFERENCE = (
    "interval",
    "sampling",
    "resolution",
    "scene_cut_threshold",
    "device",
    "precision",
    "flow_batch",
    "gamut",
)
# {task: {old option: its new spelling}}; "key=value" entries rename a config group's option
RENAMED: dict[str, dict[str, str]] = {
    "colorize": {
        **{key: f"inference.{key}" for key in _INFERENCE},
        "multi_intervals": "inference.multi_offsets (the intervals are interval + each offset)",
        "input_kind": "inference.lightness (lab | gray_value)",
        "debug": "tracebacks",
        "model.flownet2_weights": "model.flownet_weights",
    },
    "eval": {
        **{f"eval.{key}": f"inference.{key}" for key in _INFERENCE},
        "eval.multi_offsets": "inference.multi_offsets",
        "device": "inference.device",
        "debug": "tracebacks",
        "model=idc_only": "method=idc",
        "model.tcvc_weights": "ckpt",
        "model.flownet2_weights": "model.flownet_weights",
    },
    "train": {
        "ckpt_path": "resume",
        "debug=true": "tracebacks=true (debug= picks a conf/debug/ config: debug=fdr)",
        "model.flownet2_weights": "model.flownet_weights",
    },
}


# option -> the released file its value `released` names (python -m tcvc.weights fetch)
RELEASED_OPTIONS: dict[str, str] = {
    "ckpt": "80000_G.pth",
    "model.tcvc_weights": "80000_G.pth",
    "model.flownet_weights": "FlowNet2_checkpoint.pth.tar",
    "model.idc_weights": "siggraph17-df00044c.pth",
}


def configure() -> None:
    """Set ``TCVC_ROOT`` (unless set) and register the project's OmegaConf resolvers."""
    from tcvc.tasks.loggers import wandb_logged_in

    os.environ.setdefault("TCVC_ROOT", str(ROOT))
    if not OmegaConf.has_resolver("wandb_offline"):
        OmegaConf.register_new_resolver("wandb_offline", lambda: not wandb_logged_in())


def check_renamed(task: str, keys: Iterable[str]) -> None:
    """Raise ``UserError`` for the first of ``keys`` (``a.b`` or ``group=option``) renamed."""
    renamed = RENAMED.get(task, {})
    for key in keys:
        if key in renamed:
            old = key.replace("=", " ") if "=" in key else key
            raise UserError(f"{task}: {old} is now {renamed[key]}")


def _override_keys(overrides: Sequence[str]) -> list[str]:
    keys = []
    for override in overrides:
        if "=" not in override or override.startswith("-"):
            continue
        key, value = override.split("=", 1)
        key = key.lstrip("+~")
        keys += [key, f"{key}={value}"]
    return keys


def refuse_renamed_overrides(task: str, argv: Sequence[str] | None = None) -> None:
    """The command line's overrides (``sys.argv[1:]``) checked with ``check_renamed``: a renamed
    one prints ``error: ...`` to stderr and exits with status 2, before Hydra runs."""
    try:
        check_renamed(task, _override_keys(sys.argv[1:] if argv is None else argv))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def _dotted_keys(node, prefix: str = "") -> list[str]:
    keys = []
    if isinstance(node, DictConfig):
        for key in node:
            name = f"{prefix}{key}"
            if OmegaConf.is_missing(node, key):
                continue
            value = node._get_node(key)
            if isinstance(value, DictConfig):
                keys += [name, *_dotted_keys(value, name + ".")]
            elif value._value() is not None:  # a null leaf is a default, not a setting
                keys.append(name)
    return keys


def refuse_renamed_config(task: str, cfg: DictConfig) -> None:
    """``check_renamed`` on every key of a composed config (a config file may set an old one)."""
    check_renamed(task, _dotted_keys(cfg))


def resolve_released(cfg: DictConfig) -> DictConfig:
    """Set each option of ``RELEASED_OPTIONS`` whose value is ``released`` to its file in the
    weights cache (``tcvc.weights.released_path``; ``UserError`` in one line when it is not
    there); returns ``cfg``, changed in place."""
    from tcvc.weights import released_path

    for key, name in RELEASED_OPTIONS.items():
        value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        if value == "released":
            OmegaConf.update(cfg, key, str(released_path(name, option=key)), merge=False)
    return cfg


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """``warnings.formatwarning`` of the entry points: ``warning: <message> (<category>,
    <file>:<line>)``, the file relative to the project, without Python's echo of the source
    line that raised it (a dangling fragment of code to someone colouring a film)."""
    path = Path(filename)
    if path.is_relative_to(ROOT):
        path = path.relative_to(ROOT)
    return f"warning: {str(message).strip()} ({category.__name__}, {path}:{lineno})\n"


def run_task(task: str, fn: Callable[[DictConfig], Any]) -> None:
    """Run ``fn`` on ``conf/<task>.yaml`` composed with the command line's overrides, as an
    entry point: renamed options refused first, ``released`` weights resolved
    (``resolve_released``), user errors one line, and (train.py's sweeps) the value of
    ``optimized_metric`` returned to Hydra's sweeper."""
    import hydra

    from tcvc.tasks.errors import report_user_errors

    configure()
    warnings.formatwarning = one_line_warning
    refuse_renamed_overrides(task)

    @hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name=task)
    def main(cfg: DictConfig) -> Any:
        result = report_user_errors(lambda cfg: fn(resolve_released(cfg)))(cfg)
        objective = cfg.get("optimized_metric")  # conf/hparams_search/*.yaml
        return result.get(objective) if objective and isinstance(result, dict) else None

    main()
