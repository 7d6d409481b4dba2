"""``InferenceOptions``: how a video is coloured, the ``inference`` config group in code.

``conf/inference/default.yaml`` (colorize.py) and ``conf/inference/paper.yaml`` (eval.py: the
original test protocol, clipped gamut and no scene cuts) hold the same keys; both tasks read them
with ``InferenceOptions.from_config`` and colour through ``tcvc.inference.colorize_video``.
Bad values raise ``UserError`` naming the option as it is spelled in the config.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from tcvc.errors import UserError
from tcvc.inference.lightness import LIGHTNESS, Lightness
from tcvc.inference.output import GAMUTS, Gamut
from tcvc.inference.resolution import Resolution, network_size

__all__ = [
    "COMPILE_MODES",
    "PRECISIONS",
    "SAMPLINGS",
    "InferenceOptions",
    "parse_resolution",
    "pick_device",
]

SAMPLINGS = ("single", "multi")
PRECISIONS = ("fp32", "tf32", "bf16")
# torch.compile modes for the head's recurrent step (inference.compile; null: eager)
COMPILE_MODES = ("default", "reduce-overhead")
_OLD_VALUES = {("sampling", "one"): "single"}


@dataclass(frozen=True)
class InferenceOptions:
    """The resolved ``inference`` options (see ``conf/inference/default.yaml``).

    ``interval`` is one interval, or (eval.py's sweeps) several: ``runs`` gives the intervals of
    each run, one per entry of ``interval``, each a single pass or, with ``sampling="multi"``,
    one pass per ``interval + offset`` of ``multi_offsets`` (the paper: 17 -> 17 and 19).
    """

    interval: tuple[int, ...] = (17,)
    sampling: str = "single"
    multi_offsets: tuple[int, ...] = (0, 2)
    resolution: Resolution = 256
    flow_batch: int | None = 8
    clips_per_batch: int = 1
    precision: str = "fp32"
    flownet_fp32: bool = False
    channels_last: bool = False
    compile: str | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    gamut: Gamut = "keep_luminance"
    scene_cut_threshold: float | None = None
    lightness: Lightness = "lab"
    guidance_carry: bool = True
    guidance_decay: float = 0.98

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], *, prefix: str = "inference.") -> InferenceOptions:
        """The options of a config node (``cfg.inference``), checked; ``prefix`` names them in
        the messages. A key it does not know is a ``UserError`` (``+inference.resoluton=128``
        would otherwise be a run at the default resolution)."""
        for key in cfg:
            if key not in KEYS:
                close = difflib.get_close_matches(str(key), KEYS, n=1)
                hint = f"did you mean {prefix}{close[0]}? " if close else ""
                raise UserError(
                    f"{prefix}{key}: no such option ({hint}the options: {', '.join(KEYS)})"
                )

        def get(key: str, default: Any) -> Any:
            value = cfg.get(key, default)
            if isinstance(value, str) and (key, value) in _OLD_VALUES:
                raise UserError(f"{prefix}{key}={value} is now {_OLD_VALUES[key, value]}")
            return value

        def choice(key: str, allowed: Sequence[str], default: str) -> str:
            value = str(get(key, default))
            if value not in allowed:
                raise UserError(f"{prefix}{key} must be one of {', '.join(allowed)}, got {value!r}")
            return value

        interval = _int_tuple(get("interval", 17), f"{prefix}interval")
        offsets = _int_tuple(get("multi_offsets", [0, 2]), f"{prefix}multi_offsets")
        sampling = choice("sampling", SAMPLINGS, "single")
        used = [i + d for i in interval for d in offsets] if sampling == "multi" else interval
        if min(interval) < 1 or min(used) < 1:
            raise UserError(
                f"{prefix}interval must be integers ≥ 1 (also with {prefix}multi_offsets added), "
                f"got {list(used)}"
            )
        flow_batch = get("flow_batch", 8)
        if flow_batch is not None and not (
            isinstance(flow_batch, int) and not isinstance(flow_batch, bool) and flow_batch >= 1
        ):
            raise UserError(
                f"{prefix}flow_batch must be an integer ≥ 1 or null, got {flow_batch!r}"
            )
        clips_per_batch = get("clips_per_batch", 1)
        if not (
            isinstance(clips_per_batch, int)
            and not isinstance(clips_per_batch, bool)
            and clips_per_batch >= 1
        ):
            raise UserError(
                f"{prefix}clips_per_batch must be an integer ≥ 1, got {clips_per_batch!r}"
            )
        device = pick_device(str(get("device", "auto")), name=f"{prefix}device")
        precision = choice("precision", PRECISIONS, "fp32")
        if precision != "fp32" and device.type != "cuda":
            raise UserError(
                f"{prefix}precision={precision} runs on CUDA only (the CPU kernels of FlowNet2's "
                f"ops are float32); use {prefix}precision=fp32"
            )
        compile_mode = get("compile", None)
        if compile_mode in (None, False):
            compile_mode = None
        elif compile_mode not in COMPILE_MODES:
            raise UserError(
                f"{prefix}compile must be null (eager) or one of {', '.join(COMPILE_MODES)}, got "
                f"{compile_mode!r}"
            )
        elif compile_mode == "reduce-overhead" and device.type != "cuda":
            raise UserError(
                f"{prefix}compile=reduce-overhead captures CUDA graphs: CUDA only; use "
                f"{prefix}compile=default on {device.type}"
            )
        return cls(
            interval=interval,
            sampling=sampling,
            multi_offsets=offsets,
            resolution=parse_resolution(get("resolution", 256), name=f"{prefix}resolution"),
            flow_batch=flow_batch,
            clips_per_batch=clips_per_batch,
            precision=precision,
            flownet_fp32=bool(get("flownet_fp32", False)),
            channels_last=bool(get("channels_last", False)),
            compile=compile_mode,
            device=device,
            gamut=choice("gamut", GAMUTS, "keep_luminance"),  # type: ignore[arg-type]
            scene_cut_threshold=_threshold(
                get("scene_cut_threshold", None), f"{prefix}scene_cut_threshold"
            ),
            lightness=choice("lightness", LIGHTNESS, "lab"),  # type: ignore[arg-type]
            guidance_carry=bool(get("guidance_carry", True)),
            guidance_decay=_decay(get("guidance_decay", 0.98), f"{prefix}guidance_decay"),
        )

    @property
    def runs(self) -> list[tuple[int, ...]]:
        """The intervals of each run: one run per ``interval``, each one or several passes."""
        if self.sampling == "multi":
            return [tuple(i + d for d in self.multi_offsets) for i in self.interval]
        return [(i,) for i in self.interval]

    @property
    def intervals(self) -> tuple[int, ...]:
        """The passes of the one run (colorize.py); a sweep of several runs is refused."""
        if len(self.interval) != 1:
            raise UserError(
                f"inference.interval={list(self.interval)}: a list of intervals sweeps in eval.py "
                "only; give one interval"
            )
        return self.runs[0]

    @contextlib.contextmanager
    def numerics(self) -> Iterator[None]:
        """The arithmetic of ``precision`` around a network call: ``fp32`` is float32 (on CUDA
        with TF32 off: PyTorch lets cuDNN convolve float32 in TF32 by default, which moves ab
        by about 1 %); ``tf32`` allows TF32 (faster on Ampere and later); ``bf16`` is bf16
        autocast. The global TF32 switches are put back afterwards."""
        cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
        saved = cudnn.allow_tf32, matmul.allow_tf32
        cudnn.allow_tf32 = matmul.allow_tf32 = self.precision == "tf32"
        try:
            with torch.autocast(
                self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
            ):
                yield
        finally:
            cudnn.allow_tf32, matmul.allow_tf32 = saved


# the keys of an inference config node (conf/inference/): the options' fields, each read by
# from_config
KEYS = tuple(f.name for f in fields(InferenceOptions))


def _int_tuple(value: Any, name: str) -> tuple[int, ...]:
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise UserError(f"{name} must be an integer or a list of integers, got {value!r}")
    return tuple(values)


def _threshold(value: Any, name: str) -> float | None:
    if value is None or value is False:
        return None
    try:
        threshold = float(value)
    except (TypeError, ValueError) as error:
        raise UserError(f"{name} must be a number or null, got {value!r}") from error
    if threshold < 0:
        raise UserError(f"{name} must be ≥ 0 (0 or null: off), got {threshold}")
    return threshold or None


def _decay(value: Any, name: str) -> float:
    try:
        decay = float(value)
    except (TypeError, ValueError) as error:
        raise UserError(f"{name} must be a number in [0, 1], got {value!r}") from error
    if not 0 <= decay <= 1:
        raise UserError(
            f"{name} must be in [0, 1] (the hints' confidence kept a frame), got {decay}"
        )
    return decay


def parse_resolution(value: Any, *, name: str = "inference.resolution") -> Resolution:
    """``256`` / ``"256"`` -> 256, ``"native"``, ``[h, w]`` -> (h, w); checked (multiples of 64)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        resolution: Resolution = tuple(int(v) for v in value)
    elif isinstance(value, str) and value.strip().isdigit():
        resolution = int(value)
    else:
        resolution = value
    try:
        network_size(64, 64, resolution)
    except ValueError as error:
        raise UserError(f"{name}: {error}") from error
    return resolution


def pick_device(value: str, *, name: str = "inference.device") -> torch.device:
    """``auto`` -> cuda when available, else cpu; a bad name or ``cuda`` without a GPU is a
    ``UserError``."""
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(value)
    except RuntimeError as error:
        raise UserError(f"{name}: {error}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{name}={value}, but CUDA is not available here; use auto or cpu")
    return device
