"""Latents from seeds, positions in seed space, and interpolation between latents.

Seed space is the plane the explorer's latent drag moves in: the integer point (ix, iy) is the seed
(ix + SEED_ROW * iy) mod 2**32, and a fractional point blends its 4 neighbouring integer points bilinearly
(the layout of NVlabs' visualizer, so positions there and here name the same images).
"""
from __future__ import annotations

import math

import numpy as np
import torch

SEED_LIMIT = 2 ** 32      # numpy's RandomState takes seeds below 2**32
SEED_ROW = 100            # seeds per row of seed space: one step in y is 100 seeds


def z_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """[1, z_dim] float32: numpy.random.RandomState(seed).randn(1, z_dim), as NVlabs' gen_images.py draws it."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)).to(torch.float32)


def z_and_class_from_seed(seed: int, z_dim: int, c_dim: int) -> tuple[torch.Tensor, int | None]:
    """z as z_from_seed, and for conditional networks (c_dim > 0) the class the same random stream draws next
    (NVlabs' visualizer picks a seed's class this way); None when c_dim is 0."""
    rnd = np.random.RandomState(seed)
    z = torch.from_numpy(rnd.randn(1, z_dim)).to(torch.float32)
    return z, (int(rnd.randint(c_dim)) if c_dim > 0 else None)


def seed_at(ix: int, iy: int) -> int:
    """The seed at integer point (ix, iy) of seed space."""
    return (int(ix) + int(iy) * SEED_ROW) % SEED_LIMIT


def seed_weights(x: float, y: float) -> tuple[tuple[int, float], ...]:
    """The seeds around point (x, y) and their bilinear weights ((seed, weight), ...): weights are positive and
    sum to 1; an integer point gives one seed with weight 1. Seeds reached twice (the wrap at 2**32) merge."""
    x0, y0 = math.floor(x), math.floor(y)
    fx, fy = x - x0, y - y0
    weights: dict[int, float] = {}
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                           (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        if weight > 0:
            seed = seed_at(x0 + dx, y0 + dy)
            weights[seed] = weights.get(seed, 0.0) + weight
    return tuple(weights.items())


def blend(latents: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """sum_i weights[i] * latents[i] (latents of one shape)."""
    if len(latents) != len(weights) or not latents:
        raise ValueError(f"blend needs as many weights as latents, at least one; got {len(latents)} and "
                         f"{len(weights)}")
    out = latents[0] * weights[0]
    for latent, weight in zip(latents[1:], weights[1:]):
        out = out + latent * weight
    return out


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Straight line from a (t = 0) to b (t = 1)."""
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Great-circle interpolation over the last dimension, with the length interpolated linearly.

    Gaussian z live near a sphere: a straight line between two of them dips toward the origin halfway, where
    no training z ever was; slerp stays at their radius. Falls back to lerp for (anti)parallel vectors.
    """
    norm_a = a.norm(dim=-1, keepdim=True)
    norm_b = b.norm(dim=-1, keepdim=True)
    unit_a = a / norm_a.clamp_min(eps)
    unit_b = b / norm_b.clamp_min(eps)
    cos = (unit_a * unit_b).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(cos)
    sin = torch.sin(omega)
    parallel = sin.abs() < 1e-4
    safe_sin = torch.where(parallel, torch.ones_like(sin), sin)
    direction = (torch.sin((1 - t) * omega) * unit_a + torch.sin(t * omega) * unit_b) / safe_sin
    direction = torch.where(parallel, lerp(unit_a, unit_b, t), direction)
    return direction * lerp(norm_a, norm_b, t)
