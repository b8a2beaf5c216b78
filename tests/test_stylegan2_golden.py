"""StyleGAN2 networks written as NVlabs pickles by our fixture writer, loaded by our loader, against outputs that
NVlabs' own networks_stylegan2.py computed from the same weights (tests/golden/, made locally with NVlabs' code:
float32, noise_mode='const', z = RandomState(seed).randn(1, z_dim), class 0 for conditional networks)."""
import numpy as np
import pytest
import torch

from explorer.formats import load_network
from tests.fixtures.networks import STYLEGAN2_CONFIGS, tiny_stylegan2
from tests.fixtures.nvlabs_pickle_writer import write_nvlabs_pickle

GOLDEN = "tests/golden/{}.npz"
TOLERANCE_IMAGE = 1e-4
TOLERANCE_ACTIVATION = 1e-3
POOL = 16  # the 1024 px golden keeps 16x16 block means and a 64x64 crop at (448, 448)


def _crop_like(actual, expected):
    return actual[..., :expected.shape[-2], :expected.shape[-1]]


@pytest.mark.parametrize("name", list(STYLEGAN2_CONFIGS))
@pytest.mark.parametrize("code_base", ["stylegan3", "stylegan2-ada-pytorch"])
def test_loaded_pickle_matches_nvlabs(tmp_path, name, code_base):
    torch.set_num_threads(1)
    config = STYLEGAN2_CONFIGS[name]
    G_ema = tiny_stylegan2(name, seed=0)
    G_training = tiny_stylegan2(name, seed=1)  # a loader that takes G instead of G_ema fails below
    path = tmp_path / f"{name}.pkl"
    write_nvlabs_pickle(path, G_ema, G=G_training, code_base=code_base)
    loaded = load_network(path)
    G = loaded.generator
    assert loaded.format == "nvlabs-pickle" and G.family == "stylegan2"
    assert G.architecture == config["architecture"] and G.num_ws == 2 * int(np.log2(config["img_resolution"])) - 2

    golden = np.load(GOLDEN.format(name))
    with torch.no_grad():
        for seed in range(4):
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, config["z_dim"])).float()
            c = None
            if config["c_dim"]:
                c = torch.zeros([1, config["c_dim"]])
                c[0, 0] = 1
            for psi in (1.0, 0.7):
                key = f"s{seed}_p{psi}"
                ws = G.mapping(z, c, truncation_psi=psi)
                np.testing.assert_allclose(ws.numpy(), golden[f"ws_{key}"], rtol=0, atol=1e-5)
                capture = "all" if (seed, psi) == (0, 1.0) else ()
                out = G.synthesis(ws, noise_mode="const", capture=capture)
                image = out.image.numpy()
                if f"img_{key}" in golden:
                    expected = golden[f"img_{key}"]
                    assert np.abs(image - expected).max() <= TOLERANCE_IMAGE
                else:
                    n, ch, h, w = image.shape
                    pooled = image.reshape(n, ch, h // POOL, POOL, w // POOL, POOL).mean(axis=(3, 5))
                    assert np.abs(pooled - golden[f"img_pooled_{key}"]).max() <= TOLERANCE_IMAGE
                    assert np.abs(image[:, :, 448:512, 448:512] - golden[f"img_crop_{key}"]).max() <= TOLERANCE_IMAGE
                assert np.abs(image).max() > 0.5, "a trivially small image would hide errors"
                if capture:
                    names = [k[4:] for k in golden.files if k.startswith("act/")]
                    assert set(names) == {l.name for l in G.synthesis.layers if l.kind != "skip"}
                    for layer in names:
                        expected = golden[f"act/{layer}"]
                        actual = _crop_like(out.activations[layer].numpy(), expected)
                        assert np.abs(actual - expected).max() <= TOLERANCE_ACTIVATION, layer
