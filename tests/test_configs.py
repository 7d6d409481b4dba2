"""The Hydra config tree composes, and its objects build from `_target_`."""

from __future__ import annotations

import pytest
from helpers import CONF
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from tcvc.data import TCVCDataModule
from tcvc.tasks.train import build_datamodule


@pytest.mark.parametrize("name", ["train", "eval"])
def test_configs_compose(name):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name=name, overrides=[] if name == "train" else ["ckpt=x.pth"])
    assert cfg.data.interval == 10
    assert cfg.data.crop_size == 256
    assert cfg.model.loss.srl_steps == [1, 2]


def test_colorize_config_requires_its_inputs():
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(
            config_name="colorize", overrides=["input=a.mp4", "output=b.mp4", "ckpt=w.pth"]
        )
    assert (cfg.input, cfg.output, cfg.ckpt, cfg.overwrite) == ("a.mp4", "b.mp4", "w.pth", False)


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer=cpu"],
        ["trainer=gpu"],
        ["trainer=ddp"],
        ["logger=wandb"],
        ["debug=fdr"],
        ["data=davis_videvo"],
        ["experiment=idc_srl"],
        ["data.interval=4", "data.batch_size=1"],
    ],
)
def test_groups_compose(overrides):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    if overrides == ["debug=fdr"]:
        assert cfg.trainer.fast_dev_run == 1
    if overrides == ["experiment=idc_srl"]:
        assert (cfg.data.interval, cfg.data.crop_size, cfg.data.batch_size) == (10, 256, 4)
        assert cfg.model.optimizer.lr == 5e-5 and list(cfg.model.optimizer.betas) == [0.9, 0.99]
        assert list(cfg.model.scheduler.milestones) == [10000, 20000, 30000, 100000]
        assert cfg.model.loss.pixel_weight == 0.0
    if overrides[0].startswith("data.interval"):
        assert (cfg.data.interval, cfg.data.batch_size) == (4, 1)


def test_data_config_builds_the_datamodule(sample_dir):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                f"paths.data_dir={sample_dir.parent}",
                "data.interval=2",
                "data.crop_size=64",
                "data.batch_size=1",
            ],
        )
    assert cfg.data.test_roots == cfg.data.val_roots  # eval.py's; the DataModule does not take it
    datamodule = build_datamodule(cfg.data)
    assert isinstance(datamodule, TCVCDataModule)
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["L"].shape == (1, 4, 1, 64, 64)


@pytest.mark.parametrize("launcher", ["slurm", "submitit_slurm"])
def test_cluster_launcher_configs(launcher):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(
            config_name="train", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True
        )
    assert cfg.hydra.launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    if launcher == "slurm":  # our settings on top of the plugin's
        assert (cfg.hydra.launcher.gpus_per_node, cfg.hydra.launcher.timeout_min) == (1, 2880)


def test_sample_experiment_is_small_and_optuna_optimises_cdc():
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=idc_srl_sample"])
        search = compose(config_name="train", overrides=["hparams_search=srl_optuna"])
    assert (cfg.data.interval, cfg.data.crop_size, cfg.trainer.max_steps) == (4, 128, 24)
    assert cfg.callbacks.model_checkpoint.save_top_k == 0
    assert search.optimized_metric == "val/cdc"


def test_the_model_config_chooses_the_backbones():
    """conf/model/tcvc_idc.yaml builds IDC and FlowNet2 from `_target_`s; another flow network
    is one override (its class needs only the same call)."""
    import torch

    from tcvc.nets.idc import IDC
    from tcvc.testing import ZeroFlow

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        default = compose(config_name="train")
        swapped = compose(
            config_name="train", overrides=["model.flownet._target_=tcvc.testing.ZeroFlow"]
        )
    assert default.model.idc._target_ == "tcvc.nets.IDC"
    assert default.model.flownet._target_ == "tcvc.nets.flownet2.FlowNet2"
    with pytest.warns(UserWarning, match="RANDOM"):
        module = instantiate(swapped.model)
    assert isinstance(module.net.flownet, ZeroFlow) and isinstance(module.net.idc, IDC)
    assert not module.net.flownet.training  # frozen backbones, in eval mode
    L = torch.rand(1, 3, 1, 64, 64) - 0.5
    assert torch.equal(module.net.estimate_flow(L[:, 0], L[:, 1]), torch.zeros(1, 2, 64, 64))
    assert module.net.colorize_clip(L).shape == (1, 3, 2, 64, 64)


def test_entry_points_print_a_warning_without_the_source_line():
    """run_task's warnings.formatwarning: the message (stripped), its category and where it
    came from, relative to the project; not Python's echo of the line that raised it."""
    from helpers import ROOT

    from tcvc.tasks.config import one_line_warning

    file = str(ROOT / "tcvc" / "models" / "tcvc_module.py")
    # called as warnings' _formatwarnmsg calls a replaced formatwarning: five positional arguments
    text = one_line_warning(UserWarning("\nIDC weights not given"), UserWarning, file, 92, "net =")
    assert text == "warning: IDC weights not given (UserWarning, tcvc/models/tcvc_module.py:92)\n"
    outside = one_line_warning(DeprecationWarning("old"), DeprecationWarning, "/x/y.py", 3)
    assert outside == "warning: old (DeprecationWarning, /x/y.py:3)\n"
