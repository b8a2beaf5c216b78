"""StyleGAN3 T and R, written as NVlabs pickles by the fixture writer and loaded by our loader, against outputs
that NVlabs' own networks_stylegan3.py computed from the same weights.

tests/golden/sg3_{t,r}.npz were made locally with NVlabs' code (not part of this repository): the fixture
generator tiny_stylegan3(kind) (torch-seeded, tests/fixtures/networks_sg3.py) had its state dict loaded with
strict=True into NVlabs' networks_stylegan3.Generator(**STYLEGAN3_CONFIGS[kind]), which then ran in float32 on
the CPU (its reference filtered_lrelu): images for seeds 0-3 at psi 1.0 and 0.7, the first 4 channels of every
layer's output for seed 0 at psi 1 (forward hooks), and its state dict's names and shapes.
"""
import numpy as np
import pytest
import torch

import kernels.filtered_lrelu as flrelu_module
from explorer.formats import load_network
from explorer.networks.common import LayerInfo
from explorer.networks.stylegan3 import Generator, transform_matrix
from tests.fixtures.native import compiled_or_eager
from tests.fixtures.networks_sg3 import STYLEGAN3_CONFIGS, tiny_stylegan3
from tests.fixtures.nvlabs_pickle_writer import write_nvlabs_pickle

torch.set_num_threads(1)


@pytest.fixture(params=["compiled", "default", "blocked"])
def filtered_lrelu_path(request, monkeypatch):
    """The render path as it runs (the compiled kernel); without it, the eager path as it runs for these small
    images, and forced onto the blocked band products and channel chunks that large images take."""
    calls = []
    answers = compiled_or_eager(monkeypatch, request.param, "filtered_lrelu", flrelu_module, "_filtered_lrelu_native")
    if request.param == "blocked":
        monkeypatch.setattr(flrelu_module, "BLOCKED_MIN_SIDE", 0)
        monkeypatch.setattr(flrelu_module, "CHUNK_ELEMENTS", 3 * 40 * 40)
        original = flrelu_module.fir_rows_blocked
        monkeypatch.setattr(flrelu_module, "fir_rows_blocked", lambda *a, **k: calls.append(1) or original(*a, **k))
    yield request.param
    if request.param == "compiled":
        assert True in answers         # every filtered layer but ToRGB (no filters) answers
    else:
        assert bool(calls) == (request.param == "blocked")


@pytest.mark.parametrize("kind", ["t", "r"])
def test_stylegan3_pickle_matches_nvlabs(tmp_path, kind, filtered_lrelu_path):
    path = tmp_path / "sg3.pkl"
    write_nvlabs_pickle(path, tiny_stylegan3(kind), G=tiny_stylegan3(kind, seed=1))
    G = load_network(path).generator
    assert G.family == "stylegan3" and G.architecture == f"stylegan3-{kind}"
    golden = np.load(f"tests/golden/sg3_{kind}.npz")
    names = [f"{k}:{'x'.join(str(d) for d in v.shape)}" for k, v in G.state_dict().items()]
    assert names == list(golden["state_dict"])      # NVlabs' parameter and buffer names, in its order
    captured = 0
    with torch.no_grad():
        for seed in range(4):
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
            for psi in (1.0, 0.7):
                ws = G.mapping(z, None, truncation_psi=psi)
                out = G.synthesis(ws, capture="all" if (seed, psi) == (0, 1.0) else ())
                expected = golden[f"img_s{seed}_p{psi}"]
                assert np.abs(out.image.numpy() - expected).max() <= 1e-4
                assert np.abs(expected).max() > 0.05
                for name, act in out.activations.items():
                    expected = golden[f"act/{name}"]
                    assert np.abs(act[:, :expected.shape[1]].numpy() - expected).max() <= 1e-3, name
                    assert np.abs(expected).max() > 1e-2
                    captured += 1
    assert captured == len(G.synthesis.layer_names) == STYLEGAN3_CONFIGS[kind]["num_layers"] + 2


def test_autograd_path_matches_nvlabs():
    """With gradients on, filtered_lrelu composes upfirdn2d and bias_act instead; same numbers."""
    G = tiny_stylegan3("r")
    golden = np.load("tests/golden/sg3_r.npz")
    z = torch.from_numpy(np.random.RandomState(2).randn(1, G.z_dim)).float()
    ws = G.mapping(z, None, truncation_psi=0.7).requires_grad_(True)
    image = G.synthesis(ws).image
    assert np.abs(image.detach().numpy() - golden["img_s2_p0.7"]).max() <= 1e-4
    image.square().sum().backward()
    assert ws.grad.abs().max() > 0


def test_layers_and_config():
    G = tiny_stylegan3("t")
    infos = G.synthesis.layers
    assert all(isinstance(info, LayerInfo) for info in infos)
    assert [info.name for info in infos] == G.synthesis.layer_names
    golden = np.load("tests/golden/sg3_t.npz")
    # NVlabs' layer names, in the order its hooks saw them run.
    assert G.synthesis.layer_names == [k[len("act/"):] for k in golden.files if k.startswith("act/")]
    assert G.synthesis.layer_names[1].startswith("L0_") and G.synthesis.layer_names[-1].endswith("_32_3")
    assert infos[0].kind == "input" and infos[0].style_channels == 4 and infos[-1].kind == "torgb"
    assert [info.w_index for info in infos] == list(range(G.num_ws))
    assert G.num_ws == 8 and G.family == "stylegan3" and G.config == STYLEGAN3_CONFIGS["t"]
    rebuilt = Generator(**G.config)
    rebuilt.load_state_dict(G.state_dict(), strict=True)
    rebuilt.eval().requires_grad_(False)     # as G is: the same (inference) path, so the same bits
    ws = G.mapping(torch.randn([2, G.z_dim]), None)
    out = G.synthesis(ws, noise_mode="random")   # accepted, and StyleGAN3 has no noise: the same image
    assert out.image.shape == (2, 3, 32, 32)
    assert torch.equal(out.image, rebuilt.synthesis(ws, noise_mode="const").image)


def test_seeded_construction_is_deterministic():
    """Same torch seed, same network: weights, Fourier features and designed filters alike."""
    for kind in STYLEGAN3_CONFIGS:
        a, b = tiny_stylegan3(kind).state_dict(), tiny_stylegan3(kind).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        torch.manual_seed(5)
        c = Generator(**STYLEGAN3_CONFIGS[kind]).state_dict()
        torch.manual_seed(5)
        d = Generator(**STYLEGAN3_CONFIGS[kind]).state_dict()
        assert all(torch.equal(c[k], d[k]) for k in c)
        assert not torch.equal(a["synthesis.input.freqs"], c["synthesis.input.freqs"])


def test_stop_resume_and_style_deltas():
    G = tiny_stylegan3("t")
    ws = G.mapping(torch.randn([1, G.z_dim]), None)
    full = G.synthesis(ws)
    names = G.synthesis.layer_names
    stopped = G.synthesis(ws, stop_after=names[3])
    assert stopped.image is None and stopped.state.after == names[3]
    resumed = G.synthesis(ws, resume=stopped.state)
    assert torch.allclose(resumed.image, full.image, atol=1e-6)
    delta = G.synthesis(ws, style_deltas={names[2]: torch.full([16], 0.5)}).image
    assert (delta - full.image).abs().max() > 1e-3
    turned = G.synthesis(ws, style_deltas={"input": torch.tensor([0.0, 0.5, 0.0, 0.0])}).image
    assert (turned - full.image).abs().max() > 1e-3


def test_input_transform():
    G = tiny_stylegan3("t")
    ws = G.mapping(torch.randn([1, G.z_dim]), None)
    stored = G.synthesis.input.transform.clone()
    # NVlabs' visualizer: the buffer holds the inverse of [[cos, sin, tx], [-sin, cos, ty], [0, 0, 1]].
    angle = np.radians(30.0)
    forward = np.array([[np.cos(angle), np.sin(angle), 0.25], [-np.sin(angle), np.cos(angle), -0.1], [0, 0, 1]])
    m = transform_matrix(0.25, -0.1, 30.0)
    np.testing.assert_allclose(m.numpy(), np.linalg.inv(forward), atol=1e-6)
    G.synthesis.input.transform.copy_(m)
    via_buffer = G.synthesis(ws).image
    G.synthesis.input.transform.copy_(stored)
    via_keyword = G.synthesis(ws, input_transform=(0.25, -0.1, 30.0)).image
    assert torch.equal(via_buffer, via_keyword)
    assert torch.equal(G.synthesis.input.transform, stored)      # the keyword leaves the buffer alone
    plain = G.synthesis(ws).image
    assert (via_keyword - plain).abs().max() > 1e-3
    # The identity transform gives the untransformed image (the fixture's buffer holds a non-identity one).
    G.synthesis.input.transform.copy_(torch.eye(3))
    assert torch.allclose(G.synthesis(ws, input_transform=(0.0, 0.0, 0.0)).image, G.synthesis(ws).image)
