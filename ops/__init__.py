"""FlowNet2's custom ops as ``torch.library`` custom ops in the namespace ``tcvc``.

``correlation`` (FlowNetC cost volume: two B×C×H×W maps -> B×D²×H_out×W_out), ``resample2d``
(bilinear warp of a B×C×H×W image by a B×2×H×W pixel flow) and ``channel_norm`` (L2 norm over
channels: B×C×H×W -> B×1×H×W). One module per op, as ``ops/csrc`` and ``tests/ops``:
``ops.correlation``, ``ops.resample2d`` and ``ops.channel_norm`` each hold the op's pure-PyTorch
reference (forward and backward), which every device runs, and its custom op, whose CUDA tensors
run the kernels of ``ops/csrc/<op>.cu``, compiled on the first CUDA call (importing this package
compiles nothing; ``ops._build`` builds, ``ops._common`` holds what the three share, including
the fallback to the references where the kernels cannot be built).

Each op is registered the same way: ``tcvc::<op>`` and ``tcvc::<op>_backward``
(``torch.library.custom_op``) run the references by default (CPU, MPS, ...; on CUDA also
float64); other CUDA tensors run the kernels of ``ops/csrc/<op>.cu`` (built on the first CUDA
call; where they cannot be built, the references with one warning, see ``ops._common``).
``register_fake`` gives shapes for tracing, ``register_autograd`` calls the backward op, so the
CUDA backward is a kernel too.

The package attributes ``ops.correlation``, ``ops.resample2d`` and ``ops.channel_norm`` are the
functions; ``from ops.correlation import correlation_reference`` (etc.) reaches the modules.
"""

from ops.channel_norm import channel_norm
from ops.correlation import correlation
from ops.resample2d import resample2d

__all__ = ["channel_norm", "correlation", "resample2d"]
