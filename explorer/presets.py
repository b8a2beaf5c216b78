"""Presets (bookmarks of the whole session state), the morph between two of them, and keyframe lists for videos.

    bank = PresetBank(); bank.store(3, session.to_dict(), name="storm")
    keyframes = read_keyframes("show.json"); requests = keyframe_requests(keyframes, facts, "video", fps=30)

The morph itself (explorer.morph.morph_request) works on render requests, so a keyframe video shows exactly what
render() makes of the interpolated request.

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

from .morph import EASES, ease, morph_request
from .render import RenderRequest
from .state import Session, StateError

PRESET_SLOTS = 16                  # a 4 x 4 grid in the panel, enough for a set
KEYFRAME_VERSION = 1
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
