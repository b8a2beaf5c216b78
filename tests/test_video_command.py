"""`stylegan-explorer video`: frame counts, sizes and durations read back with imageio, frames equal to the
explorer's renders, the noise loop, grids, sessions, and errors."""
import imageio.v3 as iio
import numpy as np
import pytest

from explorer.commands import main
from explorer.commands.video import catmull_rom_weights, walk_weights
from explorer.formats.native import save_network
from explorer.render import RenderRequest, WOffset, render
from explorer.state import NetworkFacts, Session
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.networks_sg3 import tiny_stylegan3
from tests.fixtures.nvlabs_pickle_writer import write_nvlabs_pickle


@pytest.fixture(scope="module")
def G():
    return tiny_stylegan2("sg2_orig_32")


@pytest.fixture(scope="module")
def pkl(tmp_path_factory, G):
    path = tmp_path_factory.mktemp("video") / "net.pkl"
    write_nvlabs_pickle(path, G)
    return path


def _pngs(folder):
    return [iio.imread(p) for p in sorted(folder.glob("frame*.png"))]


def _diff(a, b):
    return np.abs(a.astype(int) - b.astype(int)).mean()


def test_interpolation_weights():
    for t in (0.0, 0.3, 0.99):
        assert abs(sum(catmull_rom_weights(t)) - 1) < 1e-12
    assert catmull_rom_weights(0.0) == (0, 1, 0, 0)
    assert dict(walk_weights([0, 5, 9], 0, 10, True, "cubic")) == {0: 1.0}
    assert dict(walk_weights([0, 5, 9], 13, 10, False, "linear")) == pytest.approx({5: 0.7, 9: 0.3})
    # Looping cubic: the segment 9 -> 0 uses 5 before and 5 after (0, 5, 9, 0, 5 ...).
    assert set(dict(walk_weights([0, 5, 9], 25, 10, True, "cubic"))) == {5, 9, 0}


def test_seed_walk_mp4_plays_at_its_frame_rate(tmp_path, pkl):
    out = tmp_path / "walk.mp4"
    args = ["video", "--pkl", str(pkl), "--seeds", "0,5,9", "--loop", "--frames-per-seed", "6", "--trunc", "0.7"]
    assert main(args + ["--out", str(out), "--fps", "18"]) == 0
    frames = iio.imread(out, index=None, plugin="FFMPEG")
    meta = iio.immeta(out, plugin="FFMPEG")
    assert frames.shape == (18, 32, 32, 3) and meta["fps"] == 18 and abs(meta["duration"] - 1.0) < 0.05
    before = out.read_bytes()
    assert main(args + ["--out", str(out)]) == 1                  # exists: refused, not overwritten
    assert out.read_bytes() == before


def test_walk_keyframes_are_the_explorers_images(tmp_path, pkl, G):
    folder = tmp_path / "walk"
    for interp in ("cubic", "linear"):
        out = folder / interp
        assert main(["video", "--pkl", str(pkl), "--seeds", "0,5,9", "--frames-per-seed", "6", "--trunc", "0.7",
                     "--interp", interp, "--out", str(out)]) == 0
        pngs = _pngs(out)
        assert len(pngs) == 13                                   # without --loop the walk ends on its last seed
        for frame, seed in ((0, 0), (6, 5), (12, 9)):
            expected = render(G, RenderRequest("k", seed_weights=((seed, 1.0),), truncation_psi=0.7)).image
            assert np.array_equal(pngs[frame], expected), (interp, frame)
        steps = [_diff(a, b) for a, b in zip(pngs, pngs[1:])]
        assert min(steps) > 0.5 and max(steps) < _diff(pngs[0], pngs[6])   # it moves, in small steps
    # Halfway between two keyframes the linear walk is the W midpoint of the two seeds.
    halfway = _pngs(folder / "linear")[3]
    midpoint = render(G, RenderRequest("k", seed_weights=((0, 0.5), (5, 0.5)), truncation_psi=0.7)).image
    assert np.array_equal(halfway, midpoint)


def test_psi_sweep_grid_from_a_state_file(tmp_path, pkl, G):
    session = Session(facts=NetworkFacts.from_generator(G))
    session.latent.set_seed(4)
    session.noise.mode = "none"
    session.styles.offsets = (WOffset(2, "random", 1, 2.0),)
    state = tmp_path / "state.json"
    state.write_text(session.to_json())
    args = ["video", "--pkl", str(pkl), "--state", str(state), "--mode", "psi", "--frames", "5", "--psi-range",
            "0", "1", "--grid", "2x1", "--seeds", "20"]
    assert main(args + ["--out", str(tmp_path / "psi.gif"), "--fps", "10"]) == 0
    gif = iio.imread(tmp_path / "psi.gif", index=None)
    assert gif.shape == (5, 32, 64, 3) and iio.immeta(tmp_path / "psi.gif", index=0)["duration"] == 100
    assert main(args + ["--out", str(tmp_path / "psi")]) == 0
    frames = _pngs(tmp_path / "psi")
    saved = session.render_request("k")
    for frame, psi in ((0, 0.0), (2, 0.5), (4, 1.0)):
        # Left cell: the saved session (seed 4, its W+ offset), at the swept psi.
        left = render(G, RenderRequest("k", seed_weights=saved.seed_weights, w_offsets=saved.w_offsets,
                                       noise_mode="none", truncation_psi=psi)).image
        right = render(G, RenderRequest("k", seed_weights=((21, 1.0),), w_offsets=saved.w_offsets,
                                        noise_mode="none", truncation_psi=psi)).image
        assert np.array_equal(frames[frame][:, :32], left) and np.array_equal(frames[frame][:, 32:], right)


def test_style_sweep_moves_one_layer(tmp_path, pkl, G):
    out = tmp_path / "style"
    assert main(["video", "--pkl", str(pkl), "--mode", "style", "--layer", "2", "--frames", "4", "--strength", "2",
                 "--seeds", "3", "--out", str(out)]) == 0
    frames = _pngs(out)
    assert np.array_equal(frames[0], render(G, RenderRequest("k", seed_weights=((3, 1.0),))).image)
    peak = RenderRequest("k", seed_weights=((3, 1.0),), w_offsets=(WOffset(2, "random", 3, 2.0),))
    assert np.array_equal(frames[1], render(G, peak).image)        # a quarter of the way: sin = 1
    assert _diff(frames[1], frames[0]) > 2


def test_noise_loop_is_seamless_and_starts_at_the_const_image(tmp_path, pkl, G):
    out = tmp_path / "noise"
    assert main(["video", "--pkl", str(pkl), "--mode", "noise", "--frames", "12", "--seeds", "6", "--out",
                 str(out)]) == 0
    frames = _pngs(out)
    assert len(frames) == 12
    const = render(G, RenderRequest("k", seed_weights=((6, 1.0),), noise_mode="const")).image
    assert np.array_equal(frames[0], const)
    steps = [_diff(a, b) for a, b in zip(frames, frames[1:] + frames[:1])]   # including last -> first
    across = _diff(frames[0], frames[6])                                      # half way round
    assert min(steps) > 0 and max(steps) < across / 2, (steps, across)
    assert main(["video", "--pkl", str(pkl), "--mode", "noise", "--frames", "3", "--out",
                 str(tmp_path / "noise.gif")]) == 0
    assert iio.imread(tmp_path / "noise.gif", index=None).shape[0] == 3


def test_user_errors_exit_with_1_and_a_message(tmp_path, pkl, capsys):
    sg3 = tmp_path / "sg3.safetensors"
    save_network(tiny_stylegan3("t"), sg3)
    damaged = tmp_path / "damaged.json"
    damaged.write_text("{not json")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = [
        (["--pkl", str(pkl), "--mode", "style", "--layer", "99"], "--layer 99 is out of range"),
        (["--pkl", str(pkl), "--grid", "2by2"], "--grid"),
        (["--pkl", str(pkl), "--state", str(damaged)], "not a session file"),
        (["--pkl", str(pkl), "--class", "1"], "unconditional"),
        (["--pkl", str(sg3), "--mode", "noise"], "no noise inputs"),
        (["--pkl", str(tmp_path / "missing.pkl")], "missing.pkl"),
        (["--pkl", str(pkl), "--threads", "0"], "--threads"),
    ]
    for extra, message in cases:
        assert main(["video", *extra, "--out", str(tmp_path / "x.gif")]) == 1, extra
        assert message in capsys.readouterr().err, extra
    assert main(["video", "--pkl", str(pkl), "--out", str(blocker / "x.gif")]) == 1
    assert "file" in capsys.readouterr().err and blocker.read_text() == "x"
    assert not (tmp_path / "x.gif").exists()


def test_direction_sweep_moves_along_sefa_directions(tmp_path):
    import imageio.v3 as iio

    from explorer.analysis.directions import sefa_directions
    from explorer.formats.native import save_network
    from explorer.render import DirectionOffset, RenderRequest, render
    from tests.fixtures.networks import tiny_stylegan2
    G = tiny_stylegan2("sg2_orig_32")
    network = tmp_path / "net.safetensors"
    save_network(G, network)
    out = tmp_path / "frames"
    assert main(["video", "--pkl", str(network), "--mode", "direction", "--seeds", "3", "--frames", "4",
                 "--strength", "2", "--grid", "2x1", "--index", "1", "--w-range", "2-4", "--out", str(out)]) == 0
    frames = sorted(out.glob("*.png"))
    assert len(frames) == 4
    quarter = iio.imread(frames[1])                  # phase 1/4: strength 2 * sin(pi / 2) = 2
    found = sefa_directions(G, 3)
    for cell, k in ((0, 1), (1, 2)):                 # cell k sweeps direction index + k, on seed 3 + k
        offset = DirectionOffset(found.names[k], tuple(float(v) for v in found.directions[k]), 2.0, 2, 5)
        expected = render(G, RenderRequest("x", seed_weights=((3 + cell, 1.0),), direction_offsets=(offset,)))
        assert np.array_equal(quarter[:, cell * 32:(cell + 1) * 32, :3], expected.image)
    assert main(["video", "--pkl", str(network), "--mode", "direction", "--index", "99", "--out",
                 str(tmp_path / "x.gif")]) == 1
