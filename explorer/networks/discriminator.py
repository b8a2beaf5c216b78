"""StyleGAN2's discriminator in NVlabs' layout (stylegan2-ada-pytorch and stylegan3 share it): the trainer's D
and the D read from network files, used by the projection as a feature extractor.

Blocks b{res} from the image's resolution down to 8 each halve the resolution (channels min(channel_base / res,
channel_max), or an explicit table); the epilogue b4 appends the minibatch standard deviation, then a 3x3 conv
and two dense layers. Architectures, as NVlabs names them:
    resnet  fromRGB in the first block only; each block adds a 1x1 downsampling skip (both paths times sqrt(1/2))
    skip    every block and the epilogue add fromRGB of the image, which is low-pass downsampled from block to block
    orig    fromRGB in the first block only, no skip path
A conditional D (c_dim > 0) maps the class label to a vector (cmap) and projects the output on it.

The state-dict names are NVlabs' (b{res}.fromrgb/conv0/conv1/skip, b4.fromrgb/conv/fc/out, mapping.*), except
that NVlabs' blocks also keep the resampling filter as a buffer b{res}.resample_filter, which is not saved here
(it is always the [1, 3, 3, 1] filter; a loader checks that).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from kernels import downsample2d, setup_filter

from .common import FullyConnectedLayer, MappingNetwork
from .stylegan2 import Conv2dLayer

ARCHITECTURES = ("resnet", "skip", "orig")
RESIDUAL_GAIN = float(np.sqrt(0.5))    # each of the resnet's two paths, so their sum keeps the variance
MBSTD_EPSILON = 1e-8


def discriminator_channels(img_resolution: int, channel_base: int, channel_max: int) -> dict[int, int]:
    """NVlabs' channel table: resolution -> min(channel_base / res, channel_max), from the image's size to 4."""
    resolutions = [2 ** i for i in range(int(np.log2(img_resolution)), 1, -1)]
    return {res: min(channel_base // res, channel_max) for res in resolutions}


class DiscriminatorBlock(nn.Module):
    """conv 3x3, conv 3x3 with 2x downsampling (and, per architecture, fromRGB and a skip path)."""

    def __init__(self, in_channels, out_channels, resolution, img_channels, first, conv_clamp=None,
                 architecture="resnet"):
        """in_channels: the block's own width (NVlabs' tmp_channels); out_channels: the next block's."""
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, not {architecture!r}")
        self.resolution, self.architecture, self.first = resolution, architecture, first
        self.register_buffer("resample_filter", setup_filter((1, 3, 3, 1)), persistent=False)
        if first or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation="lrelu",
                                       conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(in_channels, in_channels, kernel_size=3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(in_channels, out_channels, kernel_size=3, activation="lrelu", down=2,
                                 conv_clamp=conv_clamp)
        if architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, down=2)

    def forward(self, x, img=None):
        """(features or None for the first block, image or None) -> (features, image for the next block)."""
        if self.first or self.architecture == "skip":
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=RESIDUAL_GAIN)
            x = self.conv1(self.conv0(x), gain=RESIDUAL_GAIN)
            return y.add(x), img
        return self.conv1(self.conv0(x)), img


class MinibatchStd(nn.Module):
    """Appends the mean standard deviation over groups of samples as extra channels: lets D see variety.
    group_size None: the whole batch is one group. A batch the group size does not divide is one group per
    sample (NVlabs' own layer refuses such a batch)."""

    def __init__(self, group_size=4, num_channels=1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
        n, c, h, w = x.shape
        g = n if self.group_size is None else min(self.group_size, n)
        g = g if n % g == 0 else 1
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + MBSTD_EPSILON).sqrt().mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    def __init__(self, in_channels, resolution=4, conv_clamp=None, mbstd_group_size=4, mbstd_num_channels=1,
                 architecture="resnet", img_channels=3, cmap_dim=0):
        super().__init__()
        self.architecture, self.cmap_dim = architecture, cmap_dim
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation="lrelu")
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, cmap_dim or 1)

    def forward(self, x, img=None, cmap=None):
        if self.architecture == "skip":
            x = x + self.fromrgb(img)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim:
            x = (x * cmap).sum(dim=1, keepdim=True) / np.sqrt(self.cmap_dim)
        return x


class Discriminator(nn.Module):
    """[N, C, H, W] images in [-1, 1] (and class labels c for a conditional D) -> [N, 1] logits."""

    def __init__(self, img_resolution, img_channels=3, channel_base=32768, channel_max=512, conv_clamp=None,
                 mbstd_group_size=4, architecture="resnet", c_dim=0, cmap_dim=None, mbstd_num_channels=1,
                 channels=None, mapping_kwargs=None):
        """channels: resolution -> width, for files whose widths follow no channel_base (None: NVlabs' table)."""
        super().__init__()
        self.config = dict(img_resolution=img_resolution, img_channels=img_channels, channel_base=channel_base,
                           channel_max=channel_max, conv_clamp=conv_clamp, mbstd_group_size=mbstd_group_size)
        extra = dict(architecture=architecture, c_dim=c_dim, cmap_dim=cmap_dim, mbstd_num_channels=mbstd_num_channels,
                     channels=channels, mapping_kwargs=mapping_kwargs)
        defaults = dict(architecture="resnet", c_dim=0, cmap_dim=None, mbstd_num_channels=1, channels=None,
                        mapping_kwargs=None)
        self.config.update({k: v for k, v in extra.items() if v != defaults[k]})
        self.img_resolution, self.img_channels, self.c_dim = img_resolution, img_channels, c_dim
        log2 = int(np.log2(img_resolution))
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        table = dict(channels) if channels is not None else discriminator_channels(img_resolution, channel_base,
                                                                                   channel_max)
        cmap_dim = (table[4] if cmap_dim is None else cmap_dim) if c_dim else 0
        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(table[res], table[res // 2], res, img_channels,
                                                        first=(res == img_resolution), conv_clamp=conv_clamp,
                                                        architecture=architecture))
        if c_dim:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **(mapping_kwargs or {}))
        self.b4 = DiscriminatorEpilogue(table[4], conv_clamp=conv_clamp, mbstd_group_size=mbstd_group_size,
                                        mbstd_num_channels=mbstd_num_channels, architecture=architecture,
                                        img_channels=img_channels, cmap_dim=cmap_dim)

    def features(self, img) -> list[torch.Tensor]:
        """Each block's output, finest first: [N, channels[res / 2], res / 2, res / 2] for every block b{res}."""
        x, kept = None, []
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
            kept.append(x)
        return kept

    def forward(self, img, c=None):
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
        cmap = None
        if self.c_dim:
            if c is None:
                raise ValueError(f"this discriminator is conditional: give a class label c of size {self.c_dim}")
            cmap = self.mapping(None, c)
        return self.b4(x, img, cmap)
