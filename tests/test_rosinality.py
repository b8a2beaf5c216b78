"""rosinality checkpoints in both layouts, written by the project's fixture writer, against outputs that
rosinality's own model.py computed from the same weights (tests/golden/rosinality_32.npz, made locally:
Generator(32, 16, 2, channel_multiplier=2), g([z], truncation=psi, truncation_latent=latent_avg,
randomize_noise=False))."""
import pickle

import numpy as np
import pytest
import torch

from explorer.formats import NetworkLoadError, load_network
from explorer.formats.rosinality import W_AVG_SAMPLES
from tests.fixtures.rosinality_writer import write_rosinality_checkpoint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ros")
    write_rosinality_checkpoint(folder / "convert.pt", layout="convert")
    write_rosinality_checkpoint(folder / "train.pt", layout="train")
    return folder


def _images(G, psis):
    out = {}
    with torch.no_grad():
        for seed in range(4):
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, 16)).float()
            for psi in psis:
                ws = G.mapping(z, None, truncation_psi=psi)
                out[f"img_s{seed}_p{psi}"] = G.synthesis(ws, noise_mode="const").image.numpy()
    return out


def test_convert_weight_layout_matches_rosinality(files):
    loaded = load_network(files / "convert.pt")
    assert loaded.format == "rosinality" and not loaded.w_avg_estimated
    assert "convert_weight.py" in loaded.detail and "size 32" in loaded.detail and "n_mlp 2" in loaded.detail
    G = loaded.generator
    assert G.img_resolution == 32 and G.z_dim == 16 and G.num_ws == 8
    golden = np.load("tests/golden/rosinality_32.npz")
    for key, image in _images(G, (1.0, 0.7)).items():
        assert np.abs(image - golden[key]).max() <= 1e-4, key
        assert np.abs(image).max() > 1


def test_train_layout_uses_g_ema_and_estimates_w_avg(files):
    loaded = load_network(files / "train.pt")
    assert loaded.w_avg_estimated and any(str(W_AVG_SAMPLES)[:2] in note for note in loaded.notes)
    assert "train.py" in loaded.detail
    golden = np.load("tests/golden/rosinality_32.npz")
    for key, image in _images(loaded.generator, (1.0,)).items():
        assert np.abs(image - golden[key]).max() <= 1e-4, key   # g_ema, not g
    # The estimate is the mean w of many z: close to the mean w of other z.
    G = loaded.generator
    fresh = G.mapping(torch.randn([2000, 16], generator=torch.Generator().manual_seed(9)), None)[:, 0].mean(0)
    assert (G.mapping.w_avg - fresh).abs().max() < 0.2 * fresh.abs().max()


def test_a_checkpoint_with_foreign_globals_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "evil.pt"
    torch.save({"g_ema": {}, "payload": Evil()}, path)
    with pytest.raises(NetworkLoadError, match="refused to load"):
        load_network(path)
    other = tmp_path / "other.pt"
    torch.save({"model": torch.zeros(3)}, other)
    with pytest.raises(NetworkLoadError, match="not a rosinality one"):
        load_network(other)
