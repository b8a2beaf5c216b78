"""The render pipeline: a frozen request in, pixels (or an error) out.

`render(generator, request, cache=None) -> RenderResult` is a pure function of its arguments: the same call gives
the same pixels in a thread, a process or a test. Everything that decides the pixels is in the `RenderRequest`;
view-only settings (zoom, pan, fullscreen, fps limit) are not. Errors, CUDA out-of-memory included, come back as
`RenderResult.error`; nothing is raised out of render().

The order in which a request becomes ws [1, num_ws, w_dim]:
  1. the main latent: the seeds of `seed_weights` blended bilinearly, in z (before mapping) or in w (after);
  2. truncation toward w_avg (psi, cutoff);
  3. style mixing: w index i takes the w of seed `layer_seeds[i]` (None keeps the main latent);
  4. copies: w index i takes w index j of another seed (`WCopy`);
  5. offsets: w index i moves along a direction by a strength (`WOffset`).
Then the synthesis runs with the noise settings and the style-channel deltas, capturing the selected layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LATENT_SPACES = ("z", "w")
NOISE_MODES = ("const", "random", "none")
VIEW_MODES = ("grid", "rgb", "single")          # channel grid, 3 channels as RGB, one channel
VIEW_NORMALISATIONS = ("channel", "global", "none")   # divide by each channel's max |x|, by the selection's, or not
OFFSET_DIRECTIONS = ("random", "to_seed")
DTYPES = ("float32", "float16")


# ---------------------------------------------------------------------------------------------------------------
# Per-layer edits: small frozen records shared by the session state and the request.

@dataclass(frozen=True)
class WOffset:
    """Move w[w_index] along a direction by `strength`.

    direction 'random': numpy RandomState(seed).randn(w_dim), a direction whose components have unit variance
    (the scale of w - w_avg of trained networks), so strength 1 is one typical step.
    direction 'to_seed': the difference (w of `seed`) - (this w), so strength 1 reaches that seed's w at this
    layer and 0.5 goes halfway.
    """
    w_index: int
    direction: str = "random"
    seed: int = 0
    strength: float = 0.0


@dataclass(frozen=True)
class WCopy:
    """Replace w[w_index] with w[from_w_index] of another seed (truncated like the main latent)."""
    w_index: int
    seed: int
    from_w_index: int


@dataclass(frozen=True)
class StyleDelta:
    """Add `delta` to channel `channel` of the affine output s (the style) of layer `layer`."""
    layer: str
    channel: int
    delta: float


# ---------------------------------------------------------------------------------------------------------------
# The request.

@dataclass(frozen=True)
class LayerViewRequest:
    """How to show one layer's activations (layer None: the output image) and which statistics to take.

    mode 'grid': `channel_count` channels from `first_channel`, tiled, each grey (0 = mid grey);
    mode 'rgb': channels first_channel .. first_channel + 2 as red, green, blue;
    mode 'single': channel `first_channel` alone.
    normalise 'channel' divides every channel by its own max |x| (a droplet's spike then shows as the one bright
    point of its channel while the rest goes flat), 'global' by the max |x| of all shown channels, 'none' leaves
    values as they are. scale_db then multiplies by 10 ** (scale_db / 20): +20 dB lifts the quiet rest of a
    channel next to its spike. fft adds the power spectrum of the shown channels, in dB, `fft_range_db` deep.
    """
    layer: str | None = None
    mode: str = "grid"
    first_channel: int = 0
    channel_count: int = 16
    normalise: str = "channel"
    scale_db: float = 0.0
    fft: bool = False
    fft_range_db: float = 50.0


@dataclass(frozen=True)
class RenderRequest:
    """Everything that decides the pixels; hashable (tuples, frozen records), so it can key a cache.

    network_key: which loaded network to render with (the worker holds the networks; see explorer.worker).
    seed_weights: the main latent, ((seed, weight), ...) with weights summing to 1 (explorer.latents.seed_weights
        makes them from a seed-space position). One seed with weight 1 is a plain seed.
    latent_space: 'z' blends the seeds' z (and class vectors) before mapping; 'w' blends their ws after it.
    class_index: the class of a conditional network; None draws each seed's class from the seed, as NVlabs'
        visualizer does (numpy RandomState(seed): randn(z_dim), then randint(c_dim)). Ignored when c_dim is 0.
    truncation_psi, truncation_cutoff: w = w_avg + psi * (w - w_avg) for w indices below cutoff (None: all).
    layer_seeds: style mixing, per w index the seed whose w it uses (None: the main latent); missing trailing
        entries are None.
    w_copies, w_offsets: per-layer W+ edits, applied in this order after mixing.
    style_deltas: deltas on the style (affine output s) of single channels.
    noise_mode: 'const' (the network's stored noise), 'random' (drawn from noise_seed, repeatable) or 'none'.
    noise_strength: global multiplier of every layer's learned noise strength; layer_noise_strength multiplies
        single layers further ((layer name, multiplier), ...). Strength 0 gives exactly the pixels of mode 'none'.
    view: the layer view and statistics.
    device, dtype: where and how to compute; 'float16' runs the network's float16 layers in float16 (CUDA only).
    """
    network_key: str
    seed_weights: tuple[tuple[int, float], ...] = ((0, 1.0),)
    latent_space: str = "w"
    class_index: int | None = None
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    layer_seeds: tuple[int | None, ...] = ()
    w_copies: tuple[WCopy, ...] = ()
    w_offsets: tuple[WOffset, ...] = ()
    style_deltas: tuple[StyleDelta, ...] = ()
    noise_mode: str = "const"
    noise_seed: int = 0
    noise_strength: float = 1.0
    layer_noise_strength: tuple[tuple[str, float], ...] = ()
    view: LayerViewRequest = LayerViewRequest()
    device: str = "cpu"
    dtype: str = "float32"


# ---------------------------------------------------------------------------------------------------------------
# The result.

@dataclass(frozen=True)
class ActivationStats:
    """Statistics of a set of activation values.

    A StyleGAN droplet is a local spike that dominates a feature map's statistics: max_abs far above mean_abs,
    so peak_to_mean (max_abs / mean_abs) is large where a droplet sits (tens to hundreds) and small in a clean
    map (a few).
    """
    mean: float
    std: float
    max_abs: float
    mean_abs: float
    peak_to_mean: float


@dataclass(frozen=True)
class LayerStats:
    """Statistics of the viewed layer (all its channels) and of the shown channels, and where the peak is."""
    layer: str | None                 # None: the output image
    shape: tuple[int, int, int]       # channels, height, width
    channels: tuple[int, int]         # the shown channels: first, stop (exclusive)
    all: ActivationStats
    selected: ActivationStats
    peak_channel: int                 # where max |x| of the whole layer is
    peak_y: int
    peak_x: int


@dataclass(frozen=True)
class RenderTimings:
    """Seconds spent per stage, and what the cache saved."""
    mapping_s: float = 0.0
    synthesis_s: float = 0.0
    view_s: float = 0.0
    total_s: float = 0.0
    layers_run: int = 0               # synthesis layers that ran (fewer than layers_total when resumed from cache)
    layers_total: int = 0
    resumed_after: str | None = None  # the cached layer the synthesis resumed after; None: it ran from the start
    mapping_cache_hits: int = 0       # seeds whose ws came from the cache
    mapping_cache_misses: int = 0


@dataclass
class RenderResult:
    """What render() gives back. On error, `error` holds one line and the images are None."""
    request: RenderRequest
    image: np.ndarray | None = None          # uint8 [H, W, 3] RGB (a 1-channel network is repeated to grey RGB)
    raw: np.ndarray | None = None            # float32 [C, H, W], the generator's output before clamping
    layer_image: np.ndarray | None = None    # uint8 [h, w, 3]: the layer view (grid / rgb / single)
    fft_image: np.ndarray | None = None      # uint8 [h, w, 3]: power spectrum in dB, when view.fft
    stats: LayerStats | None = None
    timings: RenderTimings = field(default_factory=RenderTimings)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None
