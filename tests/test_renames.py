"""One name per concept: an option spelled the old way is refused with one line naming the new
spelling, on the command line (before Hydra) and in a composed config (a config file may set it).
"""

from __future__ import annotations

import pytest
from helpers import ROOT
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tcvc.errors import UserError
from tcvc.inference import InferenceOptions
from tcvc.tasks.config import (
    RENAMED,
    check_renamed,
    refuse_renamed_config,
    refuse_renamed_overrides,
)


@pytest.mark.parametrize(
    ("task", "override", "new"),
    [
        ("colorize", "resolution=128", "inference.resolution"),
        ("colorize", "multi_intervals=[17,19]", "inference.multi_offsets"),
        ("colorize", "input_kind=gray", "inference.lightness"),
        ("colorize", "debug=true", "tracebacks"),
        ("eval", "eval.sampling=multi", "inference.sampling"),
        ("eval", "eval.multi_offsets=[0,2]", "inference.multi_offsets"),
        ("eval", "device=cpu", "inference.device"),
        ("eval", "model=idc_only", "method=idc"),
        ("eval", "model.tcvc_weights=80000_G.pth", "ckpt"),
        ("train", "ckpt_path=last", "resume"),
        ("train", "debug=true", "tracebacks=true"),
        ("train", "+ckpt_path=last", "resume"),
        ("train", "model.flownet2_weights=f.pth", "model.flownet_weights"),
    ],
)
def test_an_old_spelling_on_the_command_line_names_the_new_one(task, override, new, capsys):
    with pytest.raises(SystemExit) as exit_info:
        refuse_renamed_overrides(task, ["ckpt=x.pth", override])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {task}: ") and new in err[0]


def test_current_spellings_pass_and_every_new_name_exists_in_the_configs():
    refuse_renamed_overrides("colorize", ["inference.resolution=128", "tracebacks=true"])
    refuse_renamed_overrides("train", ["resume=last", "debug=fdr"])  # debug: train's group
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        configs = {
            "colorize": compose(config_name="colorize", overrides=["input=a", "output=b.mp4"]),
            "eval": compose(config_name="eval"),
            "train": compose(config_name="train"),
        }
    for task, renamed in RENAMED.items():
        for new in renamed.values():
            key = new.split(" ")[0]
            group, _, option = key.partition("=")
            if (ROOT / "conf" / group).is_dir():  # a config group's option
                assert (ROOT / "conf" / group / f"{option}.yaml").exists()
            else:
                key = group
                assert OmegaConf.select(configs[task], key, default="absent") != "absent", key
        refuse_renamed_config(task, configs[task])  # the shipped configs use no old key


def test_an_old_key_in_a_config_file_is_refused():
    cfg = OmegaConf.create({"ckpt_path": "last", "resume": None})
    with pytest.raises(UserError, match="train: ckpt_path is now resume"):
        refuse_renamed_config("train", cfg)
    check_renamed("train", ["resume"])
    with pytest.raises(UserError, match="inference.sampling=one is now single"):
        InferenceOptions.from_config({"sampling": "one"})


@pytest.mark.parametrize("task", ["colorize", "eval"])
def test_an_unknown_inference_key_is_refused_with_the_closest_name(task):
    """`+inference.resoluton=128` appends a key Hydra does not know: refused, naming the key
    meant, not a run at the default resolution. The shipped groups hold only known keys."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name=task, overrides=["+inference.resoluton=128"])
        shipped = compose(config_name=task)
    with pytest.raises(
        UserError,
        match=r"^inference.resoluton: no such option \(did you mean inference.resolution\? the",
    ):
        InferenceOptions.from_config(cfg.inference)
    assert set(shipped.inference) <= set(InferenceOptions.from_config(shipped.inference).__dict__)
    with pytest.raises(UserError, match=r"^inference.zzz: no such option \(the options: interval"):
        InferenceOptions.from_config({"zzz": 1})
