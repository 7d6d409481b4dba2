"""FlowNet2's custom ops as ``torch.library`` custom ops in the namespace ``tcvc``.

``correlation`` (FlowNetC cost volume), ``resample2d`` (bilinear warp by a pixel flow) and
``channel_norm`` (L2 norm over channels). Every device runs the pure-PyTorch references of
``ops.reference``; CUDA tensors run the kernels of ``ops/csrc``, compiled on the first CUDA call
(importing this package compiles nothing).
"""

from ops._ops import channel_norm, correlation, resample2d

__all__ = ["channel_norm", "correlation", "resample2d"]
