"""Music that drives the picture: band energies and onsets of a WAV file, one value per video frame, and the render
requests they make.

    features = analyse_wav("song.wav", fps=30)        # energy [frames, bands] and onset [frames], each 0..1
    requests = audio_requests(base, x, y, features, DEFAULT_MAPPINGS)
    mux_audio("silent.mp4", "song.wav", "video.mp4")  # the sound into the video (ffmpeg from imageio-ffmpeg)

Frame k covers [k / fps, (k + 1) / fps) of the sound; its spectrum is taken over a Hann window centred there,
at least ANALYSIS_WINDOW samples long so that the low band has a few frequency bins. A band's energy is the RMS
magnitude of its bins, divided by the loudest frame's (so a quiet song moves as much as a loud one, and the
bass does not drown the hats), but never by less than a tenth of the loudest band's peak. The onset
strength is the rise of the band energies from one frame to the next (spectral flux on the bands), held with a
short decay so that a beat is a visible pulse rather than a one-frame flicker.

A mapping sends one of these (a band by name, or 'onset') to a control: 'speed' (the latent walks through seed
space at `amount` seeds per second at full level, and stands still in silence), 'psi' (added to the state's psi),
'offset' (the strength of a random W direction on one w index), 'direction' (added to the strength of the
state's first direction, e.g. a SeFa component set up in the window) or 'bend' (added to the amount of the
state's first bending operation, within that operation's range). Written SOURCE:CONTROL:AMOUNT on the command
line (`--audio-map low:bend:30`).
"""
from __future__ import annotations

import dataclasses
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bending import OPERATIONS
from .controls import DIRECTION_STRENGTH_RANGE, OFFSET_STRENGTH_RANGE, PSI_RANGE, WOffset
from .latents import seed_weights
from .render import RenderRequest

BANDS = (("low", 20.0, 250.0), ("mid", 250.0, 2000.0), ("high", 2000.0, 8000.0))   # Hz: kick/bass, voice, hats
ANALYSIS_WINDOW = 2048           # samples: at 44.1 kHz, 21.5 Hz bins, 10 in the low band
ONSET_DECAY_S = 0.25             # an onset pulse falls to 1/e in this time
BAND_FLOOR = 0.1                 # a band is scaled to at most 10x (20 dB) below the loudest band's peak, so that
                                 # the faint splatter of a click in an empty band does not read as full level
SOURCES = tuple(name for name, _, _ in BANDS) + ("onset",)
CONTROLS = ("speed", "psi", "offset", "direction", "bend")
MAX_SECONDS = 3 * 3600           # three hours of sound: a longer file is a mistake, not a song
FFMPEG_TIMEOUT_S = 600


class AudioError(ValueError):
    """A sound file or mapping the explorer cannot use; one line."""


@dataclass(frozen=True)
class AudioMapping:
    source: str          # 'low', 'mid', 'high' or 'onset'
    control: str         # 'speed', 'psi' or 'offset'
    amount: float        # at full level: seeds per second, psi added, or offset strength


DEFAULT_MAPPINGS = (AudioMapping("low", "speed", 1.5), AudioMapping("mid", "psi", -0.3),
                    AudioMapping("onset", "offset", 3.0))


@dataclass(frozen=True)
class AudioFeatures:
    fps: float
    duration_s: float
    band_names: tuple[str, ...]
    energy: np.ndarray       # float32 [frames, bands], 0..1
    onset: np.ndarray        # float32 [frames], 0..1

    @property
    def frames(self) -> int:
        return len(self.onset)

    def level(self, source: str) -> np.ndarray:
        if source == "onset":
            return self.onset
        if source not in self.band_names:
            raise AudioError(f"unknown sound feature {source!r}; features: {', '.join(SOURCES)}")
        return self.energy[:, self.band_names.index(source)]


def frame_count(duration_s: float, fps: float) -> int:
    """Frames of a video as long as the sound: duration x fps (rounded to whole frames)."""
    return max(1, round(duration_s * fps))


def read_wav(path) -> tuple[np.ndarray, int]:
    """Mono float samples in -1..1 and the sample rate; AudioError with one line for anything unreadable."""
    from scipy.io import wavfile
    path = Path(path)
    try:
        rate, data = wavfile.read(path)
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file")
    except (OSError, ValueError, EOFError) as error:
        raise AudioError(f"{path}: not a WAV file this explorer reads ({error})")
    if data.dtype.kind == "i":
        samples = data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
    elif data.dtype.kind == "u":
        half = 2 ** (8 * data.dtype.itemsize - 1)
        samples = (data.astype(np.float32) - half) / half
    else:
        samples = data.astype(np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.size == 0 or rate <= 0:
        raise AudioError(f"{path}: the file holds no sound")
    if samples.size / rate > MAX_SECONDS:
        raise AudioError(f"{path}: {samples.size / rate:.0f} s of sound; at most {MAX_SECONDS} s")
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: the samples are not all finite numbers")
    return samples, int(rate)


def band_energies(segments: np.ndarray, rate: int) -> np.ndarray:
    """RMS spectral magnitude of each band in each row of `segments` [frames, window] (Hann-windowed)."""
    window = segments.shape[1]
    spectrum = np.abs(np.fft.rfft(segments * np.hanning(window).astype(np.float32), axis=1))
    frequencies = np.fft.rfftfreq(window, 1 / rate)
    energy = np.zeros((len(segments), len(BANDS)), np.float32)
    for b, (_, low, high) in enumerate(BANDS):
        bins = (frequencies >= low) & (frequencies < high)
        if bins.any():
            energy[:, b] = np.sqrt((spectrum[:, bins] ** 2).mean(axis=1))
    return energy


def analyse(samples: np.ndarray, rate: int, fps: float) -> AudioFeatures:
    if not (math.isfinite(fps) and fps > 0):
        raise AudioError(f"fps must be a positive number, not {fps!r}")
    duration = samples.size / rate
    frames = frame_count(duration, fps)
    hop = rate / fps
    window = max(ANALYSIS_WINDOW, 1 << math.ceil(math.log2(max(hop, 1))))
    centres = ((np.arange(frames) + 0.5) * hop).astype(np.int64)
    offsets = np.arange(window) - window // 2
    padded = np.concatenate([np.zeros(window, np.float32), samples.astype(np.float32), np.zeros(window, np.float32)])
    segments = padded[centres[:, None] + offsets[None, :] + window]       # [frames, window]
    energy = band_energies(segments, rate)
    loudest = np.maximum(energy.max(axis=0), BAND_FLOOR * energy.max())
    energy = np.divide(energy, loudest, out=np.zeros_like(energy), where=loudest > 0)
    flux = np.maximum(np.diff(energy, axis=0, prepend=energy[:1] * 0), 0).sum(axis=1)
    decay = math.exp(-1 / (fps * ONSET_DECAY_S))
    onset = np.zeros(frames, np.float32)
    held = 0.0
    for k in range(frames):
        held = max(float(flux[k]), held * decay)
        onset[k] = held
    if onset.max() > 0:
        onset /= onset.max()
    return AudioFeatures(float(fps), duration, tuple(name for name, _, _ in BANDS), energy, onset)


@dataclass(frozen=True)
class LiveLevels:
    """One moment of live sound: each band's level and the onset strength, 0..1."""
    energy: tuple[float, ...]
    onset: float

    def level(self, source: str) -> float:
        if source == "onset":
            return self.onset
        return self.energy[[name for name, _, _ in BANDS].index(source)]


class StreamAnalyser:
    """The same features as `analyse`, from a stream of sample blocks (a microphone or line input): a new
    LiveLevels every 1 / rate_hz seconds of sound. A song is not known in advance, so each band is divided by its
    running peak, which falls by half every PEAK_HALF_LIFE_S (a quiet passage after a loud one comes up again)."""

    PEAK_HALF_LIFE_S = 4.0

    def __init__(self, sample_rate: int, rate_hz: float = 60.0, window: int = ANALYSIS_WINDOW):
        self.sample_rate, self.window = sample_rate, window
        self.hop = sample_rate / rate_hz
        self.buffer = np.zeros(window, np.float32)
        self.due = self.hop                # samples until the next LiveLevels
        self.peaks = np.zeros(len(BANDS), np.float32)
        self.onset_peak = 0.0
        self.previous = np.zeros(len(BANDS), np.float32)
        self.held = 0.0
        self.peak_decay = 0.5 ** (1 / (rate_hz * self.PEAK_HALF_LIFE_S))
        self.onset_decay = math.exp(-1 / (rate_hz * ONSET_DECAY_S))

    def push(self, block: np.ndarray) -> list[LiveLevels]:
        levels = []
        block = np.asarray(block, np.float32).reshape(-1)
        while block.size:
            take = min(block.size, max(1, int(math.ceil(self.due))))
            self.buffer = np.concatenate([self.buffer[take:], block[:take]])
            block = block[take:]
            self.due -= take
            if self.due <= 0:
                self.due += self.hop
                levels.append(self._levels())
        return levels

    def _levels(self) -> LiveLevels:
        raw = band_energies(self.buffer[None], self.sample_rate)[0]
        self.peaks = np.maximum(raw, self.peaks * self.peak_decay)
        scale = np.maximum(self.peaks, BAND_FLOOR * self.peaks.max())
        energy = np.divide(raw, scale, out=np.zeros_like(raw), where=scale > 0)
        flux = float(np.maximum(energy - self.previous, 0).sum())
        self.previous = energy
        self.held = max(flux, self.held * self.onset_decay)
        self.onset_peak = max(self.held, self.onset_peak * self.peak_decay)
        onset = self.held / self.onset_peak if self.onset_peak > 0 else 0.0
        return LiveLevels(tuple(float(e) for e in energy), float(onset))


def analyse_wav(path, fps: float) -> AudioFeatures:
    samples, rate = read_wav(path)
    return analyse(samples, rate, fps)


def check_mappings(mappings) -> tuple[AudioMapping, ...]:
    for mapping in mappings:
        if mapping.source not in SOURCES:
            raise AudioError(f"unknown sound feature {mapping.source!r}; features: {', '.join(SOURCES)}")
        if mapping.control not in CONTROLS:
            raise AudioError(f"unknown control {mapping.control!r}; controls: {', '.join(CONTROLS)}")
        if not math.isfinite(mapping.amount):
            raise AudioError(f"the amount of {mapping.source} -> {mapping.control} must be a finite number")
    return tuple(mappings)


def parse_mapping(text: str) -> AudioMapping:
    """'low:speed:1.5' -> AudioMapping('low', 'speed', 1.5)."""
    parts = text.split(":")
    if len(parts) != 3:
        raise AudioError(f"an audio mapping is SOURCE:CONTROL:AMOUNT such as low:speed:1.5, not {text!r}")
    try:
        amount = float(parts[2])
    except ValueError:
        raise AudioError(f"the amount of {text!r} must be a number")
    return check_mappings((AudioMapping(parts[0], parts[1], amount),))[0]


def _levels(features: AudioFeatures, mappings, control: str) -> np.ndarray:
    total = np.zeros(features.frames)
    for mapping in mappings:
        if mapping.control == control:
            total += mapping.amount * features.level(mapping.source).astype(np.float64)
    return total


def audio_requests(base: RenderRequest, x: float, y: float, features: AudioFeatures, mappings=DEFAULT_MAPPINGS,
                   offset_w_index: int = 0, offset_seed: int = 0) -> list[RenderRequest]:
    """One request per frame: the latent walks from seed-space position (x, y) at the mapped speed, psi, the
    offset on `offset_w_index`, the first direction's strength and the first bending amount follow their mapped
    levels; everything else is the base request's. AudioError when a mapping needs an edit the base lacks."""
    mappings = check_mappings(mappings)
    used = {m.control for m in mappings}
    if "direction" in used and not base.direction_offsets:
        raise AudioError("the 'direction' mapping moves the state's first direction; the state has none "
                         "(add one in the Directions panel and save the session for --state)")
    if "bend" in used and not base.layer_operations:
        raise AudioError("the 'bend' mapping moves the state's first bending operation; the state has none "
                         "(add one in the Bending panel and save the session for --state)")
    speed = _levels(features, mappings, "speed")
    psi = np.clip(base.truncation_psi + _levels(features, mappings, "psi"), *PSI_RANGE)
    strength = np.clip(_levels(features, mappings, "offset"), *OFFSET_STRENGTH_RANGE)
    directions = bends = None
    if base.direction_offsets:
        directions = np.clip(base.direction_offsets[0].strength + _levels(features, mappings, "direction"),
                             *DIRECTION_STRENGTH_RANGE)
    if base.layer_operations:
        kind = OPERATIONS[base.layer_operations[0].operation]
        bends = np.clip(base.layer_operations[0].amount + _levels(features, mappings, "bend"), kind.low, kind.high)
    # Position at frame k: the distance walked in the frames before it.
    positions = x + np.concatenate([[0.0], np.cumsum(speed[:-1] / features.fps)])
    kept = tuple(o for o in base.w_offsets if o.w_index != offset_w_index)
    requests = []
    for k in range(features.frames):
        offsets = kept
        if strength[k] != 0:
            offsets = tuple(sorted(kept + (WOffset(offset_w_index, "random", offset_seed, float(strength[k])),),
                                   key=lambda o: o.w_index))
        changes = {}
        if directions is not None:
            changes["direction_offsets"] = (dataclasses.replace(base.direction_offsets[0],
                                                                strength=float(directions[k])),
                                            ) + base.direction_offsets[1:]
        if bends is not None:
            changes["layer_operations"] = (dataclasses.replace(base.layer_operations[0], amount=float(bends[k])),
                                           ) + base.layer_operations[1:]
        requests.append(dataclasses.replace(base, seed_weights=seed_weights(float(positions[k]), y),
                                            truncation_psi=float(psi[k]), w_offsets=offsets, **changes))
    return requests


def mux_audio(video: Path, wav: Path, out: Path) -> None:
    """Copies the video stream of `video` and the sound of `wav` (as AAC) into the new file `out`."""
    import imageio_ffmpeg
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-n", "-i", str(video),
               "-i", str(wav), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", str(out)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise AudioError(f"ffmpeg could not add the sound: {error}")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise AudioError(f"ffmpeg could not add the sound to {out}: {last}")
