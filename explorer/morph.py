"""The morph between two render requests: what the picture shows t of the way from one state to another.

    request = morph_request(request_a, request_b, 0.5)      # halfway; a pure function of two requests

The main latents blend in W (the seeds of both, weighted 1 - t and t), psi, noise strengths, style-channel deltas,
W offset and direction strengths, bending amounts, the model blend's amount and the StyleGAN3 transform move
linearly (an edit in one state
only grows from, or fades to, nothing), and what has no in-between (mixing seeds, W copies, the noise mode, the
truncation cutoff, the class, and any control added to the request later) switches at the halfway point.

Below the session state (it knows requests only), so that a state section can hold a morph in progress.
"""
from __future__ import annotations

import dataclasses
import math

from .bending import LayerOperation
from .controls import DirectionOffset, StyleDelta, WOffset
from .render import RenderRequest

SWITCH_AT = 0.5                    # where settings without an in-between change over
# Bending amounts that leave a map as it is: an operation in one state only fades from or to these.
BENDING_IDENTITY = {"multiply": 1.0, "rotate": 0.0, "translate_x": 0.0, "translate_y": 0.0, "scale": 1.0}
EASES = ("smooth", "linear")


class MorphError(ValueError):
    """A morph position that is not a number; one line."""


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


def _morph_blend(a, b, t: float):
    """Model blending (explorer.blending.ModelBlend, amount 0 leaves the network as it is): the same blend moves
    its amount; a blend in one state only grows from or fades to 0; two different blends hand over halfway."""
    if a is None and b is None:
        return None
    same = a is not None and b is not None and dataclasses.replace(a, amount=0.0) == dataclasses.replace(b, amount=0.0)
    if same:
        return dataclasses.replace(a, amount=_lerp(a.amount, b.amount, t))
    if a is not None and (b is None or t < SWITCH_AT):
        share = 1 - t if b is None else 1 - t / SWITCH_AT
        return dataclasses.replace(a, amount=a.amount * share)
    share = t if a is None else (t - SWITCH_AT) / (1 - SWITCH_AT)
    return dataclasses.replace(b, amount=b.amount * share)


def _morph_transform(a, b, t: float):
    if a is None and b is None:
        return None
    a, b = a or (0.0, 0.0, 0.0), b or (0.0, 0.0, 0.0)
    return tuple(_lerp(x, y, t) for x, y in zip(a, b))


def morph_request(a: RenderRequest, b: RenderRequest, t: float) -> RenderRequest:
    """The request t of the way from a (t = 0) to b (t = 1); a's network, device and dtype."""
    if not math.isfinite(t):
        raise MorphError(f"morph position must be a finite number, not {t!r}")
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
        "blend": _morph_blend(a.blend, b.blend, t),
    })


def ease(kind: str, t: float) -> float:
    """0 -> 0, 1 -> 1; 'smooth' is smoothstep (no jolt where a morph starts or ends)."""
    t = min(max(t, 0.0), 1.0)
    return t * t * (3 - 2 * t) if kind == "smooth" else t


