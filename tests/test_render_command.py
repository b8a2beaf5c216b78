"""`stylegan-explorer render --state FILE` reproduces a saved view pixel for pixel: mixing, W+ edits, style-channel
edits, noise strengths and the StyleGAN3 transform, all through the same render() as the window."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from explorer.commands import main
from explorer.description import NetworkFacts
from explorer.export import read_state_file, save_screenshot
from explorer.formats import load_network
from explorer.formats.native import save_network
from explorer.render import render
from explorer.state import Session
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.networks_sg3 import tiny_stylegan3
from tests.fixtures.precision import emulate_bfloat16_units, pretend_no_bfloat16_units


def _edited_session(G, path):
    facts = NetworkFacts.from_generator(G)
    session = Session(facts=facts)
    session.network.path = str(path)
    session.latent.set_seed(7)
    session.truncation.psi = 0.6
    session.mixing.add_source(11)
    session.mixing.set_range(0, facts.num_ws - 2, facts.num_ws)
    session.styles.set_offset(1, "random", 3, 1.5)
    session.styles.copy_layer(2, 5)
    styled = next(l for l in facts.layers if l.style_channels > 0)
    session.styles.set_style_delta(styled.name, 1, 2.0)
    if facts.noise_layers:
        session.noise.mode = "random"
        session.noise.seed = 4
        session.noise.strength = 1.7
        session.noise.set_layer_strength(facts.noise_layers[-1], 0.25)
    if facts.family == "stylegan3":
        session.transform.tx, session.transform.angle = 0.2, 25.0
    return session


@pytest.mark.parametrize("family", ["stylegan2", "stylegan3"])
def test_render_reproduces_a_screenshot_pixel_for_pixel(tmp_path, family):
    G = tiny_stylegan2("sg2_skip_64") if family == "stylegan2" else tiny_stylegan3("t")
    network = tmp_path / "net.safetensors"
    save_network(G, network)
    G = load_network(network).generator
    session = _edited_session(G, network)
    expected = render(G, session.render_request("net"))
    assert expected.ok, expected.error
    plain = render(G, Session(facts=NetworkFacts.from_generator(G)).render_request("net"))
    assert np.abs(expected.raw - plain.raw).max() > 1e-2          # the edits change the image
    shot = save_screenshot(expected.image, tmp_path / "shots", state_json=session.to_json())

    assert main(["render", "--pkl", str(network), "--state", str(shot), "--outdir", str(tmp_path / "out"),
                 "--npy"]) == 0
    written = tmp_path / "out" / f"{shot.stem}.png"
    assert np.array_equal(np.asarray(Image.open(written).convert("RGB")), expected.image)
    raw = np.load(tmp_path / "out" / f"{shot.stem}.npy")
    assert raw.shape == (1, *expected.raw.shape) and np.array_equal(raw[0], expected.raw)


def test_render_with_no_pkl_uses_the_shipped_model_and_checks_values_as_the_window(tmp_path):
    assert main(["render", "--seeds", "3", "--outdir", str(tmp_path)]) == 0
    image = np.asarray(Image.open(tmp_path / "seed0003.png"))
    assert image.shape == (64, 64, 3) and image.std() > 10
    for flag, value, message in (("--trunc", "1e9", "truncation.psi must be between -1 and 2"),
                                 ("--trunc", "nan", "truncation.psi must be a finite number"),
                                 ("--seeds", "-5", "seeds are non-negative"),
                                 ("--trunc-cutoff", "99", "truncation.cutoff must be at most 10")):
        args = ["render", "--seeds", "1", "--outdir", str(tmp_path / "x"), flag, value]
        if flag == "--seeds":
            args = ["render", "--seeds=-5", "--outdir", str(tmp_path / "x")]
        result = subprocess.run([sys.executable, "-m", "explorer.cli", *args], capture_output=True, text=True)
        assert result.returncode == 1 and message in result.stderr, (flag, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


def test_a_broken_state_file_fails_as_in_the_window(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1, "truncation": {"psi": 7}}')
    result = subprocess.run([sys.executable, "-m", "explorer.cli", "render", "--state", str(broken), "--outdir",
                             str(tmp_path / "o")], capture_output=True, text=True)
    assert result.returncode == 1 and "truncation.psi must be between -1 and 2, not 7" in result.stderr
    # The window's own reading of the same file gives the same message.
    with pytest.raises(ValueError, match="truncation.psi must be between -1 and 2, not 7"):
        Session.from_json(read_state_file(broken))


def test_render_never_publishes_half_a_file_and_never_follows_a_dangling_link(tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "seed0000.png").symlink_to(tmp_path / "elsewhere.png")     # dangling: points out of --outdir
    assert main(["render", "--seeds", "0", "--outdir", str(outdir)]) == 1
    assert not (tmp_path / "elsewhere.png").exists()
    assert sorted(p.name for p in outdir.iterdir()) == ["seed0000.png"]  # no temporary left behind


@pytest.mark.parametrize("units", [True, False], ids=["bfloat16 units", "no bfloat16 units"])
def test_render_precision_is_chosen_by_name_and_refused_where_the_device_cannot(tmp_path, capsys, monkeypatch,
                                                                                units):
    """Both kinds of CPU on every machine: the units emulated where this one lacks them, or pretended away."""
    from explorer.render import RenderRequest, bfloat16_supported
    if units and not bfloat16_supported("cpu"):
        emulate_bfloat16_units(monkeypatch)
    elif not units:
        pretend_no_bfloat16_units(monkeypatch)
    G = load_network("assets/default.safetensors").generator
    bf16 = ["render", "--seeds", "4", "--outdir", str(tmp_path / "bf16"), "--precision", "bfloat16", "--npy"]
    if units:
        assert main(bf16) == 0
        preview = np.load(tmp_path / "bf16" / "seed0004.npy")[0]
        exact = render(G, RenderRequest("x", seed_weights=((4, 1.0),))).raw
        assert np.array_equal(preview, render(G, RenderRequest("x", seed_weights=((4, 1.0),), dtype="bfloat16")).raw)
        assert 0 < np.abs(preview - exact).max() < 0.3
    else:   # a CPU without bfloat16 units (AVX2 only): refused by name, nothing written
        assert main(bf16) == 1
        assert "--precision bfloat16: cpu here has no bfloat16 units (use float32)" in capsys.readouterr().err
        assert not (tmp_path / "bf16").exists()
    assert main(["render", "--seeds", "4", "--outdir", str(tmp_path / "f16"), "--precision", "float16"]) == 1
    assert "--precision float16 runs on CUDA only" in capsys.readouterr().err
    assert not (tmp_path / "f16").exists()


def test_seeds_given_beside_a_state_replace_its_w_plus_latent(tmp_path):
    G = load_network("assets/default.safetensors").generator
    facts = NetworkFacts.from_generator(G)
    session = Session(facts=facts)
    session.latent.use_w_plus(np.zeros((facts.num_ws, facts.w_dim), np.float32))
    session.truncation.psi = 0.8
    state = tmp_path / "session.json"
    state.write_text(session.to_json())
    assert main(["render", "--state", str(state), "--seeds", "3", "--outdir", str(tmp_path / "out")]) == 0
    session.latent.set_seed(3)
    expected = render(G, session.render_request("x")).image
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "seed0003.png").convert("RGB")), expected)
