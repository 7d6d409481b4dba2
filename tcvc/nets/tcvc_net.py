"""TCVCNet: IDC anchors, FlowNet2 flows and the propagation head, composed (TCVC_IDC).

A clip of T frames (T ≥ 2) has anchors 0 and T−1, coloured by the frozen IDC. Their 128-channel
features are propagated through the clip along FlowNet2 flows — backward from T−1, then forward
from 0, fusing both directions at every frame with the trainable head (``tcvc.nets.head``) — and
IDC's frozen 1×1 output head turns each refined feature into ab.

Two paths give the same ab (to float32 round-off):

- ``net(L)``: the exact path, the original ``TCVC_IDC`` forward step for step: a frame-by-frame
  loop, one FlowNet2 call per flow at batch B, E and R recomputed inside every step.
- ``net.colorize_clip(L)`` (inference) and ``net.propagate(L, net.compute_flows(L, pairs))``
  (training): every flow computed once and the flows of a clip batched through FlowNet2, IDC run
  once on both anchors, E and R(b) batched over frames; the recurrent forward steps remain.
  Runs under ``torch.autocast`` (bf16) and with compiled submodules (``compile_for_inference``).

Notation: F(a, b) is the flow from frame a's grid to frame b (FlowNet2(image a, image b), images
``L + 0.5`` repeated to 3 channels); ``warp(x, F(a, b))`` brings x from frame b onto frame a.
A flows mapping is keyed by the pair ``(a, b)``.

Anchor hints (optional colour points for IDC on the two anchors, e.g. SIGGRAPH'17's training
hints, ``tcvc.nets.hints``): ``anchor_hints=Hints(ab, mask)`` with ab B×2×2×H×W (ab / 110, 0
where there is no hint) and mask B×2×1×H×W (1 at a hinted pixel, 0 elsewhere); index 0 of dim 1
is frame 0, index 1 frame T−1. Without them (``None``) IDC runs as the original calls it, with
zero hints: the output is bit for bit that of zero hints.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from ops import resample2d
from tcvc.nets.checkpoints import (
    CheckpointError,
    is_original_layout,
    load_backbone,
    load_file,
    load_original,
    load_strict,
    state_dict_of,
)
from tcvc.nets.flownet2 import SIZE_MULTIPLE, FlowNet2
from tcvc.nets.head import PropagationHead
from tcvc.nets.hints import Hints
from tcvc.nets.idc import IDC

__all__ = ["BACKBONES", "TCVCNet", "build_tcvc_net", "flow_image"]

# The frozen submodules (state-dict prefixes); checkpoints of runs that load them from files
# store only their paths.
BACKBONES = ("flownet", "idc")
# torch.compile modes that capture CUDA graphs
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")
Pair = tuple[int, int]


def flow_image(L: Tensor) -> Tensor:
    """B×1×H×W normalised L -> the B×3×H×W image in [0, 1] TCVC feeds FlowNet2 (L + 0.5)."""
    return L.repeat(1, 3, 1, 1) + 0.5


class TCVCNet(nn.Module):
    """TCVC: B×T×1×H×W normalised L -> B×T×2×H×W ab / 110 (frames 0 and T−1 are anchors).

    Args:
        idc: the anchor colouriser: ``idc(L)`` B×1×H×W -> (ab B×2×H×W, feature B×C×H×W), with a
            ``model_out`` module (feature -> ab). Default: ``IDC()`` (C = 128).
        flownet: ``flownet(image1, image2)`` B×3×H×W in [0, 1] -> B×2×H×W pixel flow from image1's
            grid to image2. Default: ``FlowNet2()``.
        head: the trainable propagation head. Default: ``PropagationHead()``.
        frozen_backbones: keep ``idc`` and ``flownet`` without gradients and in eval mode (also
            after ``.train()``), as the original trains only the head.
        flownet_fp32: under ``torch.autocast`` (bf16), run FlowNet2 in float32 all the same
            (``estimate_flow``): its last conv then gives the flow at full precision instead of
            bf16 steps of 0.125–0.25 px at 16–64 px of motion; the heads stay bf16. Also an
            attribute to set on a loaded network.

    H and W must be multiples of ``SIZE_MULTIPLE`` (64, FlowNet2's); ``tcvc.inference`` resizes or
    pads other sizes.
    State-dict names: ``head.*``, ``idc.*``, ``flownet.*`` (``tcvc.nets.checkpoints`` maps the
    original ``80000_G.pth`` names onto them).
    """

    def __init__(
        self,
        *,
        idc: nn.Module | None = None,
        flownet: nn.Module | None = None,
        head: PropagationHead | None = None,
        frozen_backbones: bool = True,
        flownet_fp32: bool = False,
    ) -> None:
        super().__init__()
        self.flownet_fp32 = flownet_fp32
        self.head = head if head is not None else PropagationHead()
        self.idc = idc if idc is not None else IDC()
        self.flownet = flownet if flownet is not None else FlowNet2()
        self.frozen_backbones = frozen_backbones
        # {"flownet" / "idc": the file it was loaded from}, set by from_pretrained
        self.backbone_sources: dict[str, str] = {}
        self.head_cuda_graphs = False  # set by compile_for_inference(mode="reduce-overhead")
        if frozen_backbones:
            self.freeze_backbones()

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        *,
        flownet: str | Path | None = None,
        idc: str | Path | None = None,
        map_location: str | torch.device = "cpu",
        backbones: Mapping[str, nn.Module] | None = None,
    ) -> TCVCNet:
        """A TCVCNet with weights from files, loaded strictly (``weights_only=True``).

        Args:
            path: a whole network: the released ``80000_G.pth`` (original names), our own plain
                state dict, or a Lightning ``.ckpt`` of ``tcvc.models.TCVCModule``. A ``.ckpt`` of
                a run whose backbones came from files stores only the head (``BACKBONES``
                are left out, see ``TCVCModule.on_save_checkpoint``): its backbones come from
                ``flownet=`` / ``idc=``, or else from the paths the run recorded
                (``checkpoint["backbone_sources"]``).
            flownet: ``FlowNet2_checkpoint.pth.tar`` (NVIDIA's).
            idc: ``siggraph17-df00044c.pth``. With backbone files only, the head keeps its fresh
                (PyTorch default) initialisation.
            backbones: ``{"idc": module, "flownet": module}`` to build the network with instead
                of ``IDC()`` / ``FlowNet2()`` (a config's choice; the weights are loaded into them).

        Raises ``CheckpointError`` naming missing / unexpected keys or bad shapes, the file that
        cannot be read, or a backbone given twice (in ``path`` and as a file);
        ``FileNotFoundError``. The network is returned in eval mode; ``net.backbone_sources``
        names the file each backbone was loaded from (``{}`` for random backbones), which is
        what a training run's head-only checkpoints record.
        """
        net = cls(**(backbones or {}))
        files = {"flownet": flownet, "idc": idc}
        if path is not None:
            source = str(path)
            loaded = load_file(path, map_location=map_location)
            state = state_dict_of(loaded, source=source)
            if is_original_layout(state):
                if any(files.values()):
                    raise CheckpointError(
                        f"{source} is a whole original TCVC checkpoint (backbones included); do "
                        "not also give backbone files"
                    )
                load_original(net, state, source=source)
                net.backbone_sources = dict.fromkeys(BACKBONES, source)
                return net.eval()
            recorded = loaded.get("backbone_sources", {}) if isinstance(loaded, Mapping) else {}
            for name in BACKBONES:
                if any(k.startswith(f"{name}.") for k in state):
                    if files[name] is not None:
                        raise CheckpointError(
                            f"{source} holds its own {name} weights; do not also give a file "
                            "for them"
                        )
                    net.backbone_sources[name] = source
                else:  # a head-only checkpoint: this backbone comes from its file, below
                    files[name] = files[name] or _recorded_backbone(source, name, recorded)
                    module_state = getattr(net, name).state_dict()
                    state.update((f"{name}.{k}", v) for k, v in module_state.items())
            load_strict(net, state, source=source)
        for name, file in files.items():
            if file is not None:
                # its own file, 80000_G.pth or a project checkpoint that holds it
                load_backbone(file, name, getattr(net, name), map_location=map_location)
                net.backbone_sources[name] = str(file)
        return net.eval()

    def freeze_backbones(self) -> None:
        """No gradients for ``idc`` and ``flownet``, and eval mode (kept by ``train()``)."""
        self.frozen_backbones = True
        for module in (self.idc, self.flownet):
            module.requires_grad_(False)
            module.eval()

    def train(self, mode: bool = True) -> TCVCNet:
        super().train(mode)
        if self.frozen_backbones:
            self.idc.eval()
            self.flownet.eval()
        return self

    def compile_for_inference(
        self, *, modules: Iterable[str] = ("idc", "flownet", "head"), **compile_kwargs
    ) -> TCVCNet:
        """``torch.compile`` the named submodules in place (``nn.Module.compile``).

        The recurrent loop stays in Python; each compiled module sees the same shapes every step
        of a video. With ``mode="reduce-overhead"`` (CUDA graphs) a compiled head replays one
        graph per step, whose output buffer the next replay overwrites: ``propagate`` then
        copies each step's output out of it (``head_cuda_graphs``).
        """
        for name in modules:
            getattr(self, name).compile(**compile_kwargs)
        if "head" in modules:
            self.head_cuda_graphs = compile_kwargs.get("mode") in CUDA_GRAPH_MODES
        return self

    def head_step(self, **inputs: Tensor) -> Tensor:
        """One recurrent step of the head (``PropagationHead.forward``'s inputs) -> B×C×H×W.

        Under CUDA graphs (``head_cuda_graphs``) each call starts a new graph step and its output
        is copied out of the graph's buffer, which the next step reuses."""
        if not self.head_cuda_graphs:
            return self.head(**inputs)
        torch.compiler.cudagraph_mark_step_begin()
        return self.head(**inputs).clone()

    # ---- building blocks -----------------------------------------------------------------------
    def estimate_flow(self, L_from: Tensor, L_to: Tensor) -> Tensor:
        """F(a, b): B×1×H×W normalised L of frames a and b -> B×2×H×W flow (pixels) on a's grid.

        With ``flownet_fp32`` under autocast, FlowNet2 runs outside it, in float32."""
        image_from, image_to = flow_image(L_from), flow_image(L_to)
        device_type = image_from.device.type
        if self.flownet_fp32 and torch.is_autocast_enabled(device_type):
            with torch.autocast(device_type, enabled=False):
                return self.flownet(image_from.float(), image_to.float())
        return self.flownet(image_from, image_to)

    @staticmethod
    def propagation_pairs(num_frames: int) -> list[Pair]:
        """The flows propagation needs: backward F(i, i+1), forward F(i, i−1), i = 1 … T−2."""
        if num_frames < 2:
            raise ValueError(f"a clip needs at least 2 frames (2 anchors), got {num_frames}")
        inner = range(1, num_frames - 1)
        return [(i, i + 1) for i in inner] + [(i, i - 1) for i in inner]

    # ---- the exact path ------------------------------------------------------------------------
    def forward(self, L: Tensor, *, anchor_hints: Hints | None = None) -> Tensor:
        """The exact path: the original TCVC_IDC forward, frame by frame.

        Args:
            L: B×T×1×H×W, (L − 50) / 100, T ≥ 2, H and W multiples of ``SIZE_MULTIPLE``.
            anchor_hints: ``Hints`` for IDC on frames 0 and T−1 (module docstring); None: none.

        Returns:
            B×T×2×H×W ab / 110 in (−1, 1); frames 0 and T−1 are IDC's own predictions.
        """
        _check_clip(L)
        _check_anchor_hints(anchor_hints, L)
        frames = L.unbind(dim=1)
        last = len(frames) - 1
        ab_first, forward_feature = self.idc(frames[0], **_idc_hints(anchor_hints, anchor=0))
        ab_last, backward_feature = self.idc(frames[last], **_idc_hints(anchor_hints, anchor=1))

        backward = {last: backward_feature}
        for i in range(last - 1, 0, -1):
            backward[i] = resample2d(backward[i + 1], self.estimate_flow(frames[i], frames[i + 1]))

        out = [ab_first]
        for i in range(1, last):
            warped_forward = resample2d(
                forward_feature, self.estimate_flow(frames[i], frames[i - 1])
            )
            forward_feature = self.head(
                context=self.head.context(frames[i - 1], frames[i], frames[i + 1]),
                backward=backward[i],
                warped_forward=warped_forward,
                reduced_backward_next=self.head.reduce(backward[i + 1]),
                reduced_forward_prev=self.head.reduce(forward_feature),
            )
            out.append(self.idc.model_out(forward_feature))
        out.append(ab_last)
        return torch.stack(out, dim=1)

    # ---- the efficient path --------------------------------------------------------------------
    def compute_flows(
        self, L: Tensor, pairs: Iterable[Pair], *, flow_batch: int | None = 8
    ) -> dict[Pair, Tensor]:
        """F(a, b) for every pair, each computed once, pairs batched through FlowNet2.

        Args:
            L: B×T×1×H×W normalised L.
            pairs: (a, b) frame indices; duplicates are computed once.
            flow_batch: most image pairs in one FlowNet2 call (clip pairs × B); None: all at once.

        Returns:
            {(a, b): B×2×H×W flow in pixels on frame a's grid}.
        """
        _check_clip(L)
        unique = list(dict.fromkeys((int(a), int(b)) for a, b in pairs))
        num_frames = L.shape[1]
        bad = [p for p in unique if not all(0 <= i < num_frames for i in p)]
        if bad:
            raise ValueError(f"flow pairs {bad} are outside the clip's frames 0 … {num_frames - 1}")
        if not unique:
            return {}
        if flow_batch is not None and flow_batch < 1:
            raise ValueError(f"flow_batch must be ≥ 1 or None, got {flow_batch}")
        batch = L.shape[0]
        # Pair-major order: rows p·B … p·B + B − 1 hold pair p for the B clips.
        sources = L[:, [a for a, _ in unique]].transpose(0, 1).flatten(0, 1)
        targets = L[:, [b for _, b in unique]].transpose(0, 1).flatten(0, 1)
        step = sources.shape[0] if flow_batch is None else flow_batch
        flows = torch.cat(
            [
                self.estimate_flow(sources[start : start + step], targets[start : start + step])
                for start in range(0, sources.shape[0], step)
            ]
        ).unflatten(0, (len(unique), batch))
        return dict(zip(unique, flows.unbind(0), strict=True))

    def propagate(
        self, L: Tensor, flows: Mapping[Pair, Tensor], *, anchor_hints: Hints | None = None
    ) -> Tensor:
        """The head's propagation given the flows: B×T×1×H×W -> B×T×2×H×W ab / 110.

        ``flows`` must hold at least ``propagation_pairs(T)``, each B×2×H×W (``compute_flows``).
        ``anchor_hints``: ``Hints`` for IDC on frames 0 and T−1 (module docstring); None: none.
        Differentiable in the head's weights (training); equals ``forward`` to round-off.
        """
        _check_clip(L)
        _check_anchor_hints(anchor_hints, L)
        batch, num_frames = L.shape[:2]
        last = num_frames - 1
        missing = [p for p in self.propagation_pairs(num_frames) if p not in flows]
        if missing:
            raise ValueError(f"propagate: flows lack the pairs {missing} (see propagation_pairs)")
        ab_anchors, feature_anchors = self.idc(
            torch.cat([L[:, 0], L[:, last]]), **_idc_hints(anchor_hints, anchor=None)
        )
        ab_first, ab_last = ab_anchors.chunk(2)
        if num_frames == 2:
            return torch.stack([ab_first, ab_last], dim=1)
        forward_feature, backward_last = feature_anchors.chunk(2)

        backward = [backward_last]  # b[T−1], b[T−2], …, b[1]
        for i in range(last - 1, 0, -1):
            backward.append(resample2d(backward[-1], flows[(i, i + 1)]))
        backward = backward[::-1]  # index i−1 holds b[i], i = 1 … T−1
        reduced_backward = self.head.reduce(torch.cat(backward[1:])).unflatten(0, (last - 1, batch))
        l_features = self.head.l_features(L.flatten(0, 1)).unflatten(0, (batch, num_frames))

        refined = []
        for i in range(1, last):
            warped_forward = resample2d(forward_feature, flows[(i, i - 1)])
            forward_feature = self.head_step(
                context=l_features[:, i - 1 : i + 2].flatten(1, 2),
                backward=backward[i - 1],
                warped_forward=warped_forward,
                reduced_backward_next=reduced_backward[i - 1],
                reduced_forward_prev=self.head.reduce(forward_feature),
            )
            refined.append(forward_feature)
        ab_inner = self.idc.model_out(torch.cat(refined)).unflatten(0, (last - 1, batch))
        return torch.cat(
            [ab_first[:, None], ab_inner.transpose(0, 1).to(ab_first.dtype), ab_last[:, None]],
            dim=1,
        )

    @torch.no_grad()
    def colorize_clip(
        self, L: Tensor, *, flow_batch: int | None = 8, anchor_hints: Hints | None = None
    ) -> Tensor:
        """The efficient inference path: same input, output and values as ``net(L)`` (and
        ``net(L, anchor_hints=...)``), no grads.

        2(T−2) FlowNet2 pairs per clip, batched ``flow_batch`` at a time; IDC once on both
        anchors. Works under ``torch.autocast`` and after ``compile_for_inference``.
        """
        _check_clip(L)
        _check_anchor_hints(anchor_hints, L)
        flows = self.compute_flows(L, self.propagation_pairs(L.shape[1]), flow_batch=flow_batch)
        return self.propagate(L, flows, anchor_hints=anchor_hints)


def _recorded_backbone(source: str, name: str, recorded: Mapping[str, str]) -> str:
    """The backbone file a head-only checkpoint names, if it exists here; else a clear error."""
    path = recorded.get(name)
    if path is not None and Path(path).is_file():
        return path
    where = f" (it was trained with {path}, not found here)" if path else ""
    raise CheckpointError(
        f"{source} stores only the trained head, not the frozen {name} weights{where}: "
        f"give the file with model.{name}_weights=PATH (TCVCNet.from_pretrained({name}=...))"
    )


def _idc_hints(hints: Hints | None, *, anchor: int | None) -> dict[str, Tensor]:
    """IDC's hint arguments for anchor 0 or 1, or (``anchor=None``) for both anchors batched as
    ``propagate`` runs them (frame 0's B images, then frame T−1's); ``{}`` without hints, so a
    colouriser without hint inputs is called as before."""
    if hints is None:
        return {}
    ab, mask = hints
    if anchor is None:
        return {
            "ab_hint": torch.cat([ab[:, 0], ab[:, 1]]),
            "hint_mask": torch.cat([mask[:, 0], mask[:, 1]]),
        }
    return {"ab_hint": ab[:, anchor], "hint_mask": mask[:, anchor]}


def _check_anchor_hints(hints: Hints | None, L: Tensor) -> None:
    if hints is None:
        return
    if not isinstance(hints, tuple) or len(hints) != 2:
        raise ValueError(
            f"anchor_hints must be Hints(ab, mask) (a pair of tensors), got {type(hints).__name__}"
        )
    batch, _, _, height, width = L.shape
    for name, tensor, channels in (("ab", hints[0], 2), ("mask", hints[1], 1)):
        expected = (batch, 2, channels, height, width)
        if not isinstance(tensor, Tensor) or tuple(tensor.shape) != expected:
            seen = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
            raise ValueError(
                f"anchor_hints.{name} must be B×2×{channels}×H×W = {expected} (anchors 0 and "
                f"T−1) for L of shape {tuple(L.shape)}, got {seen}"
            )


def _check_clip(L: Tensor) -> None:
    if L.dim() != 5 or L.shape[2] != 1:
        raise ValueError(f"L must be B×T×1×H×W, got shape {tuple(L.shape)}")
    if L.shape[1] < 2:
        raise ValueError(f"a clip needs at least 2 frames (2 anchors), got T = {L.shape[1]}")
    height, width = L.shape[-2:]
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ValueError(
            f"H and W must be multiples of {SIZE_MULTIPLE} (FlowNet2), got {height}×{width}; "
            "tcvc.inference.run_at_resolution resizes or pads other sizes"
        )


RANDOM_BACKBONES = """
{names} weights not given: the backbone(s) are RANDOM.
Flows and anchor colours are meaningless, so the colours of this network are too; the run only
shows the pipeline end to end. The original files (see README, "Pretrained weights"):
  model.flownet_weights=FlowNet2_checkpoint.pth.tar    (NVIDIA/flownet2-pytorch)
  model.idc_weights=siggraph17-df00044c.pth            (richzhang/colorization, SIGGRAPH'17)
  or model.tcvc_weights=80000_G.pth                     (the released TCVC model, all of it)"""


def build_tcvc_net(
    *,
    flownet_weights: str | Path | None = None,
    idc_weights: str | Path | None = None,
    tcvc_weights: str | Path | None = None,
    idc: nn.Module | None = None,
    flownet: nn.Module | None = None,
) -> TCVCNet:
    """The network a config asks for: a whole checkpoint, or backbone files and a fresh head.

    ``idc`` / ``flownet``: the backbone modules (``conf/model/*.yaml`` choose them; default
    ``IDC()`` and ``FlowNet2()``), their weights loaded from the files. Without weights for a
    backbone, that backbone stays random: a warning says so (fine for tests, useless for
    colourisation).
    """
    backbones = {
        name: module for name, module in (("idc", idc), ("flownet", flownet)) if module is not None
    }
    if tcvc_weights is not None:
        return TCVCNet.from_pretrained(
            tcvc_weights, flownet=flownet_weights, idc=idc_weights, backbones=backbones
        )
    random = [
        name
        for name, weights in (("FlowNet2", flownet_weights), ("IDC", idc_weights))
        if weights is None
    ]
    if random:
        warnings.warn(
            RANDOM_BACKBONES.format(names=" and ".join(random)), UserWarning, stacklevel=2
        )
    return TCVCNet.from_pretrained(flownet=flownet_weights, idc=idc_weights, backbones=backbones)
