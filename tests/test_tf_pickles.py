"""TensorFlow pickles of StyleGAN2, written in dnnlib.tflib's layout by the project's fixture writer, against
outputs NVlabs' stylegan2-ada-pytorch converter and networks computed from the same files (tests/golden/tf_*.npz,
made locally; NVlabs' converter needed resolution_w/resolution_h removed first, which we only note)."""
import numpy as np
import pytest
import torch

from explorer.formats import NetworkLoadError, load_network
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.tf_pickle_writer import stylegan2_tf_variables, tf_pickle_bytes, write_stylegan2_tf_pickle

torch.set_num_threads(1)


@pytest.mark.parametrize("name", ["sg2_skip_64", "sg2_resnet_cond_64"])
def test_stylegan2_tf_pickle_matches_nvlabs_conversion(tmp_path, name):
    path = tmp_path / "net.pkl"
    write_stylegan2_tf_pickle(path, tiny_stylegan2(name, seed=0), G=tiny_stylegan2(name, seed=1))
    loaded = load_network(path)
    G = loaded.generator
    assert loaded.format == "tf-pickle" and G.family == "stylegan2" and "entry Gs" in loaded.detail
    assert any("resolution_w" in note for note in loaded.notes)
    golden = np.load(f"tests/golden/tf_{name}.npz")
    with torch.no_grad():
        for seed in range(4):
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
            c = torch.eye(G.c_dim)[:1] if G.c_dim else None
            for psi in (1.0, 0.7):
                image = G(z, c, truncation_psi=psi, noise_mode="const").image.numpy()
                assert np.abs(image - golden[f"img_s{seed}_p{psi}"]).max() <= 1e-4


def test_unknown_math_kwargs_are_refused_by_name(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    kwargs, top, mapping, synthesis = stylegan2_tf_variables(G)
    kwargs["mystery_gain"] = 3
    funcs = ("G_main", "G_mapping", "G_synthesis_stylegan2")
    path = tmp_path / "odd.pkl"
    path.write_bytes(tf_pickle_bytes([("G", kwargs, top, mapping, synthesis, funcs)] * 3))
    with pytest.raises(NetworkLoadError, match="mystery_gain"):
        load_network(path)


def test_missing_variable_and_wrong_tuple(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    kwargs, top, mapping, synthesis = stylegan2_tf_variables(G)
    del synthesis["4x4/Conv/mod_bias"]
    funcs = ("G_main", "G_mapping", "G_synthesis_stylegan2")
    path = tmp_path / "broken.pkl"
    path.write_bytes(tf_pickle_bytes([("G", kwargs, top, mapping, synthesis, funcs)] * 3))
    with pytest.raises(NetworkLoadError, match="4x4/Conv/mod_bias"):
        load_network(path)
    path.write_bytes(tf_pickle_bytes([("G", kwargs, top, mapping, synthesis, funcs)] * 2))
    with pytest.raises(NetworkLoadError, match=r"\(G, D, Gs\)"):
        load_network(path)
