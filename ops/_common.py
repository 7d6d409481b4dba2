"""What the three ops share: input checks, compute dtypes, and the compiled kernels (or None).

- ``_check_4d_float(name, t)``: raises ``ValueError`` unless ``t`` is a floating B×C×H×W tensor.
- ``_compute_dtype(dtype)``: the dtype the references compute in; half and bfloat16 inputs are
  computed in float32 and the result cast back, as the CUDA kernels accumulate in float32.
- ``_KERNEL_DTYPES``: the element types of the compiled kernels (``ops/csrc/common.h``); float64
  CUDA tensors run the references.
- ``_cuda_ops()``: ``torch.ops.tcvc_cuda`` (the kernels of ``ops/csrc``, built and loaded on the
  first call, see ``ops._build``), or None where they cannot be built (no CUDA toolkit, an nvcc
  that does not match torch's CUDA, a compiler error): the ops then run their references on
  CUDA too, after one warning that says why. ``TCVC_CUDA_OPS=require`` in the environment makes
  that an error instead (the GPU tests set it).
"""

from __future__ import annotations

import functools
import os
import warnings

import torch
from torch import Tensor

from ops import _build

# The compiled kernels' element types (float32 accumulation); float64 runs the reference.
_KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half/bfloat16 (accumulate like the kernels), the dtype itself otherwise."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _check_4d_float(name: str, tensor: Tensor) -> None:
    if tensor.dim() != 4:
        raise ValueError(f"{name} must be B×C×H×W (4-D), got shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got dtype {tensor.dtype}")


def _cuda_ops():
    """``torch.ops.tcvc_cuda`` after building/loading the extension (once a process), or None
    when it cannot be built: the callers then run the reference kernels on CUDA too."""
    error = _build_error()
    if error is None:
        return torch.ops.tcvc_cuda
    if os.environ.get("TCVC_CUDA_OPS") == "require":
        raise error
    return None


@functools.cache
def _build_error() -> _build.BuildError | None:
    """Build and load the kernels once a process; the error, if any (warned about once)."""
    try:
        _build.load_extension()
    except _build.BuildError as error:
        warnings.warn(
            f"the CUDA kernels of ops/ are not available ({error}); FlowNet2's correlation, "
            "resample2d and channel_norm run their pure-PyTorch references on the GPU (correct, "
            "slower). TCVC_CUDA_OPS=require makes this an error.",
            RuntimeWarning,
            stacklevel=4,
        )
        return error
    return None


def _check_same_dtype_and_device(what: str, first: Tensor, second: Tensor) -> None:
    """``ValueError`` naming ``what`` (e.g. "correlation inputs") unless both tensors share
    their dtype and device."""
    if first.dtype != second.dtype or first.device != second.device:
        raise ValueError(
            f"{what} must share dtype and device, got {first.dtype}/{first.device} and "
            f"{second.dtype}/{second.device}"
        )
