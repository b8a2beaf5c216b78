"""Screenshots and recordings: the state round trip, no overwriting, frame counts, sizes and durations read back
with imageio, crash safety (writers killed with SIGKILL), and errors as values."""
import errno
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from explorer import export
from explorer.commands import main
from explorer.export import (STATE_CHUNK_KEY, ExportError, FramesRecorder, GifRecorder, Mp4Recorder, open_recorder,
                             read_state_file, read_state_from_png, record, reproduce_command, save_latents,
                             save_screenshot, save_session, write_file_at)
from explorer.render import RenderRequest, StyleDelta, WOffset, render
from explorer.state import NetworkFacts, Session
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.nvlabs_pickle_writer import write_nvlabs_pickle

REPO = Path(__file__).resolve().parent.parent


def _frames(count, height=24, width=32):
    """Smooth gradients with a moving square: content lossy codecs keep close (random pixels they would not)."""
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for i in range(count):
        frame = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, (40 * i) % 256)], axis=2)
        frame[2:8, (2 * i) % (width - 6):(2 * i) % (width - 6) + 6] = 255
        frames.append(frame.astype(np.uint8))
    return frames


def _read_video(path):
    """All frames, read back with imageio (its ffmpeg plugin for MP4, Pillow for GIF)."""
    plugin = "FFMPEG" if str(path).endswith(".mp4") else None
    return iio.imread(path, index=None, plugin=plugin)


def _edited_session(G):
    session = Session(facts=NetworkFacts.from_generator(G))
    session.latent.set_seed(7)
    session.truncation.psi = 0.6
    session.noise.mode = "none"
    session.mixing.sources = (11,)
    session.mixing.layer_sources = (None, None, 0, 0)
    session.styles.offsets = (WOffset(1, "random", 3, 1.5),)
    return session


# -- screenshots ---------------------------------------------------------------------------------------------------

def test_screenshot_carries_the_state_and_reopens_to_the_same_pixels(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    session = _edited_session(G)
    first = render(G, session.render_request("net"))
    assert first.ok, first.error
    path = save_screenshot(first.image, tmp_path, state_json=session.to_json())
    assert path.name == "shot-0001.png"
    assert np.array_equal(iio.imread(path), first.image)          # native resolution, lossless
    assert read_state_from_png(path) == session.to_json()          # the state comes back as written
    assert Image.open(path).text[STATE_CHUNK_KEY] == session.to_json()   # and other PNG readers see it too

    reopened = Session.from_json(read_state_file(path), facts=NetworkFacts.from_generator(G))
    again = render(G, reopened.render_request("net"))
    assert np.array_equal(again.image, first.image)
    assert reopened.mixing.layer_sources == (None, None, 0, 0) and reopened.truncation.psi == 0.6


def test_state_reader_takes_large_states_and_refuses_damaged_files(tmp_path, monkeypatch):
    big = json.dumps({"notes": "x" * 3_000_000})    # above Pillow's 1 MB text-chunk limit
    path = save_screenshot(np.zeros([4, 4, 3], np.uint8), tmp_path, state_json=big)
    assert read_state_from_png(path) == big

    plain = save_screenshot(np.zeros([4, 4, 3], np.uint8), tmp_path)
    assert read_state_from_png(plain) is None
    with pytest.raises(ExportError, match="without a stylegan-explorer session"):
        read_state_file(plain)

    data = path.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
    (tmp_path / "foreign.png").write_bytes(b"GIF89a" + data[6:])
    flipped = bytearray(data)
    flipped[data.index(b"iTXt") + 40] ^= 0xFF
    (tmp_path / "flipped.png").write_bytes(bytes(flipped))
    for name, message in (("cut.png", "truncated"), ("foreign.png", "not a PNG"), ("flipped.png", "checksum"),
                          ("missing.png", "cannot read")):
        with pytest.raises(ExportError, match=message):
            read_state_from_png(tmp_path / name)

    # A compressed chunk that inflates past the bound is refused without inflating it all.
    monkeypatch.setattr(export.screenshot, "MAX_STATE_BYTES", 5000)
    assert read_state_from_png(plain) is None
    with pytest.raises(ExportError, match="more than 5,000 bytes"):
        read_state_from_png(path)


@pytest.mark.parametrize("chunk", ["tEXt", "zTXt", "iTXt"])
def test_state_reader_takes_every_png_text_chunk(tmp_path, chunk):
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    if chunk == "iTXt":
        info.add_itxt(STATE_CHUNK_KEY, '{"latent": {"x": 3.0}}', zip=False)
    else:
        info.add_text(STATE_CHUNK_KEY, '{"latent": {"x": 3.0}}', zip=chunk == "zTXt")
    info.add_text("Software", "another tool")
    Image.new("RGB", (4, 4)).save(tmp_path / "shot.png", pnginfo=info)
    assert chunk.encode() in (tmp_path / "shot.png").read_bytes()
    assert read_state_from_png(tmp_path / "shot.png") == '{"latent": {"x": 3.0}}'


def test_screenshots_never_overwrite_and_continue_the_numbering(tmp_path):
    (tmp_path / "shot-0001.png").write_bytes(b"the user's picture")
    image = np.zeros([8, 8, 3], np.uint8)
    a = save_screenshot(image, tmp_path)
    b = save_screenshot(image, tmp_path)
    assert (a.name, b.name) == ("shot-0002.png", "shot-0003.png")
    (tmp_path / "shot-0009.png").write_bytes(b"another")
    assert save_screenshot(image, tmp_path).name == "shot-0010.png"    # after the highest: names sort by time
    assert (tmp_path / "shot-0001.png").read_bytes() == b"the user's picture"
    assert (tmp_path / "shot-0009.png").read_bytes() == b"another"
    with pytest.raises(ExportError, match="exists"):
        open_recorder("gif", path=tmp_path / "shot-0001.png")
    with pytest.raises(ExportError, match="exists"):
        write_file_at(tmp_path / "shot-0001.png", b"new")
    with pytest.raises(ExportError, match="exists"):
        open_recorder("frames", path=tmp_path / "shot-0009.png")
    assert (tmp_path / "shot-0001.png").read_bytes() == b"the user's picture"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary files left


def test_without_hard_links_names_are_still_taken_exclusively(tmp_path, monkeypatch):
    def no_links(source, target):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "shot-0001.png").write_bytes(b"mine")
    path = save_screenshot(np.full([4, 4, 3], 9, np.uint8), tmp_path)
    assert path.name == "shot-0002.png" and iio.imread(path)[0, 0, 0] == 9
    assert (tmp_path / "shot-0001.png").read_bytes() == b"mine"
    with pytest.raises(ExportError, match="exists"):
        write_file_at(tmp_path / "shot-0001.png", b"new")
    assert (tmp_path / "shot-0001.png").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot-0001.png", "shot-0002.png"]


CONCURRENT_WRITER = """
import sys, numpy as np
from explorer.export import save_screenshot
writer = int(sys.argv[2])
for i in range(int(sys.argv[3])):
    save_screenshot(np.full((6, 6, 3), (writer, i, 0), np.uint8), sys.argv[1])
"""


def test_two_processes_saving_at_once_never_share_a_name(tmp_path):
    count = 25
    processes = [subprocess.Popen([sys.executable, "-c", CONCURRENT_WRITER, str(tmp_path), str(writer), str(count)],
                                  cwd=REPO) for writer in (1, 2)]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    shots = sorted(tmp_path.glob("shot-*.png"))
    assert len(shots) == 2 * count
    seen = {tuple(iio.imread(p)[0, 0, :2]) for p in shots}
    assert seen == {(writer, i) for writer in (1, 2) for i in range(count)}   # every image whole, none lost


def test_latents_and_sessions_saved(tmp_path):
    ws = np.random.RandomState(0).randn(8, 16).astype(np.float32)
    path = save_latents(ws, tmp_path)
    assert path.name == "latents-0001.npy" and np.array_equal(np.load(path), ws)
    assert save_latents(ws[0], tmp_path).name == "latents-0002.npy"
    with pytest.raises(ExportError, match="num_ws"):
        save_latents(np.zeros([2, 3, 4]), tmp_path)
    session = save_session('{"version": 1}', tmp_path)
    assert session.name == "session-0001.json" and read_state_file(session) == '{"version": 1}'


# -- the render command line ---------------------------------------------------------------------------------------

def _run_command(line, tmp_path, name):
    """Run a reproduce line through the CLI into a fresh folder; the image it wrote."""
    argv = shlex.split(line.command.split("   #")[0], comments=True)
    assert argv[:2] == ["stylegan-explorer", "render"]
    outdir = tmp_path / name
    argv[argv.index("--outdir") + 1] = str(outdir)
    assert main(argv[1:]) == 0
    (image,) = outdir.glob("seed*.png")
    return iio.imread(image)


def test_reproduce_command_makes_the_same_image(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    pkl = tmp_path / "net.pkl"
    write_nvlabs_pickle(pkl, G)
    facts = NetworkFacts.from_generator(G)
    plain = RenderRequest("net", seed_weights=((12, 1.0),), truncation_psi=0.7, truncation_cutoff=4,
                          noise_mode="none")
    line = reproduce_command(plain, str(pkl), facts=facts)
    assert line.exact and line.note == ""
    assert line.command == (f"stylegan-explorer render --pkl {pkl} --seeds 12 --trunc 0.7 --trunc-cutoff 4 "
                            f"--noise-mode none --outdir out")
    # Random noise drawn from the image's own seed, and strength 0 (the pixels of mode 'none'), are exact too.
    for name, request in (("plain", plain),
                          ("random", RenderRequest("net", seed_weights=((5, 1.0),), noise_mode="random",
                                                   noise_seed=5, truncation_psi=0.5)),
                          ("silent", RenderRequest("net", seed_weights=((3, 1.0),), noise_strength=0.0))):
        line = reproduce_command(request, str(pkl), facts=facts)
        assert line.exact, line.note
        assert np.array_equal(_run_command(line, tmp_path, name), render(G, request).image), name


def test_reproduce_command_names_the_class_a_conditional_network_draws(tmp_path):
    G = tiny_stylegan2("sg2_resnet_cond_64")
    pkl = tmp_path / "cond.pkl"
    write_nvlabs_pickle(pkl, G)
    request = RenderRequest("net", seed_weights=((8, 1.0),))   # class None: drawn from the seed, as NVlabs' viz
    line = reproduce_command(request, str(pkl), facts=NetworkFacts.from_generator(G))
    assert "--class" in line.command and line.exact
    assert np.array_equal(_run_command(line, tmp_path, "cond"), render(G, request).image)


def test_reproduce_command_says_what_it_leaves_out(tmp_path):
    edited = RenderRequest("net", seed_weights=((4, 0.25), (5, 0.75)), layer_seeds=(None, 3),
                           w_offsets=(WOffset(1, strength=1.0),), style_deltas=(StyleDelta("b4.conv1", 0, 2.0),),
                           noise_mode="random", noise_seed=9, noise_strength=1.5)
    unsaved = reproduce_command(edited, "my net.pkl")
    assert not unsaved.exact
    assert set(unsaved.missing) >= {"style mixing", "w offsets", "style-channel edits", "noise strengths"}
    assert any("blend of 2 seeds" in m for m in unsaved.missing) and any("noise seed 9" in m for m in unsaved.missing)
    assert "--seeds 5" in unsaved.command                      # the nearest plain seed
    assert "--pkl 'my net.pkl'" in unsaved.command             # quoted for the shell
    assert "save a screenshot or the session" in unsaved.note
    # With the screenshot that carries the session, the line renders from it: exact.
    saved = reproduce_command(edited, "my net.pkl", state_file="shots/shot-0001.png")
    assert saved.exact and saved.missing == () and saved.note == ""
    assert saved.command == "stylegan-explorer render --pkl 'my net.pkl' --state shots/shot-0001.png --outdir out"


# -- recordings: what is in the files ------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(24, 32), (17, 33)])
def test_mp4_frames_size_and_duration(tmp_path, size):
    frames = _frames(12, *size)
    recorder = record(frames, open_recorder("mp4", folder=tmp_path, fps=12))
    assert recorder.error is None and recorder.frames_written == 12
    assert recorder.status().frames_saved == 12 and recorder.status().state == "done"
    read = _read_video(recorder.path)
    meta = iio.immeta(recorder.path, plugin="FFMPEG")
    height, width = size
    assert read.shape == (12, height + height % 2, width + width % 2, 3)
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["fps"] == 12 and abs(meta["duration"] - 1.0) < 0.05
    # Odd sizes are padded by one black row/column, never resized: the original pixels are all still in place.
    error = np.abs(read[5][:height, :width].astype(int) - frames[5].astype(int)).mean()
    shifted = np.abs(read[5][:height, 1:width].astype(int) - frames[5][:, :-1].astype(int)).mean()
    assert error < 10 and error < shifted
    luma = read[5][3:7].astype(float) @ [0.299, 0.587, 0.114]
    assert list(np.flatnonzero(luma.mean(axis=0) > 220)) == list(range(10, 16))   # the white square, in place
    if height % 2:
        assert read[5][height:].mean() < 24 < frames[5][-1].mean()   # the added row is black, the last is not


def test_gif_frames_size_and_duration(tmp_path):
    frames = _frames(10, 17, 33)
    recorder = record(frames, open_recorder("gif", folder=tmp_path, fps=20))
    read = _read_video(recorder.path)
    assert read.shape == (10, 17, 33, 3)                        # any size: GIF needs no padding
    assert iio.immeta(recorder.path, index=0)["duration"] == 50   # ms per frame at 20 fps
    assert recorder.status().fps == 20
    error = np.abs(read[3].astype(int) - frames[3].astype(int)).mean()
    shifted = np.abs(read[3][:, 1:].astype(int) - frames[3][:, :-1].astype(int)).mean()
    assert error < 6 and error < shifted
    # GIF delays are whole hundredths: 30 fps plays at 100 / 3 fps, and the status says so.
    assert open_recorder("gif", folder=tmp_path, fps=30).status().fps == pytest.approx(100 / 3)


def test_png_frames_folder_is_lossless_and_never_overwrites(tmp_path):
    frames = _frames(3)
    recorder = record(frames, open_recorder("frames", folder=tmp_path, fps=30))
    assert recorder.path.name == "recording-0001.frames"
    names = sorted(p.name for p in recorder.path.iterdir())
    assert names == ["frame000001.png", "frame000002.png", "frame000003.png"]
    assert np.array_equal(iio.imread(recorder.path / "frame000002.png"), frames[1])

    folder = tmp_path / "mine"
    folder.mkdir()
    recorder = FramesRecorder(folder, fps=30)
    (folder / "frame000002.png").write_bytes(b"the user's frame")
    assert recorder.write(frames[0]) and not recorder.write(frames[1])
    assert "exists" in recorder.error and (folder / "frame000002.png").read_bytes() == b"the user's frame"


def test_recorder_errors_are_values(tmp_path):
    recorder = open_recorder("gif", folder=tmp_path, fps=10)
    assert recorder.write(np.zeros([8, 8, 3], np.uint8))
    assert recorder.write(np.zeros([9, 8, 3], np.uint8)) is False
    assert "frame size changed" in recorder.error and recorder.status().state == "failed"
    other = open_recorder("gif", folder=tmp_path, fps=10)
    assert other.write(np.zeros([8, 8, 3], np.float32)) is False and "uint8" in other.error
    for bad in (0, -5, float("nan")):
        with pytest.raises(ExportError, match="frame rate"):
            open_recorder("mp4", folder=tmp_path, fps=bad)
    with pytest.raises(ExportError, match="format"):
        open_recorder("avi", folder=tmp_path)
    assert _read_video(recorder.path).shape == (1, 8, 8, 3)    # the frame before the failure stays
    other.close()
    assert not other.path.exists()                             # no frame went in: the empty file goes again
    for kind in ("mp4", "frames"):
        empty = open_recorder(kind, folder=tmp_path, fps=10)
        assert empty.path.exists()
        empty.close()
        assert not empty.path.exists() and empty.error is None


class _SlowGif(GifRecorder):
    """An encoder that takes SLOW_WRITE_S a frame."""
    SLOW_WRITE_S = 0.05

    def _write(self, frame):
        time.sleep(self.SLOW_WRITE_S)
        super()._write(frame)


def test_background_recorder_never_makes_the_caller_wait_for_the_encoder(tmp_path):
    frames = _frames(6)
    recorder = export.BackgroundRecorder(_SlowGif(export.reserve_exact(tmp_path / "slow.gif"), fps=10))
    start = time.perf_counter()
    buffer = np.zeros_like(frames[0])
    for frame in frames:
        buffer[...] = frame
        assert recorder.write(buffer)          # the same buffer each time, as a frame loop reuses its own
    recorder.close(wait=False)
    waited = time.perf_counter() - start
    assert waited < _SlowGif.SLOW_WRITE_S * len(frames) / 2, waited
    assert recorder.status().state in ("finishing", "done") and recorder.status().frames_written == 6
    recorder.close()                            # waits for the file
    assert recorder.status().state == "done" and recorder.frames_saved == 6
    read = _read_video(recorder.path)
    assert read.shape[0] == 6
    assert all(np.abs(r.astype(int) - f.astype(int)).mean() < 6 for r, f in zip(read, frames))


def test_background_recorder_reports_errors_as_values(tmp_path):
    recorder = open_recorder("gif", folder=tmp_path, fps=10, background=True)
    assert isinstance(recorder, export.BackgroundRecorder)
    assert recorder.write(np.zeros([8, 8, 3], np.uint8))
    assert recorder.write(np.zeros([9, 8, 3], np.uint8))   # queued; the recorder refuses it on its thread
    deadline = time.time() + 10
    while recorder.write(np.zeros([8, 8, 3], np.uint8)) and time.time() < deadline:
        time.sleep(0.01)
    assert "frame size changed" in recorder.error and recorder.status().state == "failed"
    assert recorder.write(np.zeros([8, 8], np.float64)) is False
    recorder.close()
    assert _read_video(recorder.path).shape[0] == 1


# -- crash safety --------------------------------------------------------------------------------------------------

KILLED_WRITER = """
import sys, numpy as np
from explorer.export import open_recorder
recorder = open_recorder(sys.argv[1], path=sys.argv[2], fps=10)
print(getattr(recorder, "encoder_pid", None) or 0, flush=True)
for i in range(100000):
    assert recorder.write(np.full((48, 64, 3), (i * 7) % 256, np.uint8)), recorder.error
    if i == 0:
        print(getattr(recorder, "encoder_pid", None) or 0, flush=True)
    print(recorder.frames_saved, flush=True)
"""


def _kill_writer_mid_way(kind, path, saved_before_kill, kill_encoder):
    """Start a writer that writes frames as fast as it can; SIGKILL it (and its ffmpeg) once it reports
    `saved_before_kill` frames complete in the file. Returns the frames it reported complete."""
    process = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, kind, str(path)], stdout=subprocess.PIPE,
                               text=True, cwd=REPO)
    process.stdout.readline()
    encoder = int(process.stdout.readline())
    saved, deadline = 0, time.time() + 120
    while saved < saved_before_kill and time.time() < deadline:
        saved = int(process.stdout.readline())
    process.kill()
    if kill_encoder and encoder:
        os.kill(encoder, signal.SIGKILL)
    process.wait()
    assert saved >= saved_before_kill
    return saved, encoder


def _check_frames(frames, count):
    assert len(frames) >= count
    means = [int(round(frame.mean())) for frame in frames[:count]]
    assert all(abs(mean - (i * 7) % 256) <= 3 for i, mean in enumerate(means)), means


@pytest.mark.parametrize("kill_after", [1, 13, 40])
def test_a_killed_gif_recording_is_readable_up_to_its_last_completed_frame(tmp_path, kill_after):
    path = tmp_path / "killed.gif"
    saved, _ = _kill_writer_mid_way("gif", path, kill_after, kill_encoder=False)
    _check_frames(_read_video(path), saved)


@pytest.mark.parametrize("kill_after", [2, 25])
def test_a_killed_mp4_recording_and_encoder_leave_a_file_playable_up_to_its_last_completed_frame(tmp_path,
                                                                                            kill_after):
    path = tmp_path / "killed.mp4"
    saved, encoder = _kill_writer_mid_way("mp4", path, kill_after, kill_encoder=True)
    assert encoder
    _check_frames(_read_video(path), saved)


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"   # a zombie has exited
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc").is_dir() and os.environ.get("CI") != "true",
                    reason="follows the orphaned encoder through /proc")
def test_when_only_the_app_dies_ffmpeg_finishes_the_file(tmp_path):
    path = tmp_path / "orphan.mp4"
    saved, encoder = _kill_writer_mid_way("mp4", path, 10, kill_encoder=False)
    deadline = time.time() + 60
    while not _gone(encoder) and time.time() < deadline:
        time.sleep(0.05)
    assert _gone(encoder)
    frames = _read_video(path)
    _check_frames(frames, saved)
    assert len(frames) > saved   # the frames still in the pipe and the encoder were written too


# -- errors: full disk, missing or crashing encoder, unwritable folder ---------------------------------------------

class _DiskFillsUp:
    """A file whose writes fail with ENOSPC once `room` more bytes went in (part of a write gets written)."""

    def __init__(self, file, room):
        self.file, self.room = file, room

    def write(self, data):
        if len(data) > self.room:
            self.file.write(data[:self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)


def test_full_disk_stops_a_gif_and_keeps_every_frame_written_before(tmp_path):
    recorder = open_recorder("gif", folder=tmp_path, fps=10)
    frames = _frames(5)
    assert recorder.write(frames[0]) and recorder.write(frames[1])
    recorder._file = _DiskFillsUp(recorder._file, room=100)    # the disk fills up in the middle of frame 3
    assert recorder.write(frames[2]) is False
    assert "disk is full" in recorder.error and "failed" in recorder.progress
    assert recorder.write(frames[3]) is False                 # a failed recorder stays stopped
    recorder.close()
    read = _read_video(recorder.path)
    assert read.shape[0] == 2 and np.abs(read[1].astype(int) - frames[1].astype(int)).mean() < 6


def test_a_gif_cut_between_writing_a_frame_and_linking_it_in_shows_the_frames_before(tmp_path, monkeypatch):
    """The moment a kill is most likely to land (the fsync between the frame's bytes and the byte that links it
    in), made deterministic: the process 'dies' there and the file is read as it was left."""
    recorder = open_recorder("gif", folder=tmp_path, fps=10)
    frames = _frames(3)
    assert recorder.write(frames[0]) and recorder.write(frames[1])

    class Died(BaseException):
        pass

    def die(fd):
        raise Died

    monkeypatch.setattr(export.gif.os, "fsync", die)
    with pytest.raises(Died):
        recorder.write(frames[2])
    data = recorder.path.read_bytes()
    assert data.count(b";\xf9\x04") == 1                        # frame 3 is in the file, after the trailer
    read = _read_video(recorder.path)
    assert read.shape[0] == 2 and np.abs(read[1].astype(int) - frames[1].astype(int)).mean() < 6


def test_full_disk_under_ffmpeg_is_a_clear_error(tmp_path):
    if not Path("/dev/full").exists() and os.environ.get("CI") != "true":
        pytest.skip("needs /dev/full")
    recorder = Mp4Recorder("/dev/full", fps=10)    # every write ffmpeg makes fails with ENOSPC
    frame, written = _frames(1)[0], 0
    while recorder.write(frame) and written < 10_000:   # until ffmpeg fails and the pipe breaks
        written += 1
    assert written < 10_000 and "disk is full" in recorder.error, recorder.error
    recorder.close()
    assert recorder.status().state == "failed" and "disk is full" in recorder.error


def test_full_disk_on_screenshots_and_png_frames_leaves_nothing_half_written(tmp_path, monkeypatch):
    (tmp_path / "shot-0001.png").write_bytes(b"mine")
    recorder = open_recorder("frames", folder=tmp_path, fps=10)
    assert recorder.write(_frames(1)[0])

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export.files.os, "fsync", full)
    with pytest.raises(ExportError, match="disk is full"):
        save_screenshot(np.zeros([4, 4, 3], np.uint8), tmp_path)
    recorder.durable = True
    assert recorder.write(_frames(2)[1]) is False and "disk is full" in recorder.error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recording-0001.frames", "shot-0001.png"]
    assert [p.name for p in recorder.path.iterdir()] == ["frame000001.png"]
    assert (tmp_path / "shot-0001.png").read_bytes() == b"mine"


def test_missing_encoder_is_a_clear_error(tmp_path, monkeypatch):
    def missing():
        raise RuntimeError("no ffmpeg exe could be found")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    recorder = open_recorder("mp4", folder=tmp_path, fps=10)
    assert recorder.write(_frames(1)[0]) is False
    assert "no H.264 encoder" in recorder.error and "GIF or PNG frames" in recorder.error
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: str(tmp_path / "no-such-ffmpeg"))
    recorder = open_recorder("mp4", folder=tmp_path, fps=10)
    assert recorder.write(_frames(1)[0]) is False and "does not start" in recorder.error


def test_an_encoder_that_dies_stops_the_recording_and_keeps_its_frames(tmp_path):
    recorder = open_recorder("mp4", folder=tmp_path, fps=10)
    frames = _frames(40)
    for frame in frames[:20]:
        assert recorder.write(frame)
    deadline = time.time() + 30
    while recorder.frames_saved < 15 and time.time() < deadline:
        time.sleep(0.05)
    saved = recorder.frames_saved
    os.kill(recorder.encoder_pid, signal.SIGKILL)
    for attempt in range(500):   # the kill takes effect a moment later; frames sent until then sit in the pipe
        if not recorder.write(frames[20 + attempt % 20]):
            break
        time.sleep(0.01)
    assert recorder.failed and "encoder stopped" in recorder.error, recorder.error
    recorder.close()
    read = _read_video(recorder.path)
    assert len(read) >= saved >= 15
    assert np.abs(read[14].astype(int) - frames[14].astype(int)).mean() < 6


def test_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(ExportError, match="file"):
        save_screenshot(np.zeros([4, 4, 3], np.uint8), blocker / "sub")
    for kind in ("mp4", "gif", "frames"):
        with pytest.raises(ExportError):
            open_recorder(kind, folder=blocker)
    assert blocker.read_bytes() == b"x"
