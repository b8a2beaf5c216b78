"""What the projection minimises and how its result is measured.

distance = pixel_weight * multi-scale pixel distance
           [+ discriminator_weight * distance of the network's own discriminator features]
           [+ perceptual_weight * LPIPS-style VGG16 distance]
loss     = distance + noise_weight * noise regularisation (only when the noise maps are optimised)

What each gives:
- The multi-scale pixel distance is the mean squared difference of the images (raw range [-1, 1]) at full size
  and at every 2x average-pooled size down to MIN_PIXEL_SIDE: the coarse scales weigh the layout and the colours
  as much as the full size weighs the fine detail, where a single full-size MSE is ruled by the detail. It needs
  nothing but the network, and is what PSNR measures; alone it tends to blur what it cannot match exactly.
- The discriminator distance compares the output of every block of the file's own discriminator (NVlabs' D,
  rosinality's d, the trainer's D: explorer.formats reads it with the generator), each activation unit-normalised
  across channels at every position as LPIPS does, squared differences summed over channels, averaged over
  positions, summed over blocks. D was trained on the same images as the generator, so its features see the
  structures of that domain (edges, parts, textures at every scale) rather than raw colour values; it needs no
  download and fits any image size the network makes. What it gives, measured (benchmarks/bench_projection.py:
  the default model read from its training checkpoint with its D, 4 targets, psi 0.7, 300 steps; edge energy =
  neighbour differences of the projection in % of the target's, below 100 = blurred):
      targets                            method            PSNR dB   edge energy   distance to true w (w_std)
      the network's own images           W+, pixels         34.45        97             0.865
                                         W+, + D x0.1       34.01        99             0.873
                                         W+, + D x1         32.68       100             0.882
      the AdaIN StyleGAN's images (the   W+, pixels         20.27        57             -
      network did not make them)         W+, + D x0.1       20.09        71             -
                                         W+, + D x1         19.50        75             -
  (in W: 31.58 / 30.68 dB on its own images, 18.55 / 18.09 dB and edge energy 51 / 61 on the others, pixels /
  + D x0.1). The pixel distance alone settles on a blurred average of what it cannot match; D's features keep
  edges and contrast (eyes, mouth outlines; seen in the images, measured by the edge energy) at a cost of
  0.2-0.9 dB at weight 0.1, and do not bring w closer to the true one. Hence on by default with a small weight
  (ProjectionSettings.discriminator_weight 0.1). That D was trained with strong augmentation (ADA p 0.88),
  which may make its features indifferent to some colour and position detail.
- The VGG16 distance is LPIPS without its learned weights on ImageNet features: a general perceptual measure
  from a weights file the user supplies (never downloaded).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .vgg16 import VGG16Features, lpips_style_distance, perceptual_size

MIN_PIXEL_SIDE = 8          # the coarsest scale of the pixel distance
NOISE_PYRAMID_SIDE = 8      # the noise regularisation pools each map down to this size (the paper's 8x8)
PERCEPTUAL_SIDE = 256       # VGG16 sees images of at most this size (NVlabs' projector does the same)


def multiscale_mse(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    total, scales = image.new_zeros(()), 0
    while True:
        total = total + (image - target).square().mean()
        scales += 1
        if min(image.shape[2], image.shape[3]) < 2 * MIN_PIXEL_SIDE:
            return total / scales
        image, target = F.avg_pool2d(image, 2), F.avg_pool2d(target, 2)


def noise_regularization(noise_maps: list[torch.Tensor]) -> torch.Tensor:
    """The paper's noise regulariser: at every scale of each map's pyramid (halved by 2x2 averages down to 8x8),
    the squared autocorrelation with its neighbour one pixel right and one pixel down. Zero for white noise;
    it keeps the optimiser from hiding the image's content in the noise maps."""
    total = None
    for noise in noise_maps:
        level = noise.reshape(1, 1, *noise.shape[-2:])
        while True:
            term = ((level * level.roll(1, dims=3)).mean().square()
                    + (level * level.roll(1, dims=2)).mean().square())
            total = term if total is None else total + term
            if min(level.shape[2], level.shape[3]) <= NOISE_PYRAMID_SIDE:
                break
            level = F.avg_pool2d(level, 2)
    return total if total is not None else torch.zeros(())


def psnr(image: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of the image as shown (clamped to [-1, 1]) against the target, both
    taken to [0, 1]."""
    mse = float(((image.clamp(-1, 1) - target) / 2).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def discriminator_misfit(discriminator: nn.Module, image_shape: tuple[int, int], channels: int) -> str | None:
    """Why `discriminator` cannot measure images of (height, width) `image_shape` and `channels`, or None."""
    side = getattr(discriminator, "img_resolution", None)
    if not callable(getattr(discriminator, "features", None)) or side is None:
        return "it has no block features to compare"
    if tuple(image_shape) != (side, side) or getattr(discriminator, "img_channels", channels) != channels:
        return (f"it takes {side}x{side} images with {discriminator.img_channels} channels, the generator makes "
                f"{image_shape[0]}x{image_shape[1]} with {channels}")
    return None


@dataclass(frozen=True)
class DistanceTerms:
    """One image's distance to the target and the terms it is made of (None: the term is not used)."""
    distance: torch.Tensor
    pixel: torch.Tensor
    perceptual: torch.Tensor | None = None
    discriminator: torch.Tensor | None = None


class ProjectionDistance(nn.Module):
    """image -> DistanceTerms against a fixed target.

    discriminator: a module whose features(images) gives a list of activations (explorer.networks'
    Discriminator); it must take images of the target's size (discriminator_misfit)."""

    def __init__(self, target: torch.Tensor, vgg16: VGG16Features | None = None, pixel_weight: float = 1.0,
                 perceptual_weight: float = 1.0, discriminator: nn.Module | None = None,
                 discriminator_weight: float = 1.0):
        super().__init__()
        self.register_buffer("target", target)
        self.vgg16, self.discriminator = vgg16, discriminator
        self.pixel_weight, self.perceptual_weight = pixel_weight, perceptual_weight
        self.discriminator_weight = discriminator_weight
        self.target_features = self.target_discriminator_features = None
        with torch.no_grad():
            if vgg16 is not None:
                self.target_features = [f.detach() for f in vgg16(perceptual_size(target, PERCEPTUAL_SIDE))]
            if discriminator is not None:
                self.target_discriminator_features = [f.detach() for f in discriminator.features(target)]

    def forward(self, image: torch.Tensor) -> DistanceTerms:
        pixel = multiscale_mse(image, self.target)
        distance = self.pixel_weight * pixel
        perceptual = discriminator = None
        if self.vgg16 is not None:
            perceptual = lpips_style_distance(self.vgg16(perceptual_size(image, PERCEPTUAL_SIDE)),
                                              self.target_features)
            distance = distance + self.perceptual_weight * perceptual
        if self.discriminator is not None:
            discriminator = lpips_style_distance(self.discriminator.features(image),
                                                 self.target_discriminator_features)
            distance = distance + self.discriminator_weight * discriminator
        return DistanceTerms(distance, pixel, perceptual, discriminator)
