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

A droplet is more than one channel's spike: it "is present in all feature maps" of its layer (ibid.), one spot
where the whole layer spikes, because the generator uses it to dominate the statistics of every channel at once.
Per layer and image the "shared spot" measures that, from the same maps:

    spot          the window (radius as above) that holds the most channels' own peaks, counting a channel only
                  when its map is dominated by its spike (score at least DROPLET_SCORE, the channel measure
                  above): the top of a channel's texture lies anywhere and says nothing, and neither does the
                  brightest point of a broad region (on a flat background its peak ratio is high too, but its
                  energy is spread over the region, not held in the window); ties go to the window centred on
                  more peaks, then to the one with more normalised energy;
    shared share  the share of the layer's channels (flat ones left out) whose counted peak lies in that window;
    energy share  the mean over the layer's channels of the share of each one's energy (squared deviations from
                  its median) inside that window: how much of the layer the spot holds, whatever the peaks do;
    chance        the window's share of the map: what either share would be, on average, for a fixed window
                  and channels whose spots lie anywhere, independently (the fullest of all windows holds more:
                  about an eighth of 32 such channels; SHARED_SPOT_SHARE says why it stands far above that).

A layer's line (LayerDropletScore) has the median shared share over the seeds and on how many seeds it reaches
SHARED_SPOT_SHARE; the layer shows droplets when that is at least RECURRING_SHARE of the seeds.
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
RECURRING_SHARE = 0.5           # a channel "recurs", and a layer shows droplets, on at least half of the seeds
SHARED_SPOT_SHARE = 0.4         # a layer has a droplet on a seed when two in five of its channels peak in one
                                # window. A droplet is in all of a layer's maps (Karras et al. 2020); chance puts
                                # few there: a window is 9/256 of a 16 px map and 25/4096 of a 64 px one, so
                                # independent peaks of 32 channels crowd 3 or 4 (an eighth) into the fullest window,
                                # and 40% of them fall into one with a probability under 1e-8 (of 8 channels at 16
                                # px: about 2%; of more channels, less).
                                # Counting only channels that score as droplets themselves, trained networks
                                # without droplets stay near 0: the shipped models (2 December, seeds 0-15, 16-64
                                # px) share at most 0.06 (AdaIN, 146 kimg; 0.22 at 54 kimg) and 0.09 (StyleGAN2)
                                # on any seed.
                                # (Counting every peak 10 spreads high, as first tried, gave the AdaIN model 0.48:
                                # many of its channels hold the same broad region, whose brightest point they
                                # share; that is redundancy, not a droplet.)


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
class SharedSpots:
    """The shared spot of one layer's activation [N, C, H, W], per image (each [N], numpy): where it is, the share
    of the channels whose counted peak lies in its window, the mean share of their energy in it, and how many
    channels were not flat (the shares' denominator)."""
    y: np.ndarray
    x: np.ndarray
    share: np.ndarray
    energy_share: np.ndarray
    channels: np.ndarray
    chance: float


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
    least one seed; its shared spot: the median shared share over the seeds, on how many seeds it reaches
    SHARED_SPOT_SHARE, and the spot of the seed where the share is largest."""
    layer: str
    best_score: float
    best_channel: int
    droplet_channels: int
    channels: int
    shared_share: float = 0.0
    energy_share: float = 0.0
    seeds: int = 0                      # seeds whose shared share reaches SHARED_SPOT_SHARE
    seed_count: int = 0
    shares: tuple[float, ...] = ()      # the shared share of each seed, in the report's seed order
    chance: float = 0.0
    y: int = 0
    x: int = 0
    best_seed: int = 0
    spot_channels: tuple[int, ...] = ()   # the channels counted at that widest spot, strongest first

    @property
    def widest_share(self) -> float:
        """The largest shared share on any seed (0 with no seeds)."""
        return max(self.shares, default=0.0)

    @property
    def droplet(self) -> bool:
        """The layer shares one spiking spot over SHARED_SPOT_SHARE of its channels on at least RECURRING_SHARE of
        the seeds: the droplet of AdaIN generators."""
        return self.seed_count > 0 and self.seeds >= max(1, RECURRING_SHARE * self.seed_count)

    def as_json(self) -> dict:
        return {"layer": self.layer, "shared_share": round(self.shared_share, 4), "seeds": self.seeds,
                "seed_count": self.seed_count, "droplet": self.droplet,
                "energy_share": round(self.energy_share, 4), "chance": round(self.chance, 5),
                "y": self.y, "x": self.x, "best_seed": self.best_seed, "spot_channels": list(self.spot_channels),
                "shares": [round(share, 4) for share in self.shares],
                "best_score": round(self.best_score, 4), "best_channel": self.best_channel}


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
    def droplet_layers(self) -> tuple[LayerDropletScore, ...]:
        """The layers that show droplets: one spot shared by SHARED_SPOT_SHARE of the channels on most seeds."""
        return tuple(layer for layer in self.layers if layer.droplet)

    @property
    def note(self) -> str:
        return f"{self.layer_note}. {self.channel_note}"

    @property
    def layer_note(self) -> str:
        """What the shared spots say, in one sentence."""
        count, found = len(self.seeds), self.droplet_layers
        share = f"at least {SHARED_SPOT_SHARE:.0%} of the channels spike at one spot"
        if len(found) == 1:
            on = f"on seed {self.seeds[0]}" if count == 1 else f"on {found[0].seeds} of {count} seeds"
            return f"{found[0].layer}: {on}, {share}: a droplet, as in AdaIN networks"
        if found:
            shown = ", ".join(layer.layer if count == 1 else f"{layer.layer} ({layer.seeds} of {count} seeds)"
                              for layer in found)
            return f"{shown}: {share} of each layer: droplets, as in AdaIN networks"
        if not self.layers:
            return "no layer measured"
        best = max(self.layers, key=lambda layer: (layer.shared_share, layer.seeds))
        return (f"no droplet: no layer has {SHARED_SPOT_SHARE:.0%} of its channels spiking at one spot "
                f"{'on this seed' if count == 1 else 'on most seeds'} (most shared: {best.layer}, "
                f"{best.shared_share:.0%}{'' if count == 1 else ' median'})")

    @property
    def channel_note(self) -> str:
        """What the channels' own spikes say, in one sentence."""
        droplets, recurring = self.droplets, self.recurring
        if not droplets:
            return f"no channel reaches a droplet score of {DROPLET_SCORE:g} on any of the {len(self.seeds)} seeds"
        if len(self.seeds) > 1 and recurring:
            return (f"{len(recurring)} of {len(droplets)} spiking channels spike on at least "
                    f"{RECURRING_SHARE:.0%} of the {len(self.seeds)} seeds: these spikes recur on the same channels "
                    f"across seeds")
        if len(self.seeds) == 1:
            return f"{len(droplets)} channels spike on seed {self.seeds[0]}"
        return f"{len(droplets)} channels spike on some of the {len(self.seeds)} seeds, none on most of them"


def map_spikes(activation: torch.Tensor) -> MapSpikes:
    """The spike measures of every map of an activation [N, C, H, W]."""
    return measure_layer(activation)[0]


def shared_spots(activation: torch.Tensor) -> SharedSpots:
    """The shared spot of each image of an activation [N, C, H, W] (the module's docstring says what it is)."""
    return measure_layer(activation)[1]


def measure_layer(activation: torch.Tensor) -> tuple[MapSpikes, SharedSpots]:
    """Both measures of an activation [N, C, H, W], from one pass over its maps."""
    spikes, spots, _ = measure_layer_maps(activation)
    return spikes, spots


def measure_layer_maps(activation: torch.Tensor) -> tuple[MapSpikes, SharedSpots, np.ndarray]:
    """Both measures of an activation [N, C, H, W] and its energy map [N, H, W] (numpy): the mean over the layer's
    channels of each one's energy (squared deviation from its median) over its mean energy (flat channels add 0).
    It is about 1 everywhere for maps of noise; a window where a share of the channels hold all their energy
    averages that share / chance, while image structure, spread over many pixels, stays a few times 1."""
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
    window = window_sums(energy.reshape(n * c, h, w), radius)
    in_window = window.reshape(n * c, h * w).gather(1, where.unsqueeze(1)).squeeze(1)
    peak_ratio = torch.where(flat, torch.zeros_like(peak), peak / safe_spread)
    topk_share = torch.where(flat, torch.zeros_like(topk), topk / safe_total)
    # The window's energy is at most the top-k energy; the pooled sum rounds a hair above it.
    compactness = torch.where(flat, torch.zeros_like(topk),
                              (in_window / torch.where(flat, torch.ones_like(topk), topk)).clamp(max=1))
    score = peak_ratio * topk_share * compactness

    def out(t):
        return t.reshape(n, c).cpu().numpy()

    spikes = MapSpikes(score=out(score), peak_ratio=out(peak_ratio), topk_share=out(topk_share),
                       compactness=out(compactness), y=out(where // w).astype(np.int64),
                       x=out(where % w).astype(np.int64))

    # The shared spot: the window holding the most counted peaks (channels whose map a spike dominates).
    counted = (~flat & (score >= DROPLET_SCORE)).to(torch.float32).reshape(n, c)
    peaks = torch.zeros(n, h * w, device=counted.device).scatter_add_(1, where.reshape(n, c), counted)
    in_spot = window_sums(peaks.reshape(n, h, w), radius).reshape(n, h * w).round()
    normalised = (energy / safe_total.unsqueeze(1)).reshape(n, c, h * w).sum(dim=1)   # flat maps add zeros
    spot_energy = window_sums(normalised.reshape(n, h, w), radius).reshape(n, h * w)
    # The count decides first; among windows with equal counts, the one centred on the most peaks, then the one
    # with more energy (each tie-break term stays below 1: peaks.round() <= c, spot_energy < c + 1).
    tie_break = (peaks + spot_energy / (c + 1)) / (c + 1)
    spot = (in_spot + tie_break).argmax(dim=1)
    channels = (~flat).reshape(n, c).sum(dim=1)
    denominator = channels.clamp(min=1).to(torch.float32)
    share = in_spot.gather(1, spot.unsqueeze(1)).squeeze(1) / denominator
    energy_share = (spot_energy.gather(1, spot.unsqueeze(1)).squeeze(1) / denominator).clamp(max=1)
    spot = spot.cpu()
    spots = SharedSpots(y=(spot // w).numpy().astype(np.int64), x=(spot % w).numpy().astype(np.int64),
                        share=share.cpu().numpy(), energy_share=energy_share.cpu().numpy(),
                        channels=channels.cpu().numpy().astype(np.int64), chance=min(side * side, h * w) / (h * w))
    energy_map = (normalised * (h * w / c)).reshape(n, h, w).cpu().numpy()
    return spikes, spots, energy_map


def spot_channels(spikes: MapSpikes, spots: SharedSpots, radius: int, image: int = 0) -> np.ndarray:
    """The channels counted at the shared spot of one image (their map dominated by a spike, in the spot's window of
    `radius`): the shared share's numerator, strongest score first."""
    counted = spikes.score[image] >= DROPLET_SCORE
    inside = ((np.abs(spikes.y[image] - spots.y[image]) <= radius)
              & (np.abs(spikes.x[image] - spots.x[image]) <= radius))
    channels = np.flatnonzero(counted & inside)
    return channels[np.argsort(-spikes.score[image, channels], kind="stable")]


def window_sums(maps: torch.Tensor, radius: int) -> torch.Tensor:
    """[M, H, W] -> the sum over the (2 radius + 1)-square window around each pixel (cut at the map's edges)."""
    side = 2 * radius + 1
    return F.avg_pool2d(maps.unsqueeze(1), side, stride=1, padding=radius,
                        count_include_pad=True).squeeze(1) * (side * side)


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
        self._spots: dict[str, list[SharedSpots]] = {info.name: [] for info in self.layers}

    def add(self, seed: int, activations: dict[str, torch.Tensor]) -> None:
        """The activations [1, C, H, W] of every accumulated layer for one seed."""
        missing = [info.name for info in self.layers if info.name not in activations]
        if missing:
            raise KeyError(f"no activation for layers {', '.join(missing)}")
        self.add_measures(seed, {info.name: measure_layer(activations[info.name]) for info in self.layers})

    def add_measures(self, seed: int, measures: dict[str, tuple[MapSpikes, SharedSpots]]) -> None:
        """The measure_layer() results of every accumulated layer for one seed (one image)."""
        missing = [info.name for info in self.layers if info.name not in measures]
        if missing:
            raise KeyError(f"no measures for layers {', '.join(missing)}")
        for info in self.layers:
            spikes, spots = measures[info.name]
            self._per_layer[info.name].append(spikes)
            self._spots[info.name].append(spots)
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
            spots = self._spots[info.name]
            shares = np.concatenate([s.share for s in spots])                # [seeds]
            widest = int(shares.argmax())
            counted = spot_channels(spikes[widest], spots[widest], window_radius(info.height, info.width))
            layer_scores.append(LayerDropletScore(
                info.name, float(mean[top]), top, int((hits > 0).sum()), score.shape[1],
                shared_share=float(np.median(shares)),
                energy_share=float(np.median(np.concatenate([s.energy_share for s in spots]))),
                seeds=int((shares >= SHARED_SPOT_SHARE).sum()), seed_count=len(seeds),
                shares=tuple(float(v) for v in shares), chance=spots[0].chance,
                y=int(np.concatenate([s.y for s in spots])[widest]),
                x=int(np.concatenate([s.x for s in spots])[widest]), best_seed=int(seeds[widest]),
                spot_channels=tuple(int(c) for c in counted)))
        order = {info.name: i for i, info in enumerate(self.layers)}
        findings.sort(key=lambda f: (-f.score, -f.seeds, order[f.layer], f.channel))
        return DropletReport(tuple(findings), tuple(layer_scores), tuple(self.seeds))


def measured_layers(G, layers: Sequence[str] | None = None) -> list:
    """The synthesis layers (their infos) that `layers` names (default: detectable_layers); ValueError for a name
    the network lacks, a layer smaller than MIN_MAP_SIZE, or none at all."""
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
    return chosen


def detect_droplets(G, seeds: Iterable[int], layers: Sequence[str] | None = None, psi: float = 1.0,
                    cutoff: int | None = None, class_index: int | None = None, noise_mode: str = "const",
                    progress: Callable[[int, int], bool | None] | None = None, layer_edits=None
                    ) -> DropletReport:
    """Measure every channel of `layers` (default: detectable_layers) over `seeds`, one synthesis a seed.
    noise_mode 'random' draws each image's noise from its own seed (as the `render` command does).
    progress(done, total) is called after each seed; returning False stops early (the report covers the seeds
    done so far). layer_edits: passed to the synthesis (explorer.bending.layer_edits of the ablations)."""
    seeds = list(seeds)
    chosen = measured_layers(G, layers)
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
