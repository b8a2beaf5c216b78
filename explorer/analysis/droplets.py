"""The droplet detector: which channels of which layers hold one local spike that dominates the whole map.

A "droplet" (Karras et al. 2020, section 2) is a blob that AdaIN generators learn in order to carry signal
strength past instance normalisation: one spot of a channel grows far above the rest of the map, so that
normalisation shrinks everything else. Per map (one seed, layer and channel) three measures say how much one
spot dominates:

    peak ratio    the largest absolute deviation from the map's median, over the robust spread of the map
                  (1.4826 x the median absolute deviation: the standard deviation for normal values, blind to
                  the spike itself);
    top-k share   the share of the map's energy (squared deviations) in its k largest pixels, k being the area
                  of a small window (a spike holds nearly all of it; texture and broad shapes do not);
    compactness   the share of those top-k pixels' energy that lies in the window around the peak (1 when the
                  largest pixels form one spot, low when they are scattered over the map).

score = peak ratio x top-k share x compactness = peak ratio x (share of energy in the window around the peak).
Over a set of seeds a channel's score is the mean of its per-seed scores, so a channel that spikes on every seed
ranks above one that spikes once; `seeds` counts the seeds whose score reaches DROPLET_SCORE.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .latent import seed_ws

MAD_TO_STD = 1.4826             # the median absolute deviation of normal values times this is their std
SPREAD_FLOOR = 0.01             # the spread is at least this share of the deviations' rms: a flat map with one
                                # spike gets a large finite ratio, not a division by zero
MIN_MAP_SIZE = 16               # in smaller maps a window is a seventh (8 px) or half (4 px) of the map:
                                # no spot there is "local"
WINDOW_PER_SIZE = 32            # window radius: one pixel per 32 pixels of map size, at least 1 (3x3 up to 63 px)
DROPLET_SCORE = 10.0            # a map scores this much when a spike 10 spreads high holds all its energy, or one
                                # 20 spreads high holds half: clearly one spot, not texture (unit Gaussian noise
                                # maps score below 0.5 at 16 px, below 0.1 at 64 px)
RECURRING_SHARE = 0.5           # a channel "recurs" when at least half of the seeds show its spike


@dataclass(frozen=True)
class MapSpikes:
    """The measures of every map of one layer's activation [N, C, H, W], each [N, C] (numpy)."""
    score: np.ndarray
    peak_ratio: np.ndarray
    topk_share: np.ndarray
    compactness: np.ndarray
    y: np.ndarray
    x: np.ndarray


@dataclass(frozen=True)
class DropletFinding:
    """One channel of one layer, over a set of seeds: its mean score, where its strongest spike is (in the layer's
    own map coordinates) and on how many of the seeds it reaches DROPLET_SCORE."""
    layer: str
    channel: int
    y: int
    x: int
    score: float
    seeds: int
    seed_count: int           # how many seeds were measured
    peak_ratio: float         # means over the seeds, for the panel's tooltip
    topk_share: float
    compactness: float
    best_seed: int            # the seed whose spike is the strongest (y, x are from it)
    height: int
    width: int

    @property
    def recurs(self) -> bool:
        return self.seeds >= max(1, RECURRING_SHARE * self.seed_count)

    def as_json(self) -> dict:
        return {"layer": self.layer, "channel": self.channel, "y": self.y, "x": self.x,
                "score": round(self.score, 4), "seeds": self.seeds}


@dataclass(frozen=True)
class LayerDropletScore:
    """One layer's line of the chart: its best channel's score and how many channels reach DROPLET_SCORE on at
    least one seed."""
    layer: str
    best_score: float
    best_channel: int
    droplet_channels: int
    channels: int


@dataclass(frozen=True)
class DropletReport:
    findings: tuple[DropletFinding, ...]        # every measured (layer, channel), best first
    layers: tuple[LayerDropletScore, ...]       # in synthesis order
    seeds: tuple[int, ...]

    @property
    def droplets(self) -> tuple[DropletFinding, ...]:
        """The findings that reach DROPLET_SCORE on at least one seed."""
        return tuple(f for f in self.findings if f.seeds > 0)

    @property
    def recurring(self) -> tuple[DropletFinding, ...]:
        return tuple(f for f in self.findings if f.recurs and f.seeds > 0)

    @property
    def note(self) -> str:
        droplets, recurring = self.droplets, self.recurring
        if not droplets:
            return f"no channel reaches a droplet score of {DROPLET_SCORE:g} on any of the {len(self.seeds)} seeds"
        if len(self.seeds) > 1 and recurring:
            return (f"{len(recurring)} of {len(droplets)} spiking channels spike on at least "
                    f"{RECURRING_SHARE:.0%} of the {len(self.seeds)} seeds: these spikes recur on the same channels "
                    f"across seeds (AdaIN droplets do)")
        if len(self.seeds) == 1:
            return f"{len(droplets)} channels spike on seed {self.seeds[0]}"
        return f"{len(droplets)} channels spike on some of the {len(self.seeds)} seeds, none on most of them"


def map_spikes(activation: torch.Tensor) -> MapSpikes:
    """The spike measures of every map of an activation [N, C, H, W]."""
    n, c, h, w = activation.shape
    maps = activation.detach().to(torch.float32).reshape(n * c, h * w)
    deviation = (maps - maps.median(dim=1, keepdim=True).values).abs()
    energy = deviation.square()
    total = energy.sum(dim=1)
    rms = (total / (h * w)).sqrt()
    spread = torch.maximum(MAD_TO_STD * deviation.median(dim=1).values, SPREAD_FLOOR * rms)
    peak, where = deviation.max(dim=1)
    flat = total <= 0                            # a constant map: no spike
    safe_spread = torch.where(flat, torch.ones_like(spread), spread)
    safe_total = torch.where(flat, torch.ones_like(total), total)
    radius = window_radius(h, w)
    side = 2 * radius + 1
    k = min(side * side, h * w)
    topk = energy.topk(k, dim=1).values.sum(dim=1)
    window = F.avg_pool2d(energy.reshape(n * c, 1, h, w), side, stride=1, padding=radius,
                          count_include_pad=True) * (side * side)
    in_window = window.reshape(n * c, h * w).gather(1, where.unsqueeze(1)).squeeze(1)
    peak_ratio = torch.where(flat, torch.zeros_like(peak), peak / safe_spread)
    topk_share = torch.where(flat, torch.zeros_like(topk), topk / safe_total)
    # The window's energy is at most the top-k energy; the pooled sum rounds a hair above it.
    compactness = torch.where(flat, torch.zeros_like(topk),
                              (in_window / torch.where(flat, torch.ones_like(topk), topk)).clamp(max=1))
    score = peak_ratio * topk_share * compactness

    def out(t):
        return t.reshape(n, c).cpu().numpy()

    return MapSpikes(score=out(score), peak_ratio=out(peak_ratio), topk_share=out(topk_share),
                     compactness=out(compactness), y=out(where // w).astype(np.int64),
                     x=out(where % w).astype(np.int64))


def window_radius(height: int, width: int) -> int:
    return max(1, min(height, width) // WINDOW_PER_SIZE)


def detectable_layers(layers) -> list:
    """The layers the detector measures by default: convolution layers (and StyleGAN3's input) of at least
    MIN_MAP_SIZE pixels a side; ToRGB outputs are image colours, not feature maps."""
    return [info for info in layers if info.kind in ("conv", "input")
            and min(info.height, info.width) >= MIN_MAP_SIZE]


class DropletAccumulator:
    """Collects the per-seed measures of each layer; `report()` ranks the channels. One seed at a time, so that a
    background task can report progress and stop between seeds."""

    def __init__(self, layers: Sequence):
        self.layers = list(layers)
        self.seeds: list[int] = []
        self._per_layer: dict[str, list[MapSpikes]] = {info.name: [] for info in self.layers}

    def add(self, seed: int, activations: dict[str, torch.Tensor]) -> None:
        """The activations [1, C, H, W] of every accumulated layer for one seed."""
        missing = [info.name for info in self.layers if info.name not in activations]
        if missing:
            raise KeyError(f"no activation for layers {', '.join(missing)}")
        for info in self.layers:
            self._per_layer[info.name].append(map_spikes(activations[info.name]))
        self.seeds.append(int(seed))

    def report(self) -> DropletReport:
        if not self.seeds:
            raise ValueError("no seeds measured")
        findings, layer_scores = [], []
        seeds = np.asarray(self.seeds)
        for info in self.layers:
            spikes = self._per_layer[info.name]
            score = np.concatenate([s.score for s in spikes])           # [seeds, C]
            ys = np.concatenate([s.y for s in spikes])
            xs = np.concatenate([s.x for s in spikes])
            mean = score.mean(axis=0)
            hits = (score >= DROPLET_SCORE).sum(axis=0)
            best = score.argmax(axis=0)
            peak_ratio = np.concatenate([s.peak_ratio for s in spikes]).mean(axis=0)
            topk_share = np.concatenate([s.topk_share for s in spikes]).mean(axis=0)
            compactness = np.concatenate([s.compactness for s in spikes]).mean(axis=0)
            for channel in range(score.shape[1]):
                b = best[channel]
                findings.append(DropletFinding(
                    layer=info.name, channel=channel, y=int(ys[b, channel]), x=int(xs[b, channel]),
                    score=float(mean[channel]), seeds=int(hits[channel]), seed_count=len(seeds),
                    peak_ratio=float(peak_ratio[channel]), topk_share=float(topk_share[channel]),
                    compactness=float(compactness[channel]), best_seed=int(seeds[b]), height=info.height,
                    width=info.width))
            top = int(mean.argmax())
            layer_scores.append(LayerDropletScore(info.name, float(mean[top]), top, int((hits > 0).sum()),
                                                  score.shape[1]))
        order = {info.name: i for i, info in enumerate(self.layers)}
        findings.sort(key=lambda f: (-f.score, -f.seeds, order[f.layer], f.channel))
        return DropletReport(tuple(findings), tuple(layer_scores), tuple(self.seeds))


def detect_droplets(G, seeds: Iterable[int], layers: Sequence[str] | None = None, psi: float = 1.0,
                    cutoff: int | None = None, class_index: int | None = None, noise_mode: str = "const",
                    progress: Callable[[int, int], bool | None] | None = None, layer_edits=None
                    ) -> DropletReport:
    """Measure every channel of `layers` (default: detectable_layers) over `seeds`, one synthesis a seed.
    noise_mode 'random' draws each image's noise from its own seed (as the `render` command does).
    progress(done, total) is called after each seed; returning False stops early (the report covers the seeds
    done so far). layer_edits: passed to the synthesis (explorer.bending.layer_edits of the ablations)."""
    seeds = list(seeds)
    by_name = {info.name: info for info in G.synthesis.layers}
    if layers is None:
        chosen = detectable_layers(G.synthesis.layers)
    else:
        unknown = [name for name in layers if name not in by_name]
        if unknown:
            raise ValueError(f"no layer named {unknown[0]!r}; layers: {', '.join(by_name)}")
        chosen = [by_name[name] for name in layers]
        small = [info for info in chosen if min(info.height, info.width) < MIN_MAP_SIZE]
        if small:
            raise ValueError(f"{small[0].name} is {small[0].width}x{small[0].height}: too small for a local spike "
                             f"(layers of at least {MIN_MAP_SIZE} px)")
    if not chosen:
        raise ValueError("no layer to measure")
    device = G.mapping.w_avg.device
    accumulator = DropletAccumulator(chosen)
    names = [info.name for info in chosen]
    order = {info.name: i for i, info in enumerate(G.synthesis.layers)}
    last = max(names, key=order.__getitem__)      # the layers after the last measured one need not run
    with torch.no_grad():
        for done, seed in enumerate(seeds, start=1):
            ws = seed_ws(G, seed, psi, cutoff, class_index, device)
            out = G.synthesis(ws, noise_mode=noise_mode, noise_seed=seed if noise_mode == "random" else None,
                              capture=names, stop_after=last, layer_edits=layer_edits)
            accumulator.add(seed, out.activations)
            if progress is not None and progress(done, len(seeds)) is False:
                break
    return accumulator.report()
