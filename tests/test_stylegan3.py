"""StyleGAN3 T and R, written as NVlabs pickles by the fixture writer and loaded by our loader, against outputs
that NVlabs' own networks_stylegan3.py computed from the same weights (tests/golden/sg3_*.npz, made locally:
float32, seeds 0-3, psi 1.0 and 0.7, activations of every layer for seed 0 through forward hooks)."""
import numpy as np
import pytest
import torch

from explorer.formats import load_network
from explorer.networks.stylegan3 import transform_matrix
from tests.fixtures.networks_sg3 import STYLEGAN3_CONFIGS, tiny_stylegan3
from tests.fixtures.nvlabs_pickle_writer import write_nvlabs_pickle

torch.set_num_threads(1)


@pytest.mark.parametrize("kind", ["t", "r"])
def test_stylegan3_pickle_matches_nvlabs(tmp_path, kind):
    path = tmp_path / "sg3.pkl"
    write_nvlabs_pickle(path, tiny_stylegan3(kind), G=tiny_stylegan3(kind, seed=1))
    loaded = load_network(path)
    G = loaded.generator
    assert G.family == "stylegan3" and G.architecture == f"stylegan3-{kind}"
    assert G.synthesis.layer_names[0] == "input" and G.synthesis.layer_names[-1].endswith("_32_3")
    golden = np.load(f"tests/golden/sg3_{kind}.npz")
    with torch.no_grad():
        for seed in range(4):
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
            for psi in (1.0, 0.7):
                ws = G.mapping(z, None, truncation_psi=psi)
                out = G.synthesis(ws, capture="all" if (seed, psi) == (0, 1.0) else ())
                assert np.abs(out.image.numpy() - golden[f"img_s{seed}_p{psi}"]).max() <= 1e-4
                for name, act in out.activations.items():
                    expected = golden[f"act/{name}"]
                    assert np.abs(act.numpy() - expected).max() <= 1e-3, name
                    assert np.abs(expected).max() > 1e-2


def test_stop_resume_and_input_transform():
    G = tiny_stylegan3("t")
    ws = G.mapping(torch.randn([1, G.z_dim]), None)
    full = G.synthesis(ws)
    names = G.synthesis.layer_names
    stopped = G.synthesis(ws, stop_after=names[3])
    resumed = G.synthesis(ws, resume=stopped.state)
    assert torch.allclose(resumed.image, full.image, atol=1e-6)
    shifted = G.synthesis(ws, input_transform=(0.25, 0.0, 0.0)).image
    rotated = G.synthesis(ws, input_transform=(0.0, 0.0, 30.0)).image
    assert (shifted - full.image).abs().max() > 1e-3 and (rotated - full.image).abs().max() > 1e-3
    m = transform_matrix(0.0, 0.0, 90.0)
    assert torch.allclose(m[:2, :2], torch.tensor([[0.0, -1.0], [1.0, 0.0]]), atol=1e-6)
