"""The 8 s demo beat of the README's audio-reactive example: python3 docs/make_beat.py writes beat.wav."""
# A 8 s demo beat at 120 bpm: kick on every beat, a bass note every bar, hats on off-beats.
import numpy as np
from scipy.io import wavfile
rate, seconds, bpm = 44100, 8.0, 120
t = np.arange(int(rate * seconds)) / rate
beat = 60 / bpm
signal = np.zeros_like(t)
for k in range(int(seconds / beat)):
    start = k * beat
    u = t - start
    on = (u >= 0) & (u < 0.25)
    signal[on] += 0.9 * np.sin(2 * np.pi * (50 + 80 * np.exp(-u[on] * 30)) * u[on]) * np.exp(-u[on] * 12)   # kick
    hat = (t - start - beat / 2 >= 0) & (t - start - beat / 2 < 0.05)
    signal[hat] += 0.2 * np.random.RandomState(k).randn(hat.sum()) * np.exp(-(t[hat] - start - beat / 2) * 60)
    if k % 4 == 0:
        bar = (u >= 0) & (u < 4 * beat * 0.9)
        signal[bar] += 0.3 * np.sin(2 * np.pi * 220 * u[bar]) * np.exp(-u[bar] * 0.8)                   # mid note
wavfile.write("beat.wav", rate, (np.clip(signal, -1, 1) * 32767).astype(np.int16))
