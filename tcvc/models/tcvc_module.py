"""The LightningModule: TCVCNet (frozen IDC and FlowNet2, trainable head) trained with SRL."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch import nn

from tcvc import metrics
from tcvc.color import lab_normalized_to_rgb, rgb_float_to_uint8
from tcvc.data.flow_cache import build_flow_cache, weights_fingerprint
from tcvc.losses import TCVCLoss, srl_flow_pairs
from tcvc.nets import TCVCNet, build_tcvc_net
from tcvc.nets.hints import Hints, HintSampler

log = logging.getLogger(__name__)

__all__ = ["TCVCModule", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; training stops instead of writing garbage checkpoints."""


def clip_metrics(L: torch.Tensor, ab: torch.Tensor, ab_target: torch.Tensor | None) -> dict:
    """Validation metrics of a batch of clips, averaged over the clips: ``val/cdc`` (flicker of the
    colour distribution; dilations 1, 2, 4 that fit the clip) and, with ground truth, ``val/psnr``
    (RGB, 0–255). L B×T×1×H×W, ab and ab_target B×T×2×H×W, normalised."""
    num_frames = L.shape[1]
    dilations = [d for d in (1, 2, 4) if d < num_frames]
    pred = rgb_float_to_uint8(lab_normalized_to_rgb(L.float(), ab.float()))
    values = {"val/cdc": [metrics.cdc(clip, dilations=dilations) for clip in pred]}
    if ab_target is not None:
        gt = rgb_float_to_uint8(lab_normalized_to_rgb(L.float(), ab_target.float()))
        values["val/psnr"] = [metrics.psnr(p, g) for p, g in zip(pred, gt, strict=True)]
    return {k: sum(v) / len(v) for k, v in values.items()}


class TCVCModule(pl.LightningModule):
    """Trains the propagation head of a TCVCNet with self-regularisation (and optional pixel) loss.

    Batches are dicts from `tcvc.data`: `L` B×T×1×H×W = (L − 50)/100, `ab` B×T×2×H×W = ab/110.
    The backbones (IDC, FlowNet2) stay frozen and in eval mode; every flow a step needs (the
    propagation's and the loss's) is computed once, without gradients, the clip's pairs batched
    through FlowNet2 (``TCVCNet.compute_flows``, 8 image pairs a call).

    With ``hints`` enabled, each training step gives IDC on the two anchors colour hints drawn
    from the batch's ground truth (``batch["ab"]``) with SIGGRAPH'17's sampling
    (``tcvc.nets.hints.HintSampler``, torch's global random numbers: ``seed`` makes them
    reproducible); off by default, the released TCVC's training (zero hints). Validation and
    ``forward`` colour without hints, as inference does.

    Args mirror `conf/model/tcvc_idc.yaml`:
        loss: the training objective (`tcvc.losses.TCVCLoss`).
        optimizer / scheduler: partials from Hydra (`_partial_: true`), given the head's parameters
            / the optimizer.
        flownet_weights / idc_weights / tcvc_weights: the original files
            (``FlowNet2_checkpoint.pth.tar``, ``siggraph17-df00044c.pth``, ``80000_G.pth``);
            without them the backbones are random (a loud warning says so).
        idc / flownet: the backbone modules (the config's ``_target_``s; default ``IDC()`` and
            ``FlowNet2()``), loaded from the files above.
        flownet_fp32: FlowNet2 in float32 under bf16 autocast (``TCVCNet.flownet_fp32``).
        hints: the training hints' sampler (``model.hints``); None or ``enabled=False``: none.
        net: a ready TCVCNet (tests); if given, the weight paths and backbones are ignored.
    """

    def __init__(
        self,
        *,
        loss: TCVCLoss | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        flownet_weights: str | None = None,
        idc_weights: str | None = None,
        tcvc_weights: str | None = None,
        idc: nn.Module | None = None,
        flownet: nn.Module | None = None,
        flownet_fp32: bool = False,
        hints: HintSampler | None = None,
        net: TCVCNet | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(
            ignore=["net", "loss", "optimizer", "scheduler", "idc", "flownet", "hints"],
            logger=False,
        )
        if net is None:
            net = build_tcvc_net(
                flownet_weights=flownet_weights,
                idc_weights=idc_weights,
                tcvc_weights=tcvc_weights,
                idc=idc,
                flownet=flownet,
            )
        net.flownet_fp32 = flownet_fp32
        self.net = net
        self.loss = loss if loss is not None else TCVCLoss()
        self.hints = hints
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self._batch_started = 0.0

    # ---- the frozen backbones stay in eval mode whatever Lightning does -----------------------
    def train(self, mode: bool = True) -> TCVCModule:
        super().train(mode)
        self.net.freeze_backbones()
        return self

    # ---- checkpoints: the frozen backbones loaded from files are stored by path ---------------
    @property
    def backbone_sources(self) -> dict[str, str]:
        """{"flownet" / "idc": the file it was loaded from} for the backbones that came from files
        (a backbone file, ``80000_G.pth``, or the checkpoint a fine-tuning run started from):
        ``TCVCNet.backbone_sources``, stored as ``checkpoint["backbone_sources"]``. A backbone
        missing from it is random."""
        return dict(getattr(self.net, "backbone_sources", {}))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Leave out the frozen backbones that came from files (~800 MB), keep their paths.

        A checkpoint then holds the head (~7 MB), the optimizer and the run's config;
        ``TCVCNet.from_pretrained`` and ``on_load_checkpoint`` take the backbones from the files.
        Random backbones (no files) are kept: nothing else could restore them.
        """
        sources = self.backbone_sources
        prefixes = tuple(f"net.{name}." for name in sources)
        if prefixes:
            state = checkpoint["state_dict"]
            for key in [k for k in state if k.startswith(prefixes)]:
                del state[key]
        checkpoint["backbone_sources"] = sources

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Put this module's own (file-loaded) backbone weights back before strict loading."""
        state = checkpoint["state_dict"]
        for name in checkpoint.get("backbone_sources", {}):
            if not any(k.startswith(f"net.{name}.") for k in state):
                module_state = getattr(self.net, name).state_dict()
                state.update((f"net.{name}.{k}", v) for k, v in module_state.items())

    def flow_pairs(self, num_frames: int) -> list[tuple[int, int]]:
        """Every (from, to) frame pair a training step needs, each once."""
        pairs = dict.fromkeys(self.net.propagation_pairs(num_frames))
        pairs.update(dict.fromkeys(srl_flow_pairs(num_frames, self.loss.srl_steps)))
        return list(pairs)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        """L B×T×1×H×W → ab B×T×2×H×W (the efficient inference path)."""
        return self.net.colorize_clip(L)

    def on_fit_start(self) -> None:
        """With ``data.flow_cache=true``: compute the cached flows of every video once (rank 0)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if not getattr(datamodule, "flow_cache", False):
            return
        if self.trainer.is_global_zero:
            build_flow_cache(
                datamodule.cached_videos(),
                self.net.estimate_flow,
                offsets=datamodule.flow_offsets,
                device=self.device,
                fingerprint=weights_fingerprint(self.net.flownet),
            )
        self.trainer.strategy.barrier("flow cache")

    def _flows(self, batch: dict) -> dict[tuple[int, int], torch.Tensor]:
        """Every flow the step needs: from the batch (flow cache) and, for the rest, FlowNet2."""
        L = batch["L"]
        flows: dict[tuple[int, int], torch.Tensor] = {}
        if "flows" in batch:
            pairs = [tuple(pair) for pair in batch["flow_pairs"][0].tolist()]
            flows = dict(zip(pairs, batch["flows"].unbind(1), strict=True))
        missing = [pair for pair in self.flow_pairs(L.shape[1]) if pair not in flows]
        if missing:
            with torch.no_grad():
                flows.update(self.net.compute_flows(L, missing))
        return flows

    def anchor_hints(self, batch: dict) -> Hints | None:
        """Training hints for the anchors, drawn from ``batch["ab"]`` (B×T×2×H×W ab / 110):
        ``Hints`` B×2×2×H×W, B×2×1×H×W (frames 0 and T−1), or None when hints are off."""
        if self.hints is None or not self.hints.enabled:
            return None
        if batch.get("ab") is None:
            raise ValueError(
                "model.hints.enabled=true draws hints from the clips' colours, but the batch has "
                "no ab (ground truth)"
            )
        anchors = batch["ab"][:, [0, -1]]  # B×2×2×H×W
        hints = self.hints(anchors.flatten(0, 1))
        return Hints(*(t.unflatten(0, anchors.shape[:2]) for t in hints))

    def _step(
        self, batch: dict, *, anchor_hints: Hints | None = None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        L = batch["L"]
        flows = self._flows(batch)
        ab = self.net.propagate(L, flows, anchor_hints=anchor_hints)
        terms = self.loss(ab, L, flows, ab_target=batch.get("ab"))
        return terms, ab

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        self._batch_started = time.perf_counter()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms, _ = self._step(batch, anchor_hints=self.anchor_hints(batch))
        loss = terms["loss"]
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"the training loss is {loss.item()} at step {self.global_step} "
                f"({', '.join(f'{k}={v.item():.4g}' for k, v in terms.items())}); stopping. "
                "Lower model.optimizer.lr or check the data."
            )
        batch_size = batch["L"].shape[0]
        logged = {f"train/{k}": v.detach() for k, v in terms.items() if k != "loss"}
        self.log_dict(logged, batch_size=batch_size)
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=batch_size)
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.log("train/lr", lr, batch_size=batch_size)
        return loss

    def on_train_batch_end(self, outputs, batch: dict, batch_idx: int) -> None:
        elapsed = time.perf_counter() - self._batch_started
        if elapsed > 0:
            self.log(
                "train/clips_per_s",
                batch["L"].shape[0] / elapsed,
                prog_bar=True,
                batch_size=batch["L"].shape[0],
            )

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        terms, ab = self._step(batch)
        batch_size = batch["L"].shape[0]
        self.log_dict(
            {f"val/{k}": v for k, v in terms.items()}, batch_size=batch_size, sync_dist=True
        )
        self.log_dict(
            clip_metrics(batch["L"], ab, batch.get("ab")), batch_size=batch_size, sync_dist=True
        )
        return {"ab": ab}

    def configure_optimizers(self):
        parameters = [p for p in self.net.head.parameters() if p.requires_grad]
        if self.optimizer_factory is None:
            optimizer = torch.optim.Adam(parameters, lr=5e-5, betas=(0.9, 0.99))
        else:
            optimizer = self.optimizer_factory(params=parameters)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]
