"""What remote control adds to one controller: the dispatch of addressed messages, the preset bank (kept in the
session's `remote` section) and the live morph. OSC, MIDI, live sound and the panels share one `Remote` per controller (`remote_for(controller)`).

Messages arrive on other threads (the OSC server's, the MIDI backend's). Their arguments are converted there; what
touches the state is posted to the controller (`controller.post`) and runs on its thread at the next tick, where
the state checks every value. A bad message changes nothing: it gets one error log line, and the controller shows
the reason (Status.capture_message, "refused: ...").
"""
from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Callable, Sequence

from ..morph import ease, morph_request
from ..presets import PresetBank, PresetError, preset_session
from ..state import StateError
from .addresses import AddressError, resolve
from .osc import DEFAULT_HOST, OscServer

log = logging.getLogger(__name__)

MORPH_STEP_S = 1 / 60          # a morph submits a new request this often (the viewer's usual frame rate)
REFUSED = (StateError, PresetError, AddressError, ValueError, KeyError, IndexError, TypeError)


class MorphPlayer:
    """Moves the picture from the current state to a preset over `seconds`, then takes the preset as the state
    (one undo step). In between, each step submits explorer.presets.morph_request(start, preset, eased t) to the
    render worker: the session state itself cannot hold a blend of two latents (see the report's proposal of a
    `morph` state section), so the steps are rendered and recorded but only the end is an edit."""

    def __init__(self, remote: Remote, clock: Callable[[], float] = time.monotonic):
        self.remote = remote
        self.clock = clock
        self.start_request = None
        self.target_request = None
        self.target_slot: int | None = None
        self.started = 0.0
        self.seconds = 0.0
        self._ticker_stop: threading.Event | None = None   # each ticker thread has its own, so a new morph
                                                           # never waits on one that is ending

    @property
    def running(self) -> bool:
        return self.target_request is not None

    def start(self, slot: int, seconds: float, ticking: bool = True) -> None:
        """On the controller's thread. ticking=False leaves the stepping to the caller (tests)."""
        controller = self.remote.controller
        if controller.network_key is None:
            raise PresetError("a morph needs a network on screen")
        state = self.remote.bank.get(slot).state
        self.start_request = controller.request()
        self.target_request = preset_session(state, controller.session.facts).render_request(controller.network_key)
        self.target_slot, self.seconds, self.started = slot, seconds, self.clock()
        if ticking and (self._ticker_stop is None or self._ticker_stop.is_set()):
            self._ticker_stop = threading.Event()
            threading.Thread(target=self._tick_loop, args=(self._ticker_stop,), name="morph", daemon=True).start()

    def position(self) -> float:
        return min(max((self.clock() - self.started) / self.seconds, 0.0), 1.0) if self.seconds > 0 else 1.0

    def step(self) -> None:
        """On the controller's thread: submit the request of this moment, or finish."""
        if not self.running:
            return
        t = self.position()
        if t >= 1:
            slot = self.target_slot
            self.stop()
            self.remote.apply_preset(slot)
            return
        self.remote.controller.worker.submit(morph_request(self.start_request, self.target_request, ease("smooth", t)))

    def stop(self) -> None:
        self.start_request = self.target_request = self.target_slot = None
        if self._ticker_stop is not None:
            self._ticker_stop.set()

    def _tick_loop(self, stop: threading.Event) -> None:
        while not stop.wait(MORPH_STEP_S):
            self.remote.controller.post(self.step)


class Remote:
    """The remote side of one controller: dispatch, presets, the morph, and the OSC server and MIDI input when
    they run."""

    def __init__(self, controller):
        self.controller = controller
        self.bank = PresetBank(controller.session, controller.edit)   # the slots of controller.session.remote
        self.morph = MorphPlayer(self)
        self.osc = None                 # an explorer.remote.osc.OscServer while one runs
        self.midi = None                # the explorer.remote.midi.MidiMapper, made on first use
        self.live_audio = None          # the explorer.remote.live_audio.LiveAudio, made on first use
        self.messages = 0               # messages received (shown by the Remote panel)
        self.last_error: str | None = None
        self._lock = threading.Lock()

    # -- messages ---------------------------------------------------------------------------------------------

    def command_for(self, path: str, args: Sequence) -> Callable[[], object]:
        """The change a message asks for, as a call to run on the controller's thread; AddressError at once
        (on the caller's thread) when the address or the number of arguments is wrong."""
        address, slot = resolve(path)
        values = address.convert(args)
        if address.kind == "preset":
            if address.name == "store":
                return lambda: self.store(*values)
            return lambda: self.recall(slot, values[0] if values else 0.0)
        return lambda: address.apply(self.controller, values)

    def dispatch(self, path: str, args: Sequence = ()) -> bool:
        """Takes one message from any thread; False (and an error log line) when it is refused at once."""
        with self._lock:
            self.messages += 1
        try:
            command = self.command_for(path, args)
        except REFUSED as error:
            self.refuse(path, error)
            return False

        def run():
            try:
                command()
            except REFUSED as error:
                self.refuse(path, error)
                raise           # the controller shows it: Status.capture_message "refused: ..."
        self.controller.post(run)
        return True

    def refuse(self, path: str, error: Exception) -> None:
        self.last_error = f"{path}: {error}"
        log.error("remote message refused: %s", self.last_error)

    # -- presets ----------------------------------------------------------------------------------------------

    def store(self, slot: int, name: str | None = None) -> None:
        """The whole current state becomes preset `slot` (one undo step, saved with the session)."""
        self.bank.store(slot, self.controller.session.to_dict(), name)

    def clear(self, slot: int) -> None:
        self.bank.clear(slot)

    def recall(self, slot: int, seconds: float = 0.0) -> None:
        """The preset at once (seconds 0) or by a morph; the whole state is checked before anything changes."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < float("inf"):
            raise PresetError(f"a morph time is a number of seconds, 0 or more, not {seconds!r}")
        self.bank.get(slot)
        if seconds > 0:
            self.morph.start(slot, float(seconds))
        else:
            self.morph.stop()
            self.apply_preset(slot)

    def apply_preset(self, slot: int) -> None:
        """Preset `slot` becomes the state (one undo step); the presets and MIDI bindings stay as they are."""
        self.controller.edit(self.controller.session.load_json, self.bank.recall_text(slot), True,
                             key=("preset", slot, time.monotonic()))

    # -- servers ----------------------------------------------------------------------------------------------

    def start_osc(self, port: int, host: str = DEFAULT_HOST):
        self.stop_osc()
        self.osc = OscServer(self, port, host)
        return self.osc

    def stop_osc(self) -> None:
        if self.osc is not None:
            self.osc.close()
            self.osc = None

    def mapper(self):
        if self.midi is None:
            from .midi import MidiMapper
            self.midi = MidiMapper(self)
        return self.midi

    def audio(self):
        if self.live_audio is None:
            from .live_audio import LiveAudio
            self.live_audio = LiveAudio(self)
        return self.live_audio

    def close(self) -> None:
        self.morph.stop()
        self.stop_osc()
        if self.midi is not None:
            self.midi.close()
        if self.live_audio is not None and self.live_audio.stream is not None:
            self.live_audio.stop()


_remotes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def remote_for(controller) -> Remote:
    """The one Remote of a controller (made on first use)."""
    remote = _remotes.get(controller)
    if remote is None:
        remote = _remotes[controller] = Remote(controller)
    return remote


def start_osc_server(controller, port: int, host: str = DEFAULT_HOST) -> OscServer:
    """Starts the OSC server of `controller` (replacing one that runs); OscError with one line when it cannot."""
    return remote_for(controller).start_osc(port, host)
