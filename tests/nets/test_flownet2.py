"""FlowNet2: the NVIDIA layout, strict loading with clear errors, and the original's flows."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers import DATA, LAYOUT

from tcvc.nets.checkpoints import CheckpointError, load_backbone
from tcvc.nets.flownet2 import FLOWNET2_NUM_PARAMETERS, FlowNet2
from tcvc.testing import synthetic_state_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "reference"))


@pytest.fixture(scope="module")
def net() -> FlowNet2:
    return FlowNet2().eval()


def test_layout_is_nvidias(net):
    """Every key and shape of the `flow.` part of the released TCVC checkpoint, no more."""
    layout = json.loads(LAYOUT.read_text())
    released = {k.removeprefix("flow."): v for k, v in layout.items() if k.startswith("flow.")}
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert ours == released
    assert sum(p.numel() for p in net.parameters()) == FLOWNET2_NUM_PARAMETERS == 162_518_834


def test_flow_equals_the_original_on_real_frames(net):
    """The original FlowNet2 code, run on CPU with the same generated weights (see
    scripts/reference/make_flownet2_reference.py), gave these flows for two real pairs."""
    from make_flownet2_reference import SEED, layout

    reference = torch.load(DATA / "flownet2_reference.pt", weights_only=True)
    assert reference["seed"] == SEED
    net.load_state_dict(synthetic_state_dict(layout(), seed=SEED), strict=True)
    with torch.no_grad():
        flow = net(reference["image1"], reference["image2"])
    expected = reference["flow"]
    assert flow.shape == expected.shape == (2, 2, 128, 192)
    assert expected.abs().mean() > 1.0  # real motion, not a near-zero field
    # The same float32 arithmetic in the same order: bit-exact on the machine that ran the
    # original (remade on two machines: 0.0 difference each time). Across CPUs and torch builds
    # the convolutions sum in another order: measured max 3.7e-4 px, mean 2.2e-5 px between an
    # Intel Xeon (torch 2.15) and an AMD EPYC (torch 2.14), on flows of up to 30 px.
    torch.testing.assert_close(flow, expected, atol=1e-3, rtol=0)
    assert (flow - expected).abs().mean() < 1e-4


def test_bf16_autocast_runs_and_stays_close_to_float32(net):
    """FlowNet2 under bf16 autocast (the GPU training and colorize precision): bf16 convolutions
    meet float32 images in the warps (resample2d promotes), and the flow stays near float32's.
    A 64×64 crop of the reference pairs: bf16 convolutions are slow on CPUs without bf16 units."""
    from make_flownet2_reference import SEED, layout

    reference = torch.load(DATA / "flownet2_reference.pt", weights_only=True)
    net.load_state_dict(synthetic_state_dict(layout(), seed=SEED), strict=True)
    image1, image2 = (reference[k][:, :, 32:96, 64:128] for k in ("image1", "image2"))
    with torch.no_grad():
        full = net(image1, image2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = net(image1, image2)
    assert half.shape == full.shape == (2, 2, 64, 64)
    error = (half.float() - full).abs().mean() / full.abs().mean()
    assert error < 0.05  # measured 0.021 at 128×192


def test_sizes_must_be_multiples_of_64(net):
    image = torch.rand(1, 3, 100, 128)
    with pytest.raises(ValueError, match="100×128"):
        net(image, image)
    with pytest.raises(ValueError, match="same shape|one shape"):
        net(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 128, 64))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, net) -> Iterator[tuple[Path, dict]]:
    """A file in the layout of NVIDIA's FlowNet2_checkpoint.pth.tar."""
    state = synthetic_state_dict({k: v.shape for k, v in net.state_dict().items()}, seed=1)
    path = tmp_path_factory.mktemp("flownet2") / "FlowNet2_checkpoint.pth.tar"
    torch.save({"epoch": 0, "state_dict": state, "best_EPE": 1.5}, path)
    yield path, state
    shutil.rmtree(path.parent)  # 650 MB: not left for the rest of the session


def test_checkpoint_loads_strictly(checkpoint):
    path, state = checkpoint
    loaded = load_backbone(path, "flownet", FlowNet2())
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_damaged_checkpoints_name_the_problem(checkpoint, tmp_path):
    path, state = checkpoint
    renamed = dict(state)
    renamed["flownetc.conv1.0.weightX"] = renamed.pop("flownetc.conv1.0.weight")
    torch.save({"epoch": 0, "state_dict": renamed, "best_EPE": 0.0}, tmp_path / "renamed.pth")
    with pytest.raises(CheckpointError, match="flownetc.conv1.0.weight") as error:
        load_backbone(tmp_path / "renamed.pth", "flownet", FlowNet2())
    assert "renamed.pth" in str(error.value)

    misshaped = dict(state)
    misshaped["flownetfusion.predict_flow0.bias"] = torch.zeros(3)
    torch.save({"state_dict": misshaped}, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match="predict_flow0.bias"):
        load_backbone(tmp_path / "shape.pth", "flownet", FlowNet2())

    data = path.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="cut.pth"):
        load_backbone(tmp_path / "cut.pth", "flownet", FlowNet2())
