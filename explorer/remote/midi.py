"""MIDI: knobs, faders, pads and the pitch wheel bound to the explorer's addresses (explorer.remote.addresses).

    mapper = remote_for(controller).mapper()
    mapper.start_learning()          # MIDI learn: touch a control in the window, then move a knob: bound
    mapper.bind("control_change", 0, 21, "/explorer/truncation/psi")      # or bind by hand
    mapper.open_input()              # the first MIDI input (mido, python-rtmidi backend); MidiUnavailable if none

A binding scales the message's 0..1 level (a controller value or velocity / 127, the pitch wheel from its lowest
to its highest) to the control's [low, high]: a whole number for a whole-number setting, on/off for a switch (a pad
or a note: on while held). A command (screenshot, undo, a preset) runs when a pad or note is struck or a knob leaves
0. Every value then goes the way of an OSC message: posted to the controller, checked by the state.

The bindings are the session's own (`session.remote.midi_bindings`, explorer.instrument.MidiBinding records): each
one bound, learned or removed is one undo step, and they are saved with session files and screenshots and come
back when one is opened.
"""
from __future__ import annotations

import logging
import math
import threading

from ..controls import PSI_RANGE, ROTATE_RANGE
from ..instrument import MIDI_CHANNELS, MIDI_KINDS, MIDI_NUMBERS, MidiBinding
from ..state import StateChange
from .addresses import PREFIX, AddressError, resolve

log = logging.getLogger(__name__)

MIDI_MAX = 127                    # 7-bit controller values and velocities
PITCH_RANGE = (-8192, 8191)       # 14-bit pitch wheel
# What a knob sweeps by default, where [0, 1] would be a poor choice; each can be changed per binding.
KNOB_RANGES = {
    f"{PREFIX}/truncation/psi": PSI_RANGE,
    f"{PREFIX}/latent/speed": (-2.0, 2.0),          # seeds per second: a knob turns from backwards to forwards
    f"{PREFIX}/latent/x": (0.0, float(MIDI_MAX)),   # a knob walks 128 seeds, one per step
    f"{PREFIX}/latent/y": (0.0, float(MIDI_MAX)),
    f"{PREFIX}/noise/strength": (0.0, 2.0),         # up to twice the learned noise
    f"{PREFIX}/transform/tx": (-1.0, 1.0),          # one image width either way
    f"{PREFIX}/transform/ty": (-1.0, 1.0),
    f"{PREFIX}/transform/angle": ROTATE_RANGE,
}
WHOLE_NUMBER_RANGE = (0.0, float(MIDI_MAX))         # seeds, indices: one value per controller step


class MidiUnavailable(Exception):
    """No MIDI system, or no such input; one line for the user."""


MidiKey = tuple[str, int, int]     # (kind, channel, number): one knob, key or wheel


def binding_key(binding: MidiBinding) -> MidiKey:
    return binding.kind, binding.channel, binding.number


def describe(binding: MidiBinding) -> str:
    """One line for the Remote panel: 'ch 1 CC 21 -> /explorer/noise/strength [0, 2]'."""
    if binding.kind == "pitchwheel":
        source = "pitch wheel"
    else:
        source = f"{'CC' if binding.kind == 'control_change' else 'note'} {binding.number}"
    fixed = "".join(f" {v}" for v in binding.fixed)
    return f"ch {binding.channel + 1} {source} -> {binding.address}{fixed} [{binding.low:g}, {binding.high:g}]"


def message_key_and_level(message) -> tuple[tuple[str, int, int], float] | None:
    """(binding key, level 0..1) of a mido message; None for messages that move nothing (clock, sysex, ...)."""
    kind = getattr(message, "type", None)
    if kind == "control_change":
        return ("control_change", message.channel, message.control), message.value / MIDI_MAX
    if kind in ("note_on", "note_off"):
        velocity = message.velocity if kind == "note_on" else 0
        return ("note", message.channel, message.note), velocity / MIDI_MAX
    if kind == "pitchwheel":
        low, high = PITCH_RANGE
        return ("pitchwheel", message.channel, 0), (message.pitch - low) / (high - low)
    return None


def _check_address(address: str, fixed: tuple = ()):
    """The address and the one numeric or switch parameter left after the fixed ones (None for a command)."""
    target, _ = resolve(address)
    parameters = target.parameters[len(fixed):]
    if target.is_tuple or len(fixed) > len(target.parameters) or \
            len([p for p in parameters if not p.has_default]) > 1:
        raise AddressError(f"MIDI drives controls of one value and commands; {address} takes "
                           f"{target.arguments_text()}" + (f", and {len(fixed)} are fixed" if fixed else ""))
    required = [p for p in parameters if not p.has_default]
    if required and required[0].kind not in (int, float, bool):
        raise AddressError(f"MIDI drives numbers and switches; {address} takes text ({required[0].describe()})")
    return target, (required[0] if required else None)


def _history_paused(history) -> bool:
    # History has no public flag for "not recording" yet (asked of the lead); animation runs paused.
    return history.is_paused


def make_binding(kind: str, channel: int, number: int, address: str, low: float | None = None,
                 high: float | None = None, fixed=()) -> MidiBinding:
    """A checked binding; the range defaults to KNOB_RANGES, 0..127 for whole numbers, else 0..1."""
    if kind not in MIDI_KINDS:
        raise AddressError(f"MIDI binding kind must be one of {', '.join(MIDI_KINDS)}, not {kind!r}")
    if isinstance(channel, bool) or not (isinstance(channel, int) and 0 <= channel < MIDI_CHANNELS):
        raise AddressError(f"MIDI channel must be 0 to {MIDI_CHANNELS - 1}, not {channel!r}")
    if isinstance(number, bool) or not (isinstance(number, int) and 0 <= number < MIDI_NUMBERS):
        raise AddressError(f"MIDI controller or note number must be 0 to {MIDI_NUMBERS - 1}, not {number!r}")
    if not isinstance(fixed, (tuple, list)) or not all(isinstance(v, (int, float, str)) for v in fixed):
        raise AddressError(f"the fixed arguments of {address} must be a list of numbers and texts")
    fixed = tuple(fixed)
    _, parameter = _check_address(address, fixed)
    default = KNOB_RANGES.get(address, WHOLE_NUMBER_RANGE if parameter is not None and parameter.kind is int
                              else (0.0, 1.0))
    low = default[0] if low is None else low
    high = default[1] if high is None else high
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)):
        raise AddressError(f"the range of {address} must be two finite numbers")
    return MidiBinding(kind, channel, number if kind != "pitchwheel" else 0, address, float(low), float(high), fixed)


class MidiMapper:
    """MIDI learn and the messages' way to the controls. The bindings live in the session (`bindings` reads them);
    binding and unbinding are edits through the controller, on its thread: `bind` and `unbind` are called there
    (the panel, a script), and a binding learned on the MIDI input's thread is posted there."""

    def __init__(self, remote):
        self.remote = remote
        self.learning = False
        self.learn_address: str | None = None
        self.input = None
        self.last_message = ""
        self._lock = threading.Lock()
        self._pressed: set[MidiKey] = set()
        self._looked_up: tuple[tuple, dict] = ((), {})   # the session's bindings last read, by key
        remote.controller.session.events.connect(self._on_state_change)

    @property
    def session(self):
        return self.remote.controller.session

    @property
    def bindings(self) -> dict[MidiKey, MidiBinding]:
        """The session's bindings by (kind, channel, number); read from any thread (the tuple is replaced whole)."""
        held = self.session.remote.midi_bindings
        seen, by_key = self._looked_up
        if held is not seen:
            by_key = {binding_key(b): b for b in held}
            self._looked_up = (held, by_key)
        return by_key

    # -- learning -------------------------------------------------------------------------------------------

    def start_learning(self, address: str | None = None) -> None:
        """Arms MIDI learn: the next control touched in the window (or `address`) is bound to the next knob
        moved."""
        if address is not None:
            _check_address(address)
        with self._lock:
            self.learning, self.learn_address = True, address

    def cancel_learning(self) -> None:
        with self._lock:
            self.learning, self.learn_address = False, None

    def _on_state_change(self, change: StateChange) -> None:
        with self._lock:
            if not self.learning or self.learn_address is not None:
                return
        if _history_paused(self.remote.controller.history):
            return           # animation and undo move the state too; only a control touched counts
        address = f"{PREFIX}/{change.section}/{change.field}"
        try:
            _check_address(address)
        except AddressError:
            return           # a list or text setting: no knob for it; wait for the next control touched
        with self._lock:
            if self.learning and self.learn_address is None:
                self.learn_address = address

    # -- bindings -------------------------------------------------------------------------------------------

    def bind(self, kind: str, channel: int, number: int, address: str, low: float | None = None,
             high: float | None = None, fixed=()) -> MidiBinding:
        """On the controller's thread: a checked binding into the session (replacing the knob's old one), one
        undo step."""
        binding = make_binding(kind, channel, number, address, low, high, fixed)
        self._store(binding)
        return binding

    def _store(self, binding: MidiBinding) -> None:
        self.remote.controller.edit(self.session.remote.bind, binding)

    def unbind(self, key: MidiKey) -> None:
        """On the controller's thread: the knob's binding leaves the session (one undo step); none: nothing."""
        held = self.session.remote.midi_bindings
        index = next((n for n, b in enumerate(held) if binding_key(b) == tuple(key)), None)
        if index is not None:
            self.remote.controller.edit(self.session.remote.unbind, index)

    # -- messages -------------------------------------------------------------------------------------------

    def feed(self, message) -> bool:
        """Takes one mido message (from the input's thread, or a test); True when it moved a control, or bound
        one (the binding is posted to the controller and stored at its next tick)."""
        found = message_key_and_level(message)
        if found is None:
            return False
        key, level = found
        self.last_message = str(message)
        with self._lock:
            if self.learning and self.learn_address is not None and level > 0:
                address, self.learning, self.learn_address = self.learn_address, False, None
            else:
                address = None
        binding = self.bindings.get(key)
        if address is not None:
            try:
                binding = make_binding(key[0], key[1], key[2], address)
            except AddressError as error:
                self.remote.refuse(address, error)
                return False
            self.remote.controller.post(lambda: self._store(binding))
            log.info("MIDI learn: %s", describe(binding))
            if _check_address(binding.address)[1] is None:
                return True      # the strike that bound a command does not also run it
        if binding is None:
            return False
        return self._send(binding, key, level)

    def _send(self, binding: MidiBinding, key, level: float) -> bool:
        try:
            target, parameter = _check_address(binding.address, binding.fixed)
        except AddressError as error:
            self.remote.refuse(binding.address, error)
            return False
        if parameter is None:
            # A command: once per strike (a pad's release, or a knob back at 0, re-arms it).
            with self._lock:
                struck = level > 0 and key not in self._pressed
                (self._pressed.add if level > 0 else self._pressed.discard)(key)
            return self.remote.dispatch(binding.address, binding.fixed) if struck else False
        value = binding.low + (binding.high - binding.low) * level
        if parameter.kind is bool:
            value = level >= 0.5
        elif parameter.kind is int:
            value = int(round(value))
        return self.remote.dispatch(binding.address, binding.fixed + (value,))

    # -- the input ------------------------------------------------------------------------------------------

    def open_input(self, name: str | None = None) -> str:
        """Listens to a MIDI input (the first one when no name is given); returns its name. MidiUnavailable
        with one line when there is no MIDI system or no such input."""
        try:
            import mido
            names = mido.get_input_names()
        except ImportError:
            raise MidiUnavailable("MIDI needs the mido and python-rtmidi packages (pip install mido python-rtmidi)")
        except Exception as error:   # rtmidi raises its own types (SystemError and others) for a missing ALSA/CoreMIDI
            raise MidiUnavailable(f"no MIDI system is available on this machine "
                                  f"({str(error).splitlines()[0] if str(error) else type(error).__name__})")
        if not names:
            raise MidiUnavailable("no MIDI input is connected")
        if name is not None and name not in names:
            raise MidiUnavailable(f"no MIDI input named {name!r}; inputs: {', '.join(names)}")
        self.close()
        try:
            self.input = mido.open_input(name or names[0], callback=self.feed)
        except Exception as error:
            raise MidiUnavailable(f"cannot open the MIDI input {name or names[0]!r}: "
                                  f"{str(error).splitlines()[0] if str(error) else type(error).__name__}")
        return self.input.name

    def close(self) -> None:
        if self.input is not None:
            self.input.close()
            self.input = None
