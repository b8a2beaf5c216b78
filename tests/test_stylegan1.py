"""StyleGAN (2019) TensorFlow pickles, written by the project's fixture writer in dnnlib.tflib's layout, against
an independent numpy implementation of the original TF graph (tests/fixtures/stylegan1_numpy_reference.py). The
fixture reaches 128 px, so the fused upscale conv is checked too."""
import numpy as np
import pytest
import torch

from explorer.formats import load_network
from tests.fixtures import stylegan1_numpy_reference as reference
from tests.fixtures.tf_pickle_writer import stylegan1_tf_variables, write_stylegan1_tf_pickle

torch.set_num_threads(1)
RESOLUTION = 128


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    path = tmp_path_factory.mktemp("sg1") / "karras2019stylegan-test.pkl"
    write_stylegan1_tf_pickle(path, resolution=RESOLUTION)
    return load_network(path)


def _variables():
    kwargs, top, mapping, synthesis = stylegan1_tf_variables(resolution=RESOLUTION)
    v = {k: np.asarray(x, np.float64) for k, x in top.items()}
    v.update({f"mapping/{k}": np.asarray(x, np.float64) for k, x in mapping.items()})
    v.update({f"synthesis/{k}": np.asarray(x, np.float64) for k, x in synthesis.items()})
    return v


def test_loader_picks_gs_and_names_layers(loaded):
    G = loaded.generator
    assert loaded.format == "tf-pickle" and G.family == "stylegan" and "entry Gs" in loaded.detail
    assert G.num_ws == 12 and G.default_truncation_cutoff == 8
    names = G.synthesis.layer_names
    assert names[:4] == ["b4.const", "b4.conv", "b8.conv0", "b8.conv1"] and names[-1] == "torgb"
    assert any("resolution_w" in note for note in loaded.notes)


@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_images_and_activations_match_the_original_math(loaded, psi):
    G = loaded.generator
    v = _variables()
    for seed in range(4):
        z = np.random.RandomState(seed).randn(1, G.z_dim)
        expected, acts = reference.generate(v, z[0], RESOLUTION, num_layers_mapping=2, psi=psi, cutoff=8)
        with torch.no_grad():
            ws = G.mapping(torch.from_numpy(z).float(), None, truncation_psi=psi,
                           truncation_cutoff=G.default_truncation_cutoff)
            out = G.synthesis(ws, noise_mode="const", capture="all" if seed == 0 else ())
        image = out.image[0].double().numpy()
        assert np.abs(image - expected).max() <= 1e-4, seed
        assert np.abs(expected).max() > 0.5
        for name, act in out.activations.items():
            assert np.abs(act[0].double().numpy() - acts[name]).max() <= 1e-3, name


def test_truncation_cutoff_and_fused_upscale_matter(loaded):
    """Getting either wrong moves the image far more than the tolerance (FORMAT_NOTES: 1.6 to 3.9 at 256 px)."""
    G = loaded.generator
    v = _variables()
    z = np.random.RandomState(0).randn(1, G.z_dim)
    all_layers, _ = reference.generate(v, z[0], RESOLUTION, 2, psi=0.7, cutoff=12)
    first_eight, _ = reference.generate(v, z[0], RESOLUTION, 2, psi=0.7, cutoff=8)
    assert np.abs(all_layers - first_eight).max() > 1e-2
    layer = G.synthesis.b128.conv0
    assert layer.fused and not G.synthesis.b64.conv0.fused
