"""StyleGAN2's residual discriminator: fromRGB at full resolution, residual blocks that halve the resolution,
then minibatch standard deviation, a 3x3 conv and two dense layers at 4x4."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..networks.common import FullyConnectedLayer
from ..networks.stylegan2 import Conv2dLayer


class DiscriminatorBlock(nn.Module):
    """conv 3x3, conv 3x3 with 2x downsampling, plus a 1x1 downsampling skip; both paths scaled by sqrt(1/2)."""

    def __init__(self, in_channels, out_channels, resolution, img_channels, first, conv_clamp=None):
        super().__init__()
        self.resolution = resolution
        if first:
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation="lrelu",
                                       conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(in_channels, in_channels, kernel_size=3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(in_channels, out_channels, kernel_size=3, activation="lrelu", down=2,
                                 conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, down=2)

    def forward(self, x, img=None):
        if img is not None:
            x = self.fromrgb(img)
        y = self.skip(x, gain=np.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=np.sqrt(0.5))
        return y.add(x)


class MinibatchStd(nn.Module):
    """Appends the mean standard deviation over groups of samples as an extra channel: lets D see variety."""

    def __init__(self, group_size=4, num_channels=1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
        n, c, h, w = x.shape
        g = min(self.group_size, n) if n % min(self.group_size, n) == 0 else 1
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    def __init__(self, in_channels, resolution=4, conv_clamp=None, mbstd_group_size=4):
        super().__init__()
        self.mbstd = MinibatchStd(group_size=mbstd_group_size)
        self.conv = Conv2dLayer(in_channels + 1, in_channels, kernel_size=3, activation="lrelu", conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1)

    def forward(self, x):
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))


class Discriminator(nn.Module):
    def __init__(self, img_resolution, img_channels=3, channel_base=32768, channel_max=512, conv_clamp=None,
                 mbstd_group_size=4):
        super().__init__()
        self.config = dict(img_resolution=img_resolution, img_channels=img_channels, channel_base=channel_base,
                           channel_max=channel_max, conv_clamp=conv_clamp, mbstd_group_size=mbstd_group_size)
        log2 = int(np.log2(img_resolution))
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(channels[res], channels[res // 2], res, img_channels,
                                                        first=(res == img_resolution), conv_clamp=conv_clamp))
        self.b4 = DiscriminatorEpilogue(channels[4], conv_clamp=conv_clamp, mbstd_group_size=mbstd_group_size)

    def forward(self, img):
        x = None
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            x = block(x, img if x is None else None)
        return self.b4(x)
