"""The headless commands, run as a user runs them: a real subprocess of the installed entry point's module."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.commands import main
from explorer.commands.common import parse_seeds, UserError
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.nvlabs_pickle_writer import write_nvlabs_pickle

GOLDEN = "tests/golden/{}.npz"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "explorer.cli", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def network_pkl(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "net.pkl"
    write_nvlabs_pickle(path, tiny_stylegan2("sg2_skip_64"), G=tiny_stylegan2("sg2_skip_64", seed=1))
    return path


def test_parse_seeds():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_seeds("5") == [5]
    for bad in ("", "a", "3-1", "-1", "4294967296"):
        with pytest.raises(UserError):
            parse_seeds(bad)


def test_render_writes_nvlabs_pngs_npy_and_layers(tmp_path, network_pkl):
    outdir = tmp_path / "out"
    result = _cli("render", "--pkl", str(network_pkl), "--seeds", "0-1", "--trunc", "0.7", "--outdir", str(outdir),
                  "--npy", "--dump-layers")
    assert result.returncode == 0, result.stderr
    golden = np.load(GOLDEN.format("sg2_skip_64"))
    for seed in (0, 1):
        raw = np.load(outdir / f"seed{seed:04d}.npy")
        assert raw.dtype == np.float32 and raw.shape == (1, 3, 64, 64)
        assert np.abs(raw - golden[f"img_s{seed}_p0.7"]).max() <= 1e-4
        png = np.asarray(Image.open(outdir / f"seed{seed:04d}.png"))
        expected = np.clip(raw[0].transpose(1, 2, 0) * 127.5 + 128, 0, 255).astype(np.uint8)
        assert png.shape == (64, 64, 3)
        assert np.abs(png.astype(int) - expected.astype(int)).max() <= 1
        layers = np.load(outdir / f"seed{seed:04d}_layers.npz")
        assert "b64.conv1" in layers.files and layers["b64.conv1"].shape == (1, 8, 64, 64)
        assert "b4.torgb" in layers.files


def test_render_never_overwrites(tmp_path, network_pkl):
    outdir = tmp_path / "out"
    outdir.mkdir()
    existing = outdir / "seed0000.png"
    existing.write_bytes(b"user's file")
    result = _cli("render", "--pkl", str(network_pkl), "--seeds", "0", "--outdir", str(outdir))
    assert result.returncode == 1
    assert "not overwriting" in result.stderr and "Traceback" not in result.stderr
    assert existing.read_bytes() == b"user's file"


def test_render_noise_modes_and_truncation_cutoff(tmp_path, network_pkl):
    arrays = {}
    for mode in ("const", "none", "random"):
        out = tmp_path / mode
        assert _cli("render", "--pkl", str(network_pkl), "--seeds", "3", "--trunc", "0.5", "--trunc-cutoff", "4",
                    "--noise-mode", mode, "--outdir", str(out), "--npy").returncode == 0
        arrays[mode] = np.load(out / "seed0003.npy")
    assert np.abs(arrays["const"] - arrays["none"]).max() > 1e-3
    assert np.abs(arrays["const"] - arrays["random"]).max() > 1e-3
    G = tiny_stylegan2("sg2_skip_64")
    z = torch.from_numpy(np.random.RandomState(3).randn(1, 32)).float()
    ws = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=4)
    expected = G.synthesis(ws, noise_mode="none").image.numpy()
    assert np.abs(arrays["none"] - expected).max() <= 1e-5


def test_info_text_and_json(network_pkl):
    result = _cli("info", "--pkl", str(network_pkl), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["format"] == "NVlabs PyTorch pickle" and info["family"] == "stylegan2"
    assert info["resolution"] == 64 and info["z_dim"] == 32 and info["num_ws"] == 10 and info["c_dim"] == 0
    layers = {layer["name"]: layer for layer in info["layers"]}
    assert layers["b64.conv1"]["shape"] == [8, 64, 64] and layers["b64.torgb"]["shape"] == [3, 64, 64]
    assert layers["b8.conv0"]["w_index"] == 1 and layers["b8.torgb"]["w_index"] == 3
    text = _cli("info", "--pkl", str(network_pkl)).stdout
    assert "NVlabs PyTorch pickle" in text and "b32.conv0" in text and "architecture skip" in text


def test_conditional_network_takes_a_valid_class_or_draws_one(tmp_path):
    path = tmp_path / "cond.pkl"
    write_nvlabs_pickle(path, tiny_stylegan2("sg2_resnet_cond_64"), code_base="stylegan2-ada-pytorch")
    result = _cli("render", "--pkl", str(path), "--seeds", "0", "--class", "9", "--outdir", str(tmp_path / "o"))
    assert result.returncode == 1 and "latent.class_index must be at most 4 and at least 0, not 9" in result.stderr
    # Without --class each seed draws its class, as in the window and NVlabs' visualizer (and the note says so).
    result = _cli("render", "--pkl", str(path), "--seeds", "0", "--outdir", str(tmp_path / "drawn"))
    assert result.returncode == 0 and "class drawn from each seed" in result.stderr
    result = _cli("render", "--pkl", str(path), "--seeds", "2", "--class", "0", "--outdir", str(tmp_path / "o"), "--npy")
    assert result.returncode == 0, result.stderr
    golden = np.load(GOLDEN.format("sg2_resnet_cond_64"))
    assert np.abs(np.load(tmp_path / "o" / "seed0002.npy") - golden["img_s2_p1.0"]).max() <= 1e-4


@pytest.mark.parametrize("content,expected", [
    (None, "no such file"), (b"", "empty"), (b"hello world, not a network", "not a network file"),
])
def test_bad_files_give_one_line_and_no_traceback(tmp_path, content, expected):
    path = tmp_path / "bad.pkl"
    if content is not None:
        path.write_bytes(content)
    for command in (["info", "--pkl", str(path)], ["render", "--pkl", str(path), "--seeds", "0", "--outdir",
                                                     str(tmp_path / "o")]):
        result = _cli(*command)
        assert result.returncode == 1
        assert expected in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_convert_round_trip(tmp_path, network_pkl):
    out = tmp_path / "net.safetensors"
    assert main(["convert", "--pkl", str(network_pkl), "--out", str(out)]) == 0
    result = _cli("render", "--pkl", str(out), "--seeds", "1", "--outdir", str(tmp_path / "o"), "--npy")
    assert result.returncode == 0, result.stderr
    golden = np.load(GOLDEN.format("sg2_skip_64"))
    assert np.abs(np.load(tmp_path / "o" / "seed0001.npy") - golden["img_s1_p1.0"]).max() <= 1e-4
    assert main(["convert", "--pkl", str(network_pkl), "--out", str(out)]) == 1  # exists: not overwritten
    info = json.loads(_cli("info", "--pkl", str(out), "--json").stdout)
    assert info["format"] == "stylegan-explorer safetensors" and "NVlabs PyTorch pickle" in info["detail"]


def test_app_without_display_exits_cleanly(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-m", "explorer.cli"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 2
    assert "no display" in result.stderr and "Traceback" not in result.stderr


def test_a_session_file_that_names_a_network_wins_over_the_default_model(tmp_path):
    from explorer.cli import _state_names_a_network
    named = tmp_path / "named.json"
    named.write_text(json.dumps({"version": 1, "network": {"path": "/some/net.pkl"}}))
    unnamed = tmp_path / "unnamed.json"
    unnamed.write_text(json.dumps({"version": 1, "latent": {"x": 3.0}}))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert _state_names_a_network(str(named))
    assert not _state_names_a_network(str(unnamed)) and not _state_names_a_network(str(broken))
    assert not _state_names_a_network(None)
