"""Channel ablation: zero or scale chosen channels of a layer's output, so a user can see whether a droplet's
artifacts vanish with its channels. A ChannelAblation is a frozen record, so that the render request can carry
it (it reproduces and is recorded); ablation_edits turns records into the synthesis's layer_edits."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

DEFAULT_ABLATED = 4            # "ablate the top droplet channels": how many


@dataclass(frozen=True)
class ChannelAblation:
    """Multiply `channels` of `layer`'s output by `scale` (0: zero them)."""
    layer: str
    channels: tuple[int, ...]
    scale: float = 0.0


class ChannelScale:
    """A layer edit: the output with each channel times its factor (1 for the channels not named)."""

    def __init__(self, factors: torch.Tensor):
        self.factors = factors                 # [C]

    def __call__(self, activation: torch.Tensor) -> torch.Tensor:
        factors = self.factors.to(device=activation.device, dtype=activation.dtype)
        return activation * factors.reshape(1, -1, 1, 1)


def check_ablations(ablations: Sequence[ChannelAblation], layers) -> None:
    """ValueError with one line when an ablation names a layer the network lacks, a channel out of range or a
    scale that is not a finite number."""
    by_name = {info.name: info for info in layers}
    for ablation in ablations:
        info = by_name.get(ablation.layer)
        if info is None:
            raise ValueError(f"ablation: no layer named {ablation.layer!r}")
        bad = [c for c in ablation.channels if not 0 <= int(c) < info.channels]
        if bad:
            raise ValueError(f"ablation: {ablation.layer} has channels 0 to {info.channels - 1}, not {bad[0]}")
        if not math.isfinite(ablation.scale):
            raise ValueError(f"ablation: the scale must be a finite number, not {ablation.scale}")


def ablation_edits(ablations: Sequence[ChannelAblation], layers) -> dict[str, ChannelScale]:
    """layer_edits for G.synthesis: one edit a layer; ablations of the same channel multiply."""
    check_ablations(ablations, layers)
    by_name = {info.name: info for info in layers}
    factors: dict[str, torch.Tensor] = {}
    for ablation in ablations:
        layer_factors = factors.setdefault(ablation.layer, torch.ones([by_name[ablation.layer].channels]))
        for channel in set(int(c) for c in ablation.channels):
            layer_factors[channel] *= ablation.scale
    return {name: ChannelScale(values) for name, values in factors.items()}


def top_droplet_ablations(report, count: int = DEFAULT_ABLATED, scale: float = 0.0) -> tuple[ChannelAblation, ...]:
    """The action "ablate the top droplet channels": the first `count` findings of a droplet report that reach
    the droplet score on some seed, one ChannelAblation a layer (in the report's order of first appearance)."""
    chosen: dict[str, list[int]] = {}
    for finding in report.droplets[:count]:
        chosen.setdefault(finding.layer, []).append(finding.channel)
    return tuple(ChannelAblation(layer, tuple(channels), scale) for layer, channels in chosen.items())
