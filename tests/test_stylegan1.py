"""StyleGAN (2019) TensorFlow pickles, written by the project's fixture writer in dnnlib.tflib's layout, against
an independent numpy implementation of the original TF graph (tests/fixtures/stylegan1_numpy_reference.py;
TensorFlow 1.x, which ran the original, does not install on Python 3.11). The fixture reaches 128 px, so the
fused upscale conv (the original's choice from 128 px up) is checked too."""
import numpy as np
import pytest
import torch

from explorer.description import describe
from explorer.formats import NetworkLoadError, load_network
from explorer.formats.native import save_network
from explorer.networks import build_generator
from tests.fixtures import stylegan1_numpy_reference as reference
from tests.fixtures.tf_pickle_writer import stylegan1_tf_variables, write_stylegan1_tf_pickle

torch.set_num_threads(1)
RESOLUTION = 128
MAPPING_LAYERS = 2


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    path = tmp_path_factory.mktemp("sg1") / "karras2019stylegan-test.pkl"
    write_stylegan1_tf_pickle(path, resolution=RESOLUTION)
    return load_network(path)


def _variables(seed=0, **options):
    kwargs, top, mapping, synthesis = stylegan1_tf_variables(seed=seed, **options)
    v = {k: np.asarray(x, np.float64) for k, x in top.items()}
    v.update({f"mapping/{k}": np.asarray(x, np.float64) for k, x in mapping.items()})
    v.update({f"synthesis/{k}": np.asarray(x, np.float64) for k, x in synthesis.items()})
    return v


def _z(seed, z_dim=16):
    return np.random.RandomState(seed).randn(1, z_dim)


def _image(G, z, psi, **mapping_kwargs):
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(z).float(), None, truncation_psi=psi, **mapping_kwargs)
        return G.synthesis(ws, noise_mode="const").image[0].double().numpy()


def test_loader_picks_gs_and_names_layers(loaded):
    G = loaded.generator
    assert loaded.format == "tf-pickle" and G.family == "stylegan" and "entry Gs" in loaded.detail
    assert G.num_ws == 12 and G.default_truncation_cutoff == 8
    names = G.synthesis.layer_names
    assert names[:4] == ["b4.const", "b4.conv", "b8.conv0", "b8.conv1"] and names[-1] == "torgb"
    assert len(names) == G.num_ws + 1
    assert [layer.w_index for layer in G.synthesis.layers] == list(range(12)) + [None]
    assert any("resolution_w" in note for note in loaded.notes)
    description = describe(loaded)
    assert description.format == "NVlabs TensorFlow pickle" and description.architecture == "stylegan (AdaIN)"


@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_images_and_activations_match_the_original_math(loaded, psi):
    G = loaded.generator
    v = _variables()
    for seed in range(4):
        z = _z(seed)
        expected, acts = reference.generate(v, z[0], RESOLUTION, MAPPING_LAYERS, psi=psi, cutoff=8)
        with torch.no_grad():
            # The family's default cutoff is the original's 8.
            ws = G.mapping(torch.from_numpy(z).float(), None, truncation_psi=psi)
            out = G.synthesis(ws, noise_mode="const", capture="all")
        image = out.image[0].double().numpy()
        assert np.abs(image - expected).max() <= 1e-4, seed
        assert np.abs(expected).max() > 0.5
        assert set(out.activations) == set(acts)
        for name, act in out.activations.items():
            assert np.abs(act[0].double().numpy() - acts[name]).max() <= 1e-3, name


def test_generator_call_defaults_to_cutoff_8_and_none_means_every_layer(loaded):
    G = loaded.generator
    v = _variables()
    z = _z(1)
    first_eight, _ = reference.generate(v, z[0], RESOLUTION, MAPPING_LAYERS, psi=0.5, cutoff=8)
    every_layer, _ = reference.generate(v, z[0], RESOLUTION, MAPPING_LAYERS, psi=0.5, cutoff=G.num_ws)
    assert np.abs(first_eight - every_layer).max() > 1e-2   # the cutoff shows in the image
    with torch.no_grad():
        default = G(torch.from_numpy(z).float(), None, truncation_psi=0.5).image[0].double().numpy()
    assert np.abs(default - first_eight).max() <= 1e-4
    assert np.abs(_image(G, z, 0.5, truncation_cutoff=None) - every_layer).max() <= 1e-4


def test_the_fused_upscale_matters_at_128_px(loaded):
    """Fused (transposed 4x4) and separate (nearest + 3x3) upscaling give different images from the same weights:
    getting the switch wrong is far outside the tolerance (FORMAT_NOTES: 1.6 to 3.9 at 256 px)."""
    G = loaded.generator
    assert G.synthesis.b128.conv0.fused and not G.synthesis.b64.conv0.fused
    unfused = build_generator("stylegan", {**G.config, "fused_scale": False}).eval()
    unfused.load_state_dict(G.state_dict())
    z = _z(0)
    assert np.abs(_image(G, z, 1.0) - _image(unfused, z, 1.0)).max() > 0.1


def test_g_and_d_differ_from_gs(loaded):
    """The fixture's G and D come from other seeds: a loader taking them would miss the reference by far."""
    z = _z(0)
    for other_seed in (1, 2):
        other, _ = reference.generate(_variables(seed=other_seed), z[0], RESOLUTION, MAPPING_LAYERS)
        assert np.abs(_image(loaded.generator, z, 1.0) - other).max() > 0.1


@pytest.mark.parametrize("kwargs,fused_from,blur,contrast", [
    (dict(fused_scale=True), 8, True, dict()),                           # 'auto' fuses nothing below 128 px
    (dict(fused_scale=False), 1 << 30, True, dict(fused_from=8)),        # all fused would differ
    (dict(blur_filter=None), 128, False, dict()),
])
def test_upscale_and_blur_settings(tmp_path, kwargs, fused_from, blur, contrast):
    path = tmp_path / "net.pkl"
    write_stylegan1_tf_pickle(path, resolution=32, extra_kwargs=kwargs)
    G = load_network(path).generator
    v = _variables(resolution=32)
    z = _z(3)
    expected, _ = reference.generate(v, z[0], 32, MAPPING_LAYERS, psi=0.7, fused_from=fused_from, blur_taps=blur)
    assert np.abs(_image(G, z, 0.7) - expected).max() <= 1e-4
    other, _ = reference.generate(v, z[0], 32, MAPPING_LAYERS, psi=0.7, **contrast)
    assert np.abs(other - expected).max() > 1e-2   # the setting changes the image


def test_class_labels_are_concatenated_to_z(tmp_path):
    path = tmp_path / "conditional.pkl"
    write_stylegan1_tf_pickle(path, resolution=16, label_size=4)
    G = load_network(path).generator
    assert G.c_dim == 4
    v = _variables(resolution=16, label_size=4)
    z = _z(0)
    images = []
    for label in range(2):
        c = np.eye(4)[label]
        expected, _ = reference.generate(v, z[0], 16, MAPPING_LAYERS, psi=0.7, label=c)
        with torch.no_grad():
            image = G(torch.from_numpy(z).float(), torch.from_numpy(c[None]).float(), truncation_psi=0.7).image
        assert np.abs(image[0].double().numpy() - expected).max() <= 1e-4
        images.append(expected)
    assert np.abs(images[0] - images[1]).max() > 1e-2


def test_variables_listed_under_the_top_network_with_component_prefixes(tmp_path, loaded):
    path = tmp_path / "flat.pkl"
    write_stylegan1_tf_pickle(path, resolution=RESOLUTION, flat=True)
    G = load_network(path).generator
    z = _z(2)
    assert np.abs(_image(G, z, 0.7) - _image(loaded.generator, z, 0.7)).max() == 0


@pytest.mark.parametrize("kwargs,lod,message", [
    (dict(use_instance_norm=False), 0.0, "use_instance_norm"),
    (dict(use_pixel_norm=True), 0.0, "use_pixel_norm"),
    (dict(mystery_gain=2), 0.0, "mystery_gain"),
    ({}, 1.5, "progressive growing"),
])
def test_settings_that_change_the_math_are_refused(tmp_path, kwargs, lod, message):
    path = tmp_path / "odd.pkl"
    write_stylegan1_tf_pickle(path, resolution=16, extra_kwargs=kwargs, lod=lod)
    with pytest.raises(NetworkLoadError, match=message):
        load_network(path)


def test_native_round_trip(tmp_path, loaded):
    G = loaded.generator
    save_network(G, tmp_path / "sg1.safetensors")
    again = load_network(tmp_path / "sg1.safetensors").generator
    assert again.family == "stylegan" and again.config == G.config
    z = _z(0)
    assert np.abs(_image(again, z, 0.7) - _image(G, z, 0.7)).max() == 0
