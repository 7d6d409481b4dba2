"""Inference: colouring whole videos of any size and length with the network.

- ``options``: ``InferenceOptions``, the ``inference`` config group (interval, sampling,
  resolution, precision, device, gamut, scene cuts, lightness);
- ``resolution``: the working resolution (``network_size``, ``run_at_resolution``);
- ``clips``: clips with shared anchors (``anchor_clips``, ``ClipStream``, ``stream_ab``,
  ``colorize_frames``) and scene cuts (``SceneCutDetector``);
- ``lightness``: the L the network sees (``frame_to_L``);
- ``guidance``: colour references and hint dots (``load_references``, ``load_hints``), carried
  along a shot (``carry_guidance``);
- ``segments``: a video in runs of whole clips (resumable, parallel runs);
- ``output``: L and ab of every pass to the uint8 frame (``join_passes``, the gamut);
- ``pipeline``: ``colorize_video``, the one path eval.py and colorize.py colour through.
"""

from tcvc.inference.clips import (
    ClipStream,
    KnownCuts,
    SceneCutDetector,
    anchor_clips,
    colorize_frames,
    stream_ab,
)
from tcvc.inference.guidance import (
    FrameGuidance,
    guidance_within,
    load_hints,
    load_references,
    merge_guidance,
    reference_files,
)
from tcvc.inference.lightness import LIGHTNESS, Lightness, frame_to_L, frames_to_L, is_gray_frame
from tcvc.inference.options import InferenceOptions, parse_resolution, pick_device
from tcvc.inference.output import GAMUTS, Gamut, join_passes, lab_to_rgb_in_gamut
from tcvc.inference.pipeline import (
    NetFn,
    NetworkFn,
    colorize_video,
    load_net,
    network_fn,
)
from tcvc.inference.resolution import Resolution, network_size, run_at_resolution

__all__ = [
    "GAMUTS",
    "LIGHTNESS",
    "ClipStream",
    "FrameGuidance",
    "Gamut",
    "InferenceOptions",
    "KnownCuts",
    "Lightness",
    "NetFn",
    "NetworkFn",
    "Resolution",
    "SceneCutDetector",
    "anchor_clips",
    "colorize_frames",
    "colorize_video",
    "frame_to_L",
    "frames_to_L",
    "guidance_within",
    "is_gray_frame",
    "join_passes",
    "lab_to_rgb_in_gamut",
    "load_hints",
    "load_net",
    "load_references",
    "merge_guidance",
    "network_fn",
    "network_size",
    "parse_resolution",
    "pick_device",
    "reference_files",
    "run_at_resolution",
    "stream_ab",
]
