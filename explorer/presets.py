"""Presets (bookmarks of the whole session state), the morph between two of them, and keyframe lists for videos.

    bank = PresetBank(controller.session, controller.edit); bank.store(3, session.to_dict(), name="storm")
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
from typing import Callable, Iterator

from .instrument import PRESET_SLOTS, StoredPreset
from .morph import EASES, ease, morph_request
from .render import RenderRequest
from .state import Session, StateError

KEYFRAME_VERSION = 1
MAX_KEYFRAME_SECONDS = 24 * 3600   # a day of video: beyond that a typo, not a plan


class PresetError(ValueError):
    """A preset or keyframe file the explorer cannot use; one line."""


# -- presets ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Preset:
    """A stored preset as its slot, name and the session it holds (Session.to_dict() form, without `remote`)."""
    slot: int
    name: str
    state: dict


def _no_undo(method, *args):
    return method(*args)


class PresetBank:
    """The preset slots 0 .. PRESET_SLOTS - 1 of a session's `remote` section, each empty or holding a preset.

    The slots live in the session state, so they are saved with session files and screenshots and reopened with
    them. Stores and clears go through `edit` (Controller.edit: each is one undo step); without one they change
    the section directly (scripts, a session being put together)."""

    def __init__(self, session: Session, edit: Callable = _no_undo):
        self.session = session
        self.edit = edit

    @property
    def slots(self) -> tuple[StoredPreset | None, ...]:
        """What each slot holds, as stored (the state still JSON text: cheap enough to show every frame)."""
        stored = {p.slot: p for p in self.session.remote.presets}
        return tuple(stored.get(n) for n in range(PRESET_SLOTS))

    def _slot(self, n) -> int:
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < PRESET_SLOTS:
            raise PresetError(f"preset {n!r} does not exist; presets are 0 to {PRESET_SLOTS - 1}")
        return n

    @staticmethod
    def _view(stored: StoredPreset) -> Preset:
        return Preset(stored.slot, stored.name, json.loads(stored.state))

    def store(self, n: int, state: dict, name: str | None = None) -> Preset:
        """Slot n becomes `state` (a Session.to_dict(); its `remote` section is not kept): one undo step."""
        self.edit(self.session.remote.store_preset, self._slot(n), state, name or None)
        return self.get(n)

    def get(self, n: int) -> Preset:
        stored = self.session.remote.preset(self._slot(n))
        if stored is None:
            raise PresetError(f"preset {n} is empty; store one there first")
        return self._view(stored)

    def clear(self, n: int) -> None:
        """Empties slot n: one undo step (nothing when it is empty already)."""
        if self.session.remote.preset(self._slot(n)) is not None:
            self.edit(self.session.remote.clear_preset, n)

    def recall_text(self, n: int) -> str:
        """The session JSON that recalls preset n: its state, with this session's own presets and MIDI bindings
        (a preset holds none, and recalling one must not empty the bank)."""
        remote = self.session.remote
        return json.dumps({**self.get(n).state, remote.name: remote.to_dict()})


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
