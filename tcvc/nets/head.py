"""TCVC's trainable propagation head: the parts that fuse and refine propagated IDC features.

With F(a, b) the flow from frame a's grid to frame b, ``b[i]`` the backward-propagated feature
(the last anchor's IDC feature warped frame by frame towards the start) and ``f[i−1]`` the
previous forward-propagated feature, one forward step of frame i is:

    g = warp(f[i−1], F(i, i−1))
    W = sigmoid(fusion_weight(cat[E(i−1), E(i), E(i+1), b[i], g]))        E = l_features
    u = W·g + (1−W)·b[i]
    f[i] = u + refine(cat[E(i−1), E(i), E(i+1), R(b[i+1]), R(f[i−1]), R(u)])   R = reduction

R acts on detached features (gradients reach R's weights, not the features), as in the original.
Every activation between convolutions is LeakyReLU(0.1); none follows the last one.

Original key prefixes (``80000_G.pth``) -> these modules: ``L_fea_extractor.{0,2}`` ->
``l_features.conv{1,2}``, ``channel_reduction`` -> ``reduction``, ``weigting`` (spelled so) ->
``fusion_weight``, ``feature_refine`` -> ``refine``; see ``tcvc.nets.checkpoints``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ChannelReduction",
    "FeatureRefine",
    "FusionWeight",
    "LFeatureExtractor",
    "PropagationHead",
]

NEGATIVE_SLOPE = 0.1


def _act(x: Tensor) -> Tensor:
    return F.leaky_relu(x, negative_slope=NEGATIVE_SLOPE)


class LFeatureExtractor(nn.Module):
    """E: B×1×H×W normalised L -> B×``channels``×H×W (3×3 conv, LeakyReLU, 3×3 conv)."""

    def __init__(self, *, channels: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, L: Tensor) -> Tensor:
        return self.conv2(_act(self.conv1(L)))


class _ThreeConvs(nn.Module):
    """conv1 -> LeakyReLU -> conv2 -> LeakyReLU -> conv3 (no activation after the last)."""

    conv1: nn.Conv2d
    conv2: nn.Conv2d
    conv3: nn.Conv2d

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(_act(self.conv2(_act(self.conv1(x)))))


class ChannelReduction(_ThreeConvs):
    """R: B×``in_channels``×H×W feature -> B×``out_channels``×H×W (1×1, 3×3, 1×1 convs).

    One module, shared by the three features the refinement sees.
    """

    def __init__(self, *, in_channels: int = 128, out_channels: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv3 = nn.Conv2d(out_channels, out_channels, 1)


class FusionWeight(_ThreeConvs):
    """W: B×``in_channels``×H×W -> B×1×H×W in (0, 1), the weight of the forward feature.

    Input: cat[E(i−1), E(i), E(i+1), b[i], g] (3·32 + 2·128 = 352 channels). 3×3 convs to 196,
    64 and 1 channels, then a sigmoid (outside the original ``WeightingNet``, inside here).
    """

    def __init__(self, *, in_channels: int = 352, hidden: tuple[int, int] = (196, 64)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden[0], 3, padding=1)
        self.conv2 = nn.Conv2d(hidden[0], hidden[1], 3, padding=1)
        self.conv3 = nn.Conv2d(hidden[1], 1, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(super().forward(x))


class FeatureRefine(_ThreeConvs):
    """B×``in_channels``×H×W -> B×``out_channels``×H×W residual added to the fused feature.

    Input: cat[E(i−1), E(i), E(i+1), R(b[i+1]), R(f[i−1]), R(u)] (3·32 + 3·64 = 288 channels).
    3×3 convs to 196, 128 and ``out_channels`` channels.
    """

    def __init__(
        self,
        *,
        in_channels: int = 288,
        out_channels: int = 128,
        hidden: tuple[int, int] = (196, 128),
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden[0], 3, padding=1)
        self.conv2 = nn.Conv2d(hidden[0], hidden[1], 3, padding=1)
        self.conv3 = nn.Conv2d(hidden[1], out_channels, 3, padding=1)


class PropagationHead(nn.Module):
    """The trainable part of TCVC (about 1.68 M values with the defaults).

    Args:
        feature_channels: channels of the backbone feature that is propagated (IDC: 128).
        l_channels: channels of E, the feature of a frame's L.
        reduced_channels: channels of R's output.
    """

    def __init__(
        self, *, feature_channels: int = 128, l_channels: int = 32, reduced_channels: int = 64
    ) -> None:
        super().__init__()
        self.feature_channels = feature_channels
        self.l_channels = l_channels
        # Registration order = the original's key order (L_fea_extractor, channel_reduction,
        # weigting, feature_refine), so `save_original` writes keys in the released order.
        self.l_features = LFeatureExtractor(channels=l_channels)
        self.reduction = ChannelReduction(
            in_channels=feature_channels, out_channels=reduced_channels
        )
        self.fusion_weight = FusionWeight(in_channels=3 * l_channels + 2 * feature_channels)
        self.refine = FeatureRefine(
            in_channels=3 * l_channels + 3 * reduced_channels, out_channels=feature_channels
        )

    def context(self, L_prev: Tensor, L_current: Tensor, L_next: Tensor) -> Tensor:
        """cat[E(i−1), E(i), E(i+1)]: three B×1×H×W normalised L -> B×(3·l_channels)×H×W."""
        return torch.cat(
            [self.l_features(L_prev), self.l_features(L_current), self.l_features(L_next)], dim=1
        )

    def reduce(self, feature: Tensor) -> Tensor:
        """R on a detached B×feature_channels×H×W feature -> B×reduced_channels×H×W."""
        return self.reduction(feature.detach())

    def forward(
        self,
        *,
        context: Tensor,
        backward: Tensor,
        warped_forward: Tensor,
        reduced_backward_next: Tensor,
        reduced_forward_prev: Tensor,
    ) -> Tensor:
        """One forward-propagation step of frame i (see the module docstring).

        Args:
            context: B×(3·l_channels)×H×W, cat[E(i−1), E(i), E(i+1)].
            backward: B×C×H×W, b[i].
            warped_forward: B×C×H×W, g = f[i−1] warped onto frame i.
            reduced_backward_next: B×reduced×H×W, R(b[i+1]).
            reduced_forward_prev: B×reduced×H×W, R(f[i−1]).

        Returns:
            f[i]: B×C×H×W, the refined feature of frame i (C = feature_channels).
        """
        expected = (backward.shape[0], self.feature_channels, *backward.shape[2:])
        for name, tensor in (("backward", backward), ("warped_forward", warped_forward)):
            if tuple(tensor.shape) != expected:
                raise ValueError(
                    f"PropagationHead: {name} must be {expected}, got {tuple(tensor.shape)}"
                )
        weight = self.fusion_weight(torch.cat([context, backward, warped_forward], dim=1))
        fused = weight * warped_forward + (1 - weight) * backward
        residual = self.refine(
            torch.cat(
                [context, reduced_backward_next, reduced_forward_prev, self.reduce(fused)], dim=1
            )
        )
        return fused + residual
