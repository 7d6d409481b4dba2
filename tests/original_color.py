"""The original's colour arithmetic, written out in numpy from its code (``codes/data/util.py``
``lab2xyz`` / ``xyz2rgb``, and the test scripts' uint8 conversions): an independent reference
for ``tcvc.inference.join_passes``."""

from __future__ import annotations

import numpy as np


def original_lab2rgb(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Normalised L T×1×H×W and ab T×2×H×W -> float32 sRGB T×3×H×W: negatives of the linear RGB
    set to 0, nothing clipped at 1 (the original's ``lab2rgb``)."""
    L = L.astype(np.float32) * 100 + 50
    a, b = (ab.astype(np.float32) * 110)[:, 0], (ab.astype(np.float32) * 110)[:, 1]
    y = (L[:, 0] + 16.0) / 116.0
    x = a / 500.0 + y
    z = np.maximum(y - b / 200.0, 0)
    xyz = np.stack([x, y, z], axis=1)
    xyz = np.where(xyz > 0.2068966, xyz**3, (xyz - 16.0 / 116.0) / 7.787)
    xyz = xyz * np.array([0.95047, 1.0, 1.08883], dtype=np.float32)[None, :, None, None]
    X, Y, Z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    r = 3.24048134 * X - 1.53715152 * Y - 0.49853633 * Z
    g = -0.96925495 * X + 1.87599 * Y + 0.04155593 * Z
    b = 0.05564664 * X - 0.20404134 * Y + 1.05731107 * Z
    rgb = np.maximum(np.stack([r, g, b], axis=1), 0)
    return np.where(rgb > 0.0031308, 1.055 * rgb ** (1 / 2.4) - 0.055, 12.92 * rgb).astype(
        np.float32
    )


def original_one_sampling(rgb: np.ndarray) -> np.ndarray:
    """test_TCVC_onesampling.py: ``tensor2img(np.clip(rgb * 255., 0, 255), np.uint8)`` (rounded)
    of a T×3×H×W float RGB -> T×H×W×3 uint8."""
    return np.clip(rgb * np.float32(255.0), 0, 255).round().astype(np.uint8).transpose(0, 2, 3, 1)


def original_multi_sampling(rgbs: list[np.ndarray]) -> np.ndarray:
    """test_TCVC_multisampling.py: each pass's ``rgb * 255.`` as float64, their mean, then
    ``np.clip(mean, 0, 255).astype(np.uint8)`` (truncated) -> T×H×W×3 uint8."""
    scaled = [(rgb * np.float32(255.0)).astype(np.float64) for rgb in rgbs]
    mean = sum(scaled[1:], scaled[0]) / float(len(scaled))
    return np.clip(mean, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
