"""ops/_build.py: the CUDA sources compile, importing builds nothing, a failed build falls back.

- ``test_cuda_sources_compile``: builds ``ops/csrc`` with nvcc for sm_90 (no GPU needed, about
  15 s on 2 cores) and loads the library; skips, saying why, only when no usable CUDA toolkit
  is installed.
- ``test_kernels_that_cannot_be_built_fall_back_to_the_references``: one warning, then the
  references on CUDA (``ops._common._cuda_ops``); ``TCVC_CUDA_OPS=require`` makes it an error.

The kernels' values are tested per op (tests/ops/test_ops_<op>.py): on the CPU through the
emulation of their device code, and on a GPU against the references.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

_BUILD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from ops._build import ToolchainError, build
    try:
        path = build(build_directory=sys.argv[1], arch_list=["9.0"])
    except ToolchainError as error:
        print(json.dumps({"skip": str(error)}))
        sys.exit(0)
    import torch
    names = [n for n in ("correlation_forward", "correlation_backward", "resample2d_forward",
             "resample2d_backward", "channel_norm_forward", "channel_norm_backward")
             if hasattr(torch.ops.tcvc_cuda, n)]
    print(json.dumps({"path": str(path), "ops": names}))
    """
)


def test_cuda_sources_compile(tmp_path):
    """nvcc compiles every source for sm_90 and the library loads and registers its ops."""
    # A subprocess: loading registers the tcvc_cuda namespace, which a process can do once.
    result = subprocess.run(
        [sys.executable, "-c", _BUILD_SCRIPT, str(tmp_path / "build")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, (
        f"build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if "skip" in report:
        pytest.skip(f"no usable CUDA toolkit to compile ops/csrc: {report['skip']}")
    assert Path(report["path"]).is_file()
    assert len(report["ops"]) == 6, report


def test_import_compiles_nothing():
    """Importing ops (and running it on the CPU) neither builds nor loads the extension."""
    code = (
        "import torch, ops; ops.channel_norm(torch.ones(1, 2, 3, 3));"
        "print(hasattr(torch.ops.tcvc_cuda, 'correlation_forward'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_load_extension_without_gpu_says_why():
    from ops._build import BuildError, load_extension

    with pytest.raises(BuildError, match="visible GPU"):
        load_extension()


def test_kernels_that_cannot_be_built_fall_back_to_the_references(monkeypatch):
    """No toolkit (or a failed build) on a GPU machine: one warning, then the reference kernels
    run on CUDA too; TCVC_CUDA_OPS=require makes it an error (the GPU tests set it)."""
    from ops import _build, _common

    attempts = []

    def failing_build():
        attempts.append(1)
        raise _build.ToolchainError("no CUDA toolkit found (set CUDA_HOME)")

    monkeypatch.setattr(_build, "load_extension", failing_build)
    _common._build_error.cache_clear()
    monkeypatch.delenv("TCVC_CUDA_OPS", raising=False)
    try:
        with pytest.warns(RuntimeWarning, match="no CUDA toolkit found.*pure-PyTorch references"):
            assert _common._cuda_ops() is None
        assert _common._cuda_ops() is None and attempts == [1]  # built (and warned) once
        monkeypatch.setenv("TCVC_CUDA_OPS", "require")
        with pytest.raises(_build.BuildError, match="no CUDA toolkit found"):
            _common._cuda_ops()
    finally:
        _common._build_error.cache_clear()
