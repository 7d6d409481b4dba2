"""Weights files: a generated checkpoint in the exact released layout loads strictly, round-trips
through save_original bit-exactly, and damaged files fail with messages that name the problem."""

from __future__ import annotations

import json
import shutil
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers import LAYOUT
from torch import nn

from tcvc.nets import CheckpointError, TCVCNet, build_tcvc_net, save_original
from tcvc.nets.checkpoints import (
    ORIGINAL_PREFIXES,
    from_original_keys,
    load_file,
    load_original,
    load_strict,
    state_dict_of,
    to_original_keys,
)
from tcvc.testing import synthetic_state_dict

RELEASED_TENSORS = 349
RELEASED_VALUES = 198_386_935


@pytest.fixture(scope="module")
def layout() -> dict[str, list[int]]:
    return json.loads(LAYOUT.read_text())


@pytest.fixture(scope="module")
def released(layout, tmp_path_factory) -> Iterator[tuple[Path, OrderedDict[str, torch.Tensor]]]:
    """A generated `80000_G.pth`: a plain OrderedDict with the released names, shapes, order."""
    weights = OrderedDict(synthetic_state_dict(layout, seed=5))
    path = tmp_path_factory.mktemp("released") / "80000_G.pth"
    torch.save(weights, path)
    yield path, weights
    shutil.rmtree(path.parent)  # 800 MB: not left for the rest of the session


@pytest.fixture(scope="module")
def loaded(released) -> TCVCNet:
    return TCVCNet.from_pretrained(released[0])


def test_layout_is_the_released_one(layout):
    assert len(layout) == RELEASED_TENSORS
    assert sum(torch.Size(s).numel() for s in layout.values()) == RELEASED_VALUES


def test_network_maps_onto_the_released_layout_exactly(layout):
    """Every TCVCNet tensor has an original name, with the released shape, in the released order."""
    state = to_original_keys(TCVCNet().state_dict())
    assert list(state) == list(layout)
    assert {k: list(v.shape) for k, v in state.items()} == layout


def test_released_checkpoint_loads_strictly(loaded, released):
    _, weights = released
    state = loaded.state_dict()
    assert len(state) == RELEASED_TENSORS
    for original_key, value in weights.items():
        (ours,) = from_original_keys({original_key: value})
        assert torch.equal(state[ours], value), original_key
    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.idc.parameters())
    assert not any(p.requires_grad for p in loaded.flownet.parameters())
    assert all(p.requires_grad for p in loaded.head.parameters())


def test_save_original_round_trip_is_bit_exact(loaded, released, tmp_path):
    _, weights = released
    out = tmp_path / "roundtrip_G.pth"
    save_original(loaded, out)
    written = torch.load(out, weights_only=True)
    assert isinstance(written, OrderedDict)
    assert list(written) == list(weights)
    for key, value in weights.items():
        assert written[key].dtype == value.dtype, key
        assert torch.equal(written[key], value), key
    # ... and what was written loads again (what the original code would do with it).
    again = TCVCNet.from_pretrained(out)
    assert torch.equal(again.head.refine.conv3.weight, loaded.head.refine.conv3.weight)


def test_renamed_key_file_names_both_keys(released, tmp_path):
    _, weights = released
    damaged = OrderedDict(weights)
    damaged["weigting.conv9.weight"] = damaged.pop("weigting.conv1.weight")
    path = tmp_path / "renamed_G.pth"
    torch.save(damaged, path)
    with pytest.raises(CheckpointError) as error:
        TCVCNet.from_pretrained(path)
    text = str(error.value)
    assert str(path) in text
    assert "missing keys (1): weigting.conv1.weight" in text
    assert "unexpected keys (1): weigting.conv9.weight" in text


def test_changed_shape_is_named(released):
    _, weights = released
    damaged = OrderedDict(weights)
    damaged["fea_key.model_out.0.weight"] = torch.zeros(3, 128, 1, 1)
    with pytest.raises(
        CheckpointError,
        match=r"fea_key\.model_out\.0\.weight: file \(3, 128, 1, "
        r"1\) vs network \(2, 128, 1, 1\)",
    ):
        load_original(TCVCNet(), damaged, source="damaged")


def test_truncated_file_fails_clearly(released, tmp_path):
    path, _ = released
    truncated = tmp_path / "truncated_G.pth"
    with path.open("rb") as source:
        truncated.write_bytes(source.read(5_000_000))
    with pytest.raises(CheckpointError, match="truncated") as error:
        TCVCNet.from_pretrained(truncated)
    assert "5,000,000 bytes" in str(error.value)


def test_missing_file_and_conflicting_arguments(tmp_path, released):
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        TCVCNet.from_pretrained(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="whole original TCVC checkpoint"):
        TCVCNet.from_pretrained(released[0], idc=released[0])


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(1), "config": Path("x")}, path)  # a non-tensor object
    with pytest.raises(CheckpointError, match="weights_only"):
        load_file(path)


def test_backbone_files_load_with_a_fresh_head(released, tmp_path):
    _, weights = released
    flownet_path, idc_path = tmp_path / "FlowNet2_checkpoint.pth.tar", tmp_path / "sig17.pth"
    flow = {k.removeprefix("flow."): v for k, v in weights.items() if k.startswith("flow.")}
    torch.save({"epoch": 0, "state_dict": flow, "best_EPE": torch.tensor(1.5)}, flownet_path)
    torch.save(
        {k.removeprefix("fea_key."): v for k, v in weights.items() if k.startswith("fea_key.")},
        idc_path,
    )
    with pytest.warns(UserWarning, match="IDC weights not given"):
        only_flow = build_tcvc_net(flownet_weights=flownet_path)
    net = TCVCNet.from_pretrained(flownet=flownet_path, idc=idc_path)
    for key, value in net.state_dict().items():
        if key.startswith(("idc.", "flownet.")):
            (original,) = to_original_keys({key: value})
            assert torch.equal(value, weights[original]), key
    assert torch.equal(only_flow.flownet.flownetc.conv1[0].weight, flow["flownetc.conv1.0.weight"])
    fresh = TCVCNet().head.refine.conv1.weight
    assert net.head.refine.conv1.weight.shape == fresh.shape
    assert not torch.equal(net.head.refine.conv1.weight, weights["feature_refine.conv1.weight"])


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(1, 2, 1)
        self.idc = nn.Conv2d(2, 2, 1)


def test_lightning_and_wrapped_checkpoints_are_unwrapped():
    tiny = _Tiny()
    state = tiny.state_dict()
    ckpt = {
        "pytorch-lightning_version": "2.4.0",
        "epoch": 3,
        "state_dict": {**{f"net.{k}": v for k, v in state.items()}, "loss.scale": torch.ones(1)},
    }
    assert state_dict_of(ckpt).keys() == state.keys()
    wrapped = {f"module._orig_mod.{k}": v for k, v in state.items()}
    load_strict(_Tiny(), state_dict_of(wrapped), source="wrapped")
    with pytest.raises(CheckpointError, match="not name -> tensor: epoch"):
        state_dict_of({"epoch": 3, "weight": torch.ones(1)})


def test_prefix_table_covers_the_six_original_parts(layout):
    tops = {k.split(".")[0] for k in layout}
    assert tops == {p.split(".")[0] for p, _ in ORIGINAL_PREFIXES}
