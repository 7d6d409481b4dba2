"""Build and load the CUDA kernels of ``ops/csrc`` with ``torch.utils.cpp_extension``.

Nothing is compiled at import: ``load_extension()`` builds on the first CUDA call (ninja; cached
in ``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``, and rebuilt only when a
source or flag changes) and registers the operators ``torch.ops.tcvc_cuda.*``. ``build()`` is
the same build for an explicit directory and architecture list, usable without a GPU (the
compile test calls it in a subprocess).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import torch

__all__ = [
    "CSRC_DIR",
    "EXTENSION_NAME",
    "SOURCES",
    "BuildError",
    "ToolchainError",
    "build",
    "load_extension",
]

CSRC_DIR = Path(__file__).resolve().parent / "csrc"
SOURCES = ("ops.cpp", "correlation.cu", "resample2d.cu", "channel_norm.cu")
EXTENSION_NAME = "tcvc_ops_cuda"
_CXX_FLAGS = ["-O3"]
_NVCC_FLAGS = ["-O3", "-lineinfo"]


class BuildError(RuntimeError):
    """The CUDA kernels could not be built or loaded; the message says why."""


class ToolchainError(BuildError):
    """No usable toolchain to build with (no toolkit, nvcc/torch CUDA major mismatch, no ninja)."""


def _find_cuda_home() -> str | None:
    """The toolkit root: ``CUDA_HOME``/``CUDA_PATH``, torch's guess, or ``/usr/local/cuda``.

    torch guesses the root as the parent of ``bin/nvcc`` found on PATH; a wrapper script such as
    ``/usr/local/bin/nvcc`` makes that ``/usr/local``, which has no CUDA headers.
    """
    from torch.utils import cpp_extension

    candidates = [
        os.environ.get("CUDA_HOME"),
        os.environ.get("CUDA_PATH"),
        cpp_extension.CUDA_HOME,
        "/usr/local/cuda",
    ]
    for home in candidates:
        if home and (Path(home) / "include" / "cuda_runtime.h").is_file():
            return home
    return None


def _nvcc_version(nvcc: Path) -> tuple[int, int]:
    """(major, minor) of ``nvcc --version`` ("... release 13.0, V13.0.88")."""
    output = subprocess.run(
        [str(nvcc), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"release (\d+)\.(\d+)", output)
    if match is None:
        raise ToolchainError(f"cannot read the CUDA version from `{nvcc} --version`: {output!r}")
    return int(match.group(1)), int(match.group(2))


def _prepare_toolchain() -> None:
    """Point cpp_extension at a usable CUDA toolkit and ninja, or raise ToolchainError."""
    from torch.utils import cpp_extension

    if torch.version.cuda is None:
        raise ToolchainError(
            f"torch {torch.__version__} is a CPU-only build: no CUDA to compile for"
        )
    home = _find_cuda_home()
    if home is None:
        raise ToolchainError(
            "no CUDA toolkit found (need include/cuda_runtime.h under CUDA_HOME, "
            f"torch's guess {cpp_extension.CUDA_HOME!r}, or /usr/local/cuda)"
        )
    nvcc = Path(home) / "bin" / "nvcc"
    if not nvcc.exists():
        raise ToolchainError(f"CUDA toolkit at {home} has no bin/nvcc")
    # cpp_extension refuses a major-version mismatch; say so before a long build starts.
    major, minor = _nvcc_version(nvcc)
    torch_major = int(torch.version.cuda.split(".")[0])
    if major != torch_major:
        raise ToolchainError(
            f"nvcc {major}.{minor} at {nvcc} cannot build for torch {torch.__version__} "
            f"(CUDA {torch.version.cuda}): the major versions differ"
        )
    os.environ["CUDA_HOME"] = home
    cpp_extension.CUDA_HOME = home  # read at import by cpp_extension; it may have guessed wrong
    if shutil.which("ninja") is None:
        try:
            import ninja  # the pip package ships the binary

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except ImportError as error:
            raise ToolchainError(
                "ninja is needed to build the CUDA ops (pip install ninja)"
            ) from error


def _gencode_flags(arch_list: Sequence[str]) -> list[str]:
    """nvcc ``-gencode`` flags for e.g. ``["8.0", "9.0+PTX"]``."""
    flags = []
    for arch in arch_list:
        ptx = arch.endswith("+PTX")
        number = arch.removesuffix("+PTX").replace(".", "")
        flags.append(f"-gencode=arch=compute_{number},code=sm_{number}")
        if ptx:
            flags.append(f"-gencode=arch=compute_{number},code=compute_{number}")
    return flags


def build(
    *,
    build_directory: str | os.PathLike | None = None,
    arch_list: Sequence[str] | None = None,
    verbose: bool = False,
) -> Path | None:
    """Compile ``ops/csrc`` into a shared library and load it (registers ``tcvc_cuda::*``).

    Args:
        build_directory: where ninja builds; default ``TORCH_EXTENSIONS_DIR/tcvc_ops_cuda``.
        arch_list: compute capabilities, e.g. ``["9.0"]``; default: ``TORCH_CUDA_ARCH_LIST``
            or the visible GPUs (a machine without a GPU must name one).
        verbose: print the compiler commands and output.

    Returns:
        The path of the built library when ``build_directory`` is given, else None.

    Raises:
        ToolchainError: no usable toolkit or no architecture to build for.
        BuildError: the build itself failed (the message holds the compiler output).
    """
    from torch.utils import cpp_extension

    _prepare_toolchain()
    nvcc_flags = list(_NVCC_FLAGS)
    if arch_list:
        nvcc_flags += _gencode_flags(arch_list)
    elif not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        raise ToolchainError("no GPU visible and no arch_list/TORCH_CUDA_ARCH_LIST to build for")
    if build_directory is not None:
        Path(build_directory).mkdir(parents=True, exist_ok=True)
    try:
        cpp_extension.load(
            name=EXTENSION_NAME,
            sources=[str(CSRC_DIR / name) for name in SOURCES],
            extra_cflags=_CXX_FLAGS,
            extra_cuda_cflags=nvcc_flags,
            build_directory=None if build_directory is None else str(build_directory),
            is_python_module=False,
            verbose=verbose,
        )
    except (RuntimeError, OSError, ImportError) as error:
        raise BuildError(f"building the CUDA ops from {CSRC_DIR} failed: {error}") from error
    if build_directory is None:
        return None
    return Path(build_directory) / f"{EXTENSION_NAME}.so"


@functools.cache
def load_extension() -> None:
    """Build (first time) and load the CUDA kernels once a process; needs a visible GPU."""
    if not torch.cuda.is_available():
        raise BuildError("the CUDA ops need a visible GPU (torch.cuda.is_available() is False)")
    build()
