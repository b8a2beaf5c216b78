"""The explorer's session state: plain dataclass sections that validate every change and report it.

    session = Session()
    session.events.connect(on_change)          # on_change(StateChange(section, field, old, new))
    session.truncation.psi = 0.7               # validated; listeners hear ('truncation', 'psi', 1.0, 0.7)
    session.truncation.psi = 0.7               # nothing changed: nobody hears anything
    session.truncation.psi = 5                 # ValueError: truncation.psi must be between -1 and 2, not 5
    request = session.render_request("ffhq")   # the frozen explorer.render.RenderRequest

Panels and the viewer change the state only by assigning fields or calling the sections' methods; both go
through the same validation and emit one StateChange per field that changed. The loaded generator itself is
not state (the worker holds it); what validation needs to know about it (num_ws, layer names, c_dim) is a
`NetworkFacts`, given with `session.set_facts(...)` when a network loads.

The whole state saves to JSON and loads back (`to_json`, `from_json`, `load_json`); view-only settings (zoom,
pan, fullscreen) are saved too, but they are not part of the render request.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Callable, ClassVar, Iterator

from . import controls as c
from .bending import OPERATIONS, LayerOperation
from .blending import ModelBlend
from .controls import ROTATE_RANGE, TRANSLATE_RANGE, DirectionOffset, StateError, StyleDelta, WCopy, WOffset
from .controls import choice as _choice
from .controls import flag as _flag
from .controls import integer as _integer
from .controls import real as _real
from .controls import seed as _seed
from .controls import text as _text
from . import instrument
from .description import MIX_PRESETS, NetworkFacts
from .instrument import MidiBinding, StoredPreset
from .latents import seed_at, seed_weights
from .render import LayerViewRequest, RenderRequest, bfloat16_supported

log = logging.getLogger(__name__)

STATE_VERSION = 1

# Allowed ranges of the settings that are not render controls (those are in explorer.controls).
POSITION_LIMIT = float(2 ** 40)            # seed-space coordinates; seeds wrap at 2**32 anyway
SPEED_RANGE = (-100.0, 100.0)              # seeds per second while animating
ZOOM_RANGE = (1, 32)                       # integer zoom factors
FPS_LIMIT_RANGE = (0, 240)                 # 0: no limit


def mirror(request_field: str, of: type = RenderRequest):
    """A section field that edits the render request's `request_field` (of RenderRequest, or of its
    LayerViewRequest): its default and its check are the request field's own, declared once there."""
    return field(default=c.default_of(of, request_field),
                 metadata={"check": c.check_of(of, request_field), "request": request_field, "of": of})



@dataclass(frozen=True)
class StateChange:
    """One field changed: listeners get (section, field, old, new)."""
    section: str
    field: str
    old: Any
    new: Any


# ---------------------------------------------------------------------------------------------------------------
# Listeners.

class StateEvents:
    """The listeners of one session. A listener that raises is logged and the others still run."""

    def __init__(self):
        self._callbacks: list[Callable[[StateChange], None]] = []

    def connect(self, callback: Callable[[StateChange], None]) -> Callable[[StateChange], None]:
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[[StateChange], None]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, change: StateChange) -> None:
        for callback in list(self._callbacks):
            try:
                callback(change)
            except Exception:
                log.exception("state listener %r failed on %s", callback, change)


# ---------------------------------------------------------------------------------------------------------------
# Sections.

_MISSING = object()


class Section:
    """Base of the state sections: a dataclass whose fields are checked by `_check_<field>` on every
    assignment (also in __init__), and whose changes are reported to the owning session."""

    name: ClassVar[str] = ""
    persist: ClassVar[bool] = True    # saved to session files

    def __setattr__(self, key, value):
        if key.startswith("_"):
            object.__setattr__(self, key, value)
            return
        if key not in self.field_names():
            raise AttributeError(f"{self.name} has no setting {key!r}; it has {', '.join(self.field_names())}")
        value = self._checker(key)(value)
        old = self.__dict__.get(key, _MISSING)
        if old is not _MISSING and type(old) is type(value) and old == value:
            return
        object.__setattr__(self, key, value)
        if old is not _MISSING:
            self._emit(key, old, value)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def _checker(self, key: str) -> Callable[[Any], Any]:
        """The check of a field: the section's own `_check_<field>`, or the render control's check it mirrors."""
        own = getattr(self, f"_check_{key}", None)
        if own is not None:
            return own
        check = next(f for f in fields(self) if f.name == key).metadata["check"]
        return lambda value: check(self.where(key), value, self.facts)

    @classmethod
    def request_values(cls, section) -> dict:
        """{request field: value} of the fields that mirror a render control, by the record they belong to."""
        out: dict = {}
        for f in fields(cls):
            if "request" in f.metadata:
                out.setdefault(f.metadata["of"], {})[f.metadata["request"]] = getattr(section, f.name)
        return out

    @property
    def facts(self) -> NetworkFacts | None:
        owner = self.__dict__.get("_owner")
        return owner.facts if owner is not None else None

    def where(self, key: str) -> str:
        return f"{self.name}.{key}"

    def revalidate(self) -> None:
        """Check every field again (after the facts changed); raises StateError at the first bad one."""
        for key in self.field_names():
            self._checker(key)(getattr(self, key))

    def repair(self) -> list[str]:
        """Make every field valid for the current facts; returns one note per value that had to change."""
        notes = []
        for key in self.field_names():
            check = self._checker(key)
            old = getattr(self, key)
            try:
                check(old)
            except StateError as error:
                fixed = getattr(self, f"_repair_{key}", None)
                new = check(fixed() if fixed else getattr(type(self)(), key))
                notes.append(f"{error}; reset to {new!r}")
                object.__setattr__(self, key, new)
                self._emit(key, old, new)
        return notes

    def _emit(self, key, old, new) -> None:
        owner = self.__dict__.get("_owner")
        if owner is not None:
            owner.events.emit(StateChange(self.name, key, old, new))
        after = getattr(self, f"_after_{key}", None)
        if after is not None:
            after()

    def to_dict(self) -> dict:
        return {key: to_jsonable(getattr(self, key)) for key in self.field_names()}


def to_jsonable(value):
    """A setting's value as JSON data: tuples become lists, the frozen records (offsets, operations, presets, ...)
    objects of their fields."""
    if isinstance(value, tuple):
        return [to_jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    return value


@dataclass(eq=True)
class NetworkSection(Section):
    """path: the network file shown (None: none loaded). The generator itself lives with the worker."""
    name: ClassVar[str] = "network"
    path: str | None = None

    def _check_path(self, value):
        return None if value is None else _text(self.where("path"), value)


@dataclass(eq=True)
class LatentSection(Section):
    """The main latent as a position in seed space.

    The integer point (ix, iy) is seed (ix + 100 * iy) mod 2**32; a fractional position blends the 4
    neighbouring seeds bilinearly, in z or in w (`space`). Dragging moves x and y; animation moves x by
    `speed` seeds per second (see Session.advance). class_index: for conditional networks (None: each seed
    draws its class, as NVlabs' visualizer does).
    """
    name: ClassVar[str] = "latent"
    x: float = 0.0
    y: float = 0.0
    animate: bool = False
    speed: float = 0.25
    space: str = mirror("latent_space")
    class_index: int | None = mirror("class_index")
    w_plus: tuple[tuple[float, ...], ...] | None = mirror("main_w_plus")   # a projected photo's W+, or None

    def _check_x(self, value):
        return _real(self.where("x"), value, -POSITION_LIMIT, POSITION_LIMIT)

    def _check_y(self, value):
        return _real(self.where("y"), value, -POSITION_LIMIT, POSITION_LIMIT)

    def _check_animate(self, value):
        return _flag(self.where("animate"), value)

    def _check_speed(self, value):
        return _real(self.where("speed"), value, *SPEED_RANGE)

    @property
    def seed(self) -> int:
        """The seed of the nearest integer point."""
        return seed_at(round(self.x), round(self.y))

    def set_seed(self, seed: int) -> None:
        """Jump to a seed: x = seed, y = 0 (a W+ latent in use gives way to the seeds)."""
        seed = _seed(self.where("seed"), seed)
        self.w_plus = None
        self.x = float(seed)
        self.y = 0.0

    def drag(self, dx: float, dy: float) -> None:
        """Move the position by (dx, dy) seeds (a W+ latent in use gives way to the seeds)."""
        dx, dy = _real(self.where("x"), dx), _real(self.where("y"), dy)
        self.w_plus = None
        self.x = self.x + dx
        self.y = self.y + dy

    def use_w_plus(self, ws) -> None:
        """A W+ latent ([num_ws, w_dim], e.g. numpy) as the main latent."""
        self.w_plus = tuple(tuple(float(v) for v in row) for row in ws)

    def snap(self) -> None:
        """Round the position to the nearest integer point."""
        self.x = float(round(self.x))
        self.y = float(round(self.y))

    def seed_weights(self) -> tuple[tuple[int, float], ...]:
        return seed_weights(self.x, self.y)


@dataclass(eq=True)
class TruncationSection(Section):
    """psi in [-1, 2]; cutoff: truncate the w indices below it (None: all; at most num_ws)."""
    name: ClassVar[str] = "truncation"
    psi: float = mirror("truncation_psi")
    cutoff: int | None = mirror("truncation_cutoff")


@dataclass(eq=True)
class MixingSection(Section):
    """Style mixing: `sources` are seeds; `layer_sources[i]` picks for w index i the main latent (None) or
    source k (an index into `sources`). Entries missing at the end are None. Presets and ranges are methods."""
    name: ClassVar[str] = "mixing"
    sources: tuple[int, ...] = ()
    layer_sources: tuple[int | None, ...] = ()

    def _check_sources(self, value):
        where = self.where("sources")
        if not isinstance(value, (tuple, list)):
            raise StateError(f"{where} must be a list of seeds, not {value!r}")
        return tuple(_seed(f"{where}[{k}]", seed) for k, seed in enumerate(value))

    def _check_layer_sources(self, value):
        where = self.where("layer_sources")
        if not isinstance(value, (tuple, list)):
            raise StateError(f"{where} must be a list (one entry per w index), not {value!r}")
        facts = self.facts
        if facts is not None and len(value) > facts.num_ws:
            extra = [v for v in value[facts.num_ws:] if v is not None]
            if extra:
                raise StateError(f"{where} has {len(value)} entries but the network has {facts.num_ws} w indices")
        count = len(self.__dict__.get("sources", ()))
        checked = []
        for i, v in enumerate(value):
            if v is None:
                checked.append(None)
            elif count == 0:
                raise StateError(f"{where}[{i}] is {v!r} but there are no mixing sources; add a source first")
            else:
                checked.append(_integer(f"{where}[{i}]", v, 0, count - 1))
        while checked and checked[-1] is None:
            checked.pop()
        if facts is not None:
            checked = checked[:facts.num_ws]
        return tuple(checked)

    def _repair_layer_sources(self):
        facts, count = self.facts, len(self.sources)
        kept = [v if v is not None and v < count else None for v in self.layer_sources]
        return tuple(kept[:facts.num_ws] if facts else kept)

    def _after_sources(self):
        # Layers that used a source that no longer exists go back to the main latent.
        count = len(self.sources)
        if any(v is not None and v >= count for v in self.layer_sources):
            self.layer_sources = tuple(v if v is not None and v < count else None for v in self.layer_sources)

    def add_source(self, seed: int) -> int:
        """Adds a source seed; returns its index k."""
        self.sources = self.sources + (_seed(self.where("sources"), seed),)
        return len(self.sources) - 1

    def set_source_seed(self, k: int, seed: int) -> None:
        self._source_index(k)
        sources = list(self.sources)
        sources[k] = seed
        self.sources = tuple(sources)

    def remove_source(self, k: int) -> None:
        """Removes source k; layers that used it go back to the main latent, later sources shift down."""
        self._source_index(k)
        layer_sources = tuple(None if v == k else (v - 1 if v is not None and v > k else v)
                              for v in self.layer_sources)
        # The remapped indices are valid for the old sources too, so every intermediate state is consistent.
        self.layer_sources = layer_sources
        self.sources = self.sources[:k] + self.sources[k + 1:]

    def set_layer_source(self, w_index: int, k: int | None) -> None:
        w_index = self._w_index(w_index)
        if k is not None:
            self._source_index(k)
        layer_sources = list(self.layer_sources) + [None] * max(0, w_index + 1 - len(self.layer_sources))
        layer_sources[w_index] = k
        self.layer_sources = tuple(layer_sources)

    def set_range(self, k: int | None, start: int, stop: int) -> None:
        """w indices [start, stop) take source k (None: the main latent); the others keep theirs."""
        num_ws = self._num_ws()
        start = _integer(self.where("start"), start, 0, num_ws)
        stop = _integer(self.where("stop"), stop, start, num_ws)
        if k is not None:
            self._source_index(k)
        layer_sources = list(self.layer_sources) + [None] * max(0, stop - len(self.layer_sources))
        for i in range(start, stop):
            layer_sources[i] = k
        self.layer_sources = tuple(layer_sources)

    def apply_preset(self, preset: str, k: int) -> None:
        """Source k styles the 'coarse', 'middle' or 'fine' layers; all other layers use the main latent."""
        _choice(self.where("preset"), preset, tuple(MIX_PRESETS))
        self._source_index(k)
        start, stop = self._facts_needed("presets").preset_range(preset)
        self.layer_sources = tuple(k if start <= i < stop else None for i in range(stop))

    def range_of(self, k: int) -> tuple[int, int] | None:
        """The w indices [start, stop) that use source k, when they are one contiguous run; else None."""
        used = [i for i, v in enumerate(self.layer_sources) if v == k]
        if not used or used[-1] - used[0] + 1 != len(used):
            return None
        return used[0], used[-1] + 1

    def clear(self) -> None:
        self.layer_sources = ()

    def _source_index(self, k) -> int:
        if not self.sources:
            raise StateError(f"{self.name}: there are no mixing sources; add one first")
        return _integer(f"{self.name} source index", k, 0, len(self.sources) - 1)

    def _facts_needed(self, what: str) -> NetworkFacts:
        if self.facts is None:
            raise StateError(f"{self.name}: {what} need a loaded network")
        return self.facts

    def _num_ws(self) -> int:
        return self._facts_needed("layer ranges").num_ws

    def _w_index(self, w_index) -> int:
        facts = self.facts
        return _integer(f"{self.name} w index", w_index, 0, facts.num_ws - 1 if facts else None)


@dataclass(eq=True)
class StylesSection(Section):
    """Per-layer W+ edits: an offset per w index (`WOffset`), copies of a w from another seed's layer
    (`WCopy`), and the style-channel editor's deltas on single channels of a layer's style s (`StyleDelta`).
    Kept sorted, at most one offset and one copy per w index and one delta per (layer, channel)."""
    name: ClassVar[str] = "styles"
    offsets: tuple[WOffset, ...] = mirror("w_offsets")
    copies: tuple[WCopy, ...] = mirror("w_copies")
    style_deltas: tuple[StyleDelta, ...] = mirror("style_deltas")

    def _repair_offsets(self):
        return c.keep_valid(c.w_offsets, self.where("offsets"), self.offsets, self.facts)

    def _repair_copies(self):
        return c.keep_valid(c.w_copies, self.where("copies"), self.copies, self.facts)

    def _repair_style_deltas(self):
        return c.keep_valid(c.style_deltas, self.where("style_deltas"), self.style_deltas, self.facts)

    def set_offset(self, w_index: int, direction: str = "random", seed: int = 0, strength: float = 0.0) -> None:
        """Sets (replaces) the offset of one w index."""
        others = tuple(o for o in self.offsets if o.w_index != w_index)
        self.offsets = others + (WOffset(w_index, direction, seed, strength),)

    def remove_offset(self, w_index: int) -> None:
        self.offsets = tuple(o for o in self.offsets if o.w_index != w_index)

    def copy_layer(self, w_index: int, seed: int, from_w_index: int | None = None) -> None:
        """w[w_index] becomes w[from_w_index] (default: the same index) of `seed`."""
        from_w_index = w_index if from_w_index is None else from_w_index
        others = tuple(c for c in self.copies if c.w_index != w_index)
        self.copies = others + (WCopy(w_index, seed, from_w_index),)

    def remove_copy(self, w_index: int) -> None:
        self.copies = tuple(c for c in self.copies if c.w_index != w_index)

    def set_style_delta(self, layer: str, channel: int, delta: float) -> None:
        """Sets one channel's delta; a delta of 0 removes the entry."""
        others = tuple(d for d in self.style_deltas if (d.layer, d.channel) != (layer, channel))
        self.style_deltas = others + ((StyleDelta(layer, channel, delta),) if delta != 0 else ())

    def reset_layer(self, w_index: int) -> None:
        """Removes the offset and copy of a w index and the style deltas of the layers it styles."""
        self.remove_offset(w_index)
        self.remove_copy(w_index)
        facts = self.facts
        if facts is not None:
            styled = {l.name for l in facts.layers if l.w_index == w_index}
            self.style_deltas = tuple(d for d in self.style_deltas if d.layer not in styled)

    def reset(self) -> None:
        self.offsets = ()
        self.copies = ()
        self.style_deltas = ()


@dataclass(eq=True)
class NoiseSection(Section):
    """mode 'const' / 'random' / 'none'; seed: the random noise's seed; strength: global multiplier of the
    learned noise strengths; layer_strength: ((layer name, multiplier), ...), further per layer (default 1)."""
    name: ClassVar[str] = "noise"
    mode: str = mirror("noise_mode")
    seed: int = mirror("noise_seed")
    strength: float = mirror("noise_strength")
    layer_strength: tuple[tuple[str, float], ...] = mirror("layer_noise_strength")

    def _repair_layer_strength(self):
        facts = self.facts
        return tuple(p for p in self.layer_strength if facts is None or p[0] in facts.noise_layers)

    def set_layer_strength(self, layer: str, multiplier: float) -> None:
        """One layer's multiplier (1 removes the entry)."""
        others = tuple(p for p in self.layer_strength if p[0] != layer)
        self.layer_strength = others + ((layer, multiplier),)

    def layer_multiplier(self, layer: str) -> float:
        return dict(self.layer_strength).get(layer, 1.0)


@dataclass(eq=True)
class LayersSection(Section):
    """The layer view: which layer (None: the output), which channels and how (see
    explorer.render.LayerViewRequest for what each setting does)."""
    name: ClassVar[str] = "layers"
    layer: str | None = mirror("layer", LayerViewRequest)
    mode: str = mirror("mode", LayerViewRequest)
    first_channel: int = mirror("first_channel", LayerViewRequest)
    channel_count: int = mirror("channel_count", LayerViewRequest)
    normalise: str = mirror("normalise", LayerViewRequest)
    scale_db: float = mirror("scale_db", LayerViewRequest)
    fft: bool = mirror("fft", LayerViewRequest)
    fft_range_db: float = mirror("fft_range_db", LayerViewRequest)
    mark_spikes: bool = False       # draw the droplet detector's findings on the layer view (not a render input)

    def _check_mark_spikes(self, value):
        return _flag(self.where("mark_spikes"), value)


@dataclass(eq=True)
class ViewerSection(Section):
    """View only, never part of the render request: fit to the window, or an integer zoom (1 = 1:1);
    pan in image pixels; fullscreen."""
    name: ClassVar[str] = "viewer"
    fit: bool = True
    zoom: int = 1
    pan_x: float = 0.0
    pan_y: float = 0.0
    fullscreen: bool = False

    def _check_fit(self, value):
        return _flag(self.where("fit"), value)

    def _check_zoom(self, value):
        return _integer(self.where("zoom"), value, *ZOOM_RANGE)

    def _check_pan_x(self, value):
        return _real(self.where("pan_x"), value, -POSITION_LIMIT, POSITION_LIMIT)

    def _check_pan_y(self, value):
        return _real(self.where("pan_y"), value, -POSITION_LIMIT, POSITION_LIMIT)

    def _check_fullscreen(self, value):
        return _flag(self.where("fullscreen"), value)

    def zoom_by(self, steps: int, shown_scale: float = 1.0) -> None:
        """Whole zoom steps; from fit, the first step goes to the whole zoom nearest the scale shown."""
        start = self.zoom if not self.fit else (math.floor(shown_scale) if steps > 0 else math.ceil(shown_scale))
        self.zoom = min(max(start + steps, ZOOM_RANGE[0]), ZOOM_RANGE[1])
        self.fit = False

    def set_zoom(self, zoom: int) -> None:
        self.zoom = zoom
        self.pan_x = self.pan_y = 0.0
        self.fit = False

    def fit_to_window(self) -> None:
        self.pan_x = self.pan_y = 0.0
        self.fit = True

    def pan_by(self, dx: float, dy: float) -> None:
        self.pan_x = self.pan_x + dx
        self.pan_y = self.pan_y + dy


@dataclass(eq=True)
class PerformanceSection(Section):
    """device: 'cpu', 'cuda', 'cuda:N' or 'mps'; dtype 'float32', or 'float16' on CUDA only; fps_limit: the
    viewer's frame rate cap (0: none; not part of the render request)."""
    name: ClassVar[str] = "performance"
    device: str = mirror("device")
    dtype: str = mirror("dtype")
    fps_limit: int = 60
    adaptive: bool = True        # while a control moves, preview frames; the exact frame when it rests

    def _check_device(self, value):
        value = c.device(self.where("device"), value, self.facts)
        # With the dtype: the pairs the device can run.
        if not value.startswith("cuda") and self.__dict__.get("dtype") == "float16":
            raise StateError(f"{self.where('device')}: float16 runs on CUDA only; set performance.dtype to "
                             f"'float32' before choosing {value!r}")
        return value

    def _check_dtype(self, value):
        value = c.check_of(RenderRequest, "dtype")(self.where("dtype"), value, self.facts)
        if value == "bfloat16" and not bfloat16_supported(self.__dict__.get("device", "cpu")):
            raise StateError(f"{self.where('dtype')}: bfloat16 does not run at speed on "
                             f"{self.__dict__.get('device', 'cpu')!r} here (no bfloat16 units)")
        if value == "float16" and not self.__dict__.get("device", "cpu").startswith("cuda"):
            raise StateError(f"{self.where('dtype')}: float16 runs on CUDA only (device is "
                             f"{self.__dict__.get('device', 'cpu')!r})")
        return value

    def _check_fps_limit(self, value):
        return _integer(self.where("fps_limit"), value, *FPS_LIMIT_RANGE)

    def _check_adaptive(self, value):
        return _flag(self.where("adaptive"), value)


@dataclass(eq=True)
class TransformSection(Section):
    """StyleGAN3's input transform: translate the image by (tx, ty) image widths and rotate it by `angle`
    degrees, through the Fourier features (other families ignore it)."""
    name: ClassVar[str] = "transform"
    tx: float = 0.0
    ty: float = 0.0
    angle: float = 0.0

    def _check_tx(self, value):
        return _real(self.where("tx"), value, *TRANSLATE_RANGE)

    def _check_ty(self, value):
        return _real(self.where("ty"), value, *TRANSLATE_RANGE)

    def _check_angle(self, value):
        return _real(self.where("angle"), value, *ROTATE_RANGE)

    def as_request(self, facts) -> tuple[float, float, float] | None:
        if facts is None or facts.family != "stylegan3" or (self.tx, self.ty, self.angle) == (0.0, 0.0, 0.0):
            return None
        return (self.tx, self.ty, self.angle)


RECORDING_FORMATS = ("mp4", "gif", "frames")
CAPTURE_SOURCES = ("output", "viewer")   # the generator's output at native size, or the viewer as shown
CAPTURE_FPS_RANGE = (1.0, 120.0)


@dataclass(eq=True)
class CaptureSection(Section):
    """Where screenshots and recordings go and how recordings are made (see explorer.export)."""
    name: ClassVar[str] = "capture"
    folder: str = "captures"
    format: str = "mp4"
    source: str = "output"
    fps: float = 30.0

    def _check_folder(self, value):
        return _text(self.where("folder"), value)

    def _check_format(self, value):
        return _choice(self.where("format"), value, RECORDING_FORMATS)

    def _check_source(self, value):
        return _choice(self.where("source"), value, CAPTURE_SOURCES)

    def _check_fps(self, value):
        return _real(self.where("fps"), value, *CAPTURE_FPS_RANGE)


@dataclass(eq=True)
class BendingSection(Section):
    """Network bending and channel ablation: explorer.bending operations, applied in this order."""
    name: ClassVar[str] = "bending"
    operations: tuple[LayerOperation, ...] = mirror("layer_operations")

    def _repair_operations(self):
        return c.keep_valid(c.layer_operations, self.where("operations"), self.operations, self.facts)

    def add(self, layer: str, operation: str, channels=(), amount: float | None = None) -> None:
        amount = OPERATIONS[operation].default if amount is None and operation in OPERATIONS else amount
        self.operations = self.operations + (LayerOperation(layer, operation, tuple(channels), amount),)

    def remove(self, index: int) -> None:
        index = _integer(self.where("index"), index, 0, len(self.operations) - 1)
        self.operations = self.operations[:index] + self.operations[index + 1:]

    def set_amount(self, index: int, amount: float) -> None:
        index = _integer(self.where("index"), index, 0, len(self.operations) - 1)
        ops = list(self.operations)
        ops[index] = LayerOperation(ops[index].layer, ops[index].operation, ops[index].channels, amount)
        self.operations = tuple(ops)

    def move(self, index: int, step: int) -> None:
        """Moves operation `index` up (step -1) or down (+1) the order."""
        index = _integer(self.where("index"), index, 0, len(self.operations) - 1)
        to = min(max(index + step, 0), len(self.operations) - 1)
        ops = list(self.operations)
        ops.insert(to, ops.pop(index))
        self.operations = tuple(ops)

    def ablate(self, layer: str, channels) -> None:
        """Zeroes channels of a layer (the one-click check of the droplet detector's findings)."""
        self.add(layer, "ablate", channels, 1.0)

    def clear(self) -> None:
        self.operations = ()


@dataclass(eq=True)
class DirectionsSection(Section):
    """Moves along directions of W: each a named unit direction with its strength and w-index range (GANSpace's
    layer-range edits); the directions themselves are stored, so a session reproduces without the file."""
    name: ClassVar[str] = "directions"
    offsets: tuple[DirectionOffset, ...] = ()

    def _check_offsets(self, value):
        # The same check as the request's direction_offsets; the section also offers directions at strength 0,
        # which the request leaves out.
        return c.direction_offsets(self.where("offsets"), value, self.facts)

    def _repair_offsets(self):
        return c.keep_valid(c.direction_offsets, self.where("offsets"), self.offsets, self.facts)

    def set_directions(self, named_directions, w_start: int = 0, w_stop: int | None = None) -> None:
        """Replaces the offered directions ((name, unit vector), ...), each at strength 0."""
        self.offsets = tuple(DirectionOffset(name, tuple(float(v) for v in vector), 0.0, w_start, w_stop)
                             for name, vector in named_directions)

    def set_strength(self, name: str, strength: float) -> None:
        self.offsets = tuple(DirectionOffset(o.name, o.direction, strength, o.w_start, o.w_stop)
                             if o.name == name else o for o in self._existing(name))

    def set_range(self, w_start: int, w_stop: int | None) -> None:
        """The w indices every direction moves (GANSpace's layer range)."""
        self.offsets = tuple(DirectionOffset(o.name, o.direction, o.strength, w_start, w_stop) for o in self.offsets)

    def reset(self) -> None:
        """Every strength back to 0 (the directions stay on offer)."""
        self.offsets = tuple(DirectionOffset(o.name, o.direction, 0.0, o.w_start, o.w_stop) for o in self.offsets)

    def _existing(self, name: str):
        if name not in {o.name for o in self.offsets}:
            raise StateError(f"{self.name}: no direction named {name!r}")
        return self.offsets


@dataclass(eq=True)
class BlendSection(Section):
    """Model blending (explorer.blending): another network file of the same family and shape, whose layers from
    `split_resolution` up are swapped in or crossfaded by `amount`. other None: no blend."""
    name: ClassVar[str] = "blend"
    other: str | None = None
    mode: str = "swap"
    split_resolution: int = 32
    amount: float = 1.0

    def _check_other(self, value):
        return c.text_or_none(self.where("other"), value, self.facts)

    def _check_mode(self, value):
        return c.choice(self.where("mode"), value, c.BLEND_MODES)

    def _check_split_resolution(self, value):
        high = self.facts.img_resolution if self.facts else c.SPLIT_RESOLUTION_RANGE[1]
        return c.integer(self.where("split_resolution"), value, c.SPLIT_RESOLUTION_RANGE[0], high)

    def _check_amount(self, value):
        return c.real(self.where("amount"), value, 0.0, 1.0)

    def as_request(self):
        if self.other is None:
            return None
        return ModelBlend(self.other, self.mode, self.split_resolution, self.amount)


@dataclass(eq=True)
class RemoteSection(Section):
    """The performer's set-up (explorer.instrument): preset slots and MIDI bindings. Not render inputs."""
    name: ClassVar[str] = "remote"
    presets: tuple[StoredPreset, ...] = ()
    midi_bindings: tuple[MidiBinding, ...] = ()

    def _check_presets(self, value):
        return instrument.presets(self.where("presets"), value, self.facts)

    def _check_midi_bindings(self, value):
        return instrument.midi_bindings(self.where("midi_bindings"), value, self.facts)

    def store_preset(self, slot: int, state: dict, name: str | None = None) -> None:
        """Preset `slot` becomes `state` (a Session.to_dict(); its own `remote` section is left out)."""
        kept = {key: value for key, value in state.items() if key != self.name}
        slot = _integer(self.where("slot"), slot, 0, instrument.PRESET_SLOTS - 1)
        others = tuple(p for p in self.presets if p.slot != slot)
        self.presets = others + (StoredPreset(slot, name or f"preset {slot}", json.dumps(kept)),)

    def clear_preset(self, slot: int) -> None:
        """Empties preset `slot`."""
        slot = _integer(self.where("slot"), slot, 0, instrument.PRESET_SLOTS - 1)
        self.presets = tuple(p for p in self.presets if p.slot != slot)

    def preset(self, slot: int) -> StoredPreset | None:
        return next((p for p in self.presets if p.slot == slot), None)

    def bind(self, binding: MidiBinding) -> None:
        """Adds a MIDI binding; one knob (kind, channel, number) drives one address."""
        key = (binding.kind, binding.channel, binding.number)
        others = tuple(b for b in self.midi_bindings if (b.kind, b.channel, b.number) != key)
        self.midi_bindings = others + (binding,)

    def unbind(self, index: int) -> None:
        """Removes MIDI binding `index`."""
        index = _integer(self.where("index"), index, 0, len(self.midi_bindings) - 1)
        self.midi_bindings = self.midi_bindings[:index] + self.midi_bindings[index + 1:]


SECTIONS: tuple[type[Section], ...] = (NetworkSection, LatentSection, TruncationSection, MixingSection,
                                       StylesSection, NoiseSection, LayersSection, ViewerSection,
                                       PerformanceSection, CaptureSection, TransformSection, BendingSection,
                                       DirectionsSection, BlendSection, RemoteSection)


# ---------------------------------------------------------------------------------------------------------------
# The session.

class Session:
    """All sections, the network facts and the listeners. Attribute per section: session.latent, ..."""

    network: NetworkSection
    latent: LatentSection
    truncation: TruncationSection
    mixing: MixingSection
    styles: StylesSection
    noise: NoiseSection
    layers: LayersSection
    viewer: ViewerSection
    performance: PerformanceSection
    transform: TransformSection

    def __init__(self, facts: NetworkFacts | None = None, **sections: Section):
        self.events = StateEvents()
        self._facts = facts
        unknown = set(sections) - {cls.name for cls in SECTIONS}
        if unknown:
            raise StateError(f"unknown state section {sorted(unknown)[0]!r}")
        for cls in SECTIONS:
            section = sections.get(cls.name) or cls()
            if not isinstance(section, cls):
                raise StateError(f"section {cls.name} must be a {cls.__name__}")
            section._owner = self
            object.__setattr__(self, cls.name, section)
        if facts is not None:
            for section in self.sections():
                section.revalidate()

    def __setattr__(self, key, value):
        if key in {cls.name for cls in SECTIONS}:
            raise AttributeError(f"change the fields of session.{key}, not the section itself")
        object.__setattr__(self, key, value)

    def sections(self) -> Iterator[Section]:
        for cls in SECTIONS:
            yield getattr(self, cls.name)

    def section(self, name: str) -> Section:
        if name not in {cls.name for cls in SECTIONS}:
            raise StateError(f"unknown state section {name!r}")
        return getattr(self, name)

    def __eq__(self, other):
        return isinstance(other, Session) and all(a == b for a, b in zip(self.sections(), other.sections())
                                                  if a.persist)

    # -- network facts ------------------------------------------------------------------------------------------

    @property
    def facts(self) -> NetworkFacts | None:
        return self._facts

    def set_facts(self, facts: NetworkFacts | None) -> list[str]:
        """A network was loaded (or unloaded with None): values the new network cannot take (a layer it does
        not have, a cutoff above its num_ws, ...) are reset, each with a change event; returns one note per
        value reset."""
        self._facts = facts
        notes = []
        for section in self.sections():
            notes += section.repair()
        if facts is not None and facts.default_truncation_cutoff is not None and self.truncation.cutoff is None:
            # The original StyleGAN truncates only the coarse layers; start there, as its own scripts do.
            self.truncation.cutoff = min(facts.default_truncation_cutoff, facts.num_ws)
            notes.append(f"truncation cutoff set to {self.truncation.cutoff}, this network family's default")
        return notes

    # -- requests -----------------------------------------------------------------------------------------------

    def render_request(self, network_key: str) -> RenderRequest:
        """The frozen request for the current state: every mirrored field as it is, and the few that are made
        from several settings (the blended seeds, the mixing seeds, the StyleGAN3 transform, the directions moved)."""
        values: dict = {RenderRequest: {}, LayerViewRequest: {}}
        for section in self.sections():
            for record_type, fields_ in type(section).request_values(section).items():
                values[record_type].update(fields_)
        mixing = self.mixing
        layer_seeds = tuple(mixing.sources[k] if k is not None and k < len(mixing.sources) else None
                            for k in mixing.layer_sources)
        return RenderRequest(
            network_key=network_key, **values[RenderRequest],
            view=LayerViewRequest(**values[LayerViewRequest]),
            seed_weights=self.latent.seed_weights(),
            layer_seeds=layer_seeds,
            input_transform=self.transform.as_request(self.facts),
            direction_offsets=tuple(o for o in self.directions.offsets if o.strength != 0),
            blend=self.blend.as_request(),
        )

    def advance(self, dt: float) -> None:
        """One frame of animation, dt seconds long: moves the latent along x when animation is on."""
        if self.latent.animate and dt > 0:
            self.latent.x = self.latent.x + self.latent.speed * dt

    # -- JSON ---------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"version": STATE_VERSION, **{section.name: section.to_dict() for section in self.sections()
                                             if section.persist}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data, facts: NetworkFacts | None = None) -> Session:
        if not isinstance(data, dict):
            raise StateError("a state file holds one JSON object")
        version = data.get("version")
        if version is None:
            raise StateError("the state has no 'version' field; it is not an explorer state file")
        if isinstance(version, bool) or not isinstance(version, int):
            raise StateError(f"version must be a whole number, not {version!r}")
        if version > STATE_VERSION:
            raise StateError(f"the state was saved by a newer explorer (version {version}; this one reads up to "
                             f"{STATE_VERSION})")
        if version < 1:
            raise StateError(f"unknown state version {version}")
        by_name = {section_cls.name: section_cls for section_cls in SECTIONS}
        session = cls(facts=facts)
        for name, values in data.items():
            if name == "version":
                continue
            if name not in by_name or not by_name[name].persist:
                raise StateError(f"unknown state section {name!r}; sections: "
                                 f"{', '.join(n for n, c in by_name.items() if c.persist)}")
            if not isinstance(values, dict):
                raise StateError(f"{name} must be an object of settings, not {values!r}")
            section = getattr(session, name)
            for key in values:
                if key not in section.field_names():
                    raise StateError(f"unknown setting {name}.{key}; {name} has "
                                     f"{', '.join(section.field_names())}")
            # In declaration order, whatever the file's order: cross-field checks (mixing sources before
            # layer_sources, device before dtype) rely on it.
            for key in section.field_names():
                if key not in values:
                    continue
                value = values[key]
                if isinstance(value, list):
                    value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
                setattr(section, key, value)
        return session

    @classmethod
    def from_json(cls, text: str, facts: NetworkFacts | None = None) -> Session:
        """A session from JSON; StateError (a ValueError) with one clear line when anything is wrong. Missing
        settings keep their defaults."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise StateError(f"the state is not valid JSON: {error}")
        except RecursionError:
            raise StateError("the state is not a session file: its JSON is nested too deeply to read")
        return cls.from_dict(data, facts)

    def load_json(self, text: str, keep_network: bool = False) -> None:
        """Replaces this session's values with those of a JSON state, emitting a change per field that changed.
        Checked in full first: on error nothing changes. keep_network: the network path stays as it is (a
        session file applied to the network already open)."""
        loaded = Session.from_json(text, facts=self.facts)
        if keep_network:
            object.__setattr__(loaded.network, "path", self.network.path)
        self.assign(loaded)

    def restore(self, section: str, key: str, value) -> None:
        """Puts back a value this session held before (undo, redo), without the checks: it was valid then, and a
        value that names the previous network's layers must be accepted while that network loads again."""
        target = self.section(section)
        old = getattr(target, key)
        if type(old) is type(value) and old == value:
            return
        object.__setattr__(target, key, value)
        self.events.emit(StateChange(section, key, old, value))

    def assign(self, other: Session) -> None:
        """Takes every value of `other`, checked against this session's facts first (on error nothing
        changes), emitting one change per field that changed."""
        checked = Session.from_dict(other.to_dict(), facts=self.facts)
        for mine, theirs in zip(self.sections(), checked.sections()):
            if not mine.persist:
                continue
            for key in mine.field_names():
                old, new = getattr(mine, key), getattr(theirs, key)
                if type(old) is type(new) and old == new:
                    continue
                object.__setattr__(mine, key, new)
                self.events.emit(StateChange(mine.name, key, old, new))


def network_named_in(text: str) -> str | None:
    """The network file a session's JSON names; None when it names none or is not a session's JSON (whoever
    applies the file reports that)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    network = data.get("network") if isinstance(data, dict) else None
    path = network.get("path") if isinstance(network, dict) else None
    return path if isinstance(path, str) and path else None
