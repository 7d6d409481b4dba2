"""Fixtures of the op tests: the CPU-emulated kernels (built once a session), and no silent
fallback to the references in ``gpu`` tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from ops_testing import build_emulator


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> Path:
    """The device code of ops/csrc compiled for the CPU (see ``ops_testing.build_emulator``)."""
    return build_emulator(tmp_path_factory.mktemp("kernel_emulator"))


@pytest.fixture(autouse=True)
def _compiled_kernels_required(request, monkeypatch):
    """On a GPU the kernels themselves are under test: no silent fallback to the references."""
    if "gpu" in request.keywords:
        monkeypatch.setenv("TCVC_CUDA_OPS", "require")
