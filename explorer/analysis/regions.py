"""Style channels that control a region of the image (the locally active channels of StyleSpace, Wu et al.
2021): given a rectangle, rank every (layer, style unit) by how much changing that unit moves the pixels inside
relative to those outside.

Two steps, so that it takes seconds on a CPU:
1. An estimate for every unit from one batched gradient pass. For a random sign image r, the gradient of
   sum(r * image over a region) with respect to a style unit s_u has expected square sum over the region of
   (d image / d s_u)^2 (Hutchinson's trick), so `probes` random sign images give every unit's squared
   sensitivity inside and outside at once. Each probe is its own batch item with its own zero style delta, so
   one backward pass keeps them apart.
2. The exact answer for the top `refine` candidates: a central finite difference of each unit's style (one
   batch of images), the mean squared change per pixel inside and outside; these lead the result, ranked by
   their measured ratio, and the estimated rest follow.
Units that hardly move the region at all (below MIN_STRENGTH of the strongest) are ranked after the others:
a ratio of two near-zeros means nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .latent import layer_module

DEFAULT_PROBES = 16            # random sign images per side (inside, outside): the estimate's error ~ 1/sqrt(16)
DEFAULT_REFINE = 32            # top candidates measured exactly by finite differences
FD_STEP = 0.1                  # finite-difference step, times the rms of the unit's layer's styles
MIN_STRENGTH = 0.05            # a unit whose rms effect inside is below 5% of the strongest is ranked last
RATIO_FLOOR = 1e-6             # outside sensitivity floor, times the largest sensitivity: a unit that does not
                               # touch the outside gets a large finite ratio
REFINE_BATCH = 16              # finite-difference images per synthesis call


@dataclass(frozen=True)
class Rectangle:
    """Image pixels rows top..bottom-1, columns left..right-1."""
    top: int
    left: int
    bottom: int
    right: int

    def check(self, height: int, width: int) -> None:
        if not (0 <= self.top < self.bottom <= height and 0 <= self.left < self.right <= width):
            raise ValueError(f"the rectangle rows {self.top}-{self.bottom}, columns {self.left}-{self.right} must "
                             f"lie in the {width}x{height} image and hold at least one pixel")
        if (self.bottom - self.top) * (self.right - self.left) == height * width:
            raise ValueError("the rectangle covers the whole image: there is no outside to compare with")

    def mask(self, height: int, width: int) -> torch.Tensor:
        mask = torch.zeros([height, width])
        mask[self.top:self.bottom, self.left:self.right] = 1
        return mask


@dataclass(frozen=True)
class RegionChannel:
    """One style unit: its rms change of a pixel per unit change of the style, inside and outside the rectangle,
    and their ratio; exact: measured by finite differences (else the gradient estimate)."""
    layer: str
    channel: int
    inside: float
    outside: float
    ratio: float
    exact: bool


@dataclass(frozen=True)
class RegionRanking:
    rectangle: Rectangle
    channels: tuple[RegionChannel, ...]       # best first

    def top(self, count: int) -> tuple[RegionChannel, ...]:
        return self.channels[:count]


def region_layers(G) -> list:
    """The layers whose styles are ranked by default: convolution and ToRGB layers with an affine (StyleGAN3's
    input transform moves the whole image, never one region)."""
    return [info for info in G.synthesis.layers if info.kind in ("conv", "torgb") and info.style_channels > 0]


def rank_region_channels(G, ws: torch.Tensor, rectangle: Rectangle, layers: Sequence[str] | None = None,
                         noise_mode: str = "const", probes: int = DEFAULT_PROBES,
                         refine: int = DEFAULT_REFINE, seed: int = 0) -> RegionRanking:
    """Rank the style units of `layers` (default: region_layers) for the image of ws [1, num_ws, w_dim]."""
    if ws.ndim != 3 or ws.shape[0] != 1:
        raise ValueError(f"ws must be one latent [1, num_ws, w_dim], not {list(ws.shape)}")
    if noise_mode == "random":
        # Every probe and every finite difference must see the same image; random noise differs per batch item.
        raise ValueError("the region ranking needs one noise for every probe: noise mode const or none")
    if probes < 1 or refine < 0:
        raise ValueError("probes must be at least 1 and refine at least 0")
    height, width = G.img_shape
    rectangle.check(height, width)
    by_name = {info.name: info for info in G.synthesis.layers}
    if layers is None:
        chosen = region_layers(G)
    else:
        unknown = [n for n in layers if n not in by_name or by_name[n].style_channels == 0]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a styled layer of this network")
        chosen = [by_name[n] for n in layers]
    mask = rectangle.mask(height, width).to(ws.device)
    inside_pixels = float(mask.sum()) * G.img_channels
    outside_pixels = float((1 - mask).sum()) * G.img_channels
    controls = dict(noise_mode=noise_mode)

    inside_energy, outside_energy = _gradient_estimate(G, ws, chosen, mask, probes, seed, controls)
    inside = np.sqrt(inside_energy / inside_pixels)
    outside = np.sqrt(outside_energy / outside_pixels)
    units = [(info.name, c) for info in chosen for c in range(info.style_channels)]
    exact = np.zeros(len(units), dtype=bool)
    order = _order(inside, outside)
    if refine:
        candidates = order[:refine]
        fd_inside, fd_outside = _finite_differences(G, ws, [units[i] for i in candidates], mask, controls)
        inside[candidates], outside[candidates], exact[candidates] = fd_inside, fd_outside, True
        # The measured units first: a unit whose estimate was not among the best rarely beats them, and a
        # measured one that fell below an estimate would otherwise let an unmeasured number lead the list.
        order = np.concatenate([candidates[_order(inside[candidates], outside[candidates])],
                                np.array([i for i in order if not exact[i]], dtype=np.int64)])
    ratio = _ratio(inside, outside)
    return RegionRanking(rectangle, tuple(
        RegionChannel(units[i][0], units[i][1], float(inside[i]), float(outside[i]), float(ratio[i]),
                      bool(exact[i])) for i in order))


def _ratio(inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    floor = RATIO_FLOOR * max(float(inside.max()), float(outside.max()), np.finfo(np.float64).tiny)
    return inside / np.maximum(outside, floor)


def _order(inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """Units by ratio, best first; the weak ones (MIN_STRENGTH) after all the others."""
    ratio = _ratio(inside, outside)
    weak = inside < MIN_STRENGTH * inside.max()
    return np.lexsort((-ratio, weak))


def _style_deltas(chosen, batch: int, device) -> dict[str, torch.Tensor]:
    return {info.name: torch.zeros([batch, info.style_channels], device=device, requires_grad=True)
            for info in chosen}


def _gradient_estimate(G, ws, chosen, mask, probes, seed, controls) -> tuple[np.ndarray, np.ndarray]:
    """Squared sensitivity of the region (inside, outside) to every unit: probes batch items of random signs on
    the inside, as many on the outside, one forward and backward pass."""
    generator = torch.Generator().manual_seed(seed)
    shape = [2 * probes, G.img_channels, *G.img_shape]
    signs = (torch.randint(0, 2, shape, generator=generator) * 2 - 1).to(ws.device, ws.dtype)
    region = torch.cat([mask.expand(probes, 1, -1, -1), (1 - mask).expand(probes, 1, -1, -1)])
    deltas = _style_deltas(chosen, 2 * probes, ws.device)
    with torch.enable_grad():
        image = G.synthesis(ws.detach().expand(2 * probes, -1, -1), style_deltas=deltas, **controls).image
        # autograd.grad, not backward: the network's own weights get no .grad, whatever their requires_grad.
        grads = torch.autograd.grad((image * signs * region).sum(), [deltas[info.name] for info in chosen])
    grads = torch.cat(grads, dim=1).square()     # [2P, units]
    return grads[:probes].mean(0).double().cpu().numpy(), grads[probes:].mean(0).double().cpu().numpy()


def _finite_differences(G, ws, units, mask, controls) -> tuple[np.ndarray, np.ndarray]:
    """The rms change of a pixel, inside and outside, per unit change of each unit's style: central differences
    of FD_STEP times the rms of the unit's layer's styles."""
    by_name = {info.name: info for info in G.synthesis.layers}
    with torch.no_grad():
        steps = {}
        for name in {name for name, _ in units}:
            styles = layer_module(G, name).affine(ws[:, by_name[name].w_index])
            steps[name] = FD_STEP * float(styles.square().mean().sqrt().clamp_min(1e-3))
        inside, outside = [], []
        inside_pixels = float(mask.sum()) * G.img_channels
        outside_pixels = float((1 - mask).sum()) * G.img_channels
        for start in range(0, len(units), REFINE_BATCH):
            chunk = units[start:start + REFINE_BATCH]
            n = len(chunk)
            deltas = {}
            for i, (name, channel) in enumerate(chunk):
                if name not in deltas:
                    deltas[name] = torch.zeros([2 * n, by_name[name].style_channels], device=ws.device)
                deltas[name][i, channel] = steps[name]
                deltas[name][n + i, channel] = -steps[name]
            image = G.synthesis(ws.expand(2 * n, -1, -1), style_deltas=deltas, **controls).image
            step = torch.tensor([steps[name] for name, _ in chunk], device=ws.device).reshape(n, 1, 1, 1)
            change = ((image[:n] - image[n:]) / (2 * step)).square()
            inside.append((change * mask).sum(dim=(1, 2, 3)) / inside_pixels)
            outside.append((change * (1 - mask)).sum(dim=(1, 2, 3)) / outside_pixels)
    return (torch.cat(inside).double().sqrt().cpu().numpy(), torch.cat(outside).double().sqrt().cpu().numpy())
