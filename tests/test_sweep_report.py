"""scripts/sweep_report.py on a multirun folder laid out as an Optuna sweep leaves it: the table,
sweep.csv and sweep.png carry the swept options only."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from sweep_report import main as sweep_report

# (the sweeper's choices, val/cdc) of three trials
TRIALS = [({"srl_weight": 0.5, "interval": 4}, 0.031), ({"srl_weight": 2.0, "interval": 8}, 0.027),
          ({"srl_weight": 8.0, "interval": 8}, 0.029)]  # fmt: skip


def make_sweep(folder: Path, *, overrides: bool = True) -> Path:
    """``folder/<n>/`` as Hydra's Optuna sweeper and train.py write them: ``.hydra/overrides.yaml``
    (the command line's overrides and the trial's choices), ``config.yaml`` (resolved: per-run
    paths such as ``trainer.default_root_dir``) and ``metrics.json``."""
    folder.mkdir(parents=True)
    (folder / "optimization_results.yaml").write_text("name: optuna\nbest_value: 0.027\n")
    for n, (choices, cdc) in enumerate(TRIALS):
        run = folder / str(n)
        (run / ".hydra").mkdir(parents=True)
        if overrides:
            lines = ["hparams_search=srl_optuna", "debug=fdr", "+tags=[sweep]",
                     f"model.loss.srl_weight={choices['srl_weight']}",
                     f"data.interval={choices['interval']}"]  # fmt: skip
            (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(lines))
        config = {
            "task_name": "idc_srl",
            "tags": ["sweep"],
            "seed": 12345,
            "data": {"interval": choices["interval"], "roots": ["/data/train"], "crop_size": 64},
            "model": {"loss": {"srl_weight": choices["srl_weight"], "srl_alpha": 50.0}},
            "trainer": {"default_root_dir": str(run), "max_steps": 10, "fast_dev_run": 1},
            "paths": {"output_dir": str(run), "log_dir": str(folder.parent)},
            "callbacks": {"model_checkpoint": {"dirpath": f"{run}/checkpoints"}},
            "logger": {"csv": {"save_dir": str(run)}},
            "final_sample": {"max_frames": 30},
        }
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        metrics = {"val/cdc": cdc, "val/psnr": 20.0 + n, "train/loss": 3e-4}
        (run / "metrics.json").write_text(json.dumps(metrics))
    return folder


@pytest.mark.parametrize("overrides", [True, False], ids=["overrides.yaml", "config.yaml only"])
def test_the_report_shows_only_the_swept_options(tmp_path, capsys, overrides):
    """Bug: `trainer.default_root_dir` (each run's folder) showed as a swept setting."""
    sweep = make_sweep(tmp_path / "multiruns" / "2026-12-02_10-00-00", overrides=overrides)
    assert sweep_report([str(sweep), "--metric", "val/cdc"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = "| run | data.interval | model.loss.srl_weight | train/loss | val/cdc | val/psnr |"
    assert lines[0] == header
    assert lines[2:5] == [  # best val/cdc first
        "| 1 | 8 | 2 | 0.0003 | 0.027 | 21 |",
        "| 2 | 8 | 8 | 0.0003 | 0.029 | 22 |",
        "| 0 | 4 | 0.5 | 0.0003 | 0.031 | 20 |",
    ]
    with (sweep / "sweep.csv").open() as file:
        header = next(csv.reader(file))
    assert header == ["run", "data.interval", "model.loss.srl_weight", "train/loss", "val/cdc",
                      "val/psnr"]  # fmt: skip
    assert (sweep / "sweep.png").stat().st_size > 1000
