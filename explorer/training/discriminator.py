"""The trainer's discriminator: StyleGAN2's residual D (fromRGB at full resolution, residual blocks that halve
the resolution, then minibatch standard deviation, a 3x3 conv and two dense layers at 4x4).

It is defined in explorer.networks.discriminator, one floor down, because the network-file loaders
(explorer.formats) build the same module from the D that NVlabs pickles and rosinality checkpoints hold.
"""
from ..networks.discriminator import (ARCHITECTURES, Discriminator, DiscriminatorBlock, DiscriminatorEpilogue,
                                      MinibatchStd, discriminator_channels)

__all__ = ["ARCHITECTURES", "Discriminator", "DiscriminatorBlock", "DiscriminatorEpilogue", "MinibatchStd",
           "discriminator_channels"]
