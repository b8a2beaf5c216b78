"""Live sound in the window: a microphone or line input (sounddevice, off until started) drives the latent's speed,
psi and a W offset through the same mappings as `video --audio` (explorer.audio).

    live = remote_for(controller).audio()
    live.start()          # AudioUnavailable with one line when there is no sounddevice / PortAudio / input
    ...
    live.stop()           # psi, speed, animation and the offset go back to what they were

The input's thread analyses each block (explorer.audio.StreamAnalyser) and posts the newest levels to the
controller; older levels not yet applied are dropped, so a slow frame never builds a queue. The changes are made
with the history paused, like animation: the music is not an edit, and undo is not filled with it.
"""
from __future__ import annotations

import threading

import numpy as np

from ..audio import DEFAULT_MAPPINGS, AudioError, LiveLevels, StreamAnalyser, check_mappings
from ..controls import OFFSET_STRENGTH_RANGE, PSI_RANGE

LIVE_CONTROLS = ("speed", "psi", "offset")
LIVE_RATE_HZ = 60.0               # levels per second: the viewer's usual frame rate


class AudioUnavailable(Exception):
    """No sounddevice, no PortAudio, or no input; one line for the user."""


class LiveAudio:
    def __init__(self, remote, mappings=DEFAULT_MAPPINGS, offset_w_index: int = 0, offset_seed: int = 0):
        mappings = check_mappings(mappings)
        other = [m.control for m in mappings if m.control not in LIVE_CONTROLS]
        if other:
            raise AudioError(f"live sound drives {', '.join(LIVE_CONTROLS)}; not {other[0]!r}")
        self.remote = remote
        self.mappings = mappings
        self.offset_w_index, self.offset_seed = offset_w_index, offset_seed
        self.analyser: StreamAnalyser | None = None
        self.stream = None
        self.levels: LiveLevels | None = None     # the newest levels applied
        self.device_name = ""
        self._base = None
        self._pending: LiveLevels | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.analyser is not None

    # -- on the controller's thread ---------------------------------------------------------------------------

    def begin(self, sample_rate: int) -> None:
        """Notes what the music will move, to put it back at the end."""
        session = self.remote.controller.session
        offset = next((o for o in session.styles.offsets if o.w_index == self.offset_w_index), None)
        self._base = (session.truncation.psi, session.latent.speed, session.latent.animate, offset)
        self.analyser = StreamAnalyser(sample_rate, LIVE_RATE_HZ)

    def _apply(self) -> None:
        with self._lock:
            levels, self._pending = self._pending, None
        if levels is None or self._base is None:
            return
        total = {control: sum(m.amount * levels.level(m.source) for m in self.mappings if m.control == control)
                 for control in LIVE_CONTROLS}
        base_psi = self._base[0]
        controller = self.remote.controller
        session = controller.session
        with controller.history.paused():
            session.truncation.psi = float(np.clip(base_psi + total["psi"], *PSI_RANGE))
            if any(m.control == "speed" for m in self.mappings):
                session.latent.speed = float(total["speed"])
                session.latent.animate = True
            if any(m.control == "offset" for m in self.mappings):
                strength = float(np.clip(total["offset"], *OFFSET_STRENGTH_RANGE))
                session.styles.set_offset(self.offset_w_index, "random", self.offset_seed, strength)
        self.levels = levels

    def end(self) -> None:
        """Puts back what the music moved."""
        if self._base is None:
            return
        psi, speed, animate, offset = self._base
        self._base, self.analyser = None, None
        controller = self.remote.controller
        session = controller.session
        with controller.history.paused():
            session.truncation.psi = psi
            session.latent.speed = speed
            session.latent.animate = animate
            if offset is None:
                session.styles.remove_offset(self.offset_w_index)
            else:
                session.styles.set_offset(offset.w_index, offset.direction, offset.seed, offset.strength)

    # -- on any thread ----------------------------------------------------------------------------------------

    def feed(self, block: np.ndarray) -> None:
        """A block of mono samples (the input's callback, or a test)."""
        analyser = self.analyser
        if analyser is None:
            return
        levels = analyser.push(block)
        if not levels:
            return
        with self._lock:
            posted = self._pending is not None
            self._pending = levels[-1]
        if not posted:
            self.remote.controller.post(self._apply)

    # -- the input --------------------------------------------------------------------------------------------

    def start(self, device=None) -> str:
        """Opens the input (the system's default when None); returns its name."""
        if self.running:
            return self.device_name
        try:
            import sounddevice
        except (ImportError, OSError) as error:   # OSError: the package is there, the PortAudio library is not
            raise AudioUnavailable("live sound needs the sounddevice package and the PortAudio library "
                                   f"(pip install sounddevice; apt-get install libportaudio2): {error}")
        try:
            info = sounddevice.query_devices(device, kind="input")
            rate = int(info["default_samplerate"])
            self.begin(rate)
            self.stream = sounddevice.InputStream(device=device, channels=1, samplerate=rate,
                                                  blocksize=int(rate / LIVE_RATE_HZ),
                                                  callback=lambda data, frames, at, status: self.feed(data[:, 0]))
            self.stream.start()
        except Exception as error:   # PortAudio reports a missing or busy input with its own error types
            self.stream = None
            self.end()
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise AudioUnavailable(f"no sound input could be opened: {first}")
        self.device_name = str(info.get("name", "input"))
        return self.device_name

    def stop(self) -> None:
        if self.stream is not None:
            self.stream.stop()
            self.stream.close()
            self.stream = None
        self.end()
