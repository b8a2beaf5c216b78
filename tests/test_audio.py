"""Audio: band energies and onsets of a synthetic WAV (sine bursts made here), the requests they drive, and
`video --audio`: frames = duration x fps, the sound muxed in, the motion following the bursts."""
import subprocess

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
from scipy.io import wavfile

from explorer.audio import AudioError, AudioMapping, analyse, audio_requests, frame_count, parse_mapping, read_wav
from explorer.bending import LayerOperation
from explorer.controls import DirectionOffset
from explorer.commands import main
from explorer.formats.native import save_network
from explorer.render import RenderRequest
from tests.fixtures.networks import tiny_stylegan2

RATE = 16000
FPS = 10
SECONDS = 3.0
BURSTS = ((0.5, 1.0), (2.0, 2.5))     # seconds: a 110 Hz tone (the low band) plays in these


def burst_signal() -> np.ndarray:
    t = np.arange(int(RATE * SECONDS)) / RATE
    playing = np.zeros_like(t, dtype=bool)
    for start, stop in BURSTS:
        playing |= (t >= start) & (t < stop)
    return (0.8 * np.sin(2 * np.pi * 110 * t) * playing).astype(np.float32)


def burst_mask(frames: int) -> np.ndarray:
    """Per frame: whether the tone plays in that frame's interval."""
    centres = (np.arange(frames) + 0.5) / FPS
    return np.array([any(a <= c < b for a, b in BURSTS) for c in centres])


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "bursts.wav"
    wavfile.write(path, RATE, (burst_signal() * 32767).astype(np.int16))
    return path


def test_bands_and_onsets_follow_the_bursts(wav):
    samples, rate = read_wav(wav)
    assert rate == RATE and samples.shape == (int(RATE * SECONDS),) and abs(samples.max() - 0.8) < 1e-3
    features = analyse(samples, rate, FPS)
    assert features.frames == frame_count(SECONDS, FPS) == 30
    mask = burst_mask(features.frames)
    low = features.level("low")
    assert low[mask].min() > 0.5 and low[~mask].max() < 0.35          # the window reaches across each edge
    assert features.level("mid").max() < 0.05 and features.level("high").max() < 0.05   # a click is not a band
    starts = [round(a * FPS) for a, _ in BURSTS]
    for start in starts:   # the onset pulse peaks at a burst's start and falls off after it
        peak = start - 1 + int(np.argmax(features.onset[start - 1:start + 2]))
        assert features.onset[peak] > 0.8 and features.onset[peak + 4] < 0.5 * features.onset[peak]


def test_requests_move_only_while_the_music_plays(wav):
    samples, rate = read_wav(wav)
    features = analyse(samples, rate, FPS)
    base = RenderRequest("k", truncation_psi=0.9)
    requests = audio_requests(base, 5.0, 0.0, features, (AudioMapping("low", "speed", 2.0),
                                                          AudioMapping("onset", "offset", 3.0)), offset_w_index=1)
    assert len(requests) == features.frames
    assert requests[0].seed_weights == ((5, 1.0),)
    quiet = round(BURSTS[0][0] * FPS) - 2
    assert requests[quiet].seed_weights == ((5, 1.0),)                   # silence: still
    positions = [sum(seed * w for seed, w in r.seed_weights) for r in requests]
    assert positions[-1] - 5.0 == pytest.approx(2.0 * features.level("low")[:-1].sum() / FPS, rel=0.05)
    strengths = [r.w_offsets[0].strength if r.w_offsets else 0.0 for r in requests]
    assert max(strengths) == pytest.approx(3.0) and strengths[quiet] == 0.0
    with pytest.raises(AudioError, match="unknown control"):
        audio_requests(base, 0, 0, features, (AudioMapping("low", "volume", 1.0),))


def test_bending_and_direction_follow_the_music(wav):
    features = analyse(*read_wav(wav), FPS)
    low = features.level("low")
    base = RenderRequest("k", layer_operations=(LayerOperation("b8.conv1", "multiply", (0,), 1.0),),
                         direction_offsets=(DirectionOffset("d", (1.0, 0.0), 0.5),))
    mappings = (parse_mapping("low:bend:20"), parse_mapping("onset:direction:2"))
    requests = audio_requests(base, 0.0, 0.0, features, mappings)
    amounts = np.array([r.layer_operations[0].amount for r in requests])
    np.testing.assert_allclose(amounts, np.clip(1.0 + 20 * low, -10, 10), atol=1e-6)   # multiply's range
    strengths = np.array([r.direction_offsets[0].strength for r in requests])
    np.testing.assert_allclose(strengths, 0.5 + 2 * features.onset, atol=1e-6)
    with pytest.raises(AudioError, match="has none"):
        audio_requests(RenderRequest("k"), 0, 0, features, (parse_mapping("low:bend:1"),))
    for text, words in (("low:speed", "SOURCE:CONTROL:AMOUNT"), ("bass:speed:1", "unknown sound feature"),
                        ("low:speed:fast", "must be a number")):
        with pytest.raises(AudioError, match=words):
            parse_mapping(text)


def test_unreadable_sound_is_one_line(tmp_path):
    (tmp_path / "noise.wav").write_bytes(b"RIFF not really")
    for path, words in ((tmp_path / "noise.wav", "not a WAV"), (tmp_path / "none.wav", "no such file")):
        with pytest.raises(AudioError) as error:
            read_wav(path)
        assert words in str(error.value) and "\n" not in str(error.value)


def test_video_audio_frames_sound_and_motion(tmp_path, wav):
    G = tiny_stylegan2("sg2_orig_32")
    pkl = tmp_path / "net.safetensors"
    save_network(G, pkl)
    out = tmp_path / "music.mp4"
    assert main(["video", "--pkl", str(pkl), "--audio", str(wav), "--fps", str(FPS), "--seeds", "3",
                 "--out", str(out), "--threads", "1"]) == 0
    frames = iio.imread(out, index=None, plugin="FFMPEG")
    assert frames.shape == (int(SECONDS * FPS), 32, 32, 3)
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(out)],
                           capture_output=True, text=True)
    assert "Audio: aac" in probe.stderr and "Video: h264" in probe.stderr
    # The picture changes while the tone plays and stands still in the silence between (what is left there is
    # the encoder's noise). A step from frame k to k + 1 moves with the walk at k and the psi and offset at k + 1.
    change = np.abs(np.diff(frames.astype(float), axis=0)).mean(axis=(1, 2, 3))
    mask = burst_mask(len(frames))
    playing = mask[:-1] | mask[1:]
    assert np.corrcoef(change, playing)[0, 1] > 0.7
    assert change[playing].mean() > 5 * change[~playing].mean()
    # Refusals: an existing --out is kept, a GIF cannot carry sound.
    before = out.read_bytes()
    assert main(["video", "--pkl", str(pkl), "--audio", str(wav), "--out", str(out)]) == 1
    assert out.read_bytes() == before
    assert main(["video", "--pkl", str(pkl), "--audio", str(wav), "--out", str(tmp_path / "x.gif")]) == 1
    assert not list(tmp_path.glob(".music-*"))            # no scratch folder left behind


def test_live_sound_moves_the_state_without_undo_steps_and_puts_it_back():
    import time

    from explorer.controller import Controller
    from explorer.remote.live import remote_for
    from explorer.remote.live_audio import AudioUnavailable, LiveAudio
    controller = Controller(remember_recent=False)
    try:
        controller.worker.set_network(tiny_stylegan2("sg2_orig_32"), key="tiny")
        assert controller.wait_for_frame(60)
        controller.set("truncation", "psi", 0.8)
        steps = len(controller.history.done)
        live = LiveAudio(remote_for(controller), (AudioMapping("low", "psi", -0.6), AudioMapping("low", "speed", 2.0),
                                                  AudioMapping("onset", "offset", 3.0)), offset_w_index=1)
        live.begin(RATE)
        signal = burst_signal()
        block = RATE // 100
        psi, speed, strength = [], [], []
        for start in range(0, int(1.2 * RATE), block):          # silence, then into the first burst
            live.feed(signal[start:start + block])
            controller.tick()
            psi.append(controller.session.truncation.psi)
            speed.append(controller.session.latent.speed)
            offsets = controller.session.styles.offsets
            strength.append(offsets[0].strength if offsets else 0.0)
        quiet, loud = int(0.4 * 100), int(0.8 * 100)            # block indices: 0.4 s and 0.8 s into the sound
        assert psi[quiet] == pytest.approx(0.8) and speed[quiet] == 0.0
        assert psi[loud] == pytest.approx(0.2, abs=0.05) and speed[loud] == pytest.approx(2.0, abs=0.1)
        assert max(strength) > 2.5 and controller.session.latent.animate is True
        assert len(controller.history.done) == steps           # the music made no undo steps
        live.end()
        assert controller.session.truncation.psi == pytest.approx(0.8) and controller.session.latent.animate is False
        assert controller.session.styles.offsets == () and len(controller.history.done) == steps
        with pytest.raises(AudioError, match="live sound drives"):
            LiveAudio(remote_for(controller), (AudioMapping("low", "bend", 1.0),))
        before = controller.session.to_dict()
        try:
            name = remote_for(controller).audio().start()
        except AudioUnavailable as error:                      # no sounddevice, PortAudio or input here
            assert "\n" not in str(error) and controller.session.to_dict() == before
        else:                                                  # a machine with a sound input
            assert name
            time.sleep(0.2)
            remote_for(controller).audio().stop()
    finally:
        remote_for(controller).close()
        controller.close()
