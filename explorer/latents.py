"""Latents from seeds."""
from __future__ import annotations

import numpy as np
import torch


def z_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """[1, z_dim] float32: numpy.random.RandomState(seed).randn(1, z_dim), as NVlabs' gen_images.py draws it."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)).to(torch.float32)
