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

import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from . import controls as c
from .bending import LayerOperation, layer_edits
from .blending import ModelBlend
from .controls import (DTYPES, LATENT_SPACES, NOISE_MODES, VIEW_MODES, VIEW_NORMALISATIONS, DirectionOffset,
                       StyleDelta, WCopy, WOffset, control)
from .description import NetworkFacts
from .latents import blend, z_and_class_from_seed, z_from_seed
from .networks.common import bfloat16_is_fast_on_cpu, truncate
PREVIEW_DTYPES = {"cpu": "bfloat16", "cuda": "float16"}   # the fast, inexact tier on each device type


# ---------------------------------------------------------------------------------------------------------------
# Per-layer edits: small frozen records shared by the session state and the request.

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
    layer: str | None = control(None, c.view_layer)
    mode: str = control("grid", c.one_of(VIEW_MODES))
    # Not limited by the selected layer's channels: switching layers would invalidate it; the renderer clips it
    # instead and reports the channels it showed.
    first_channel: int = control(0, c.whole(0, c.MAX_VIEW_CHANNELS - 1))
    channel_count: int = control(16, c.whole(1, c.MAX_VIEW_CHANNELS))
    normalise: str = control("channel", c.one_of(VIEW_NORMALISATIONS))
    scale_db: float = control(0.0, c.in_range(*c.SCALE_DB_RANGE))
    fft: bool = control(False, c.boolean)
    fft_range_db: float = control(50.0, c.in_range(*c.FFT_RANGE_DB))


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
    device, dtype: where and how to compute; 'float16' runs the network's float16 layers in float16 (CUDA only);
        'bfloat16' runs the synthesis under bfloat16 autocast (a fast preview on CPUs with bfloat16 units).
    direction_offsets: moves of ws along directions of W (explorer.analysis.directions), after the W+ edits.
    layer_operations: explorer.bending operations on chosen channels of chosen layers, in order.
    main_w_plus: a W+ latent ([num_ws][w_dim], e.g. a projected photo) that replaces the seeds' blend as the main
        latent; truncation, mixing and every edit then apply to it as to a seed's ws.
    blend: explorer.blending.ModelBlend: render() is given the blended generator (the worker makes it from the two
        networks); the request names it so that the cache and a saved session know which pixels these are.
    """
    network_key: str
    seed_weights: tuple[tuple[int, float], ...] = control(((0, 1.0),), c.seed_weights)
    latent_space: str = control("w", c.one_of(LATENT_SPACES))
    class_index: int | None = control(None, c.class_index)
    truncation_psi: float = control(1.0, c.in_range(*c.PSI_RANGE))
    truncation_cutoff: int | None = control(None, c.truncation_cutoff)
    layer_seeds: tuple[int | None, ...] = control((), c.layer_seeds)
    w_copies: tuple[WCopy, ...] = control((), c.w_copies)
    w_offsets: tuple[WOffset, ...] = control((), c.w_offsets)
    style_deltas: tuple[StyleDelta, ...] = control((), c.style_deltas)
    noise_mode: str = control("const", c.one_of(NOISE_MODES))
    noise_seed: int = control(0, c.any_seed)
    noise_strength: float = control(1.0, c.in_range(*c.NOISE_STRENGTH_RANGE))
    layer_noise_strength: tuple[tuple[str, float], ...] = control((), c.layer_noise_strength)
    view: LayerViewRequest = LayerViewRequest()
    device: str = control("cpu", c.device)
    dtype: str = control("float32", c.one_of(DTYPES))
    input_transform: tuple[float, float, float] | None = control(None, c.input_transform)   # StyleGAN3 (tx, ty, deg)
    direction_offsets: tuple[DirectionOffset, ...] = control((), c.direction_offsets)   # after the W+ edits
    layer_operations: tuple[LayerOperation, ...] = control((), c.layer_operations)      # bending, in order
    main_w_plus: tuple[tuple[float, ...], ...] | None = control(None, c.main_w_plus)    # W+ instead of the seeds
    blend: ModelBlend | None = control(None, c.model_blend)       # another network's layers mixed in (the worker)


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
    ws: np.ndarray | None = None             # float32 [num_ws, w_dim]: the W+ the image was made from
    activations: dict[str, np.ndarray] | None = None   # every layer's output [C, H, W] float32, by layer name,
                                                       # when render() was asked to capture all
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# ---------------------------------------------------------------------------------------------------------------
# The cache.

MAPPING_CACHE_SEEDS = 512            # ws of this many seeds (36 KiB each at config F): a few MiB
STATE_CACHE_BYTES = 512 * 2 ** 20    # synthesis states kept for resuming: at most this much memory


@dataclass
class _Checkpoint:
    """A synthesis state after layer `position`, valid while the layers up to it get the same inputs."""
    position: int
    prefix: bytes           # digest of the inputs of layers 0..position
    state: Any
    nbytes: int


@dataclass
class _FinishedRun:
    """The last complete synthesis: reused as a whole when only view settings changed."""
    prefix: bytes
    image: torch.Tensor
    captured: str | None
    activation: torch.Tensor | None


class RenderCache:
    """What render() keeps between calls: the mapping results (ws per seed) and the synthesis state after
    each layer (coarse first, up to `state_bytes`), so that a change that only touches finer layers (a
    fine-layer mix, a noise change at 64 px) resumes right before the first changed layer instead of running
    the unchanged ones again.

    The cache is tied to one generator, device and dtype; a request for another clears it. Not thread-safe:
    give each thread its own (the worker owns one).
    """

    def __init__(self, mapping_seeds: int = MAPPING_CACHE_SEEDS, state_bytes: int = STATE_CACHE_BYTES):
        self.mapping_seeds = mapping_seeds
        self.state_bytes = state_bytes
        self.clear()

    def clear(self) -> None:
        self._token = None
        self._ws: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._checkpoints: dict[int, _Checkpoint] = {}
        self._finished: _FinishedRun | None = None

    def _bind(self, token) -> None:
        if token != self._token:
            self.clear()
            self._token = token

    def _mapped(self, key, compute) -> tuple[torch.Tensor, bool]:
        """The ws under `key`, computed on a miss; returns (ws, hit)."""
        if key in self._ws:
            self._ws.move_to_end(key)
            return self._ws[key], True
        ws = compute()
        self._ws[key] = ws
        while len(self._ws) > self.mapping_seeds:
            self._ws.popitem(last=False)
        return ws, False

    @property
    def state_nbytes(self) -> int:
        return sum(c.nbytes for c in self._checkpoints.values())


# ---------------------------------------------------------------------------------------------------------------
# render()

GRID_GAP = 1          # pixels of black between the tiles of the channel grid, so neighbouring maps stay apart
NORM_FLOOR = 1e-8     # divisor floor when normalising an all-zero channel


def render(generator, request: RenderRequest, cache: RenderCache | None = None,
           capture_all: bool = False) -> RenderResult:
    """Renders `request` with `generator`; errors (bad values, layers the network lacks, out of memory) come
    back in RenderResult.error. `cache` (optional) makes repeated renders faster and never changes pixels.
    capture_all: also return every layer's activation (RenderResult.activations; the cache is not used)."""
    started = time.perf_counter()
    try:
        with torch.no_grad():
            return _Render(generator, request, cache, started, capture_all).run()
    except Exception as error:   # noqa: BLE001 - every failure becomes a value for the caller to show
        if cache is not None:
            cache.clear()
        if _is_out_of_memory(error):
            _free_device_memory()
            message = (f"out of memory on {request.device} ({_first_line(error)}); try a smaller layer view, "
                       f"float16 or another device")
        elif isinstance(error, (ValueError, KeyError)):
            message = _first_line(error)
        else:
            message = f"{type(error).__name__}: {_first_line(error)}"
        return RenderResult(request, error=message,
                            timings=RenderTimings(total_s=time.perf_counter() - started))


def _first_line(error: BaseException) -> str:
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(error, oom)) or "out of memory" in str(error).lower()


def _free_device_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def check_request(request: RenderRequest, facts: NetworkFacts | None = None) -> None:
    """Every control's own check (explorer.controls: the same the session state runs), against the network's facts;
    then what needs two fields at once. A request normally comes from the validated state, but render() is also
    called with requests built by hand or read from files."""
    c.check_record(request, facts)
    c.check_record(request.view, facts, prefix="view.")
    if request.dtype == "float16" and not request.device.startswith("cuda"):
        raise ValueError(f"float16 runs on CUDA only, not on {request.device}")
    if request.dtype == "bfloat16" and not bfloat16_supported(request.device):
        raise ValueError(f"bfloat16 is not supported on {request.device} here")


def bfloat16_supported(device: str) -> bool:
    """Whether bfloat16 runs at speed on `device`: CUDA, or a CPU whose oneDNN has bfloat16 kernels."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device == "cpu" and bfloat16_is_fast_on_cpu()


def preview_dtype(device: str) -> str | None:
    """The fast tier of a device: bfloat16 on a CPU that has it, float16 on CUDA; None when there is none."""
    if device.startswith("cuda"):
        return "float16" if torch.cuda.is_available() else None
    return "bfloat16" if bfloat16_supported(device) else None


def _device(request: RenderRequest, generator) -> torch.device:
    try:
        device = torch.device(request.device)
    except RuntimeError:
        raise ValueError(f"unknown device {request.device!r}; devices look like 'cpu', 'cuda', 'cuda:1', 'mps'")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {request.device}: CUDA is not available on this machine")
    held = next(iter(generator.parameters())).device
    if held.type != device.type or (device.index is not None and held.index != device.index):
        raise ValueError(f"the network is on {held}, the request asks for {request.device}; move the network "
                         f"first (the worker does this)")
    return held


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Render:
    """One render: a small object so the steps can share the request, the device and the counters."""

    def __init__(self, G, request: RenderRequest, cache: RenderCache | None, started: float,
                 capture_all: bool = False):
        self.G, self.request, self.started = G, request, started
        self.capture_all = capture_all
        self.activations: dict[str, np.ndarray] | None = None
        self.cache = cache if cache is not None and not capture_all else RenderCache(state_bytes=0)
        self.hits = self.misses = 0

    def run(self) -> RenderResult:
        request, G = self.request, self.G
        check_request(request, NetworkFacts.from_generator(G))
        self.device = _device(request, G)
        self.cache._bind((request.network_key, id(G), str(self.device), request.dtype))

        t0 = time.perf_counter()
        ws = self.build_ws()
        _sync(self.device)
        t1 = time.perf_counter()
        # The preview tier: bfloat16 matrix units where the CPU has them (the cache is bound to the dtype, so
        # preview and exact states never mix).
        # Networks whose layers take a preview precision get it per call (their bfloat16 paths are channels-last
        # and fused); the others run under autocast.
        native = getattr(G.synthesis, "supports_compute_dtype", False)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                            enabled=request.dtype == "bfloat16" and not native):
            image, activation, layers_run, resumed_after = self.synthesize(ws)
        _sync(self.device)
        t2 = time.perf_counter()

        raw = image[0].to(torch.float32)
        shown = activation[0].to(torch.float32) if activation is not None else raw
        layer_image, fft_image, stats = layer_view(shown, request.view)
        t3 = time.perf_counter()
        timings = RenderTimings(mapping_s=t1 - t0, synthesis_s=t2 - t1, view_s=t3 - t2,
                                total_s=time.perf_counter() - self.started, layers_run=layers_run,
                                layers_total=len(G.synthesis.layers), resumed_after=resumed_after,
                                mapping_cache_hits=self.hits, mapping_cache_misses=self.misses)
        return RenderResult(request, image=to_uint8_rgb(raw), raw=raw.cpu().numpy(), layer_image=layer_image,
                            fft_image=fft_image, stats=stats, timings=timings,
                            ws=ws[0].detach().to(torch.float32).cpu().numpy(), activations=self.activations)

    # -- latents ------------------------------------------------------------------------------------------------

    def _class_vector(self, seed: int) -> torch.Tensor | None:
        c_dim = self.G.c_dim
        if c_dim == 0:
            return None
        index = self.request.class_index
        if index is None:
            index = z_and_class_from_seed(seed, self.G.z_dim, c_dim)[1]
        c = torch.zeros([1, c_dim], device=self.device)
        c[0, index] = 1
        return c

    def _count(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    def seed_ws(self, seed: int) -> torch.Tensor:
        """The untruncated ws [1, num_ws, w_dim] of one seed."""
        class_index = self.request.class_index if self.G.c_dim else None

        def compute():
            z = z_from_seed(seed, self.G.z_dim).to(self.device)
            return self.G.mapping(z, self._class_vector(seed))

        ws, hit = self.cache._mapped(("seed", seed, class_index), compute)
        self._count(hit)
        return ws

    def main_ws(self) -> torch.Tensor:
        if self.request.main_w_plus is not None:
            return torch.tensor(self.request.main_w_plus, dtype=torch.float32, device=self.device)[None]
        weights = self.request.seed_weights
        if len(weights) == 1 or self.request.latent_space == "w":
            return blend([self.seed_ws(seed) for seed, _ in weights], [w for _, w in weights])
        class_index = self.request.class_index if self.G.c_dim else None

        def compute():
            z = blend([z_from_seed(seed, self.G.z_dim) for seed, _ in weights], [w for _, w in weights])
            cs = [self._class_vector(seed) for seed, _ in weights]
            c = blend(cs, [w for _, w in weights]) if cs[0] is not None else None
            return self.G.mapping(z.to(self.device), c)

        ws, hit = self.cache._mapped(("z-blend", weights, class_index), compute)
        self._count(hit)
        return ws

    def truncated(self, ws: torch.Tensor) -> torch.Tensor:
        psi, cutoff = self.request.truncation_psi, self.request.truncation_cutoff
        if psi == 1:
            return ws
        return truncate(ws, self.G.mapping.w_avg, psi, cutoff)

    def build_ws(self) -> torch.Tensor:
        """The request's W+ [1, num_ws, w_dim] (every value was checked by check_request)."""
        request, num_ws = self.request, self.G.num_ws
        ws = self.truncated(self.main_ws()).clone()
        for i, seed in enumerate(request.layer_seeds[:num_ws]):
            if seed is not None:
                ws[:, i] = self.truncated(self.seed_ws(seed))[:, i]
        for copy in request.w_copies:
            ws[:, copy.w_index] = self.truncated(self.seed_ws(copy.seed))[:, copy.from_w_index]
        for offset in request.w_offsets:
            if offset.direction == "random":
                direction = torch.from_numpy(np.random.RandomState(offset.seed).randn(self.G.w_dim))
                direction = direction.to(device=self.device, dtype=ws.dtype)
            else:
                direction = self.truncated(self.seed_ws(offset.seed))[:, offset.w_index] - ws[:, offset.w_index]
            ws[:, offset.w_index] = ws[:, offset.w_index] + offset.strength * direction
        for moved in request.direction_offsets:
            stop = num_ws if moved.w_stop is None else moved.w_stop
            vector = torch.tensor(moved.direction, device=self.device, dtype=ws.dtype)
            ws[:, moved.w_start:stop] = ws[:, moved.w_start:stop] + moved.strength * vector
        return ws

    # -- synthesis ----------------------------------------------------------------------------------------------

    def controls(self) -> dict:
        """The synthesis keyword arguments of the request (without capture / stop / resume)."""
        request, layers = self.request, self.G.synthesis.layers
        noise_layers = [layer.name for layer in layers if layer.has_noise]
        per_layer = dict(request.layer_noise_strength)
        strength = {name: request.noise_strength * per_layer.get(name, 1.0) for name in noise_layers}
        style_channels = {layer.name: layer.style_channels for layer in layers}
        deltas: dict[str, torch.Tensor] = {}
        for delta in request.style_deltas:
            size = style_channels[delta.layer]
            if delta.layer not in deltas:
                deltas[delta.layer] = torch.zeros([size], device=self.device)
            deltas[delta.layer][delta.channel] += delta.delta
        kwargs = dict(noise_mode=request.noise_mode, noise_strength=strength,
                      noise_seed=request.noise_seed if request.noise_mode == "random" else None,
                      style_deltas=deltas)
        if request.dtype == "float16":
            kwargs["force_fp32"] = False
        if request.dtype == "bfloat16" and getattr(self.G.synthesis, "supports_compute_dtype", False):
            kwargs["compute_dtype"] = torch.bfloat16
        if request.layer_operations:
            kwargs["layer_edits"] = layer_edits(request.layer_operations)
        if request.input_transform is not None:
            kwargs["input_transform"] = tuple(float(v) for v in request.input_transform)
        return kwargs

    def prefixes(self, ws: torch.Tensor, kwargs: dict) -> list[bytes]:
        """prefixes[p]: a digest of everything that decides the synthesis state after layer p."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(repr((self.request.network_key, self.request.dtype, kwargs["noise_mode"],
                            kwargs["noise_seed"], tuple(ws.shape), kwargs.get("input_transform"))).encode())
        out = []
        w_bytes = ws[0].detach().to(torch.float32).cpu().numpy()
        for layer in self.G.synthesis.layers:
            digest.update(layer.name.encode())
            if layer.w_index is not None:
                digest.update(w_bytes[layer.w_index].tobytes())
            if layer.has_noise:
                digest.update(np.float64(kwargs["noise_strength"].get(layer.name, 1.0)).tobytes())
            delta = kwargs["style_deltas"].get(layer.name)
            if delta is not None:
                digest.update(delta.cpu().numpy().tobytes())
            bent = [op for op in self.request.layer_operations if op.layer == layer.name]
            if bent:
                digest.update(repr(bent).encode())
            out.append(digest.copy().digest())
        return out

    def synthesize(self, ws: torch.Tensor):
        """Runs the synthesis, resuming from the deepest cached state whose layers' inputs are unchanged.
        Returns (image, captured activation or None, layers run, resumed-after layer name or None)."""
        G, cache = self.G, self.cache
        layers = G.synthesis.layers
        names = [layer.name for layer in layers]
        captured = self.request.view.layer
        kwargs = self.controls()
        if self.capture_all:
            out = G.synthesis(ws, capture="all", **kwargs)
            self.activations = {name: a[0].to(torch.float32).cpu().numpy() for name, a in out.activations.items()}
            activation = out.activations.get(captured)
            return out.image, activation, len(names), None
        prefixes = self.prefixes(ws, kwargs)

        finished = cache._finished
        if finished is not None and finished.prefix == prefixes[-1] and captured in (None, finished.captured):
            return finished.image, finished.activation if captured else None, 0, names[-1]

        # The deepest resume point: its inputs unchanged and before the layer we need to capture.
        limit = names.index(captured) if captured is not None else len(names)
        start = None
        for position in sorted(cache._checkpoints, reverse=True):
            checkpoint = cache._checkpoints[position]
            if position < limit and checkpoint.prefix == prefixes[position]:
                start = checkpoint
                break
        # Keep only the checkpoints that are still valid; the rest are rebuilt by this run.
        cache._checkpoints = {p: c for p, c in cache._checkpoints.items() if c.prefix == prefixes[p]}

        points = [p for p in _resume_points(layers) if start is None or p > start.position]
        state = start.state if start is not None else None
        activation = None
        budget = cache.state_bytes - cache.state_nbytes
        for position in points:
            if position in cache._checkpoints or budget <= 0:
                continue
            out = G.synthesis(ws, capture=[captured] if captured else (), stop_after=names[position],
                              resume=state, **kwargs)
            activation = out.activations.get(captured, activation)
            state = out.state
            nbytes = _state_nbytes(state)
            if nbytes > budget:
                budget = 0
            else:
                budget -= nbytes
                cache._checkpoints[position] = _Checkpoint(position, prefixes[position], state, nbytes)
        out = G.synthesis(ws, capture=[captured] if captured else (), resume=state, **kwargs)
        activation = out.activations.get(captured, activation)
        image = out.image
        cache._finished = _FinishedRun(prefixes[-1], image, captured, activation)
        layers_run = len(names) - (start.position + 1 if start is not None else 0)
        return image, activation, layers_run, names[start.position] if start is not None else None


def _resume_points(layers) -> list[int]:
    """Positions after which a state is kept: every layer but the last (a change at w index i resumes right
    before the first layer that w styles), coarse first, as far as the memory budget goes."""
    return list(range(len(layers) - 1))


def _state_nbytes(state) -> int:
    total = 0
    for tensor in (getattr(state, "x", None), getattr(state, "img", None), getattr(state, "block_input", None)):
        if isinstance(tensor, torch.Tensor):
            total += tensor.numel() * tensor.element_size()
    return total


# ---------------------------------------------------------------------------------------------------------------
# Pixels.

def to_uint8_rgb(image: torch.Tensor) -> np.ndarray:
    """[C, H, W] float in about [-1, 1] -> uint8 [H, W, 3], as NVlabs writes images: x * 127.5 + 128, clamped.
    One channel becomes grey; a fourth channel (alpha) is dropped."""
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    image = image[:3]
    return (image * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _shown_channels(channels: int, view: LayerViewRequest) -> tuple[int, int]:
    """[first, stop) of the channels shown, clipped to the layer (the state does not know every layer's size)."""
    if view.mode == "rgb" and channels >= 3:
        first = min(view.first_channel, channels - 3)
        return first, first + 3
    first = min(view.first_channel, channels - 1)
    count = 1 if view.mode in ("single", "rgb") else view.channel_count
    return first, min(first + count, channels)


def _stats(values: torch.Tensor, abs_values: torch.Tensor | None = None) -> ActivationStats:
    """abs_values: |values|, where the caller has it already (a pass over a large layer saved)."""
    flat = values.reshape(-1)
    std, mean = torch.std_mean(flat, unbiased=False)
    abs_values = flat.abs() if abs_values is None else abs_values.reshape(-1)
    mean_abs = abs_values.mean().item()
    max_abs = abs_values.max().item()
    return ActivationStats(mean=mean.item(), std=std.item(), max_abs=max_abs, mean_abs=mean_abs,
                           peak_to_mean=max_abs / mean_abs if mean_abs > 0 else 0.0)


def layer_view(activation: torch.Tensor, view: LayerViewRequest):
    """(layer image, fft image or None, LayerStats) of one layer's activation [C, H, W] (float).

    Runs on every frame, on layers up to the 1024 px output: |x| is taken once for the peak and both sets of
    statistics (the same set when every channel is shown), and the images are made contiguous by torch before
    numpy sees them (numpy's copy of a transposed or channel-expanded view took 6-37 ms at 1024 px)."""
    activation = activation.to(torch.float32)
    channels, height, width = activation.shape
    first, stop = _shown_channels(channels, view)
    selected = activation[first:stop]

    magnitude = activation.abs()
    peak = int(magnitude.reshape(-1).argmax().item())
    every = _stats(activation, magnitude)
    stats = LayerStats(layer=view.layer, shape=(channels, height, width), channels=(first, stop), all=every,
                       selected=every if (first, stop) == (0, channels) else _stats(selected, magnitude[first:stop]),
                       peak_channel=peak // (height * width), peak_y=(peak // width) % height, peak_x=peak % width)

    shown = selected
    if view.normalise == "channel":
        shown = shown / magnitude[first:stop].amax(dim=(1, 2), keepdim=True).clamp_min(NORM_FLOOR)
    elif view.normalise == "global":
        shown = shown / magnitude[first:stop].max().clamp_min(NORM_FLOOR)
    shown = shown * 10 ** (view.scale_db / 20)
    grey = (shown * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    if view.mode == "rgb" and grey.shape[0] == 3:
        image = grey.permute(1, 2, 0)
    elif grey.shape[0] == 1:
        image = grey[0, :, :, None].expand(-1, -1, 3)
    else:
        image = _grid(grey)
    fft_image = _spectrum(selected, view.fft_range_db) if view.fft else None
    return image.contiguous().cpu().numpy(), fft_image, stats


def _grid(tiles: torch.Tensor) -> torch.Tensor:
    """[n, h, w] uint8 -> [H, W, 3]: the tiles row by row in a near-square grid, GRID_GAP black between them."""
    count, height, width = tiles.shape
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    out = torch.zeros([rows * (height + GRID_GAP) - GRID_GAP, cols * (width + GRID_GAP) - GRID_GAP],
                      dtype=torch.uint8, device=tiles.device)
    for index in range(count):
        top = (index // cols) * (height + GRID_GAP)
        left = (index % cols) * (width + GRID_GAP)
        out[top:top + height, left:left + width] = tiles[index]
    return out[:, :, None].expand(-1, -1, 3)


def _spectrum(channels: torch.Tensor, range_db: float) -> np.ndarray:
    """Power spectrum of the channels (summed), centred, in dB relative to its mean: 0 dB is mid grey,
    +-range_db/2 are white and black. The mean is removed and a Hann window applied first, so the image
    edges and the DC term do not swamp the spectrum."""
    _, height, width = channels.shape
    signal = channels - channels.mean(dim=(1, 2), keepdim=True)
    window = (torch.hann_window(height, periodic=False, device=signal.device)[:, None]
              * torch.hann_window(width, periodic=False, device=signal.device)[None, :]) if min(height, width) > 1 \
        else torch.ones([height, width], device=signal.device)
    power = torch.fft.fft2(signal * window).abs().square().sum(dim=0)
    power = torch.fft.fftshift(power)
    decibels = 10 * torch.log10(power / power.mean().clamp_min(NORM_FLOOR) + NORM_FLOOR)
    grey = ((decibels / range_db + 0.5) * 255).clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(grey[:, :, None].expand(-1, -1, 3).cpu().numpy())
