"""Adaptive instance normalisation (StyleGAN 2019): normalise each channel of each sample to zero mean and unit
variance over its pixels, then scale and shift it by the style: x * (scale + 1) + shift.

The normalisation is what lets a local spike (a "droplet") dominate a feature map's statistics: a strong
enough peak sets the variance, and every other pixel of that channel is scaled down around it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def instance_norm_reference(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * (x.square().mean(dim=[2, 3], keepdim=True) + eps).rsqrt()


def adain_reference(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """scale, shift: [N, C] (the two halves of the style vector)."""
    x = instance_norm_reference(x, eps)
    return x * (scale[:, :, None, None] + 1) + shift[:, :, None, None]


def adain(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Same numbers as `adain_reference` through torch's fused instance norm (biased variance, eps inside)."""
    x = F.instance_norm(x, eps=eps)
    return torch.addcmul(shift[:, :, None, None], x, scale[:, :, None, None] + 1)
