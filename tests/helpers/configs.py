"""The real configs, composed as train.py, eval.py and colorize.py compose them (no Hydra run:
the run-folder paths are given), with small settings that run in seconds on a CPU."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

from helpers import CONF, ROOT
from tcvc.inference.options import KEYS

# the keys of conf/inference/, given to compose_colorize without their prefix
INFERENCE = set(KEYS)


def compose_colorize(**options):
    """The colorize config with `key=value` overrides (fast defaults for tests); the keys of the
    inference group (INFERENCE) are given without their `inference.` prefix."""
    options = {"resolution": 64, "progress": False, **options}
    overrides = [
        f"{'inference.' if key in INFERENCE else ''}{key}={value}"
        for key, value in options.items()
        if value is not None
    ]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="colorize", overrides=overrides)


# the interval, crops and batches of a training step in seconds on a CPU
TRAIN_SMALL = [
    "data.interval=2",
    "data.crop_size=64",
    "data.batch_size=1",
    "data.clips_per_video=2",
]


def _compose_task(task: str, overrides: list[str]):
    """conf/<task>.yaml as the entry point composes it (no Hydra run: the run-folder paths are
    given)."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name=task, overrides=[f"paths.work_dir={ROOT}", *overrides])


def compose_train(overrides: list[str]):
    """The train config as train.py composes it."""
    return _compose_task("train", overrides)


def train_data(sample_dir: Path) -> list[str]:
    """The sample data (``sample_dir`` fixture) as the training and validation roots."""
    return [
        f"data.roots=[{sample_dir / 'train'}]",
        f"data.val_roots=[{sample_dir / 'val'}]",
        "data.sample_dir=null",
    ]


# 64×64 working size, EVAL_FRAMES frames of one video: seconds on a CPU
EVAL_FRAMES = 6
EVAL_SMALL = [
    "inference.resolution=64",
    f"eval.max_frames={EVAL_FRAMES}",
    "eval.max_videos=1",
    "eval.fps=5",
]


def compose_eval(overrides: list[str]):
    """The eval config as eval.py composes it."""
    return _compose_task("eval", overrides)


def eval_data(sample_dir: Path) -> list[str]:
    """The sample data's validation videos as the test set."""
    return [f"data.test_roots=[{sample_dir / 'val'}]", "data.sample_dir=null"]
