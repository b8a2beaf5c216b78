"""Screenshots and recordings: state round trip, no overwriting, frame counts and sizes, crash safety, errors."""
import errno
import os
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest

from explorer import export
from explorer.export import (ExportError, GifRecorder, open_recorder, read_state_from_png, read_state_file,
                             reproduce_command, save_latents, save_screenshot)
from explorer.render import RenderCache, RenderRequest, WOffset, render
from explorer.state import NetworkFacts, Session
from tests.fixtures.networks import tiny_stylegan2


def _frames(count, height=24, width=32):
    """Smooth gradients with a moving square: content lossy codecs keep close (random pixels they would not)."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(count):
        frame = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, (40 * i) % 256)], axis=2)
        frame[2:8, (2 * i) % (width - 6):(2 * i) % (width - 6) + 6] = 255
        frames.append(frame.astype(np.uint8))
    return frames


def _read_mp4(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]
    return meta, frames


def test_screenshot_state_round_trip_renders_the_same_pixels(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    session = Session(facts=NetworkFacts.from_generator(G))
    session.latent.set_seed(7)
    session.truncation.psi = 0.6
    session.noise.mode = "none"
    first = render(G, session.render_request("net"))
    assert first.ok, first.error
    path = save_screenshot(first.image, tmp_path, state_json=session.to_json())
    assert path.name == "shot-0001.png"
    assert np.array_equal(iio.imread(path), first.image)   # native resolution, lossless

    reopened = Session.from_json(read_state_file(path), facts=NetworkFacts.from_generator(G))
    again = render(G, reopened.render_request("net"))
    assert np.array_equal(again.image, first.image)
    assert reopened.truncation.psi == 0.6 and reopened.latent.seed == 7


def test_screenshots_never_overwrite(tmp_path):
    (tmp_path / "shot-0001.png").write_bytes(b"the user's picture")
    image = np.zeros([8, 8, 3], np.uint8)
    a = save_screenshot(image, tmp_path)
    b = save_screenshot(image, tmp_path)
    assert (a.name, b.name) == ("shot-0002.png", "shot-0003.png")
    assert (tmp_path / "shot-0001.png").read_bytes() == b"the user's picture"
    assert read_state_from_png(a) is None
    with pytest.raises(ExportError, match="exists"):
        open_recorder("gif", path=tmp_path / "shot-0001.png")
    assert (tmp_path / "shot-0001.png").read_bytes() == b"the user's picture"


def test_latents_saved_as_npy(tmp_path):
    ws = np.random.RandomState(0).randn(8, 16).astype(np.float32)
    path = save_latents(ws, tmp_path)
    assert np.array_equal(np.load(path), ws)
    assert save_latents(ws, tmp_path).name == "latents-0002.npy"


def test_reproduce_command_matches_render_and_says_what_it_cannot(tmp_path):
    plain = RenderRequest("net", seed_weights=((12, 1.0),), truncation_psi=0.7, truncation_cutoff=4,
                          noise_mode="none")
    line = reproduce_command(plain, "ffhq.pkl")
    assert line.exact and line.command == ("stylegan-explorer render --pkl ffhq.pkl --seeds 12 --trunc 0.7 "
                                           "--trunc-cutoff 4 --noise-mode none --outdir out")
    edited = RenderRequest("net", layer_seeds=(None, 3), w_offsets=(WOffset(1, strength=1.0),))
    line = reproduce_command(edited, "ffhq.pkl", state_file="shot-0001.png")
    assert not line.exact and "style mixing" in line.missing and "per-layer W+ edits" in line.missing
    assert "--state shot-0001.png" in line.command


@pytest.mark.parametrize("size", [(24, 32), (17, 33)])
def test_mp4_frames_size_and_duration(tmp_path, size):
    frames = _frames(12, *size)
    recorder = export.record(frames, open_recorder("mp4", folder=tmp_path, fps=12))
    assert recorder.error is None and recorder.frames_written == 12
    meta, read = _read_mp4(recorder.path)
    assert len(read) == 12 and meta["fps"] == 12 and abs(meta["duration"] - 1.0) < 0.05
    height, width = size
    # Odd sizes are padded by one black row/column, never resized: the original pixels are all still there.
    assert tuple(meta["size"]) == (width + width % 2, height + height % 2)
    error = np.abs(read[5][:height, :width].astype(int) - frames[5].astype(int)).mean()
    shifted = np.abs(read[5][:height, 1:width].astype(int) - frames[5][:, :-1].astype(int)).mean()
    assert error < 10 and error < shifted   # lossy but in place: a resize or shift would not line up
    if height % 2:
        assert read[5][height:].mean() < 24   # the padding row: black, give or take chroma bleed


def test_gif_frames_size_and_duration(tmp_path):
    frames = _frames(10, 17, 33)
    recorder = export.record(frames, open_recorder("gif", folder=tmp_path, fps=20))
    read = iio.imread(recorder.path, index=None)
    assert read.shape == (10, 17, 33, 3)
    meta = iio.immeta(recorder.path, index=0)
    assert meta["duration"] == 50   # ms per frame at 20 fps
    error = np.abs(read[3].astype(int) - frames[3].astype(int)).mean()
    shifted = np.abs(read[3][:, 1:].astype(int) - frames[3][:, :-1].astype(int)).mean()
    assert error < 12 and error < shifted


def test_png_frames_folder(tmp_path):
    recorder = export.record(_frames(3), open_recorder("frames", folder=tmp_path, fps=30))
    names = sorted(p.name for p in recorder.path.iterdir())
    assert names == ["frame000001.png", "frame000002.png", "frame000003.png"]
    assert np.array_equal(iio.imread(recorder.path / "frame000002.png"), _frames(3)[1])


WRITER = """
import sys, time, numpy as np
from explorer.export import open_recorder
recorder = open_recorder(sys.argv[1], path=sys.argv[2], fps=10)
for i in range(10000):
    recorder.write(np.full((48, 64, 3), (i * 7) % 256, np.uint8))
    print(recorder.frames_written, flush=True)
    time.sleep(0.02)
"""


@pytest.mark.parametrize("kind", ["mp4", "gif"])
def test_a_killed_recording_is_readable_up_to_its_last_completed_frame(tmp_path, kind):
    path = tmp_path / f"killed.{kind}"
    # Its own session, so the kill takes the encoder (ffmpeg) down too, as a crash of the app would.
    process = subprocess.Popen([sys.executable, "-c", WRITER, kind, str(path)], stdout=subprocess.PIPE, text=True,
                               start_new_session=True, cwd=os.getcwd())
    completed = 0
    deadline = time.time() + 120
    while completed < 9 and time.time() < deadline:
        completed = int(process.stdout.readline())
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert completed >= 9
    if kind == "mp4":
        _, frames = _read_mp4(path)
    else:
        frames = list(iio.imread(path, index=None))
    assert len(frames) >= completed
    assert abs(int(frames[completed - 1].mean()) - ((completed - 1) * 7) % 256) <= 3


def test_full_disk_stops_the_recorder_and_keeps_what_was_written(tmp_path, monkeypatch):
    recorder = open_recorder("gif", folder=tmp_path, fps=10)
    frames = _frames(5)
    assert recorder.write(frames[0]) and recorder.write(frames[1])
    original = GifRecorder._write

    def full(self, frame):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(GifRecorder, "_write", full)
    assert recorder.write(frames[2]) is False
    assert "disk is full" in recorder.error and "failed" in recorder.progress
    monkeypatch.setattr(GifRecorder, "_write", original)
    assert recorder.write(frames[3]) is False        # a failed recorder stays stopped
    recorder.close()
    assert iio.imread(recorder.path, index=None).shape[0] == 2


def test_missing_encoder_is_a_clear_error(tmp_path, monkeypatch):
    def missing():
        raise RuntimeError("no ffmpeg exe could be found")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    recorder = open_recorder("mp4", folder=tmp_path, fps=10)
    assert recorder.write(_frames(1)[0]) is False
    assert "no H.264 encoder" in recorder.error


def test_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(ExportError):
        save_screenshot(np.zeros([4, 4, 3], np.uint8), blocker / "sub")
    assert blocker.read_bytes() == b"x"
