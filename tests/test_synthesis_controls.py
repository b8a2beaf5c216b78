"""The per-layer controls of one synthesis call: W+, noise mode and strength per layer, style deltas, capture,
stop and resume."""
import numpy as np
import pytest
import torch

from explorer.networks.common import truncate
from tests.fixtures.networks import tiny_stylegan2

torch.set_num_threads(1)


@pytest.fixture(scope="module", params=["sg2_skip_64", "sg2_resnet_cond_64", "sg2_orig_32"])
def net(request):
    G = tiny_stylegan2(request.param)
    c = torch.eye(G.c_dim)[:2] if G.c_dim else None
    ws = G.mapping(torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(1)), c)
    return G, ws


def _max(a, b):
    return (a - b).abs().max().item()


def test_layers_describe_names_shapes_and_w_indices(net):
    G, ws = net
    out = G.synthesis(ws, capture="all")
    layers = G.synthesis.layers
    assert [l.name for l in layers] == list(out.activations)
    for layer in layers:
        assert tuple(out.activations[layer.name].shape[1:]) == (layer.channels, layer.height, layer.width)
    conv_w = [l.w_index for l in layers if l.kind == "conv"]
    assert conv_w == list(range(G.num_ws - 1))  # every conv consumes the next w
    assert layers[-1].kind == "torgb" and layers[-1].w_index == G.num_ws - 1


def test_w_plus_changes_only_from_the_edited_layer_on(net):
    G, ws = net
    base = G.synthesis(ws, capture="all")
    edited = ws.clone()
    k = 5
    edited[:, k] += 1.0
    out = G.synthesis(edited, capture="all")
    for layer in G.synthesis.layers:
        diff = _max(out.activations[layer.name], base.activations[layer.name])
        if layer.w_index is not None and layer.w_index < k and layer.kind == "conv":
            assert diff == 0, layer.name
        if layer.w_index == k:
            assert diff > 1e-3, layer.name


def test_noise_strength_zero_equals_noise_mode_none(net):
    G, ws = net
    names = [l.name for l in G.synthesis.layers if l.has_noise]
    none = G.synthesis(ws, noise_mode="none").image
    zero = G.synthesis(ws, noise_mode="const", noise_strength={n: 0.0 for n in names}).image
    const = G.synthesis(ws, noise_mode="const").image
    assert torch.equal(none, zero)
    assert _max(none, const) > 1e-3
    # Doubling one layer's strength equals adding its stored noise twice at that layer only.
    doubled = G.synthesis(ws, noise_strength={names[-1]: 2.0}).image
    assert _max(doubled, const) > 1e-4


def test_per_layer_noise_mode_and_seeded_random_noise(net):
    G, ws = net
    names = [l.name for l in G.synthesis.layers if l.has_noise]
    a = G.synthesis(ws, noise_mode="random", noise_seed=3).image
    b = G.synthesis(ws, noise_mode="random", noise_seed=3).image
    c = G.synthesis(ws, noise_mode="random", noise_seed=4).image
    assert torch.equal(a, b) and _max(a, c) > 1e-3
    mixed = G.synthesis(ws, noise_mode={names[0]: "none"}).image
    const = G.synthesis(ws).image
    assert _max(mixed, const) > 0
    with pytest.raises(ValueError, match="noise mode"):
        G.synthesis(ws, noise_mode="loud")
    with pytest.raises(KeyError, match="no layer named"):
        G.synthesis(ws, noise_strength={"b9.conv9": 1.0})


def test_style_delta_moves_one_channel_of_one_layer(net):
    G, ws = net
    layer = [l for l in G.synthesis.layers if l.kind == "conv"][3]
    delta = torch.zeros(layer.style_channels)
    delta[2] = 3.0
    base = G.synthesis(ws, capture="all")
    out = G.synthesis(ws, style_deltas={layer.name: delta}, capture="all")
    before = G.synthesis.layer_names.index(layer.name)
    for name in G.synthesis.layer_names[:before]:
        assert torch.equal(out.activations[name], base.activations[name])
    assert _max(out.activations[layer.name], base.activations[layer.name]) > 1e-3


def test_stop_and_resume_give_the_same_image(net):
    G, ws = net
    full = G.synthesis(ws, capture="all")
    for name in G.synthesis.layer_names[:-1]:
        stopped = G.synthesis(ws, stop_after=name, capture="all")
        assert stopped.image is None and stopped.state.after == name
        assert list(stopped.activations)[-1] == name
        resumed = G.synthesis(ws, resume=stopped.state, capture="all")
        assert torch.allclose(resumed.image, full.image, atol=1e-6), name
        later = G.synthesis.layer_names[G.synthesis.layer_names.index(name) + 1:]
        assert set(resumed.activations) == set(later)  # the skipped layers did not run again


def test_resume_reuses_coarse_layers_when_only_fine_ws_change(net):
    G, ws = net
    names = G.synthesis.layer_names
    cut = names[len(names) // 2]
    coarse = G.synthesis(ws, stop_after=cut)
    fine_edit = ws.clone()
    first_fine_w = max(l.w_index for l in G.synthesis.layers[:len(names) // 2 + 1] if l.w_index is not None) + 1
    fine_edit[:, first_fine_w:] += 0.5
    resumed = G.synthesis(fine_edit, resume=coarse.state).image
    direct = G.synthesis(fine_edit).image
    assert torch.allclose(resumed, direct, atol=1e-6)


def test_truncation_psi_zero_gives_w_avg_everywhere_and_cutoff_limits_it(net):
    G, ws = net
    z = torch.randn([1, G.z_dim])
    c = torch.eye(G.c_dim)[:1] if G.c_dim else None
    w0 = G.mapping(z, c, truncation_psi=0)
    assert torch.allclose(w0, G.mapping.w_avg.expand_as(w0))
    w_cut = G.mapping(z, c, truncation_psi=0, truncation_cutoff=3)
    w_full = G.mapping(z, c)
    assert torch.allclose(w_cut[:, :3], G.mapping.w_avg.expand(1, 3, -1))
    assert torch.equal(w_cut[:, 3:], w_full[:, 3:])
    assert torch.allclose(truncate(w_full, G.mapping.w_avg, 0.5), G.mapping(z, c, truncation_psi=0.5))


def test_bad_ws_shape_is_a_clear_error(net):
    G, ws = net
    with pytest.raises(ValueError, match=r"ws must be"):
        G.synthesis(ws[:, :-1])
