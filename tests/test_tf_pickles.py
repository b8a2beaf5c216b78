"""TensorFlow pickles of StyleGAN2, written in dnnlib.tflib's layout by the project's fixture writer, against
outputs NVlabs' stylegan2-ada-pytorch converter and networks computed from the same files (tests/golden/tf_*.npz,
made locally: images for seeds 0-3 at psi 1 and 0.7, every layer's output for seed 0 at psi 1, cropped to
4 channels x 16 x 16; NVlabs' converter needed resolution_w/resolution_h removed first, which we only note).
StyleGAN (2019) TF pickles are in test_stylegan1.py."""
import numpy as np
import pytest
import torch

from explorer.description import describe
from explorer.formats import NetworkLoadError, load_network
from explorer.formats.native import save_network
from explorer.networks.stylegan2 import Generator
from tests.fixtures.networks import STYLEGAN2_CONFIGS, randomize_, tiny_stylegan2
from tests.fixtures.tf_pickle_writer import stylegan2_tf_variables, tf_pickle_bytes, write_stylegan2_tf_pickle

torch.set_num_threads(1)
ACT_CROP = (slice(None), slice(0, 4), slice(0, 16), slice(0, 16))
FUNCS = ("training.networks_stylegan2.G_main", "training.networks_stylegan2.G_mapping",
         "training.networks_stylegan2.G_synthesis_stylegan2")


def _z(seed, G):
    return torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()


def _c(G):
    return torch.eye(G.c_dim)[:1] if G.c_dim else None


@pytest.mark.parametrize("name,architecture", [("sg2_skip_64", "skip"), ("sg2_resnet_cond_64", "resnet")])
def test_stylegan2_tf_pickle_matches_nvlabs_conversion(tmp_path, name, architecture):
    path = tmp_path / "net.pkl"
    write_stylegan2_tf_pickle(path, tiny_stylegan2(name, seed=0), G=tiny_stylegan2(name, seed=1))
    assert b"numpy.core.multiarray" in path.read_bytes()   # the released files' numpy 1.x globals
    loaded = load_network(path)
    G = loaded.generator
    assert loaded.format == "tf-pickle" and G.family == "stylegan2" and "entry Gs" in loaded.detail
    assert any("resolution_w" in note for note in loaded.notes)
    description = describe(loaded)
    assert description.format == "NVlabs TensorFlow pickle" and description.architecture == architecture
    golden = np.load(f"tests/golden/tf_{name}.npz")
    with torch.no_grad():
        for seed in range(4):
            for psi in (1.0, 0.7):
                out = G(_z(seed, G), _c(G), truncation_psi=psi, noise_mode="const",
                        capture="all" if (seed, psi) == (0, 1.0) else ())
                assert np.abs(out.image.numpy() - golden[f"img_s{seed}_p{psi}"]).max() <= 1e-4
        acts = {key[4:]: golden[key] for key in golden.files if key.startswith("act/")}
        assert len(acts) >= 10
        for layer, expected in acts.items():
            assert np.abs(out_acts(G, layer) - expected).max() <= 1e-3, layer
        # The file's G (another seed) would give other images: the loader took Gs.
        other = tiny_stylegan2(name, seed=1)(_z(0, G), _c(G), truncation_psi=1.0).image.numpy()
        assert np.abs(other - golden["img_s0_p1.0"]).max() > 0.1


def out_acts(G, layer):
    with torch.no_grad():
        out = G(_z(0, G), _c(G), truncation_psi=1.0, noise_mode="const", capture=[layer])
    return out.activations[layer].numpy()[ACT_CROP]


def test_a_channel_table_from_fmap_min_goes_through_an_explicit_channel_list(tmp_path):
    """fmap_min=12 with fmap_base=64, fmap_max=32 gives 32, 16, 12, 12 channels: not min(128 / res, 32)."""
    config = {**STYLEGAN2_CONFIGS["sg2_orig_32"], "channel_base": 128, "channel_max": 32,
              "channels": [32, 16, 12, 12]}
    torch.manual_seed(0)
    source = randomize_(Generator(**config), seed=5).eval()
    path = tmp_path / "fmap_min.pkl"
    write_stylegan2_tf_pickle(path, source, extra_kwargs=dict(fmap_min=12, fmap_decay=1.0))
    loaded = load_network(path)
    G = loaded.generator
    assert G.config["channels"] == [32, 16, 12, 12]
    channels = {layer.name: layer.channels for layer in G.synthesis.layers}
    assert [channels[f"b{res}.conv1"] for res in (4, 8, 16, 32)] == [32, 16, 12, 12]
    with torch.no_grad():
        expected = source(_z(1, G), None, truncation_psi=0.7).image
        image = G(_z(1, G), None, truncation_psi=0.7).image
    assert (image - expected).abs().max() <= 1e-5 and expected.abs().max() > 0.5
    save_network(G, tmp_path / "again.safetensors")   # the channel list survives our own format
    again = load_network(tmp_path / "again.safetensors").generator
    assert again.config["channels"] == [32, 16, 12, 12]
    with torch.no_grad():
        assert (again(_z(1, G), None, truncation_psi=0.7).image - image).abs().max() == 0


def test_unknown_math_kwargs_are_refused_by_name(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    kwargs, top, mapping, synthesis = stylegan2_tf_variables(G)
    kwargs["mystery_gain"] = 3
    path = tmp_path / "odd.pkl"
    path.write_bytes(tf_pickle_bytes([("G", kwargs, top, mapping, synthesis, FUNCS)] * 3))
    with pytest.raises(NetworkLoadError, match="mystery_gain"):
        load_network(path)


def test_a_network_saved_mid_growth_is_refused(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    kwargs, top, mapping, synthesis = stylegan2_tf_variables(G)
    top["lod"] = np.float32(1.0)
    path = tmp_path / "growing.pkl"
    path.write_bytes(tf_pickle_bytes([("G", kwargs, top, mapping, synthesis, FUNCS)] * 3))
    with pytest.raises(NetworkLoadError, match="progressive growing"):
        load_network(path)


def test_missing_variable_wrong_shape_and_wrong_tuple(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    kwargs, top, mapping, synthesis = stylegan2_tf_variables(G)
    del synthesis["4x4/Conv/mod_bias"]
    path = tmp_path / "broken.pkl"
    path.write_bytes(tf_pickle_bytes([("G", kwargs, top, mapping, synthesis, FUNCS)] * 3))
    with pytest.raises(NetworkLoadError, match="4x4/Conv/mod_bias"):
        load_network(path)
    path.write_bytes(tf_pickle_bytes([("G", kwargs, top, mapping, synthesis, FUNCS)] * 2))
    with pytest.raises(NetworkLoadError, match=r"\(G, D, Gs\)"):
        load_network(path)
    kwargs, top, mapping, synthesis = stylegan2_tf_variables(G)
    kwargs["fmap_max"] = 64   # the settings now describe wider layers than the variables hold
    path.write_bytes(tf_pickle_bytes([("G", kwargs, top, mapping, synthesis, FUNCS)] * 3))
    with pytest.raises(NetworkLoadError, match="do not fit"):
        load_network(path)
