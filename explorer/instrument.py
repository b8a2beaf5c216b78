"""What a performer sets up and keeps with the session: preset slots (whole states to recall or morph to) and MIDI
bindings (a knob, key or wheel on a control's address). Plain frozen records with their checks; the session's
`remote` section holds them, so they are saved, undone and reopened like every other setting."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .controls import StateError, choice, integer, real, record, records, text

PRESET_SLOTS = 16                   # a 4 x 4 grid in the panel, enough for a set
PRESET_NAME_MAX = 40
PRESET_STATE_MAX = 4 * 2 ** 20      # characters of one preset's JSON: a W+ of 18 x 512 floats is about 200 KB
MIDI_KINDS = ("control_change", "note", "pitchwheel")
MIDI_CHANNELS = 16
MIDI_NUMBERS = 128
ADDRESS_PREFIX = "/explorer/"


@dataclass(frozen=True)
class StoredPreset:
    """Preset `slot`: the whole session (Session.to_dict() without its `remote` section) as JSON text."""
    slot: int
    name: str
    state: str


@dataclass(frozen=True)
class MidiBinding:
    kind: str           # 'control_change', 'note' or 'pitchwheel'
    channel: int        # 0..15 (MIDI channels 1..16)
    number: int         # controller or note number (0 for the pitch wheel)
    address: str        # an address of the remote table; a preset is /explorer/preset/N
    low: float = 0.0
    high: float = 1.0
    fixed: tuple = ()   # leading arguments sent before the knob's value: /explorer/bending/set_amount with (0,)
                        # turns operation 0's amount, /explorer/directions/set_strength with ("pc0",) a direction


def presets(where: str, value, facts) -> tuple[StoredPreset, ...]:
    checked: dict[int, StoredPreset] = {}
    for n, item in enumerate(records(where, value, "presets")):
        at = f"{where}[{n}]"
        item = record(at, item, StoredPreset)
        slot = integer(f"{at}.slot", item.slot, 0, PRESET_SLOTS - 1)
        if slot in checked:
            raise StateError(f"{where}: two presets in slot {slot}")
        name = text(f"{at}.name", item.name)[:PRESET_NAME_MAX]
        state = text(f"{at}.state", item.state)
        if len(state) > PRESET_STATE_MAX:
            raise StateError(f"{at}.state holds more than {PRESET_STATE_MAX:,} characters")
        try:
            parsed = json.loads(state)
        except ValueError:
            raise StateError(f"{at}.state is not a session's JSON")
        if not isinstance(parsed, dict):
            raise StateError(f"{at}.state is not a session's JSON object")
        checked[slot] = StoredPreset(slot, name, state)
    return tuple(checked[slot] for slot in sorted(checked))


def midi_bindings(where: str, value, facts) -> tuple[MidiBinding, ...]:
    checked = []
    for n, item in enumerate(records(where, value, "MIDI bindings")):
        at = f"{where}[{n}]"
        item = record(at, item, MidiBinding)
        address = text(f"{at}.address", item.address)
        if not address.startswith(ADDRESS_PREFIX):
            raise StateError(f"{at}.address must start with {ADDRESS_PREFIX}, not {address!r}")
        fixed = records(f"{at}.fixed", item.fixed, "arguments")
        for argument in fixed:
            if isinstance(argument, bool) or not isinstance(argument, (int, float, str)) or (
                    isinstance(argument, float) and not math.isfinite(argument)):
                raise StateError(f"{at}.fixed holds {argument!r}; arguments are numbers or text")
        checked.append(MidiBinding(choice(f"{at}.kind", item.kind, MIDI_KINDS),
                                   integer(f"{at}.channel", item.channel, 0, MIDI_CHANNELS - 1),
                                   integer(f"{at}.number", item.number, 0, MIDI_NUMBERS - 1), address,
                                   real(f"{at}.low", item.low), real(f"{at}.high", item.high), tuple(fixed)))
    return tuple(checked)
