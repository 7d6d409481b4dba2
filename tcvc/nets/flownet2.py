"""FlowNet2 (Ilg et al., CVPR 2017) as NVIDIA's flownet2-pytorch defines it, with our custom ops.

The stack: FlowNetC → FlowNetS → FlowNetS (large displacements) and FlowNetSD (small ones), merged
by FlowNetFusion. Attribute names follow NVIDIA's module exactly, so the original
`FlowNet2_checkpoint.pth.tar` loads strictly (e.g. `flownetc.conv1.0.weight`,
`flownets_1.predict_flow6.weight`, `flownetfusion.inter_conv0.0.weight`). No batch norm,
`rgb_max = 1`, `div_flow = 20`.

    flow = FlowNet2()(image1, image2)   # B×3×H×W in [0, 1] each → B×2×H×W pixels (u, v)

The flow maps image1's grid to image2: image1(x, y) ≈ image2(x + u, y + v).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ops import channel_norm, correlation, resample2d

__all__ = [
    "FLOWNET2_NUM_PARAMETERS",
    "SIZE_MULTIPLE",
    "FlowNet2",
    "FlowNetC",
    "FlowNetFusion",
    "FlowNetS",
    "FlowNetSD",
]

FLOWNET2_NUM_PARAMETERS = 162_518_834
# H and W of FlowNet2's input must be multiples of this: it downsamples 6 times (its coarsest
# level is 1/64 of the input). Every network that runs FlowNet2 (TCVCNet) inherits it.
SIZE_MULTIPLE = 64
DIV_FLOW = 20.0


def conv(
    in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1
) -> nn.Sequential:
    """Conv ("same" padding) + LeakyReLU(0.1); index 0 holds the weights, as NVIDIA's `conv`."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2),
        nn.LeakyReLU(0.1),
    )


def inter_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """A plain 3×3 conv in a Sequential (NVIDIA's `i_conv`), no activation."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, 1, 1))


def deconv(in_channels: int, out_channels: int) -> nn.Sequential:
    """×2 transposed conv + LeakyReLU(0.1)."""
    return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1), nn.LeakyReLU(0.1))


def predict_flow(in_channels: int) -> nn.Conv2d:
    """3×3 conv to a 2-channel flow."""
    return nn.Conv2d(in_channels, 2, 3, 1, 1)


def upsample_flow(*, bias: bool) -> nn.ConvTranspose2d:
    """×2 transposed conv of a flow (FlowNetS's have no bias, the others do)."""
    return nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=bias)


class FlowDecoder(nn.Module):
    """The refinement part shared by FlowNetC and FlowNetS: from 1/64 back up to 1/4 resolution.

    Input: the encoder features at 1/4 (64 or 128 ch, `skip2`), 1/8 (256 ch), 1/16, 1/32 (512 ch)
    and 1/64 (1024 ch). Output: flow at 1/4 resolution, B×2×H/4×W/4, in units of 1/div_flow px.
    With `inter=True` (FlowNetSD) an extra conv precedes each prediction.
    """

    def add_decoder(self, *, skip2_channels: int, inter: bool, flow_bias: bool) -> None:
        """Register the decoder layers (after the encoder's, as NVIDIA's state-dict order has them)."""
        self.deconv5 = deconv(1024, 512)
        self.deconv4 = deconv(1026, 256)
        self.deconv3 = deconv(770, 128)
        self.deconv2 = deconv(386, 64)
        concat2 = 64 + 2 + skip2_channels
        if inter:
            self.inter_conv5 = inter_conv(1026, 512)
            self.inter_conv4 = inter_conv(770, 256)
            self.inter_conv3 = inter_conv(386, 128)
            self.inter_conv2 = inter_conv(concat2, 64)
            predict_channels = (1024, 512, 256, 128, 64)
        else:
            predict_channels = (1024, 1026, 770, 386, concat2)
        self.inter = inter
        self.predict_flow6 = predict_flow(predict_channels[0])
        self.predict_flow5 = predict_flow(predict_channels[1])
        self.predict_flow4 = predict_flow(predict_channels[2])
        self.predict_flow3 = predict_flow(predict_channels[3])
        self.predict_flow2 = predict_flow(predict_channels[4])
        self.upsampled_flow6_to_5 = upsample_flow(bias=flow_bias)
        self.upsampled_flow5_to_4 = upsample_flow(bias=flow_bias)
        self.upsampled_flow4_to_3 = upsample_flow(bias=flow_bias)
        self.upsampled_flow3_to_2 = upsample_flow(bias=flow_bias)

    def _predict(self, level: int, features: Tensor) -> Tensor:
        if self.inter and level < 6:
            features = getattr(self, f"inter_conv{level}")(features)
        return getattr(self, f"predict_flow{level}")(features)

    def decode(
        self, skip2: Tensor, skip3: Tensor, skip4: Tensor, skip5: Tensor, top: Tensor
    ) -> Tensor:
        flow6 = self._predict(6, top)
        concat5 = torch.cat((skip5, self.deconv5(top), self.upsampled_flow6_to_5(flow6)), 1)
        flow5 = self._predict(5, concat5)
        concat4 = torch.cat((skip4, self.deconv4(concat5), self.upsampled_flow5_to_4(flow5)), 1)
        flow4 = self._predict(4, concat4)
        concat3 = torch.cat((skip3, self.deconv3(concat4), self.upsampled_flow4_to_3(flow4)), 1)
        flow3 = self._predict(3, concat3)
        concat2 = torch.cat((skip2, self.deconv2(concat3), self.upsampled_flow3_to_2(flow3)), 1)
        return self._predict(2, concat2)


class FlowNetC(FlowDecoder):
    """Correlation network. Input B×6×H×W (two mean-centred images) → B×2×H/4×W/4 flow / 20."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = conv(3, 64, kernel_size=7, stride=2)
        self.conv2 = conv(64, 128, kernel_size=5, stride=2)
        self.conv3 = conv(128, 256, kernel_size=5, stride=2)
        self.conv_redir = conv(256, 32, kernel_size=1)
        self.conv3_1 = conv(473, 256)  # 32 redirected + 441 correlation channels
        self.conv4 = conv(256, 512, stride=2)
        self.conv4_1 = conv(512, 512)
        self.conv5 = conv(512, 512, stride=2)
        self.conv5_1 = conv(512, 512)
        self.conv6 = conv(512, 1024, stride=2)
        self.conv6_1 = conv(1024, 1024)
        self.add_decoder(skip2_channels=128, inter=False, flow_bias=True)

    def forward(self, x: Tensor) -> Tensor:
        batch = x.shape[0]
        # both images through the shared encoder in one batch
        towers = self.conv1(torch.cat((x[:, :3], x[:, 3:]), 0))
        conv2 = self.conv2(towers)
        conv3 = self.conv3(conv2)
        conv2a, conv3a, conv3b = conv2[:batch], conv3[:batch], conv3[batch:]
        cost = F.leaky_relu(correlation(conv3a, conv3b), 0.1)
        conv3_1 = self.conv3_1(torch.cat((self.conv_redir(conv3a), cost), 1))
        conv4 = self.conv4_1(self.conv4(conv3_1))
        conv5 = self.conv5_1(self.conv5(conv4))
        conv6 = self.conv6_1(self.conv6(conv5))
        return self.decode(conv2a, conv3_1, conv4, conv5, conv6)


class FlowNetS(FlowDecoder):
    """Stacked "simple" network. Input B×12×H×W (images, warped image2, flow/20, error) → flow/20
    at 1/4 resolution."""

    def __init__(self, *, in_channels: int = 12) -> None:
        super().__init__()
        self.conv1 = conv(in_channels, 64, kernel_size=7, stride=2)
        self.conv2 = conv(64, 128, kernel_size=5, stride=2)
        self.conv3 = conv(128, 256, kernel_size=5, stride=2)
        self.conv3_1 = conv(256, 256)
        self.conv4 = conv(256, 512, stride=2)
        self.conv4_1 = conv(512, 512)
        self.conv5 = conv(512, 512, stride=2)
        self.conv5_1 = conv(512, 512)
        self.conv6 = conv(512, 1024, stride=2)
        self.conv6_1 = conv(1024, 1024)
        self.add_decoder(skip2_channels=128, inter=False, flow_bias=False)

    def forward(self, x: Tensor) -> Tensor:
        conv2 = self.conv2(self.conv1(x))
        conv3 = self.conv3_1(self.conv3(conv2))
        conv4 = self.conv4_1(self.conv4(conv3))
        conv5 = self.conv5_1(self.conv5(conv4))
        conv6 = self.conv6_1(self.conv6(conv5))
        return self.decode(conv2, conv3, conv4, conv5, conv6)


class FlowNetSD(FlowDecoder):
    """Small-displacement network. Input B×6×H×W (the two images) → flow at 1/4 resolution.

    NVIDIA's FlowNet2 divides (not multiplies) this output by div_flow before upsampling; kept.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = conv(6, 64)
        self.conv1 = conv(64, 64, stride=2)
        self.conv1_1 = conv(64, 128)
        self.conv2 = conv(128, 128, stride=2)
        self.conv2_1 = conv(128, 128)
        self.conv3 = conv(128, 256, stride=2)
        self.conv3_1 = conv(256, 256)
        self.conv4 = conv(256, 512, stride=2)
        self.conv4_1 = conv(512, 512)
        self.conv5 = conv(512, 512, stride=2)
        self.conv5_1 = conv(512, 512)
        self.conv6 = conv(512, 1024, stride=2)
        self.conv6_1 = conv(1024, 1024)
        self.add_decoder(skip2_channels=128, inter=True, flow_bias=True)

    def forward(self, x: Tensor) -> Tensor:
        conv1 = self.conv1_1(self.conv1(self.conv0(x)))
        conv2 = self.conv2_1(self.conv2(conv1))
        conv3 = self.conv3_1(self.conv3(conv2))
        conv4 = self.conv4_1(self.conv4(conv3))
        conv5 = self.conv5_1(self.conv5(conv4))
        conv6 = self.conv6_1(self.conv6(conv5))
        return self.decode(conv2, conv3, conv4, conv5, conv6)


class FlowNetFusion(nn.Module):
    """Fuses the large- and small-displacement flows at full resolution.

    Input B×11×H×W: image1, flow_sd, flow_s2, |flow_sd|, |flow_s2|, |image1 − warp_sd(image2)|,
    |image1 − warp_s2(image2)|. Output B×2×H×W, the final flow in pixels.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = conv(11, 64)
        self.conv1 = conv(64, 64, stride=2)
        self.conv1_1 = conv(64, 128)
        self.conv2 = conv(128, 128, stride=2)
        self.conv2_1 = conv(128, 128)
        self.deconv1 = deconv(128, 32)
        self.deconv0 = deconv(162, 16)
        self.inter_conv1 = inter_conv(162, 32)
        self.inter_conv0 = inter_conv(82, 16)
        self.predict_flow2 = predict_flow(128)
        self.predict_flow1 = predict_flow(32)
        self.predict_flow0 = predict_flow(16)
        self.upsampled_flow2_to_1 = upsample_flow(bias=True)
        self.upsampled_flow1_to_0 = upsample_flow(bias=True)

    def forward(self, x: Tensor) -> Tensor:
        conv0 = self.conv0(x)
        conv1 = self.conv1_1(self.conv1(conv0))
        conv2 = self.conv2_1(self.conv2(conv1))
        flow2 = self.predict_flow2(conv2)
        concat1 = torch.cat((conv1, self.deconv1(conv2), self.upsampled_flow2_to_1(flow2)), 1)
        flow1 = self.predict_flow1(self.inter_conv1(concat1))
        concat0 = torch.cat((conv0, self.deconv0(concat1), self.upsampled_flow1_to_0(flow1)), 1)
        return self.predict_flow0(self.inter_conv0(concat0))


def _upsample4(flow: Tensor, *, mode: str) -> Tensor:
    if mode == "bilinear":
        return F.interpolate(flow, scale_factor=4, mode="bilinear", align_corners=False)
    return F.interpolate(flow, scale_factor=4, mode="nearest")


class FlowNet2(nn.Module):
    """The full FlowNet2. `forward(image1, image2)`: B×3×H×W in [0, 1] (rgb_max = 1), H and W
    multiples of ``SIZE_MULTIPLE`` (64) → B×2×H×W flow in pixels from image1's grid to image2."""

    def __init__(self) -> None:
        super().__init__()
        self.flownetc = FlowNetC()
        self.flownets_1 = FlowNetS()
        self.flownets_2 = FlowNetS()
        self.flownets_d = FlowNetSD()
        self.flownetfusion = FlowNetFusion()

    @staticmethod
    def check_inputs(image1: Tensor, image2: Tensor) -> None:
        if image1.ndim != 4 or image1.shape[1] != 3 or image1.shape != image2.shape:
            raise ValueError(
                f"FlowNet2 takes two B×3×H×W images of one shape, got {tuple(image1.shape)} and "
                f"{tuple(image2.shape)}"
            )
        height, width = image1.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            up = SIZE_MULTIPLE
            raise ValueError(
                f"FlowNet2 needs H and W that are multiples of {SIZE_MULTIPLE}, got "
                f"{height}×{width} (pad or resize to {-(-height // up) * up}×{-(-width // up) * up})"
            )

    def forward(self, image1: Tensor, image2: Tensor) -> Tensor:
        self.check_inputs(image1, image2)
        # mean-centre each channel over both images of the pair (rgb_max = 1), one mean over the
        # B×3×2HW stack as NVIDIA computes it (so the rounding, too, is theirs)
        mean = torch.stack((image1, image2), 2).flatten(2).mean(-1)[..., None, None]
        first, second = image1 - mean, image2 - mean
        pair = torch.cat((first, second), 1)

        def refine(flow: Tensor) -> Tensor:
            """The FlowNetS input: the pair, image2 warped by `flow`, flow / 20, warp error."""
            warped = resample2d(second, flow)
            error = channel_norm(first - warped)
            return torch.cat((pair, warped, flow / DIV_FLOW, error), 1)

        flow_c = _upsample4(self.flownetc(pair) * DIV_FLOW, mode="bilinear")
        flow_s1 = _upsample4(self.flownets_1(refine(flow_c)) * DIV_FLOW, mode="bilinear")
        flow_s2 = _upsample4(self.flownets_2(refine(flow_s1)) * DIV_FLOW, mode="nearest")
        flow_sd = _upsample4(self.flownets_d(pair) / DIV_FLOW, mode="nearest")
        fusion_input = torch.cat(
            (
                first,
                flow_sd,
                flow_s2,
                channel_norm(flow_sd),
                channel_norm(flow_s2),
                channel_norm(first - resample2d(second, flow_sd)),
                channel_norm(first - resample2d(second, flow_s2)),
            ),
            1,
        )
        return self.flownetfusion(fusion_input)
