"""The SIGGRAPH'17 interactive deep colorization generator (IDC; Zhang et al. 2017).

TCVC uses it, frozen, to colour its anchor frames and to provide the 128-channel full-resolution
feature (``conv10_2``) that its head propagates; its 1×1 output head (``model_out``) turns the
propagated features of the other frames into ab.

Submodule names and ``nn.Sequential`` indices are those of the public weights file
``siggraph17-df00044c.pth`` (``model1.0.weight`` ... ``model_out.0.weight``), so that file (and the
``fea_key.`` part of a TCVC checkpoint) loads strictly. ``model_class`` (the 529-way colour
classifier) is stored in those files but TCVC never runs it.

Hints (user colour points; the 4-channel input of the first conv), in the convention of the
released weights:

- The first conv sees ``cat[L, ab_hint, hint_mask − mask_center]``: L = (L* − 50) / 100
  (B×1×H×W), ``ab_hint`` = ab / 110 (B×2×H×W, the hint's colour, 0 where there is none),
  ``hint_mask`` B×1×H×W, 1 at a hinted pixel and 0 elsewhere (values in [0, 1] are accepted as
  soft hints). richzhang/colorization ``colorizers/siggraph17.py`` (and base_color.py:
  ``l_cent 50``, ``l_norm 100``, ``ab_norm 110``) builds ``cat(normalize_l(L), normalize_ab(ab),
  mask_B)``; TCVC's copy (``codes/models/archs/colorizers/siggraph17.py``) takes L and ab already
  normalised and concatenates the same three.
- No hint = ab 0 and mask 0: both siggraph17.py files default ``input_B`` and ``mask_B`` to zeros,
  and TCVC (``TCVC_IDC_arch.py``: ``self.fea_key(x)``) always runs it so. ``IDC(L)`` is that call.
- ``mask_center`` (default 0) is what is subtracted from the mask. Neither siggraph17.py centres
  it (the file that loads ``siggraph17-df00044c.pth`` passes ``mask_B`` as it is), and
  colorization-pytorch's README says to set ``--mask_cent 0`` for the original Caffe weights
  converted to PyTorch (which that file appears to be). That repository's own retrained weights
  (``siggraph_retrained``) take ``mask_B − opt.mask_cent`` with ``mask_cent`` 0.5 (util/util.py
  ``add_color_patches_rand_gt``, options/base_options.py): for them ``mask_center=0.5``, and
  "no hint" is then −0.5. With ``mask_center=0`` nothing is subtracted, so zero hints give bit
  for bit the hint-less output.
- How SIGGRAPH'17 drew hints for training: ``tcvc.nets.hints``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["IDC"]

# Three strided slices halve H and W three times; three transposed convs double them back.
# (IDC's own; TCVCNet needs tcvc.nets.SIZE_MULTIPLE, FlowNet2's 64, which is a multiple of it.)
IDC_SIZE_MULTIPLE = 8


def _conv(in_channels: int, out_channels: int, *, dilation: int = 1) -> nn.Conv2d:
    """A 3×3 convolution that keeps H×W (padding = dilation)."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation)


def _encoder_block(
    in_channels: int, out_channels: int, *, num_convs: int, dilation: int = 1
) -> nn.Sequential:
    """``num_convs`` × (3×3 conv, ReLU), then BatchNorm: indices conv 0, 2, ...; BN last."""
    layers: list[nn.Module] = []
    for index in range(num_convs):
        layers += [
            _conv(in_channels if index == 0 else out_channels, out_channels, dilation=dilation),
            nn.ReLU(inplace=True),
        ]
    layers.append(nn.BatchNorm2d(out_channels))
    return nn.Sequential(*layers)


def _decoder_block(channels: int, *, num_convs: int) -> nn.Sequential:
    """ReLU, then ``num_convs`` × (3×3 conv, ReLU), then BatchNorm: convs at 1, 3, ...; BN last.

    The leading ReLU acts on the sum of the upsampled path and the skip connection.
    """
    layers: list[nn.Module] = [nn.ReLU(inplace=True)]
    for _ in range(num_convs):
        layers += [_conv(channels, channels), nn.ReLU(inplace=True)]
    layers.append(nn.BatchNorm2d(channels))
    return nn.Sequential(*layers)


def _upsample(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 4×4 stride-2 transposed convolution: H×W -> 2H×2W."""
    return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1))


def _shortcut(in_channels: int, out_channels: int) -> nn.Sequential:
    """The 3×3 convolution of an encoder feature that is added to the decoder path."""
    return nn.Sequential(_conv(in_channels, out_channels))


class IDC(nn.Module):
    """SIGGRAPH'17 generator: normalised L (and optional hints) -> (ab, 128-channel feature).

    Encoder (H, W must be multiples of 8; ``[::2, ::2]`` slices downsample, not pooling):
        model1  4 -> 64 at H      model2  64 -> 128 at H/2     model3 128 -> 256 at H/4
        model4  256 -> 512 at H/8, then model5, model6 (dilation 2) and model7 at H/8.
    Decoder:
        model8up(conv7) + model3short8(conv3) -> model8: 256 at H/4
        model9up(conv8) + model2short9(conv2) -> model9: 128 at H/2
        model10up(conv9) + model1short10(conv1) -> model10 (ReLU, conv, LeakyReLU 0.2): 128 at H
        model_out: 1×1 conv 128 -> 2 and tanh (ab / 110).
        model_class: 1×1 conv 256 -> 529 (stored, unused).

    Args:
        num_classes: ``model_class``'s outputs (529 in the released files).
        mask_center: subtracted from ``hint_mask`` before the first conv: 0 (default) for the
            released ``siggraph17-df00044c.pth``; 0.5 for colorization-pytorch's retrained weights
            (see the module docstring).
    """

    def __init__(self, *, num_classes: int = 529, mask_center: float = 0.0) -> None:
        super().__init__()
        self.mask_center = float(mask_center)
        self.model1 = _encoder_block(4, 64, num_convs=2)
        self.model2 = _encoder_block(64, 128, num_convs=2)
        self.model3 = _encoder_block(128, 256, num_convs=3)
        self.model4 = _encoder_block(256, 512, num_convs=3)
        self.model5 = _encoder_block(512, 512, num_convs=3, dilation=2)
        self.model6 = _encoder_block(512, 512, num_convs=3, dilation=2)
        self.model7 = _encoder_block(512, 512, num_convs=3)
        self.model8up = _upsample(512, 256)
        self.model8 = _decoder_block(256, num_convs=2)
        self.model9up = _upsample(256, 128)
        self.model9 = _decoder_block(128, num_convs=1)
        self.model10up = _upsample(128, 128)
        self.model10 = nn.Sequential(
            nn.ReLU(inplace=True), _conv(128, 128), nn.LeakyReLU(negative_slope=0.2)
        )
        self.model3short8 = _shortcut(256, 256)
        self.model2short9 = _shortcut(128, 128)
        self.model1short10 = _shortcut(64, 128)
        self.model_class = nn.Sequential(nn.Conv2d(256, num_classes, 1))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    def network_input(
        self, L: Tensor, *, ab_hint: Tensor | None = None, hint_mask: Tensor | None = None
    ) -> Tensor:
        """The first conv's input: B×4×H×W = cat[L, ab_hint, hint_mask − mask_center].

        Args: as ``features``. Raises ``ValueError`` naming the shapes seen and expected, or when
        only one of ``ab_hint`` and ``hint_mask`` is given.
        """
        _check_input(L, ab_hint, hint_mask)
        if ab_hint is None:  # no hints: ab 0, mask 0 (the original's defaults)
            ab_hint = L.new_zeros(L.shape[0], 2, *L.shape[2:])
            hint_mask = torch.zeros_like(L)
        if self.mask_center != 0.0:
            hint_mask = hint_mask - self.mask_center
        return torch.cat([L, ab_hint, hint_mask], dim=1)

    def features(
        self, L: Tensor, *, ab_hint: Tensor | None = None, hint_mask: Tensor | None = None
    ) -> Tensor:
        """The full-resolution feature ``conv10_2`` before the output head.

        Args:
            L: B×1×H×W, (L − 50) / 100 (the original feeds it as is: no re-normalisation here).
            ab_hint: B×2×H×W colour hints, ab / 110, 0 where there is no hint. Give it with
                ``hint_mask``, or neither (no hints: zeros, ``IDC(L)`` as TCVC calls it).
            hint_mask: B×1×H×W in [0, 1]: 1 at a hinted pixel, 0 elsewhere.

        Returns:
            B×128×H×W (LeakyReLU output, unbounded).
        """
        conv1 = self.model1(self.network_input(L, ab_hint=ab_hint, hint_mask=hint_mask))
        conv2 = self.model2(conv1[:, :, ::2, ::2])
        conv3 = self.model3(conv2[:, :, ::2, ::2])
        conv7 = self.model7(self.model6(self.model5(self.model4(conv3[:, :, ::2, ::2]))))
        conv8 = self.model8(self.model8up(conv7) + self.model3short8(conv3))
        conv9 = self.model9(self.model9up(conv8) + self.model2short9(conv2))
        return self.model10(self.model10up(conv9) + self.model1short10(conv1))

    def forward(
        self, L: Tensor, *, ab_hint: Tensor | None = None, hint_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Colourise single frames, optionally guided by colour hints.

        Args: as ``features`` (``idc(L)``: no hints).

        Returns:
            ab: B×2×H×W in (−1, 1), ab / 110 (tanh).
            feature: B×128×H×W, ``conv10_2``, the input of ``model_out``.
        """
        feature = self.features(L, ab_hint=ab_hint, hint_mask=hint_mask)
        return self.model_out(feature), feature

    def extra_repr(self) -> str:
        return f"mask_center={self.mask_center}"


def _check_input(L: Tensor, ab_hint: Tensor | None, hint_mask: Tensor | None) -> None:
    if L.dim() != 4 or L.shape[1] != 1:
        raise ValueError(f"IDC: L must be B×1×H×W, got shape {tuple(L.shape)}")
    height, width = L.shape[-2:]
    if height % IDC_SIZE_MULTIPLE or width % IDC_SIZE_MULTIPLE:
        raise ValueError(
            f"IDC: H and W must be multiples of {IDC_SIZE_MULTIPLE}, got H×W = {height}×{width}"
        )
    if (ab_hint is None) != (hint_mask is None):
        given, missing = ("ab_hint", "hint_mask") if hint_mask is None else ("hint_mask", "ab_hint")
        raise ValueError(f"IDC: {given} given without {missing}: give both hint tensors or neither")
    for name, tensor, channels in (("ab_hint", ab_hint, 2), ("hint_mask", hint_mask, 1)):
        expected = (L.shape[0], channels, height, width)
        if tensor is not None and tuple(tensor.shape) != expected:
            raise ValueError(
                f"IDC: {name} must be B×{channels}×H×W = {expected} for L of shape "
                f"{tuple(L.shape)}, got {tuple(tensor.shape)}"
            )
