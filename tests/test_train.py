"""Training end to end: the real configs composed with Hydra, run on the sample data.

Backbones come from generated files (the ``backbone_weights`` fixture), so checkpoints hold only
the head, as in a real run with the original weights; one test runs with random backbones and the
W&B logger.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from helpers import ROOT
from helpers.configs import TRAIN_SMALL, compose_train, train_data
from helpers.media import make_small_root

from tcvc.nets import TCVCNet
from tcvc.nets.flownet2 import FlowNet2
from tcvc.nets.idc import IDC
from tcvc.tasks.train import train


@pytest.fixture(scope="session")
def backbone_weights(tmp_path_factory) -> dict[str, Path]:
    """Generated FlowNet2 (NVIDIA's file layout) and IDC weight files."""
    folder = tmp_path_factory.mktemp("backbones")
    torch.manual_seed(0)
    flownet, idc = folder / "FlowNet2_checkpoint.pth.tar", folder / "siggraph17-df00044c.pth"
    torch.save({"epoch": 0, "state_dict": FlowNet2().state_dict(), "best_EPE": 0.0}, flownet)
    torch.save(IDC().state_dict(), idc)
    return {"flownet": flownet, "idc": idc}


def weights_overrides(files: dict[str, Path]) -> list[str]:
    return [f"model.flownet_weights={files['flownet']}", f"model.idc_weights={files['idc']}"]


def run_script(args: list[str], *, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "TCVC_ROOT": str(ROOT), "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_fast_dev_run_of_the_sample_experiment(sample_dir, backbone_weights, tmp_path):
    cfg = compose_train(
        ["experiment=idc_srl_sample", "debug=fdr", "logger=csv", f"paths.output_dir={tmp_path}"]
        + train_data(sample_dir)
        + weights_overrides(backbone_weights)
    )
    assert (cfg.data.interval, cfg.data.crop_size, cfg.trainer.fast_dev_run) == (4, 128, 1)
    metrics = train(cfg)
    assert metrics["train/loss"] >= 0 and "train/srl_1" in metrics and "train/srl_2" in metrics
    assert metrics["val/cdc"] >= 0 and metrics["val/psnr"] > 5
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["data"]["interval"] == 4 and saved["model"]["idc_weights"].endswith(".pth")


def test_short_run_writes_checkpoint_samples_and_wandb(sample_dir, tmp_path, capsys, caplog):
    """Random backbones (a loud warning, once), the W&B logger offline, the final sample clip."""
    cfg = compose_train(
        [
            "experiment=idc_srl_sample",
            f"paths.output_dir={tmp_path}",
            "trainer.max_steps=2",
            "trainer.val_check_interval=2",
            "final_sample.max_frames=6",
            "final_sample.resolution=64",
        ]
        + TRAIN_SMALL
        + train_data(sample_dir)
    )
    with pytest.warns(UserWarning, match="RANDOM") as warned:
        train(cfg)
    printed = capsys.readouterr().out
    # once: build_tcvc_net's warning, not also a log line of train (bug: it was said twice)
    assert len([w for w in warned if "RANDOM" in str(w.message)]) == 1
    assert not [r for r in caplog.records if "RANDOM" in r.getMessage()]
    last = tmp_path / "checkpoints" / "last.ckpt"
    for path in (last, tmp_path / "samples" / "final.mp4", tmp_path / "samples" / "final.png"):
        assert path.is_file() and str(path) in printed
    assert (tmp_path / "samples" / "step_000002.png").is_file()  # the validation strip
    assert list((tmp_path / "wandb").glob("offline-run-*")) and "W&B run" in printed
    checkpoint = torch.load(last, weights_only=True, map_location="cpu")
    assert checkpoint["global_step"] == 2
    assert checkpoint["hyper_parameters"]["config"]["data"]["crop_size"] == 64
    assert checkpoint["backbone_sources"] == {}  # random backbones are kept in the file
    net = TCVCNet.from_pretrained(last)  # colorize.py / eval.py load it like this
    trained = {k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items()}
    assert all(torch.equal(v, trained[k]) for k, v in net.state_dict().items())


def test_write_sample_writes_the_strip_and_the_clip(tmp_path):
    """One function writes a colorized clip's strip and video: the validation samples and the
    final sample of a run."""
    import numpy as np
    from PIL import Image

    from tcvc.callbacks import clip_strip, write_sample
    from tcvc.io import read_frames

    torch.manual_seed(0)
    L = torch.rand(10, 1, 64, 96) - 0.5
    ab, target = torch.rand(2, 10, 2, 64, 96) * 0.4 - 0.2
    strip, clip = write_sample(tmp_path / "samples", "final", L, ab, target, fps=5, strip_frames=4)
    assert (strip, clip) == (tmp_path / "samples" / "final.png", tmp_path / "samples" / "final.mp4")
    shown = [0, 3, 6, 9]  # four frames evenly spaced, first and last included
    expected = clip_strip(L[shown], ab[shown], target[shown])
    assert expected.shape == (4 * 64, 3 * 96, 3)
    assert np.array_equal(np.asarray(Image.open(strip)), expected)  # PNG: lossless
    assert read_frames(clip).shape == (10, 64, 96, 3)  # every frame in the clip

    strip, _ = write_sample(tmp_path, "step_000012", L[:3], ab[:3], fps=5)
    assert np.asarray(Image.open(strip)).shape == (3 * 64, 2 * 96, 3)  # no ground truth column


def test_the_paper_run_without_data_or_gpu_stops_before_building(
    sample_dir, tmp_path, capsys, monkeypatch
):
    """`python train.py experiment=idc_srl` on a machine without the data or a GPU: one line
    naming the option to set, before any network, data module or trainer is built (bug: it built
    the network, then ended in a wrapped MisconfigurationException)."""
    from tcvc.tasks.errors import report_user_errors

    def built(*args, **kwargs):
        raise AssertionError("something was built before the checks")

    monkeypatch.setattr("tcvc.tasks.train.instantiate", built)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    run = tmp_path / "run"

    def stops(overrides: list[str]) -> str:
        cfg = compose_train(["experiment=idc_srl", f"paths.output_dir={run}", *overrides])
        with pytest.raises(SystemExit) as stopped:
            report_user_errors(train)(cfg)
        assert stopped.value.code == 1
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1
        return captured.err

    error = stops([f"paths.data_dir={tmp_path / 'no_data'}"])
    missing = tmp_path / "no_data" / "DAVIS_videvo" / "DAVIS_train"
    assert error.startswith(f"error: data root {missing} does not exist: set data.roots=[")
    error = stops([f"data.roots=[{sample_dir / 'train'}]", "data.val_roots=[/nowhere/val]"])
    assert error.startswith("error: data root /nowhere/val does not exist: set data.val_roots=[")
    error = stops(train_data(sample_dir))
    assert error == (
        "error: trainer.accelerator=gpu, but this machine has no CUDA GPU: train on the CPU with "
        "trainer=cpu (slow), or run on a machine with a GPU\n"
    )
    error = stops([*train_data(sample_dir), "data.crop_size=100"])
    assert "data.crop_size=100 is not a multiple of 64" in error
    error = stops([*train_data(sample_dir), "trainer=cpu", "resume=/nowhere/last.ckpt"])
    assert "resume=/nowhere/last.ckpt: no such checkpoint" in error
    assert not run.exists()


def test_resume_last_in_a_new_run_folder_starts_afresh_and_says_how_to_go_on(tmp_path, caplog):
    from tcvc.tasks.train import _resume_path

    assert _resume_path("last", tmp_path) is None
    assert "starting afresh (to go on with an earlier run, give its folder: hydra.run.dir=" in (
        caplog.text
    )
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert _resume_path("last", tmp_path) == str(tmp_path / "checkpoints" / "last.ckpt")
    assert _resume_path(None, tmp_path) is None


def test_the_old_resume_option_is_refused_in_a_config(sample_dir, tmp_path):
    """`ckpt_path` is now `resume`; an experiment file that still sets it gets one line."""
    from tcvc.errors import UserError

    cfg = compose_train(["+ckpt_path=last", f"paths.output_dir={tmp_path}"])
    with pytest.raises(UserError, match=r"^train: ckpt_path is now resume$"):
        train(cfg)
    assert compose_train(["resume=last"]).resume == "last"


def test_the_progress_bar_counts_steps_and_shows_small_losses():
    """Bug: the bar said `Epoch 1/-2` (max_epochs=-1) and `train/loss: 0.000` for an SRL of 3e-4."""
    from types import SimpleNamespace

    from tcvc.callbacks import StepProgressBar

    bar = StepProgressBar()
    trainer = SimpleNamespace(
        global_step=3,
        max_steps=24,
        current_epoch=1,
        loggers=[],
        progress_bar_metrics={
            "train/loss": torch.tensor(3e-4),
            "train/clips_per_s": 0.0833,
            "val/psnr": torch.tensor(27.25),
            "train/lr": 5e-5,
        },
    )
    assert bar.step_description(trainer) == "step 3/24"
    assert bar.get_metrics(trainer, None) == {
        "train/loss": "3.00e-04",
        "train/clips_per_s": "0.0833",
        "val/psnr": "27.2",
        "train/lr": "5.00e-05",
    }
    trainer.max_steps = -1  # a run bounded by epochs
    assert bar.step_description(trainer) == "epoch 1"


def test_the_progress_bar_of_a_run_spans_its_epochs(tmp_path, capsys):
    """A real Trainer, 5 steps over 3 epochs of 2 batches: one bar, `step 5/5` at the end."""
    import pytorch_lightning as pl
    from pytorch_lightning.demos.boring_classes import BoringModel

    from tcvc.callbacks import StepProgressBar

    class Small(BoringModel):
        def training_step(self, batch, batch_idx):
            self.log("train/loss", torch.tensor(3e-4), prog_bar=True)
            return super().training_step(batch, batch_idx)

    bar = StepProgressBar()
    trainer = pl.Trainer(
        max_steps=5,
        max_epochs=-1,
        limit_train_batches=2,
        limit_val_batches=0,
        callbacks=[bar],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=tmp_path,
    )
    trainer.fit(Small())
    assert trainer.current_epoch == 3 and trainer.global_step == 5
    shown = bar.train_progress_bar
    assert (shown.n, shown.total) == (5, 5)
    assert str(shown).startswith("step 5/5: 100%") and "train/loss=3.00e-04" in str(shown)
    printed = capsys.readouterr().out
    assert "step 1/5" in printed and "Epoch" not in printed


def test_head_only_checkpoint_and_its_backbones(sample_dir, backbone_weights, tmp_path):
    cfg = compose_train(
        ["logger=csv", f"paths.output_dir={tmp_path}", "trainer.max_steps=1", "final_sample=null"]
        + TRAIN_SMALL
        + train_data(sample_dir)
        + weights_overrides(backbone_weights)
    )
    train(cfg)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert last.stat().st_size < 50e6  # the head (1.7 M parameters) and Adam, not 800 MB
    checkpoint = torch.load(last, weights_only=True, map_location="cpu")
    assert not any(k.startswith(("net.flownet.", "net.idc.")) for k in checkpoint["state_dict"])
    recorded = checkpoint["backbone_sources"]
    assert recorded == {k: str(v) for k, v in backbone_weights.items()}
    net = TCVCNet.from_pretrained(last)  # backbones from the recorded paths
    idc = torch.load(backbone_weights["idc"], weights_only=True)
    assert all(torch.equal(v, idc[k]) for k, v in net.idc.state_dict().items())
    assert torch.equal(
        net.head.refine.conv3.weight, checkpoint["state_dict"]["net.head.refine.conv3.weight"]
    )
    moved = tmp_path / "elsewhere.ckpt"
    checkpoint["backbone_sources"] = {
        "flownet": "/nowhere/FlowNet2.pth.tar",
        "idc": recorded["idc"],
    }
    torch.save(checkpoint, moved)
    with pytest.raises(ValueError, match=r"only the trained head.*model\.flownet_weights="):
        TCVCNet.from_pretrained(moved)
    assert TCVCNet.from_pretrained(moved, flownet=backbone_weights["flownet"]) is not None


def test_fine_tuning_from_released_or_project_weights_keeps_loadable_checkpoints(
    sample_dir, backbone_weights, original_checkpoint, tmp_path
):
    """`model.tcvc_weights=80000_G.pth`, then `model.tcvc_weights=<that run's head-only .ckpt>`:
    each run's checkpoint records where its backbones came from and loads back with them."""
    from tcvc.nets.checkpoints import load_backbone

    def fine_tune(weights: Path, folder: Path) -> Path:
        cfg = compose_train(
            ["logger=csv", f"paths.output_dir={folder}", "trainer.max_steps=1"]
            + ["final_sample=null", f"model.tcvc_weights={weights}"]
            + TRAIN_SMALL
            + train_data(sample_dir)
        )
        train(cfg)
        return folder / "checkpoints" / "last.ckpt"

    first = fine_tune(original_checkpoint, tmp_path / "first")
    checkpoint = torch.load(first, weights_only=True, map_location="cpu")
    assert checkpoint["backbone_sources"] == dict.fromkeys(
        ("flownet", "idc"), str(original_checkpoint)
    )
    assert not any(k.startswith(("net.flownet.", "net.idc.")) for k in checkpoint["state_dict"])
    net = TCVCNet.from_pretrained(first)
    released_idc = load_backbone(original_checkpoint, "idc", IDC())
    assert all(
        torch.equal(v, released_idc.state_dict()[k]) for k, v in net.idc.state_dict().items()
    )
    head = {k.removeprefix("net.head."): v for k, v in checkpoint["state_dict"].items()}
    assert all(torch.equal(v, head[k]) for k, v in net.head.state_dict().items())

    second = fine_tune(first, tmp_path / "second")  # from a head-only checkpoint
    recorded = torch.load(second, weights_only=True, map_location="cpu")["backbone_sources"]
    assert recorded == dict.fromkeys(("flownet", "idc"), str(original_checkpoint))
    again = TCVCNet.from_pretrained(second)
    assert torch.equal(again.flownet.flownetc.conv1[0].weight, net.flownet.flownetc.conv1[0].weight)


@pytest.mark.slow  # ~4 min: bf16 convolutions are slow on CPUs without bf16 units
def test_bf16_mixed_precision_training_step(sample_dir, backbone_weights, tmp_path):
    """`trainer.precision=bf16-mixed` (the GPU default of experiment=idc_srl), run on CPU."""
    cfg = compose_train(
        ["debug=fdr", "logger=csv", f"paths.output_dir={tmp_path}"]
        + ["trainer.precision=bf16-mixed"]
        + TRAIN_SMALL
        + train_data(sample_dir)
        + weights_overrides(backbone_weights)
    )
    metrics = train(cfg)
    assert metrics["train/srl_1"] > 0 and metrics["train/srl_2"] > 0
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))


def test_an_srl_step_changes_only_the_head(sample_dir):
    """The SRL gradient reaches the head's parameters and nothing else; after an optimizer step
    the backbones, BatchNorm statistics included, are bit for bit as before."""
    from tcvc.data.clips import ClipDataset
    from tcvc.losses import TCVCLoss
    from tcvc.models import TCVCModule

    torch.manual_seed(0)
    module = TCVCModule(net=TCVCNet(), loss=TCVCLoss(pixel_weight=0.0))
    module.train()
    dataset = ClipDataset([sample_dir / "train"], interval=2, crop_size=64, train=True)
    batch = torch.utils.data.default_collate([dataset[0]])
    backbones = {
        k: v.clone() for k, v in module.net.state_dict().items() if not k.startswith("head.")
    }
    assert any("running_var" in k for k in backbones)  # IDC's BatchNorm statistics
    optimizer = torch.optim.Adam(module.net.head.parameters(), lr=1e-3)
    terms, _ = module._step(batch)  # training_step without the Trainer's logging
    loss = terms["loss"]
    assert loss > 0 and terms["srl_1"] > 0
    loss.backward()
    with_grad = {n for n, p in module.net.named_parameters() if p.grad is not None}
    head = {n for n, _ in module.net.named_parameters() if n.startswith("head.")}
    assert with_grad == head
    assert all(module.net.get_parameter(n).grad.abs().sum() > 0 for n in head)
    optimizer.step()
    after = module.net.state_dict()
    assert all(torch.equal(value, after[key]) for key, value in backbones.items())


# ---- training hints (model.hints): SIGGRAPH'17's colour points on the anchors, opt-in --------------
def test_the_hints_config_mirrors_the_sampler():
    """`model.hints` holds HintSampler's fields with its defaults, off; each is an override."""
    from dataclasses import asdict

    from hydra.utils import instantiate

    from tcvc.nets.hints import HintSampler

    default = compose_train([]).model.hints
    assert default._target_ == "tcvc.nets.hints.HintSampler"
    settings = {k: v for k, v in default.items() if k != "_target_"}
    assert settings == {**asdict(HintSampler()), "enabled": False}
    assert instantiate(default) == HintSampler(enabled=False)
    swept = compose_train(
        ["model.hints.enabled=true", "model.hints.p=0.25", "model.hints.max_patch=5"]
    )
    assert instantiate(swept.model.hints) == HintSampler(p=0.25, max_patch=5)


def hints_module(overrides: list[str]):
    """The TCVCModule of the composed train config, with a zero-flow stand-in for FlowNet2 (the
    flows do not matter here) and random backbones (a warning says so)."""
    from hydra.utils import instantiate

    cfg = compose_train(["model.flownet._target_=tcvc.testing.ZeroFlow", *overrides])
    with pytest.warns(UserWarning, match="RANDOM"):
        return instantiate(cfg.model)


def one_batch(sample_dir: Path) -> dict:
    from tcvc.data.clips import ClipDataset

    dataset = ClipDataset([sample_dir / "train"], interval=2, crop_size=64, train=True)
    return torch.utils.data.default_collate([dataset[0]])


def test_a_training_step_with_hints_changes_only_the_head(sample_dir):
    """`model.hints.enabled=true`: the anchors get hints from the clip's colours, IDC's anchor
    ab follows them, and the step's gradient still reaches the head only; the backbones
    (BatchNorm statistics included) are bit for bit as before the optimizer step."""
    torch.manual_seed(0)
    module = hints_module(["model.hints.enabled=true", "model.hints.p=0.05"])  # ~19 points
    module.train()
    batch = one_batch(sample_dir)
    hints = module.anchor_hints(batch)
    assert hints.ab.shape == (1, 2, 2, 64, 64) and hints.mask.shape == (1, 2, 1, 64, 64)
    assert (hints.mask.flatten(2).sum(2) > 0).all()  # both anchors hinted
    hinted = hints.mask.bool().expand_as(hints.ab)
    anchors_gt = batch["ab"][:, [0, -1]]
    # a hint is a patch mean of the ground truth: near it, and zero where there is none
    assert (hints.ab[hinted] - anchors_gt[hinted]).abs().mean() < anchors_gt.abs().mean()
    assert not hints.ab[~hinted].any()

    backbones = {
        k: v.clone() for k, v in module.net.state_dict().items() if not k.startswith("head.")
    }
    optimizer = torch.optim.Adam(module.net.head.parameters(), lr=1e-3)
    with torch.no_grad():
        _, plain = module._step(batch)
    terms, ab = module._step(batch, anchor_hints=hints)
    assert (ab - plain)[:, [0, -1]].abs().max() > 1e-3  # the hints reach the anchors
    assert terms["loss"] > 0 and terms["srl_1"] > 0
    terms["loss"].backward()
    with_grad = {n for n, p in module.net.named_parameters() if p.grad is not None}
    head = {n for n, _ in module.net.named_parameters() if n.startswith("head.")}
    assert with_grad == head
    optimizer.step()
    after = module.net.state_dict()
    assert all(torch.equal(value, after[key]) for key, value in backbones.items())


def test_with_hints_off_the_step_is_the_hintless_one(sample_dir):
    """The default config (`model.hints.enabled: false`): no hints drawn (torch's random state
    untouched) and the step bit for bit that of a module without a sampler."""
    from tcvc.models import TCVCModule

    torch.manual_seed(0)
    module = hints_module([])
    without = TCVCModule(net=module.net, loss=module.loss)  # hints=None: the step before hints
    batch = one_batch(sample_dir)
    state = torch.random.get_rng_state()
    assert module.anchor_hints(batch) is None and without.anchor_hints(batch) is None
    assert torch.equal(torch.random.get_rng_state(), state)
    with torch.no_grad():
        terms, ab = module._step(batch, anchor_hints=module.anchor_hints(batch))
        plain_terms, plain_ab = without._step(batch)
        flows = module._flows(batch)
        direct = module.net.propagate(batch["L"], flows)
    assert torch.equal(ab, plain_ab) and torch.equal(ab, direct)
    assert all(torch.equal(terms[k], plain_terms[k]) for k in plain_terms)


def test_training_steps_draw_hints_and_validation_does_not(
    sample_dir, backbone_weights, tmp_path, monkeypatch
):
    """A fast_dev_run with `model.hints.enabled=true`: the training step colours its anchors
    with hints, the validation step without (as inference does)."""
    seen: list[bool] = []
    propagate = TCVCNet.propagate

    def recording(self, L, flows, *, anchor_hints=None):
        seen.append(anchor_hints is not None)
        return propagate(self, L, flows, anchor_hints=anchor_hints)

    monkeypatch.setattr(TCVCNet, "propagate", recording)
    cfg = compose_train(
        ["debug=fdr", "logger=csv", f"paths.output_dir={tmp_path}", "model.hints.enabled=true"]
        + [
            "model.flownet._target_=tcvc.testing.ZeroFlow",
            f"model.idc_weights={backbone_weights['idc']}",
        ]
        + TRAIN_SMALL
        + train_data(sample_dir)
    )
    with pytest.warns(UserWarning, match="FlowNet2 weights not given"):  # the zero-flow stand-in
        metrics = train(cfg)
    assert seen == [True, False]
    assert metrics["train/loss"] >= 0 and metrics["val/cdc"] >= 0


def test_nan_loss_stops_with_a_clear_message(sample_dir, backbone_weights, tmp_path):
    from tcvc.models.tcvc_module import TrainingDiverged

    cfg = compose_train(
        [
            "logger=csv",
            f"paths.output_dir={tmp_path}",
            "trainer.max_steps=3",
            "final_sample=null",
            "model.optimizer.lr=1e30",
        ]
        + TRAIN_SMALL
        + train_data(sample_dir)
        + weights_overrides(backbone_weights)
    )
    with pytest.raises(TrainingDiverged, match=r"training loss is (nan|inf) at step \d"):
        train(cfg)


def test_multirun_sweeps_two_runs(sample_dir, backbone_weights, tmp_path, capsys):
    result = run_script(
        [
            "-m",
            "debug=fdr",
            "logger=csv",
            "model.loss.srl_weight=0.1,10",
            f"hydra.sweep.dir={tmp_path}",
        ]
        + TRAIN_SMALL
        + train_data(sample_dir)
        + weights_overrides(backbone_weights)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    weights = sorted(
        yaml.safe_load((tmp_path / str(n) / "config.yaml").read_text())["model"]["loss"][
            "srl_weight"
        ]
        for n in (0, 1)
    )
    assert weights == [0.1, 10]

    sys.path.insert(0, str(ROOT / "scripts"))
    from sweep_report import main as sweep_report

    assert sweep_report([str(tmp_path), "--metric", "val/cdc"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| run | model.loss.srl_weight |") and "val/cdc" in lines[0]
    assert len([line for line in lines if line.startswith(("| 0 ", "| 1 "))]) == 2
    assert (tmp_path / "sweep.png").stat().st_size > 1000 and (tmp_path / "sweep.csv").is_file()


def test_optuna_sweeper_two_trials(sample_dir, backbone_weights, tmp_path):
    result = run_script(
        [
            "hparams_search=srl_optuna",
            "hydra.sweeper.n_trials=2",
            "debug=fdr",
            "logger=csv",
            f"hydra.sweep.dir={tmp_path}",
        ]
        + TRAIN_SMALL
        + train_data(sample_dir)
        + weights_overrides(backbone_weights)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert best["name"] == "optuna" and best["best_value"] >= 0
    # data.interval, fixed on the command line here, is left out of the search
    assert set(best["best_params"]) == {"model.loss.srl_weight", "model.loss.srl_alpha"}
    assert (tmp_path / "1" / "config.yaml").is_file()


def test_ddp_on_cpu_with_two_processes(sample_dir, backbone_weights, tmp_path):
    result = run_script(
        [
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "logger=csv",
            "trainer.max_steps=2",
            "trainer.val_check_interval=2",
            "final_sample=null",
            f"hydra.run.dir={tmp_path}",
        ]
        + TRAIN_SMALL
        + train_data(sample_dir)
        + weights_overrides(backbone_weights)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout + result.stderr
    # two processes joined one gloo group (not a single-process fallback)
    assert "MEMBER: 1/2" in printed and "MEMBER: 2/2" in printed
    assert "distributed_backend=gloo" in printed
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2
    metrics = (tmp_path / "csv").rglob("metrics.csv")
    assert any("val/cdc" in path.read_text() for path in metrics)


def _global_step(path: Path) -> int:
    """The step of a checkpoint being written by another process (-1 while half-written)."""
    try:
        return torch.load(path, weights_only=True)["global_step"]
    except (RuntimeError, EOFError, OSError, KeyError):  # Lightning writes it in place
        return -1


def _optimizer_state(checkpoint: dict) -> dict:
    (state,) = checkpoint["optimizer_states"]
    return state


def test_kill_and_resume(sample_dir, backbone_weights, tmp_path):
    """SIGKILL mid-run, then `resume=last`: the step count and Adam's state carry on; resuming
    the finished run changes nothing."""
    common = (
        [
            "logger=csv",
            "final_sample=null",
            "callbacks.model_checkpoint.every_n_train_steps=1",
            "trainer.val_check_interval=100",
            f"hydra.run.dir={tmp_path}",
        ]
        + TRAIN_SMALL
        + train_data(sample_dir)
        + weights_overrides(backbone_weights)
    )
    env = {**os.environ, "TCVC_ROOT": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "train.py", "trainer.max_steps=1000", *common],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = tmp_path / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if last.is_file() and _global_step(last) >= 3:
                break
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed = torch.load(last, weights_only=True)
    step = killed["global_step"]
    assert step >= 3

    # two more steps continue the count
    result = run_script([f"trainer.max_steps={step + 2}", "resume=last", *common])
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = torch.load(last, weights_only=True)
    assert resumed["global_step"] == step + 2
    assert all(s["step"].item() == step + 2 for s in _optimizer_state(resumed)["state"].values())
    assert resumed["lr_schedulers"][0]["last_epoch"] == step + 2  # MultiStepLR counts steps
    assert json.dumps(resumed["hyper_parameters"]["config"]["data"]["crop_size"]) == "64"
    metrics = (tmp_path / "metrics.json").read_text()
    assert "train/loss" in json.loads(metrics)

    # resuming the finished run trains nothing: everything restored, written back unchanged,
    # and the metrics of the steps trained before are kept (not replaced by nothing)
    result = run_script([f"trainer.max_steps={step + 2}", "resume=last", *common])
    assert result.returncode == 0, result.stderr[-3000:]
    restored = torch.load(last, weights_only=True)
    assert restored["global_step"] == step + 2
    before, after = _optimizer_state(resumed), _optimizer_state(restored)
    for index, moments in before["state"].items():
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(moments[name], after["state"][index][name]), (index, name)
    for key, value in resumed["state_dict"].items():
        assert torch.equal(value, restored["state_dict"][key]), key
    (scheduler,) = resumed["lr_schedulers"]
    assert restored["lr_schedulers"] == [scheduler] and scheduler["last_epoch"] == step + 2
    assert (tmp_path / "metrics.json").read_text() == metrics


def test_flow_cache_run(backbone_weights, tmp_path):
    """`data.flow_cache=true`: the cache is built once before training and used by the clips."""
    root = make_small_root(tmp_path / "data")
    cfg = compose_train(
        [
            "debug=fdr",
            "logger=csv",
            f"paths.output_dir={tmp_path / 'run'}",
            "data.flow_cache=true",
            f"data.roots=[{root}]",
            f"data.val_roots=[{root}]",
            "data.sample_dir=null",
        ]
        + TRAIN_SMALL
        + weights_overrides(backbone_weights)
    )
    metrics = train(cfg)
    assert metrics["train/loss"] >= 0
    cache = sorted(p.relative_to(tmp_path) for p in (tmp_path / "data").rglob("*.npy"))
    assert [str(p) for p in cache] == [
        f"data/train.flows/{video}/offset_{d}.npy" for video in "ab" for d in ("+1", "-1", "-2")
    ]
