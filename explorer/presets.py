"""Presets (bookmarks of the whole session state), the morph between two of them, and keyframe lists for videos.

    bank = PresetBank(); bank.store(3, session.to_dict(), name="storm")
    request = morph_request(request_a, request_b, 0.5)          # halfway, a pure function of two requests
    keyframes = read_keyframes("show.json"); requests = keyframe_requests(keyframes, facts, "video", fps=30)

The morph works on render requests, so what it shows is exactly what render() makes of them: the main latents
blend in W (the seeds of both, weighted 1 - t and t), psi, noise strengths, style-channel deltas, W offset and
direction strengths, bending amounts and the StyleGAN3 transform move linearly (an edit in one preset only grows
from, or fades to, nothing), and what has no in-between (mixing seeds, W copies, the noise mode, the truncation
cutoff, the class, and any control added later) switches at the halfway point.

A keyframe file is JSON:

    {"version": 1,
     "keyframes": [{"time": 0, "state": "calm.json"},
                   {"time": 4.0, "state": "storm.png", "ease": "linear"},
                   {"time": 6.5, "state": {"version": 1, "truncation": {"psi": 0.5}}}]}

`time` in seconds from 0, increasing; `state` a session file (JSON or a screenshot PNG that carries one, relative
to the keyframe file) or a session object inline; `ease` the motion from the previous keyframe to this one:
'smooth' (the default: starts and stops gently) or 'linear'. The video has round(last time x fps) + 1 frames.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .bending import LayerOperation
from .controls import DirectionOffset, StyleDelta, WOffset
from .render import RenderRequest
from .state import Session, StateError

PRESET_SLOTS = 16                  # a 4 x 4 grid in the panel, enough for a set
KEYFRAME_VERSION = 1
EASES = ("smooth", "linear")
SWITCH_AT = 0.5                    # where settings without an in-between change over
# Bending amounts that leave a map as it is: an operation in one preset only fades from or to these.
BENDING_IDENTITY = {"multiply": 1.0, "rotate": 0.0, "translate_x": 0.0, "translate_y": 0.0, "scale": 1.0}
MAX_KEYFRAME_SECONDS = 24 * 3600   # a day of video: beyond that a typo, not a plan


class PresetError(ValueError):
    """A preset or keyframe file the explorer cannot use; one line."""


# -- presets ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Preset:
    name: str
    state: dict            # Session.to_dict() of the moment it was stored


class PresetBank:
    """Numbered slots 0 .. PRESET_SLOTS - 1, each empty or holding a Preset."""

    def __init__(self, slots: int = PRESET_SLOTS):
        self.slots: list[Preset | None] = [None] * slots

    def _slot(self, n) -> int:
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < len(self.slots):
            raise PresetError(f"preset {n!r} does not exist; presets are 0 to {len(self.slots) - 1}")
        return n

    def store(self, n: int, state: dict, name: str | None = None) -> Preset:
        preset = Preset(name or f"preset {self._slot(n)}", json.loads(json.dumps(state)))
        self.slots[n] = preset
        return preset

    def get(self, n: int) -> Preset:
        preset = self.slots[self._slot(n)]
        if preset is None:
            raise PresetError(f"preset {n} is empty; store one there first")
        return preset

    def clear(self, n: int) -> None:
        self.slots[self._slot(n)] = None

    def to_dict(self) -> dict:
        return {"version": KEYFRAME_VERSION,
                "presets": {str(n): {"name": p.name, "state": p.state} for n, p in enumerate(self.slots) if p}}

    @classmethod
    def from_dict(cls, data, slots: int = PRESET_SLOTS) -> PresetBank:
        """A bank from to_dict's form; every preset's state is checked by the session state (without a network)."""
        if not isinstance(data, dict) or not isinstance(data.get("presets"), dict):
            raise PresetError("a preset bank is an object with 'presets': {number: {name, state}}")
        bank = cls(slots)
        for key, item in data["presets"].items():
            if not key.isdigit():
                raise PresetError(f"preset number {key!r} is not a whole number")
            if not isinstance(item, dict) or not isinstance(item.get("state"), dict):
                raise PresetError(f"preset {key} must be an object with a 'state'")
            try:
                Session.from_dict(item["state"])
            except StateError as error:
                raise PresetError(f"preset {key}: {error}")
            bank.store(int(key), item["state"], str(item.get("name") or f"preset {key}"))
        return bank


def preset_session(state: dict, facts) -> Session:
    """The session a preset describes, checked against the network on screen (its own network path ignored)."""
    data = {name: values for name, values in state.items() if name != "network"}
    return Session.from_dict(data, facts=facts)


# -- the morph ----------------------------------------------------------------------------------------------------

def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def _switch(a, b, t: float):
    return a if t < SWITCH_AT else b


def _blend_weights(a, b, t: float) -> tuple[tuple[int, float], ...]:
    merged: dict[int, float] = {}
    for seeds, share in ((a, 1 - t), (b, t)):
        for seed, weight in seeds:
            merged[seed] = merged.get(seed, 0.0) + weight * share
    return tuple((seed, weight) for seed, weight in merged.items() if weight != 0)


def _morph_offsets(a: tuple[WOffset, ...], b: tuple[WOffset, ...], t: float) -> tuple[WOffset, ...]:
    """Per w index: one direction in both moves its strength; an offset in one only grows from (or fades to) 0;
    two different directions hand over at the halfway point, the first fading out, the second fading in."""
    by_a = {o.w_index: o for o in a}
    by_b = {o.w_index: o for o in b}
    out = []
    for w_index in sorted(set(by_a) | set(by_b)):
        oa, ob = by_a.get(w_index), by_b.get(w_index)
        if oa is not None and ob is not None and (oa.direction, oa.seed) == (ob.direction, ob.seed):
            out.append(dataclasses.replace(oa, strength=_lerp(oa.strength, ob.strength, t)))
        elif ob is None or (oa is not None and t < SWITCH_AT):
            share = 1 - t if ob is None else 1 - t / SWITCH_AT
            out.append(dataclasses.replace(oa, strength=oa.strength * share))
        else:
            share = t if oa is None else (t - SWITCH_AT) / (1 - SWITCH_AT)
            out.append(dataclasses.replace(ob, strength=ob.strength * share))
    return tuple(o for o in out if o.strength != 0)


def _morph_deltas(a: tuple[StyleDelta, ...], b: tuple[StyleDelta, ...], t: float) -> tuple[StyleDelta, ...]:
    by_a = {(d.layer, d.channel): d.delta for d in a}
    by_b = {(d.layer, d.channel): d.delta for d in b}
    keys = list(by_a) + [k for k in by_b if k not in by_a]
    deltas = (StyleDelta(layer, channel, _lerp(by_a.get((layer, channel), 0.0), by_b.get((layer, channel), 0.0), t))
              for layer, channel in keys)
    return tuple(d for d in deltas if d.delta != 0)


def _morph_layer_noise(a, b, t: float) -> tuple[tuple[str, float], ...]:
    by_a, by_b = dict(a), dict(b)
    names = list(by_a) + [n for n in by_b if n not in by_a]
    pairs = ((name, _lerp(by_a.get(name, 1.0), by_b.get(name, 1.0), t)) for name in names)
    return tuple((name, value) for name, value in pairs if value != 1.0)


def _fade(a: float, b: float, t: float, both: bool, in_a: bool) -> float:
    """The value of something in both (lerp), in a only (out in the first half) or in b only (in, second half)."""
    if both:
        return _lerp(a, b, t)
    return a * (1 - t / SWITCH_AT) if in_a else b * (t - SWITCH_AT) / (1 - SWITCH_AT)


def _morph_directions(a: tuple[DirectionOffset, ...], b: tuple[DirectionOffset, ...],
                      t: float) -> tuple[DirectionOffset, ...]:
    """By name (names are unique): the same direction moves its strength; one in a only fades out in the first
    half, one in b only fades in over the second, so two directions of one name never meet."""
    by_a, by_b = {d.name: d for d in a}, {d.name: d for d in b}
    out = []
    for name in list(by_a) + [n for n in by_b if n not in by_a]:
        da, db = by_a.get(name), by_b.get(name)
        same = da is not None and db is not None and dataclasses.replace(da, strength=0) == \
            dataclasses.replace(db, strength=0)
        if same:
            out.append(dataclasses.replace(da, strength=_lerp(da.strength, db.strength, t)))
        elif da is not None and t < SWITCH_AT:
            out.append(dataclasses.replace(da, strength=_fade(da.strength, 0, t, False, True)))
        elif db is not None and t >= SWITCH_AT:
            out.append(dataclasses.replace(db, strength=_fade(0, db.strength, t, False, False)))
    return tuple(d for d in out if d.strength != 0)


def _morph_operations(a: tuple[LayerOperation, ...], b: tuple[LayerOperation, ...],
                      t: float) -> tuple[LayerOperation, ...]:
    """Bending: an operation in both (same layer, kind and channels) moves its amount; one in one preset only
    fades from or to its identity amount (multiply 1, rotate 0, ...), or, without one (ablate, flip, erode),
    holds until the halfway point. The order is a's before it, b's after."""
    def key(op):
        return op.layer, op.operation, op.channels
    amounts_a, amounts_b = {}, {}
    for op in a:
        amounts_a.setdefault(key(op), op.amount)
    for op in b:
        amounts_b.setdefault(key(op), op.amount)
    first, other = (a, b) if t < SWITCH_AT else (b, a)
    ordered = list(first) + [op for op in other if key(op) not in {key(o) for o in first}
                             and op.operation in BENDING_IDENTITY]
    out = []
    for op in ordered:
        k = key(op)
        if k in amounts_a and k in amounts_b:
            amount = _lerp(amounts_a[k], amounts_b[k], t)
        elif op.operation in BENDING_IDENTITY:
            identity = BENDING_IDENTITY[op.operation]
            amount = _lerp(amounts_a[k], identity, t) if k in amounts_a else _lerp(identity, amounts_b[k], t)
        else:
            amount = op.amount
        out.append(dataclasses.replace(op, amount=amount))
    return tuple(out)


def _morph_transform(a, b, t: float):
    if a is None and b is None:
        return None
    a, b = a or (0.0, 0.0, 0.0), b or (0.0, 0.0, 0.0)
    return tuple(_lerp(x, y, t) for x, y in zip(a, b))


def morph_request(a: RenderRequest, b: RenderRequest, t: float) -> RenderRequest:
    """The request t of the way from a (t = 0) to b (t = 1); a's network, device and dtype."""
    if not math.isfinite(t):
        raise PresetError(f"morph position must be a finite number, not {t!r}")
    if t <= 0:
        return a
    if t >= 1:
        return dataclasses.replace(b, network_key=a.network_key, device=a.device, dtype=a.dtype)
    space = a.latent_space if a.latent_space == b.latent_space else "w"
    # Whatever has no in-between switches halfway; that includes any control added to the request later.
    switched = {f.name: _switch(getattr(a, f.name), getattr(b, f.name), t) for f in dataclasses.fields(RenderRequest)}
    return RenderRequest(**{
        **switched,
        "network_key": a.network_key, "device": a.device, "dtype": a.dtype,
        "seed_weights": _blend_weights(a.seed_weights, b.seed_weights, t),
        "latent_space": space,
        "truncation_psi": _lerp(a.truncation_psi, b.truncation_psi, t),
        "w_offsets": _morph_offsets(a.w_offsets, b.w_offsets, t),
        "style_deltas": _morph_deltas(a.style_deltas, b.style_deltas, t),
        "noise_strength": _lerp(a.noise_strength, b.noise_strength, t),
        "layer_noise_strength": _morph_layer_noise(a.layer_noise_strength, b.layer_noise_strength, t),
        "input_transform": _morph_transform(a.input_transform, b.input_transform, t),
        "direction_offsets": _morph_directions(a.direction_offsets, b.direction_offsets, t),
        "layer_operations": _morph_operations(a.layer_operations, b.layer_operations, t),
    })


def ease(kind: str, t: float) -> float:
    """0 -> 0, 1 -> 1; 'smooth' is smoothstep (no jolt where a morph starts or ends)."""
    t = min(max(t, 0.0), 1.0)
    return t * t * (3 - 2 * t) if kind == "smooth" else t


# -- keyframe lists -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Keyframe:
    time: float
    state: dict
    ease: str = "smooth"


def _keyframe_state(value, folder: Path, where: str) -> dict:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise PresetError(f"{where}.state must be a session file name or a session object, not {value!r}")
    from .export import ExportError, read_state_file
    path = Path(value) if Path(value).is_absolute() else folder / value
    try:
        data = json.loads(read_state_file(path))
    except (ExportError, ValueError) as error:
        raise PresetError(f"{where}.state: {error}")
    if not isinstance(data, dict):
        raise PresetError(f"{where}.state: {path} holds no session object")
    return data


def parse_keyframes(data, folder: Path = Path(".")) -> tuple[Keyframe, ...]:
    """Keyframes from the file's JSON object; PresetError names the first problem."""
    if not isinstance(data, dict) or not isinstance(data.get("keyframes"), list):
        raise PresetError("a keyframe file is a JSON object with a 'keyframes' list")
    version = data.get("version", KEYFRAME_VERSION)
    if version != KEYFRAME_VERSION:
        raise PresetError(f"keyframe file version {version!r}; this explorer reads version {KEYFRAME_VERSION}")
    items = data["keyframes"]
    if len(items) < 1:
        raise PresetError("the keyframe list is empty")
    keyframes = []
    for n, item in enumerate(items):
        where = f"keyframes[{n}]"
        if not isinstance(item, dict):
            raise PresetError(f"{where} must be an object with time and state")
        unknown = sorted(set(item) - {"time", "state", "ease"})
        if unknown:
            raise PresetError(f"{where}: unknown field {unknown[0]!r}; a keyframe has time, state, ease")
        time = item.get("time")
        if isinstance(time, bool) or not isinstance(time, (int, float)) or not math.isfinite(time):
            raise PresetError(f"{where}.time must be a number of seconds, not {time!r}")
        if not 0 <= time <= MAX_KEYFRAME_SECONDS:
            raise PresetError(f"{where}.time must be between 0 and {MAX_KEYFRAME_SECONDS} s, not {time:g}")
        if n == 0 and time != 0:
            raise PresetError(f"{where}.time: the first keyframe is at time 0, not {time:g}")
        if n > 0 and time <= keyframes[-1].time:
            raise PresetError(f"{where}.time {time:g} must come after the previous keyframe's {keyframes[-1].time:g}")
        kind = item.get("ease", "smooth")
        if kind not in EASES:
            raise PresetError(f"{where}.ease must be one of {', '.join(EASES)}, not {kind!r}")
        if "state" not in item:
            raise PresetError(f"{where} has no state")
        keyframes.append(Keyframe(float(time), _keyframe_state(item["state"], folder, where), kind))
    return tuple(keyframes)


def read_keyframes(path) -> tuple[Keyframe, ...]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PresetError(f"{path}: {error.strerror or error}")
    except (ValueError, UnicodeDecodeError) as error:
        raise PresetError(f"{path} is not JSON: {error}")
    except RecursionError:
        raise PresetError(f"{path}: its JSON is nested too deeply to read")
    return parse_keyframes(data, path.parent)


def keyframe_frame_count(keyframes: tuple[Keyframe, ...], fps: float) -> int:
    return round(keyframes[-1].time * fps) + 1


def keyframe_requests(keyframes: tuple[Keyframe, ...], facts, network_key: str, fps: float,
                      device: str = "cpu", dtype: str = "float32") -> Iterator[RenderRequest]:
    """One request per frame: frame k at k / fps seconds, morphing between the keyframes around it. Every
    keyframe's state is checked against the network first (PresetError names the keyframe)."""
    requests = []
    for n, keyframe in enumerate(keyframes):
        try:
            request = preset_session(keyframe.state, facts).render_request(network_key)
        except StateError as error:
            raise PresetError(f"keyframes[{n}].state: {error}")
        requests.append(dataclasses.replace(request, device=device, dtype=dtype))
    times = [k.time for k in keyframes]
    segment = 0
    for frame in range(keyframe_frame_count(keyframes, fps)):
        now = frame / fps
        while segment + 1 < len(keyframes) - 1 and now >= times[segment + 1]:
            segment += 1
        if len(keyframes) == 1:
            yield requests[0]
            continue
        start, stop = times[segment], times[segment + 1]
        t = ease(keyframes[segment + 1].ease, (now - start) / (stop - start))
        yield morph_request(requests[segment], requests[segment + 1], t)
