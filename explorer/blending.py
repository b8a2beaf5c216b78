"""Model blending: two networks of the same family and shape made into one.

    ModelBlend(other="cartoon.pkl", mode="swap", split_resolution=32, amount=1.0)

'swap' takes the synthesis layers from `split_resolution` up from the other network (layer swapping: the coarse
layers, pose and shape, stay; the fine ones, texture and colour, come from the other), mixed by `amount`
(w = (1 - amount) * this + amount * other; 1 swaps them whole). 'crossfade' fades across the layers instead: from
`split_resolution` up, each octave takes a larger share of the other, reaching `amount` at the finest layer. The
mapping network (and w_avg) stays this network's, so the same seed gives the same w in both.
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass

import torch

BLEND_MODES = ("swap", "crossfade")
BLOCK_PREFIX = re.compile(r"^b(\d+)\.")        # StyleGAN and StyleGAN2 blocks: b4, b8, ... b1024


class BlendError(ValueError):
    """Two networks that cannot be blended; the message says why, in one line."""


@dataclass(frozen=True)
class ModelBlend:
    other: str                       # the other network's file
    mode: str = "swap"
    split_resolution: int = 32       # layers whose output is at least this large are blended
    amount: float = 1.0              # 'swap': how much of the other (1: all); 'crossfade': the mix


def layer_resolutions(G) -> dict[str, int]:
    """{synthesis layer name: the size of its output} (StyleGAN3 layers keep their margins: L3_52_1024 is 52)."""
    return {layer.name: layer.height for layer in G.synthesis.layers}


def resolution_of(parameter: str, layers: dict[str, int]) -> int | None:
    """The output size of the synthesis layer a parameter or buffer belongs to; None outside the synthesis (the
    mapping network) or for what belongs to no layer."""
    if not parameter.startswith("synthesis."):
        return None
    name = parameter[len("synthesis."):]
    owner = max((layer for layer in layers if name.startswith(layer + ".")), key=len, default=None)
    if owner is not None:
        return layers[owner]
    block = BLOCK_PREFIX.match(name)
    return int(block.group(1)) if block else None


def share_of_other(size: int, blend: ModelBlend, finest: int) -> float:
    """How much of the other network a layer with output `size` takes."""
    if size < blend.split_resolution:
        return 0.0
    if blend.mode == "swap":
        return float(blend.amount)
    octaves = math.log2(max(finest, blend.split_resolution)) - math.log2(blend.split_resolution) + 1
    step = math.log2(size) - math.log2(blend.split_resolution) + 1
    return float(blend.amount) * min(step / octaves, 1.0)


def check_compatible(G, other) -> None:
    if getattr(G, "family", None) != getattr(other, "family", None):
        raise BlendError(f"cannot blend a {G.family} network with a {other.family} one")
    mine, theirs = G.state_dict(), other.state_dict()
    if mine.keys() != theirs.keys():
        missing = sorted(set(mine) ^ set(theirs))
        raise BlendError(f"the networks have different layers (for example {missing[0]}); both must be the same "
                         f"architecture")
    for name, tensor in mine.items():
        if tensor.shape != theirs[name].shape:
            raise BlendError(f"the networks differ in shape at {name}: {list(tensor.shape)} and "
                             f"{list(theirs[name].shape)}")


def blend_generators(G, other, blend: ModelBlend):
    """A new generator: G with the chosen layers taken from (or mixed with) `other`. Neither input changes."""
    check_compatible(G, other)
    if blend.mode not in BLEND_MODES:
        raise BlendError(f"blend mode must be one of {', '.join(BLEND_MODES)}, not {blend.mode!r}")
    layers = layer_resolutions(G)
    finest = max(layers.values())
    blended = copy.deepcopy(G)
    theirs = other.state_dict()
    with torch.no_grad():
        for name, tensor in blended.state_dict().items():
            size = resolution_of(name, layers)
            if size is None or size < blend.split_resolution or not tensor.is_floating_point():
                continue
            if name.endswith("resample_filter") or name.endswith("_filter"):
                continue            # fixed FIR filters: the same in both
            share = share_of_other(size, blend, finest)
            if share:
                source = theirs[name].to(device=tensor.device, dtype=tensor.dtype)
                tensor.copy_(torch.lerp(tensor, source, share))
    return blended.eval().requires_grad_(False)
