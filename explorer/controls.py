"""Every control that decides pixels, declared once: its default and its check sit on the render request's field
(`control(default, check)`), the session state's section mirrors that field (`mirror("truncation_psi")`), and both
the state (on every change) and render() (on every request, also one built by hand or read from a file) run the
same check, with the same message.

A check is `check(where, value, facts) -> value`: it returns the normalised value or raises StateError naming the
setting (`where`) and what it allows. `facts` (explorer.description.NetworkFacts, or None before a network is
loaded) lets a check know the network: num_ws, layer names, channels.
"""
from __future__ import annotations

import math
import numbers
import re
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable

from .bending import OPERATIONS, LayerOperation
from .blending import BLEND_MODES, ModelBlend
from .latents import SEED_LIMIT
from .networks.common import NOISE_MODES as NOISE_MODES  # the synthesis' own list, a render control's choices

Check = Callable[[str, Any, Any], Any]


class StateError(ValueError):
    """A value that the state (or a render request) does not accept; the message names the setting and what it
    allows."""


# Allowed ranges. Each says why it stops where it does.
PSI_RANGE = (-1.0, 2.0)                    # beyond these, images are garbage on every network we know
NOISE_STRENGTH_RANGE = (0.0, 10.0)         # multiples of the learned noise strength
OFFSET_STRENGTH_RANGE = (-100.0, 100.0)    # in units of the offset direction (see explorer.render.WOffset)
STYLE_DELTA_RANGE = (-100.0, 100.0)        # added to a style s, which trained networks keep around +-10
SCALE_DB_RANGE = (-60.0, 60.0)             # a factor 1000 either way
FFT_RANGE_DB = (10.0, 120.0)
MAX_VIEW_CHANNELS = 1024                   # more than any StyleGAN layer has
BENDING_CHANNELS_MAX = 4096                # more channels than any StyleGAN layer has
DEVICE_PATTERN = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")
LATENT_SPACES = ("z", "w")
VIEW_MODES = ("grid", "rgb", "single")          # channel grid, 3 channels as RGB, one channel
VIEW_NORMALISATIONS = ("channel", "global", "none")   # divide by each channel's max |x|, by the selection's, or not
OFFSET_DIRECTIONS = ("random", "to_seed")
DTYPES = ("float32", "bfloat16", "float16")


# -- the records of per-layer edits, shared by the session state and the request -----------------------------------

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
class DirectionOffset:
    """Move w[w_start:w_stop] along a unit direction of W (a PCA component, a SeFa direction, an imported
    InterFaceGAN boundary) by `strength`. The direction itself is in the request, so a screenshot reproduces
    the edit without the file it came from."""
    name: str
    direction: tuple[float, ...]
    strength: float = 0.0
    w_start: int = 0
    w_stop: int | None = None      # None: to the last w


@dataclass(frozen=True)
class StyleDelta:
    """Add `delta` to channel `channel` of the affine output s (the style) of layer `layer`."""
    layer: str
    channel: int
    delta: float


# -- the plain checks ---------------------------------------------------------------------------------------------

def real(where: str, value, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise StateError(f"{where} must be a number, not {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise StateError(f"{where} must be a finite number, not {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise StateError(f"{where} must be between {low:g} and {high:g}, not {value:g}")
    return value


def integer(where: str, value, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise StateError(f"{where} must be a whole number, not {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise StateError(f"{where} must be at least {low}" + (f" and at most {high}" if high is not None else "")
                         + f", not {value}")
    if high is not None and value > high:
        raise StateError(f"{where} must be at most {high}" + (f" and at least {low}" if low is not None else "")
                         + f", not {value}")
    return value


def seed(where: str, value) -> int:
    return integer(where, value, 0, SEED_LIMIT - 1)


def flag(where: str, value) -> bool:
    if not isinstance(value, bool):
        raise StateError(f"{where} must be true or false, not {value!r}")
    return value


def choice(where: str, value, choices) -> Any:
    if value not in choices:
        raise StateError(f"{where} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def text(where: str, value) -> str:
    if not isinstance(value, str):
        raise StateError(f"{where} must be text, not {value!r}")
    return value


def record(where: str, item, cls):
    """A record of type cls, from itself or from a dict with exactly its fields (JSON)."""
    if isinstance(item, cls):
        return item
    names = [f.name for f in fields(cls)]
    if not isinstance(item, dict):
        raise StateError(f"{where} must be a {cls.__name__} ({', '.join(names)}), not {item!r}")
    unknown = sorted(set(item) - set(names))
    if unknown:
        raise StateError(f"{where}: unknown field {unknown[0]!r}; a {cls.__name__} has {', '.join(names)}")
    try:
        return cls(**item)
    except TypeError:
        missing = [n for n in names if n not in item]
        raise StateError(f"{where}: missing {', '.join(missing)}")


def records(where: str, value, what: str) -> tuple:
    if not isinstance(value, (tuple, list)):
        raise StateError(f"{where} must be a list of {what}, not {value!r}")
    return tuple(value)


# -- check makers: what a field declares ---------------------------------------------------------------------------

def in_range(low: float, high: float) -> Check:
    return lambda where, value, facts: real(where, value, low, high)


def whole(low: int, high: int | None = None) -> Check:
    return lambda where, value, facts: integer(where, value, low, high)


def one_of(choices) -> Check:
    return lambda where, value, facts: choice(where, value, choices)


def boolean(where: str, value, facts) -> bool:
    return flag(where, value)


def any_seed(where: str, value, facts) -> int:
    return seed(where, value)


def control(default, check: Check):
    """A field of a render request with its default and its check."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("a control's default must be immutable")
    return field(default=default, metadata={"check": check})


def check_of(cls, name: str) -> Check | None:
    for f in fields(cls):
        if f.name == name:
            return f.metadata.get("check")
    raise KeyError(name)


def default_of(cls, name: str):
    for f in fields(cls):
        if f.name == name:
            return f.default if f.default is not MISSING else f.default_factory()
    raise KeyError(name)


def check_record(value, facts, prefix: str = "") -> None:
    """Runs every field's check of a frozen record (a render request); the first refusal is raised."""
    for f in fields(value):
        check = f.metadata.get("check")
        if check is not None:
            check(f"{prefix}{f.name}", getattr(value, f.name), facts)


# -- checks that know the network -----------------------------------------------------------------------------------

def class_index(where: str, value, facts) -> int | None:
    if value is None:
        return None
    if facts is not None and facts.c_dim == 0:
        raise StateError(f"{where}: this network is unconditional; it must be None")
    return integer(where, value, 0, facts.c_dim - 1 if facts else None)


def truncation_cutoff(where: str, value, facts) -> int | None:
    if value is None:
        return None
    return integer(where, value, 0, facts.num_ws if facts else None)


def _w_index(where: str, value, facts) -> int:
    return integer(where, value, 0, facts.num_ws - 1 if facts else None)


def w_offsets(where: str, value, facts):
    checked = {}
    for n, item in enumerate(records(where, value, "offsets")):
        at = f"{where}[{n}]"
        item = record(at, item, WOffset)
        offset = WOffset(_w_index(f"{at}.w_index", item.w_index, facts),
                         choice(f"{at}.direction", item.direction, OFFSET_DIRECTIONS),
                         seed(f"{at}.seed", item.seed), real(f"{at}.strength", item.strength, *OFFSET_STRENGTH_RANGE))
        if offset.w_index in checked:
            raise StateError(f"{where}: two offsets for w index {offset.w_index}")
        checked[offset.w_index] = offset
    return tuple(checked[i] for i in sorted(checked))


def w_copies(where: str, value, facts):
    checked = {}
    for n, item in enumerate(records(where, value, "copies")):
        at = f"{where}[{n}]"
        item = record(at, item, WCopy)
        copy = WCopy(_w_index(f"{at}.w_index", item.w_index, facts), seed(f"{at}.seed", item.seed),
                     _w_index(f"{at}.from_w_index", item.from_w_index, facts))
        if copy.w_index in checked:
            raise StateError(f"{where}: two copies into w index {copy.w_index}")
        checked[copy.w_index] = copy
    return tuple(checked[i] for i in sorted(checked))


def style_deltas(where: str, value, facts):
    checked = {}
    for n, item in enumerate(records(where, value, "style deltas")):
        at = f"{where}[{n}]"
        item = record(at, item, StyleDelta)
        layer = text(f"{at}.layer", item.layer)
        high = None
        if facts is not None:
            styled = {l.name: l.style_channels for l in facts.layers if l.style_channels > 0}
            if layer not in styled:
                raise StateError(f"{at}.layer: {layer!r} has no style to edit; styled layers: {', '.join(styled)}")
            high = styled[layer] - 1
        delta = StyleDelta(layer, integer(f"{at}.channel", item.channel, 0, high),
                           real(f"{at}.delta", item.delta, *STYLE_DELTA_RANGE))
        if (delta.layer, delta.channel) in checked:
            raise StateError(f"{where}: two deltas for channel {delta.channel} of {delta.layer}")
        checked[(delta.layer, delta.channel)] = delta
    order = {name: i for i, name in enumerate(facts.layer_names)} if facts else {}
    return tuple(checked[key] for key in sorted(checked, key=lambda k: (order.get(k[0], -1), k[0], k[1])))


def layer_noise_strength(where: str, value, facts):
    if isinstance(value, dict):
        value = tuple(value.items())
    if not isinstance(value, (tuple, list)):
        raise StateError(f"{where} must be pairs (layer name, multiplier), not {value!r}")
    checked = {}
    for n, pair in enumerate(value):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise StateError(f"{where}[{n}] must be a pair (layer name, multiplier), not {pair!r}")
        name = text(f"{where}[{n}] layer", pair[0])
        if facts is not None and name not in facts.noise_layers:
            raise StateError(f"{where}: {name!r} adds no noise; noise layers: {', '.join(facts.noise_layers)}")
        checked[name] = real(f"{where}[{name}]", pair[1], *NOISE_STRENGTH_RANGE)
    order = {name: i for i, name in enumerate(facts.layer_names)} if facts else {}
    return tuple((name, checked[name]) for name in sorted(checked, key=lambda n: (order.get(n, -1), n))
                 if checked[name] != 1.0)


def view_layer(where: str, value, facts) -> str | None:
    if value is None:
        return None
    value = text(where, value)
    if facts is not None and value not in facts.layer_names:
        raise StateError(f"{where}: no layer named {value!r}; layers: {', '.join(facts.layer_names)}")
    return value


def device(where: str, value, facts) -> str:
    value = text(where, value)
    if not DEVICE_PATTERN.match(value):
        raise StateError(f"{where} must be 'cpu', 'cuda', 'cuda:N' or 'mps', not {value!r}")
    return value


def layer_operations(where: str, value, facts):
    checked = []
    for n, item in enumerate(records(where, value, "operations")):
        at = f"{where}[{n}]"
        item = record(at, item, LayerOperation)
        layer = text(f"{at}.layer", item.layer)
        kind = OPERATIONS.get(item.operation)
        if kind is None:
            raise StateError(f"{at}.operation must be one of {', '.join(OPERATIONS)}, not {item.operation!r}")
        high = BENDING_CHANNELS_MAX - 1
        if facts is not None:
            if layer not in facts.layer_names:
                raise StateError(f"{at}.layer: no layer named {layer!r}")
            high = facts.layer(layer).channels - 1
        if not isinstance(item.channels, (tuple, list)):
            raise StateError(f"{at}.channels must be a list of channel numbers, not {item.channels!r}")
        channels = tuple(sorted({integer(f"{at}.channels", c, 0, high) for c in item.channels}))
        amount = real(f"{at}.amount", item.amount, kind.low, kind.high)
        checked.append(LayerOperation(layer, item.operation, channels, amount))
    return tuple(checked)


def keep_valid(check: Check, where: str, items, facts) -> tuple:
    """The items of a list that pass `check` one by one (what a newly loaded network can still take)."""
    kept = []
    for item in items:
        try:
            kept.extend(check(where, (item,), facts))
        except StateError:
            pass
    return tuple(kept)


def seed_weights(where: str, value, facts):
    """The main latent: ((seed, weight), ...), at least one pair, weights finite."""
    pairs = records(where, value, "(seed, weight) pairs")
    if not pairs:
        raise StateError(f"{where} is empty: the main latent needs at least one seed")
    checked = []
    for n, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise StateError(f"{where}[{n}] must be a pair (seed, weight), not {pair!r}")
        checked.append((seed(f"{where}[{n}] seed", pair[0]), real(f"{where} weight of seed {pair[0]}", pair[1])))
    return tuple(checked)


def layer_seeds(where: str, value, facts):
    """Style mixing: per w index a seed, or None for the main latent."""
    entries = records(where, value, "seeds")
    if facts is not None and len(entries) > facts.num_ws and any(s is not None for s in entries[facts.num_ws:]):
        raise StateError(f"{where} has {len(entries)} entries; the network has {facts.num_ws} ws")
    return tuple(None if s is None else seed(f"{where}[{i}]", s) for i, s in enumerate(entries))


TRANSLATE_RANGE = (-10.0, 10.0)           # in image widths: beyond this the Fourier features alias
ROTATE_RANGE = (-360.0, 360.0)


def input_transform(where: str, value, facts):
    """StyleGAN3: (tx, ty, degrees), or None for the network's own."""
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise StateError(f"{where} must be (tx, ty, degrees) or None, not {value!r}")
    if facts is not None and facts.family != "stylegan3":
        raise StateError(f"{where}: the input transform (translate, rotate) applies to StyleGAN3 networks only")
    return (real(f"{where} tx", value[0], *TRANSLATE_RANGE), real(f"{where} ty", value[1], *TRANSLATE_RANGE),
            real(f"{where} degrees", value[2], *ROTATE_RANGE))


DIRECTION_STRENGTH_RANGE = (-50.0, 50.0)   # in units of w's spread along a unit direction (a few is a lot)
DIRECTION_NAME_MAX = 200


def direction_offsets(where: str, value, facts):
    checked, names = [], set()
    for n, item in enumerate(records(where, value, "direction offsets")):
        at = f"{where}[{n}]"
        item = record(at, item, DirectionOffset)
        name = text(f"{at}.name", item.name)[:DIRECTION_NAME_MAX]
        if name in names:
            raise StateError(f"{where}: two directions named {name!r}")
        names.add(name)
        if not isinstance(item.direction, (tuple, list)) or not item.direction:
            raise StateError(f"{at}.direction must be a list of numbers")
        vector = tuple(real(f"{at}.direction", v) for v in item.direction)
        if facts is not None and len(vector) != facts.w_dim:
            raise StateError(f"{at}.direction has {len(vector)} values; this network's w has {facts.w_dim}")
        num_ws = facts.num_ws if facts else None
        start = integer(f"{at}.w_start", item.w_start, 0, None if num_ws is None else num_ws - 1)
        stop = None if item.w_stop is None else integer(f"{at}.w_stop", item.w_stop, start + 1, num_ws)
        strength = real(f"{at}.strength", item.strength, *DIRECTION_STRENGTH_RANGE)
        checked.append(DirectionOffset(name, vector, strength, start, stop))
    return tuple(checked)


def text_or_none(where: str, value, facts) -> str | None:
    return None if value is None else text(where, value)


MAX_W_PLUS_VALUES = 64 * 2048     # num_ws x w_dim of any StyleGAN-family network, with room to spare


def main_w_plus(where: str, value, facts):
    """A W+ latent [num_ws][w_dim] used as the main latent instead of the seeds (a projected photo, a loaded
    .npy), or None."""
    if value is None:
        return None
    rows = records(where, value, "rows of w")
    if not rows or not all(isinstance(row, (tuple, list)) for row in rows):
        raise StateError(f"{where} must be num_ws rows of w_dim numbers")
    if sum(len(row) for row in rows) > MAX_W_PLUS_VALUES:
        raise StateError(f"{where} holds more values than any network's W+")
    if facts is not None and (len(rows) != facts.num_ws or any(len(row) != facts.w_dim for row in rows)):
        raise StateError(f"{where} must be {facts.num_ws} rows of {facts.w_dim} numbers (this network's W+), not "
                         f"{len(rows)} rows of {len(rows[0])}")
    checked = []
    for row in rows:
        try:
            values = tuple(float(v) for v in row)
        except (TypeError, ValueError):
            raise StateError(f"{where} holds a value that is not a number")
        if not all(math.isfinite(v) for v in values):
            raise StateError(f"{where} holds a value that is not a finite number")
        checked.append(values)
    return tuple(checked)


SPLIT_RESOLUTION_RANGE = (4, 8192)     # the output sizes StyleGAN-family layers have


def model_blend(where: str, value, facts):
    """None, or the other network and how to blend it (explorer.blending.ModelBlend)."""
    if value is None:
        return None
    item = record(where, value, ModelBlend)
    return ModelBlend(text(f"{where}.other", item.other), choice(f"{where}.mode", item.mode, BLEND_MODES),
                      integer(f"{where}.split_resolution", item.split_resolution, *SPLIT_RESOLUTION_RANGE),
                      real(f"{where}.amount", item.amount, 0.0, 1.0))
