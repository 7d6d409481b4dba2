"""Summarise a Hydra sweep: the swept settings and final metrics of every run, as a table and a plot.

Every run folder of a sweep (``logs/<task>/multiruns/<time>/<n>/``) holds ``config.yaml`` (the
resolved config) and ``metrics.json`` (the final logged metrics), both written by ``train.py``,
and ``.hydra/overrides.yaml`` (the run's command-line overrides, with the values the sweeper
chose). The sweep's axes are the overridden options whose values differ between runs; an option
that differs because it names each run's own folder (``trainer.default_root_dir``, the paths) is
no axis. Without ``.hydra/overrides.yaml`` every option of ``config.yaml`` is a candidate.

    python scripts/sweep_report.py logs/idc_srl/multiruns/2026-11-25_10-00-00
    python scripts/sweep_report.py SWEEP --metric val/cdc --out report.png

Prints a Markdown table (one row per run, best first by ``--metric``), writes ``sweep.csv``
and a plot of the metric against each swept setting (``sweep.png``) into the sweep folder.
The same runs are in one W&B group (the task name) when the W&B logger was used.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import yaml


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """{"model": {"loss": {"srl_weight": 1}}} -> {"model.loss.srl_weight": 1}."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def read_overrides(run_dir: Path) -> dict[str, str] | None:
    """{option: value} of a run's ``.hydra/overrides.yaml`` (``a.b=1``, ``+a.b=1``, ``group=x``);
    None when the run has none."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return None
    overrides = {}
    for override in yaml.safe_load(path.read_text()) or []:
        if "=" in override and not override.startswith("~"):
            key, value = override.split("=", 1)
            overrides[key.lstrip("+")] = value
    return overrides


def read_runs(sweep: Path) -> list[dict]:
    """Each run folder with a config.yaml: {"run", "folder", "config" (flat), "overrides" (None
    without .hydra/overrides.yaml), "metrics"}."""
    runs = []
    for config_path in sorted(sweep.glob("*/config.yaml"), key=lambda p: _run_key(p.parent.name)):
        folder = config_path.parent
        metrics_path = folder / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        config = flatten(yaml.safe_load(config_path.read_text()) or {})
        overrides = read_overrides(folder)
        for key, value in (overrides or {}).items():  # a config group's choice (data=folder)
            config.setdefault(key, value)
        runs.append(
            {"run": folder.name, "folder": folder, "config": config, "overrides": overrides,
             "metrics": metrics}
        )  # fmt: skip
    return runs


def _run_key(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (sys.maxsize, name)


SKIPPED = ("paths.", "hydra.", "callbacks.", "logger.")


def _names_its_run(value: object, folder: Path) -> bool:
    """True for a value that is (or holds) the path of its own run folder (``default_root_dir``,
    ``paths.output_dir``, a checkpoint folder): it differs between runs without being swept."""
    if isinstance(value, list):
        return any(_names_its_run(item, folder) for item in value)
    if not isinstance(value, str) or not value:
        return False
    path = Path(value)
    return path == folder or folder.resolve() in (path.resolve(), *path.resolve().parents)


def swept_settings(runs: list[dict]) -> list[str]:
    """The sweep's axes: the overridden options (every option, for runs without overrides) whose
    values differ between runs, leaving out paths, loggers, callbacks and any option whose value
    names its own run folder."""
    if all(run["overrides"] is not None for run in runs):
        keys = sorted({k for run in runs for k in run["overrides"]})
    else:
        keys = sorted({k for run in runs for k in run["config"]})
    return [
        key
        for key in keys
        if not key.startswith(SKIPPED)
        and len({json.dumps(run["config"].get(key), sort_keys=True) for run in runs}) > 1
        and not any(_names_its_run(run["config"].get(key), run["folder"]) for run in runs)
    ]


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def table(runs: list[dict], settings: list[str], metrics: list[str]) -> str:
    header = ["run", *settings, *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        cells = [run["run"], *(run["config"].get(k) for k in settings)]
        cells += [run["metrics"].get(m) for m in metrics]
        lines.append("| " + " | ".join(_format(c) for c in cells) + " |")
    return "\n".join(lines)


def plot(runs: list[dict], settings: list[str], metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, max(1, len(settings)), figsize=(4 * max(1, len(settings)), 3.2),
                             squeeze=False)  # fmt: skip
    for axis, setting in zip(axes[0], settings or ["run"], strict=False):
        xs = [run["config"].get(setting, run["run"]) for run in runs]
        ys = [run["metrics"].get(metric, math.nan) for run in runs]
        numeric = all(isinstance(x, (int, float)) for x in xs)
        positions = xs if numeric else list(range(len(xs)))
        axis.scatter(positions, ys)
        if not numeric:
            axis.set_xticks(positions, [str(x) for x in xs], rotation=45)
        elif min(xs) > 0 and max(xs) / min(xs) >= 50:
            axis.set_xscale("log")
        axis.set_xlabel(setting)
        axis.set_ylabel(metric)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep", type=Path, help="the multirun folder (holds 0/, 1/, ...)")
    parser.add_argument("--metric", default="val/cdc", help="sort by this metric (lower first)")
    parser.add_argument("--out", type=Path, help="plot path (default: <sweep>/sweep.png)")
    args = parser.parse_args(argv)
    runs = read_runs(args.sweep)
    if not runs:
        print(f"error: no run folders with config.yaml under {args.sweep}", file=sys.stderr)
        return 1
    settings = swept_settings(runs)
    metrics = sorted({m for run in runs for m in run["metrics"]})
    runs.sort(key=lambda run: run["metrics"].get(args.metric, math.inf))
    print(table(runs, settings, metrics))
    with (args.sweep / "sweep.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["run", *settings, *metrics])
        for run in runs:
            writer.writerow([run["run"], *(run["config"].get(k) for k in settings),
                             *(run["metrics"].get(m) for m in metrics)])  # fmt: skip
    out = args.out or args.sweep / "sweep.png"
    plot(runs, settings, args.metric, out)
    print(f"\nwrote {args.sweep / 'sweep.csv'} and {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
