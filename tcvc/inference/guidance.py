"""Guided colourisation, the pure parts: colours given for some frames, as colour hints.

A user guides the colours with reference frames (a colour image of frame t: dense hints) or
hint dots (a colour at a point of frame t: a small disk of hints), read into one
``FrameGuidance`` per guided frame at the frame size (the input video's H×W), in IDC's hint
convention (``tcvc.nets.idc``, ``tcvc.nets.hints``): ab = ab / 110, 0 where there is no hint, and
a mask in [0, 1], 1 at a hinted pixel. Only the chroma of a guide is used: the lightness stays
the film's own.

- ``load_references`` (a folder of ``<frame index>.png`` or ``index:path`` pairs) and
  ``load_hints`` (a JSON list of dots) read them; ``merge_guidance`` lays several over each other
  (later ones win where they give a hint);
- ``guidance_at_network_size`` brings a frame's guidance to the network's working size as
  ``tcvc.inference.resolution.to_network_size`` brings its L there (padding for ``"native"``,
  else area averaging or bilinear resizing, the hints' mean ab where a working pixel is partly
  hinted);
- ``carry_guidance`` carries guidance along a shot by optical flow, frame by frame, with a
  confidence that falls with distance and vanishes where the flow is not forward–backward
  consistent (occlusions, flow errors); ``carry_pairs`` names the flows it needs.

Frames are counted from 0. Positions are in pixels of the input frame, x to the right and y
down, pixel (row i, column j) centred at x = j, y = i. Flow notation as ``tcvc.nets.tcvc_net``:
F(a, b) is the flow from frame a's grid to frame b, and ``resample2d(x, F(a, b))`` brings x from
frame b onto frame a.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ops import resample2d
from tcvc.color import AB_SCALE, rgb_to_lab_normalized, rgb_uint8_to_float
from tcvc.errors import UserError
from tcvc.io import IMAGE_SUFFIXES, VideoError, read_image

if TYPE_CHECKING:
    from tcvc.inference.resolution import Resolution

__all__ = [
    "DEFAULT_DOT_RADIUS",
    "FrameGuidance",
    "carry_guidance",
    "carry_pairs",
    "flow_consistency",
    "guidance_at_network_size",
    "guidance_within",
    "hex_to_lab_ab",
    "load_hints",
    "load_references",
    "merge_guidance",
    "reference_files",
]

DEFAULT_DOT_RADIUS = 2.0  # pixels of the input frame
# Lab a and b of real colours stay within about ±128 (sRGB's gamut within −87 … 99, −108 … 95)
MAX_LAB_AB = 128.0
_HEX_COLOR = re.compile(r"#([0-9a-fA-F]{6})")
_PAIR = re.compile(r"\s*(-?[0-9]+)\s*:\s*(\S.*?)\s*")
_INDEX_STEM = re.compile(r"[0-9]+")
_DOT_FIELDS = ("frame", "x", "y", "color", "radius")


@dataclass(frozen=True, eq=False)
class FrameGuidance:
    """The colour hints of one frame, at the frame size H×W.

    Attributes:
        ab: 2×H×W float, ab / 110 (Lab ab in units of 110), 0 where there is no hint.
        mask: 1×H×W float in [0, 1]: 1 at a hinted pixel, 0 elsewhere (fractions: soft hints).
        source: what the hints came from, for messages (``"references/00120.png"``,
            ``"hints.json entry 3"``).
    """

    ab: Tensor
    mask: Tensor
    source: str

    def __post_init__(self) -> None:
        if (
            self.ab.dim() != 3
            or self.ab.shape[0] != 2
            or tuple(self.mask.shape) != (1, *self.ab.shape[1:])
        ):
            raise ValueError(
                f"FrameGuidance: ab must be 2×H×W and mask 1×H×W, got {tuple(self.ab.shape)} and "
                f"{tuple(self.mask.shape)}"
            )

    @property
    def size(self) -> tuple[int, int]:
        """(H, W), the frame size."""
        return int(self.ab.shape[1]), int(self.ab.shape[2])


# ---- resizing ----------------------------------------------------------------------------------
def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """N×C×h×w -> N×C×size: area averaging where neither side grows, else bilinear
    (align_corners=False; antialiased along a side that shrinks)."""
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    if size[0] <= x.shape[-2] and size[1] <= x.shape[-1]:
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _unpremultiply(weighted_ab: Tensor, mask: Tensor) -> Tensor:
    """ab from ab·mask: ``weighted_ab / mask`` where mask > 0, 0 elsewhere (…×2×H×W, …×1×H×W).

    Resizing or warping ab·mask and mask with the same non-negative weights gives, after this,
    the mean ab of the hinted pixels under each output pixel: a hint's colour is not diluted
    with the 0 of the pixels beside it that have none."""
    tiny = torch.finfo(mask.dtype).tiny
    return torch.where(mask > 0, weighted_ab / mask.clamp(min=tiny), 0.0)


def guidance_at_network_size(
    guide: FrameGuidance, size: tuple[int, int], resolution: Resolution
) -> tuple[Tensor, Tensor]:
    """A frame's guidance at the network's working size h×w, as ``to_network_size`` brings L.

    Args:
        guide: at the frame size H×W.
        size: (h, w), the working size (``network_size(H, W, resolution)``).
        resolution: ``"native"``: the frame padded at the bottom and right to h×w; the padding
            has no hints (ab 0, mask 0). Anything else: ab·mask and mask resized with area
            averaging (bilinear where a side grows).

    Returns:
        ab 2×h×w (ab / 110: the mean ab of the hinted frame pixels under each working pixel, 0
        where there are none) and mask 1×h×w in [0, 1] (the hinted fraction: a one-pixel dot
        in a 4×4 block that becomes one pixel has mask 1/16).
    """
    height, width = guide.size
    size = (int(size[0]), int(size[1]))
    if resolution == "native":
        if size[0] < height or size[1] < width:
            raise ValueError(
                f"native resolution pads the frame: the working size {size} is smaller than the "
                f"guidance's {guide.size}"
            )
        padding = (0, size[1] - width, 0, size[0] - height)
        return F.pad(guide.ab, padding), F.pad(guide.mask, padding)
    mask = _resize(guide.mask[None], size)[0].clamp(0.0, 1.0)
    weighted_ab = _resize((guide.ab * guide.mask)[None], size)[0]
    return _unpremultiply(weighted_ab, mask), mask


# ---- merging -----------------------------------------------------------------------------------
def _over(top: FrameGuidance, bottom: FrameGuidance) -> FrameGuidance:
    """``top`` laid over ``bottom`` (alpha compositing of the masks): top's ab where its mask is
    1, bottom's where it is 0, a mask-weighted mix between."""
    if top.size != bottom.size:
        raise ValueError(
            f"merge_guidance: {top.source} is {top.size}, {bottom.source} is {bottom.size}"
        )
    mask = top.mask + bottom.mask * (1 - top.mask)
    weighted_ab = top.ab * top.mask + bottom.ab * bottom.mask * (1 - top.mask)
    return FrameGuidance(
        ab=_unpremultiply(weighted_ab, mask), mask=mask, source=f"{bottom.source} + {top.source}"
    )


def merge_guidance(*guides: Mapping[int, FrameGuidance]) -> dict[int, FrameGuidance]:
    """Several guidances in one, frame by frame: later ones win where their mask is 1.

    ``merge_guidance(references, dots)``: a frame with a reference and dots takes the dots'
    colours in their disks and the reference's elsewhere. Returns {frame: FrameGuidance} in frame
    order; the inputs are not changed.
    """
    merged: dict[int, FrameGuidance] = {}
    for guide in guides:
        for frame, frame_guide in guide.items():
            below = merged.get(frame)
            merged[frame] = frame_guide if below is None else _over(frame_guide, below)
    return dict(sorted(merged.items()))


# ---- reference frames --------------------------------------------------------------------------
class _Reference(NamedTuple):
    """One reference asked for: ``label`` names it in messages (its file, or its entry)."""

    label: str
    frame: int
    path: Path


def _frames_text(num_frames: int) -> str:
    return f"the video's frames 0 … {num_frames - 1}" if num_frames > 0 else "a video of no frames"


def _reference_entries(value: object) -> list[_Reference]:
    """The references ``value`` asks for (see ``load_references``), not yet read."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, Path) or (isinstance(value, str) and ":" not in value):
        folder = Path(value)
        if folder.is_dir():
            return _folder_entries(folder)
        if folder.exists():
            raise UserError(
                f"references {folder}: not a folder; give a folder of <frame index>.png images "
                "or index:path pairs (e.g. 120:ref.png)"
            )
        raise UserError(f"references {folder}: folder not found")
    if isinstance(value, str):
        if Path(value).is_dir():
            return _folder_entries(Path(value))
        value = [part for part in value.split(",") if part.strip()]
    if isinstance(value, Mapping):  # {index: path}; a config's keys may be strings of digits
        value = [f"{index}:{path}" for index, path in value.items()]
    if not isinstance(value, Sequence):
        raise UserError(
            "references must be a folder of <frame index>.png images or a list of index:path "
            f"pairs, got {type(value).__name__}"
        )
    return [_pair_entry(number, item) for number, item in enumerate(value)]


def guidance_within(
    guidance: Mapping[int, FrameGuidance], start: int, stop: int
) -> dict[int, FrameGuidance]:
    """The guidance of frames ``start`` … ``stop − 1``, indexed from ``start`` (by frame in a
    range of the video: its part, a segment)."""
    return {i - start: g for i, g in guidance.items() if start <= i < stop}


def reference_files(value: object) -> list[tuple[int, Path]]:
    """(frame, image file) of each reference ``value`` asks for (``load_references``' value),
    without reading an image; the same ``UserError``s for a bad value."""
    return [(entry.frame, entry.path) for entry in _reference_entries(value)]


def _pair_entry(number: int, item: object) -> _Reference:
    """Entry ``number`` of a list of references: ``"index:path"`` or an (index, path) pair."""
    if isinstance(item, str):
        label = f"entry {number} ({item.strip()!r})"
        match = _PAIR.fullmatch(item)
        if match is None:
            raise UserError(
                f"reference {label}: expected <frame index>:<image path>, e.g. 120:ref.png"
            )
        return _Reference(label, int(match[1]), Path(match[2]))
    if (
        isinstance(item, Sequence)
        and len(item) == 2
        and isinstance(item[0], int)
        and not isinstance(item[0], bool)
        and isinstance(item[1], (str, Path))
    ):
        return _Reference(f"entry {number} ({item[0]}:{item[1]})", item[0], Path(item[1]))
    raise UserError(
        f"reference entry {number} ({item!r}): expected <frame index>:<image path>, e.g. "
        "120:ref.png"
    )


def _folder_entries(folder: Path) -> list[_Reference]:
    """``<frame index>.<image suffix>`` files of a folder; hidden files (``.name``) are skipped."""
    entries = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if (
            not path.is_file()
            or path.suffix.lower() not in IMAGE_SUFFIXES
            or _INDEX_STEM.fullmatch(path.stem) is None
        ):
            raise UserError(
                f"reference {path}: not a reference image; name each <frame index>.png (or .jpg, "
                ".jpeg, .tif, .bmp), frames counted from 0: 00120.png is frame 120"
            )
        entries.append(_Reference(str(path), int(path.stem), path))
    if not entries:
        raise UserError(f"references {folder}: the folder holds no images")
    return entries


def _read_reference(entry: _Reference, frame_size: tuple[int, int]) -> FrameGuidance:
    """One reference image as dense hints (the ab of its Lab, mask 1) at the frame size."""
    if not entry.path.is_file():
        problem = "is not a file" if entry.path.exists() else "not found"
        raise UserError(f"reference {entry.label}: {entry.path} {problem}")
    try:
        image = read_image(entry.path)
    except VideoError as error:
        cause = " ".join(str(error.__cause__ or error).split())
        raise UserError(f"reference {entry.label}: cannot read the image ({cause})") from error
    _, ab = rgb_to_lab_normalized(rgb_uint8_to_float(np.array(image)))  # 2×h×w (a writable copy)
    if tuple(ab.shape[1:]) != tuple(frame_size):
        warnings.warn(
            f"reference {entry.label}: its {ab.shape[1]}×{ab.shape[2]} image is resized to the "
            f"frame size {frame_size[0]}×{frame_size[1]}",
            UserWarning,
            stacklevel=3,
        )
        ab = _resize(ab[None], frame_size)[0]
    return FrameGuidance(ab=ab, mask=torch.ones_like(ab[:1]), source=str(entry.path))


def load_references(
    value: str | Path | Sequence[str] | Mapping[int, str] | None,
    *,
    num_frames: int,
    frame_size: tuple[int, int],
) -> dict[int, FrameGuidance]:
    """Reference frames: colour images of some frames, as dense hints.

    Args:
        value: a folder of ``<frame index>.png`` (or .jpg, .jpeg, .tif, .bmp; the stem is the
            frame counted from 0: ``00120.png`` is frame 120; hidden files are skipped, any other
            file is an error); or ``index:path`` pairs, as a list or one comma-separated string
            (``"0:first.png,120:ref.png"``), or a mapping {index: path}; paths relative to the
            working directory. None: no references.
        num_frames: the video's frames (an index must be in 0 … num_frames − 1).
        frame_size: (H, W) of the video's frames. An image of another size is resized to it
            (area averaging, bilinear where a side grows) with a ``UserWarning`` naming the file
            and both sizes.

    Returns:
        {frame: FrameGuidance}: ab the ab of the image's Lab (sRGB, D65; ``tcvc.color``) / 110,
        mask 1 everywhere, source the image's path; in frame order.

    Raises:
        UserError (one line, naming the file or the entry, counted from 0): a missing folder or
        file, a folder file not named ``<frame index>.<image suffix>``, a malformed pair, a frame
        outside the video, two references for one frame, an image that cannot be read.
    """
    entries = _reference_entries(value)
    by_frame: dict[int, _Reference] = {}
    for entry in entries:  # every entry checked before any image is read
        if not 0 <= entry.frame < num_frames:
            raise UserError(
                f"reference {entry.label}: frame {entry.frame} is outside "
                f"{_frames_text(num_frames)}"
            )
        first = by_frame.setdefault(entry.frame, entry)
        if first is not entry:
            raise UserError(
                f"reference {entry.label}: a second reference for frame {entry.frame} (the "
                f"first: {first.label})"
            )
    return {frame: _read_reference(entry, frame_size) for frame, entry in sorted(by_frame.items())}


# ---- hint dots ---------------------------------------------------------------------------------
class _Dot(NamedTuple):
    """A hint dot: a disk of ``radius`` pixels around (x, y) of ``frame``, ab in Lab units."""

    frame: int
    x: float
    y: float
    ab: tuple[float, float]
    radius: float


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return "null" if value is None else names.get(type(value), "a number")


def hex_to_lab_ab(color: str) -> tuple[float, float]:
    """``"#rrggbb"`` (sRGB) -> (a, b) of its Lab (D65, ``tcvc.color``), in Lab units."""
    match = _HEX_COLOR.fullmatch(color)
    if match is None:
        raise ValueError(f"expected '#rrggbb', got {color!r}")
    rgb = torch.tensor(
        [int(match[1][k : k + 2], 16) / 255.0 for k in (0, 2, 4)], dtype=torch.float64
    )
    _, ab = rgb_to_lab_normalized(rgb.view(3, 1, 1))
    return float(ab[0, 0, 0]) * AB_SCALE, float(ab[1, 0, 0]) * AB_SCALE


def _parse_color(color: object, where: str) -> tuple[float, float]:
    """The ``color`` field: ``"#rrggbb"`` (sRGB) or [a, b] (Lab units) -> (a, b) Lab units."""
    if isinstance(color, str) and _HEX_COLOR.fullmatch(color):
        return hex_to_lab_ab(color)
    if isinstance(color, list) and len(color) == 2 and all(map(_is_number, color)):
        if any(abs(c) > MAX_LAB_AB for c in color):
            raise UserError(
                f"{where}: field 'color' [a, b] must be Lab a and b within ±{MAX_LAB_AB:g}, "
                f"got {color}"
            )
        return float(color[0]), float(color[1])
    raise UserError(
        f"{where}: field 'color' must be \"#rrggbb\" (sRGB hex) or [a, b] (Lab ab, e.g. "
        f"[40, -20]), got {json.dumps(color)}"
    )


def _parse_dot(entry: object, where: str, *, num_frames: int, frame_size: tuple[int, int]) -> _Dot:
    """One entry of a hints file, checked (see ``load_hints``)."""
    if not isinstance(entry, dict):
        raise UserError(
            f'{where}: expected an object {{"frame", "x", "y", "color"[, "radius"]}}, got '
            f"{_json_type(entry)}"
        )
    unknown = [key for key in entry if key not in _DOT_FIELDS]
    if unknown:
        raise UserError(
            f"{where}: unknown field {unknown[0]!r} (the fields: {', '.join(_DOT_FIELDS)})"
        )
    missing = [key for key in _DOT_FIELDS[:4] if key not in entry]
    if missing:
        raise UserError(f"{where}: missing field {missing[0]!r}")
    frame = entry["frame"]
    if not isinstance(frame, int) or isinstance(frame, bool):
        raise UserError(f"{where}: field 'frame' must be an integer, got {json.dumps(frame)}")
    if not 0 <= frame < num_frames:
        raise UserError(f"{where}: field 'frame' is {frame}, outside {_frames_text(num_frames)}")
    height, width = frame_size
    for name, extent, side in (("x", width, "wide"), ("y", height, "high")):
        value = entry[name]
        if not _is_number(value):
            raise UserError(f"{where}: field {name!r} must be a number, got {json.dumps(value)}")
        if not 0 <= value <= extent - 1:
            raise UserError(
                f"{where}: field {name!r} is {value}, outside the frame (0 … {extent - 1} for "
                f"frames {extent} pixels {side})"
            )
    radius = entry.get("radius", DEFAULT_DOT_RADIUS)
    if not _is_number(radius) or radius < 0:
        raise UserError(
            f"{where}: field 'radius' must be a number of pixels ≥ 0, got {json.dumps(radius)}"
        )
    ab = _parse_color(entry["color"], where)
    return _Dot(frame, float(entry["x"]), float(entry["y"]), ab, float(radius))


def _paint_dot(ab: Tensor, mask: Tensor, dot: _Dot) -> None:
    """Paint ``dot`` into a frame's ab (2×H×W, ab / 110) and mask (1×H×W), in place: the pixels
    whose centre lies within ``radius`` of (x, y), and the pixel nearest (x, y)."""
    height, width = mask.shape[-2:]
    top, bottom = (
        max(0, math.floor(dot.y - dot.radius)),
        min(height, math.ceil(dot.y + dot.radius) + 1),
    )
    left, right = (
        max(0, math.floor(dot.x - dot.radius)),
        min(width, math.ceil(dot.x + dot.radius) + 1),
    )
    rows = torch.arange(top, bottom, dtype=torch.float64)[:, None]
    columns = torch.arange(left, right, dtype=torch.float64)[None, :]
    disk = (columns - dot.x) ** 2 + (rows - dot.y) ** 2 <= dot.radius**2
    disk[math.floor(dot.y + 0.5) - top, math.floor(dot.x + 0.5) - left] = True
    for channel, value in enumerate(dot.ab):
        ab[channel, top:bottom, left:right][disk] = value / AB_SCALE
    mask[0, top:bottom, left:right][disk] = 1.0


def load_hints(
    path: str | Path, *, num_frames: int, frame_size: tuple[int, int]
) -> dict[int, FrameGuidance]:
    """Hint dots from a JSON file: a colour at a point of a frame, as a small disk of hints.

    The file holds a list of dots, each ``{"frame": int, "x": number, "y": number, "color":
    "#rrggbb" | [a, b], "radius": number}``: ``frame`` counted from 0; x, y in pixels of the
    input frame (x to the right, y down, 0 … W − 1 and 0 … H − 1: pixel centres); ``color`` an
    sRGB hex colour (its Lab ab is used, its lightness is not) or [a, b] in Lab units (e.g.
    [40, -20]); ``radius`` in pixels, optional (``DEFAULT_DOT_RADIUS``, 2). A dot paints the
    pixels whose centre is within ``radius`` of (x, y), and always the pixel nearest (x, y)
    (radius 0: one pixel); a later dot of a frame overwrites an earlier one where they overlap.

    Args:
        path: the JSON file.
        num_frames: the video's frames; frame_size: (H, W) of its frames.

    Returns:
        {frame: FrameGuidance} of the frames with dots, in frame order: ab = the dots' ab / 110
        in their disks and 0 elsewhere, mask 1 exactly in the disks; source ``"<path> entry n"``
        (``"entries n, m"`` for several), entries counted from 0 as the list's indices. An empty
        list gives {}.

    Raises:
        UserError (one line, naming the file, the entry and the field): a missing or unreadable
        file, not JSON, not a list, an entry that is not an object, an unknown or missing field,
        a frame outside the video, x / y outside the frame, a bad colour, a negative radius.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"hints {path}: file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"hints {path}: cannot read the file ({error})") from error
    except json.JSONDecodeError as error:
        raise UserError(
            f"hints {path}: not JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from error
    if not isinstance(data, list):
        raise UserError(
            f'hints {path}: expected a JSON list of dots [{{"frame", "x", "y", "color"}}, ...], '
            f"got {_json_type(data)}"
        )
    dots: dict[int, list[tuple[int, _Dot]]] = {}
    for number, entry in enumerate(data):
        dot = _parse_dot(
            entry, f"hints {path} entry {number}", num_frames=num_frames, frame_size=frame_size
        )
        dots.setdefault(dot.frame, []).append((number, dot))
    guides = {}
    for frame, frame_dots in sorted(dots.items()):
        ab = torch.zeros(2, *frame_size)
        mask = torch.zeros(1, *frame_size)
        for _, dot in frame_dots:
            _paint_dot(ab, mask, dot)
        numbers = [str(number) for number, _ in frame_dots]
        entries = f"entry {numbers[0]}" if len(numbers) == 1 else f"entries {', '.join(numbers)}"
        guides[frame] = FrameGuidance(ab=ab, mask=mask, source=f"{path} {entries}")
    return guides


# ---- carrying guidance along a shot ------------------------------------------------------------
def flow_consistency(
    flow: Tensor, flow_back: Tensor, *, alpha: float = 0.01, beta: float = 0.5
) -> Tensor:
    """Where a flow and the flow back agree (Sundaram et al. 2010), on the flow's grid.

    With w = ``flow`` at x and w' = ``flow_back`` sampled at x + w (bilinearly), x is
    consistent when |w + w'|² < alpha·(|w|² + |w'|²) + beta (pixels²) and x + w lies in the
    frame (0 … W − 1, 0 … H − 1).

    Args:
        flow: B×2×H×W, F(i, j) on frame i's grid (pixels; channel 0 x, 1 y).
        flow_back: B×2×H×W, F(j, i) on frame j's grid.

    Returns:
        B×1×H×W in the flow's dtype: 1 where consistent, 0 where not.
    """
    if flow.dim() != 4 or flow.shape[1] != 2 or flow_back.shape != flow.shape:
        raise ValueError(
            f"flow_consistency: flow and flow_back must both be B×2×H×W, got "
            f"{tuple(flow.shape)} and {tuple(flow_back.shape)}"
        )
    flow_back = resample2d(flow_back.to(flow.dtype), flow)
    mismatch = (flow + flow_back).square().sum(dim=1, keepdim=True)
    bound = alpha * (flow.square() + flow_back.square()).sum(dim=1, keepdim=True) + beta
    height, width = flow.shape[-2:]
    xs = torch.arange(width, device=flow.device, dtype=flow.dtype) + flow[:, :1]
    ys = torch.arange(height, device=flow.device, dtype=flow.dtype)[:, None] + flow[:, 1:]
    inside = (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)
    return ((mismatch < bound) & inside).to(flow.dtype)


def carry_pairs(steps: range) -> list[tuple[int, int]]:
    """The flows ``carry_guidance(steps=steps)`` needs: F(i, i − s) and F(i − s, i) for i in
    ``steps`` (s = steps.step). ``range(1, T)`` (frame 0 to T − 1 of a clip): F(i, i − 1) and
    F(i − 1, i), i = 1 … T − 1, of which ``TCVCNet.propagation_pairs(T)`` lacks F(T − 1, T − 2)
    and F(0, 1)."""
    if not isinstance(steps, range):
        raise TypeError(f"steps must be a range of frames, got {type(steps).__name__}")
    pairs = []
    for i in steps:
        pairs += [(i, i - steps.step), (i - steps.step, i)]
    return list(dict.fromkeys(pairs))


def carry_guidance(
    ab: Tensor,
    mask: Tensor,
    flows: Mapping[tuple[int, int], Tensor],
    *,
    steps: range,
    decay: float = 0.98,
    fb_alpha: float = 0.01,
    fb_beta: float = 0.5,
    min_confidence: float = 0.05,
) -> tuple[Tensor, Tensor]:
    """Guidance carried along a shot by optical flow, frame by frame.

    Each step i of ``steps`` (s = steps.step: 1 forward in time, −1 backward) brings the
    guidance from frame i − s to frame i: ab·mask and mask warped with
    ``resample2d(x, F(i, i − s))`` (ab is then their ratio: the hint's colour, not diluted by the
    unhinted pixels a bilinear sample reaches across a hint's edge); the mask multiplied by
    ``flow_consistency(F(i, i − s), F(i − s, i))`` (0 where the flows disagree, at occlusions
    and flow errors, and where the sample falls outside the frame) and by ``decay``^|s| (the
    confidence falls with the distance carried: decay^frames); a mask below ``min_confidence``
    set to 0. ab is 0 where the mask is.

    Args:
        ab: B×2×h×w ab / 110, 0 where there is no hint, on frame steps[0] − s's grid (the
            working size; ``range(1, T)``: frame 0's guidance carried to frame T − 1).
        mask: B×1×h×w in [0, 1].
        flows: {(a, b): B×2×h×w F(a, b)} holding ``carry_pairs(steps)``.
        decay: the mask's factor per frame carried, in [0, 1].
        fb_alpha, fb_beta: the consistency test's bounds (Sundaram et al.: 0.01 and 0.5 px²).
        min_confidence: masks below it become 0.

    Returns:
        (ab B×2×h×w, mask B×1×h×w) on frame steps[−1]'s grid; the inputs as they are when
        ``steps`` is empty.
    """
    if ab.dim() != 4 or ab.shape[1] != 2 or tuple(mask.shape) != (ab.shape[0], 1, *ab.shape[2:]):
        raise ValueError(
            f"carry_guidance: ab must be B×2×h×w and mask B×1×h×w, got {tuple(ab.shape)} and "
            f"{tuple(mask.shape)}"
        )
    if not 0 <= decay <= 1:
        raise ValueError(f"carry_guidance: decay must be in [0, 1], got {decay}")
    pairs = carry_pairs(steps)
    missing = [pair for pair in pairs if pair not in flows]
    if missing:
        raise ValueError(f"carry_guidance: flows lack the pairs {missing} (see carry_pairs)")
    expected = (ab.shape[0], 2, *ab.shape[2:])
    wrong = {
        pair: tuple(flows[pair].shape) for pair in pairs if tuple(flows[pair].shape) != expected
    }
    if wrong:
        raise ValueError(f"carry_guidance: flows must be B×2×h×w = {expected}, got {wrong}")
    factor = decay ** abs(steps.step)
    for i in steps:
        previous = i - steps.step
        flow = flows[(i, previous)].to(device=ab.device, dtype=ab.dtype)
        flow_back = flows[(previous, i)].to(device=ab.device, dtype=ab.dtype)
        warped_mask = resample2d(mask, flow)
        ab = _unpremultiply(resample2d(ab * mask, flow), warped_mask)
        mask = warped_mask * flow_consistency(flow, flow_back, alpha=fb_alpha, beta=fb_beta)
        mask = mask * factor
        mask = torch.where(mask >= min_confidence, mask, 0.0)
        ab = torch.where(mask > 0, ab, 0.0)
    return ab, mask
