"""`stylegan-explorer video`: frame counts, sizes, durations, and frames equal to the explorer's renders."""
import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest

from explorer.cli import main
from explorer.render import RenderRequest, render
from explorer.state import NetworkFacts, Session
from explorer.video import catmull_rom_weights, walk_weights
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.nvlabs_pickle_writer import write_nvlabs_pickle


@pytest.fixture(scope="module")
def pkl(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "net.pkl"
    write_nvlabs_pickle(path, tiny_stylegan2("sg2_orig_32"))
    return path


def test_interpolation_weights():
    for t in (0.0, 0.3, 0.99):
        assert abs(sum(catmull_rom_weights(t)) - 1) < 1e-12
    assert dict(walk_weights([0, 5, 9], 0, 10, True, "cubic"))[0] == 1.0
    linear = dict(walk_weights([0, 5, 9], 13, 10, False, "linear"))
    assert linear == pytest.approx({5: 0.7, 9: 0.3})


def test_seed_walk_mp4(tmp_path, pkl):
    out = tmp_path / "walk.mp4"
    assert main(["video", "--pkl", str(pkl), "--seeds", "0,5,9", "--loop", "--frames-per-seed", "6", "--trunc",
                 "0.7", "--out", str(out), "--fps", "18"]) == 0
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(32, 32, 3) for f in reader]
    assert len(frames) == 18 and meta["size"] == (32, 32) and abs(meta["duration"] - 1.0) < 0.05
    assert main(["video", "--pkl", str(pkl), "--out", str(out)]) == 1           # exists: not overwritten

    # The same walk as lossless PNG frames: keyframes show exactly their seed's image.
    folder = tmp_path / "walk"
    assert main(["video", "--pkl", str(pkl), "--seeds", "0,5,9", "--loop", "--frames-per-seed", "6", "--trunc",
                 "0.7", "--out", str(folder)]) == 0
    pngs = [iio.imread(folder / f"frame{i:06d}.png") for i in range(1, 19)]
    G = tiny_stylegan2("sg2_orig_32")
    for frame, seed in ((0, 0), (6, 5), (12, 9)):
        expected = render(G, RenderRequest("k", seed_weights=((seed, 1.0),), truncation_psi=0.7)).image
        assert np.abs(pngs[frame].astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(pngs[3].astype(int) - pngs[0].astype(int)).mean() > 2   # it moves between keyframes


def test_psi_sweep_grid_gif_from_a_state_file(tmp_path, pkl):
    G = tiny_stylegan2("sg2_orig_32")
    session = Session(facts=NetworkFacts.from_generator(G))
    session.latent.set_seed(4)
    session.noise.mode = "none"
    state = tmp_path / "state.json"
    state.write_text(session.to_json())
    args = ["video", "--pkl", str(pkl), "--state", str(state), "--mode", "psi", "--frames", "5", "--psi-range",
            "0", "1", "--grid", "2x1"]
    assert main(args + ["--out", str(tmp_path / "psi.gif")]) == 0
    assert iio.imread(tmp_path / "psi.gif", index=None).shape == (5, 32, 64, 3)
    assert main(args + ["--out", str(tmp_path / "psi")]) == 0
    frames = [iio.imread(tmp_path / "psi" / f"frame{i:06d}.png") for i in range(1, 6)]
    w_avg = render(G, RenderRequest("k", seed_weights=((4, 1.0),), truncation_psi=0.0, noise_mode="none")).image
    last = render(G, RenderRequest("k", seed_weights=((4, 1.0),), truncation_psi=1.0, noise_mode="none")).image
    # Left cell: the saved latent (seed 4), psi 0 first (the w_avg image) and psi 1 last.
    assert np.abs(frames[0][:, :32].astype(int) - w_avg.astype(int)).max() <= 1
    assert np.abs(frames[-1][:, :32].astype(int) - last.astype(int)).max() <= 1
    assert np.abs(frames[-1][:, 32:].astype(int) - frames[-1][:, :32].astype(int)).mean() > 5  # another seed


def test_style_sweep_and_noise_loop_to_frames(tmp_path, pkl):
    out = tmp_path / "style"
    assert main(["video", "--pkl", str(pkl), "--mode", "style", "--layer", "2", "--frames", "4", "--out",
                 str(out)]) == 0
    frames = [iio.imread(out / f"frame{i:06d}.png") for i in range(1, 5)]
    assert np.abs(frames[1].astype(int) - frames[0].astype(int)).max() > 10
    out = tmp_path / "noise.gif"
    assert main(["video", "--pkl", str(pkl), "--mode", "noise", "--frames", "3", "--out", str(out)]) == 0
    assert iio.imread(out, index=None).shape[0] == 3
    assert main(["video", "--pkl", str(pkl), "--mode", "style", "--layer", "99", "--out",
                 str(tmp_path / "x.gif")]) == 1
