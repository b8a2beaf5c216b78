"""Directions in W against their definitions: SeFa and PCA as numpy computes them from the same weights and
samples, moving along a direction, InterFaceGAN boundaries, direction sets bound to their network, the command."""
import argparse

import numpy as np
import pytest
import torch

from explorer.analysis.directions import (DirectionError, apply_direction, boundary_set, layer_w_indices,
                                          load_boundary, load_direction_set, network_hash, pca_directions,
                                          pca_of_samples, save_direction_set, sefa_directions, styled_layers)
from explorer.commands import directions as directions_command
from explorer.commands.common import UserError
from explorer.formats.native import save_network
from tests.fixtures.analysis_networks import tiny_adain
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.networks_sg3 import tiny_stylegan3

COUNT = 4

# Every family's convolution layers' affine weights, by their module paths, written out here independently of
# the code under test: SeFa's input.
AFFINES = {
    "stylegan": lambda G: [getattr(G.synthesis, f"b{r}").__getattr__(k).affine.weight
                           for r in (4, 8, 16, 32) for k in (("const", "conv") if r == 4 else ("conv0", "conv1"))],
    "stylegan2": lambda G: [G.synthesis.b4.conv1.affine.weight] + [
        getattr(getattr(G.synthesis, f"b{r}"), k).affine.weight for r in (8, 16, 32, 64) for k in ("conv0", "conv1")],
    "stylegan3": lambda G: [getattr(G.synthesis, n).affine.weight for n in G.synthesis.synthesis_layer_names[:-1]],
}
NETWORKS = {"stylegan": tiny_adain, "stylegan2": tiny_stylegan2, "stylegan3": tiny_stylegan3}


def numpy_sefa(weights, count):
    """SeFa as its authors compute it: weights [w_dim, units], each unit's column to unit length, eig(W W^T)."""
    weight = np.concatenate([w.detach().numpy().T for w in weights], axis=1).astype(np.float64)
    weight = weight / np.linalg.norm(weight, axis=0, keepdims=True)
    values, vectors = np.linalg.eig(weight @ weight.T)
    order = np.argsort(values.real)[::-1][:count]
    return vectors.real.T[order], values.real[order]


def assert_same_up_to_sign(a, b, tol=1e-5):
    for x, y in zip(a, b):
        assert abs(abs(float(np.dot(x, y))) - 1) < tol
        np.testing.assert_allclose(np.abs(x), np.abs(y), atol=1e-4)


@pytest.mark.parametrize("family", sorted(NETWORKS))
def test_sefa_is_numpys_top_eigenvectors_of_the_conv_affines(family):
    G = NETWORKS[family]()
    found = sefa_directions(G, COUNT)
    assert all(G.synthesis.layers[[i.name for i in G.synthesis.layers].index(n)].kind == "conv"
               for n in found.layers)
    weights = AFFINES[family](G)
    assert len(found.layers) == len(weights)
    expected, values = numpy_sefa(weights, COUNT)
    assert np.all(np.diff(values) < -1e-3 * values[0])          # distinct eigenvalues: vectors defined up to sign
    np.testing.assert_allclose(found.values, values, rtol=1e-6)
    assert_same_up_to_sign(found.directions, expected)
    np.testing.assert_allclose(np.linalg.norm(found.directions, axis=1), 1, atol=1e-6)


def test_sefa_on_chosen_layers_and_torgb_on_request():
    G = tiny_stylegan2()
    found = sefa_directions(G, COUNT, layers=["b16.conv0", "b16.torgb"])
    expected, _ = numpy_sefa([G.synthesis.b16.conv0.affine.weight, G.synthesis.b16.torgb.affine.weight], COUNT)
    assert_same_up_to_sign(found.directions, expected)
    assert "b64.torgb" in styled_layers(G, include_torgb=True) and "b64.torgb" not in styled_layers(G)
    with pytest.raises(DirectionError, match="no layer named 'b16.convX'"):
        sefa_directions(G, COUNT, layers=["b16.convX"])


def test_pca_is_numpys_on_the_same_samples():
    samples = np.random.RandomState(3).randn(300, 6) @ np.random.RandomState(4).randn(6, 6)
    components, ratio, mean = pca_of_samples(samples, 3)
    values, vectors = np.linalg.eigh(np.cov(samples, rowvar=False))
    order = np.argsort(values)[::-1]
    assert_same_up_to_sign(components, vectors.T[order[:3]])
    np.testing.assert_allclose(ratio, values[order[:3]] / values.sum(), rtol=1e-9)
    np.testing.assert_allclose(mean, samples.mean(axis=0))


def test_pca_directions_sample_w_of_random_z():
    G = tiny_stylegan2()
    found = pca_directions(G, COUNT, samples=500, seed=7)
    z = torch.from_numpy(np.random.RandomState(7).randn(500, G.z_dim)).float()
    w = G.mapping(z, None)[:, 0].numpy().astype(np.float64)
    values, vectors = np.linalg.eigh(np.cov(w, rowvar=False))
    order = np.argsort(values)[::-1][:COUNT]
    assert_same_up_to_sign(found.directions, vectors.T[order], tol=1e-4)
    np.testing.assert_allclose(found.values, values[order] / values.sum(), rtol=1e-4)
    assert np.all(np.diff(found.values) <= 0)


def test_moving_along_a_direction_changes_only_the_chosen_w_indices():
    G = tiny_stylegan2()
    ws = G.mapping(torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(1)), None)
    direction = sefa_directions(G, 1).directions[0]
    moved = apply_direction(ws, direction, 2.5, range(3, 6))
    assert torch.equal(moved[:, :3], ws[:, :3]) and torch.equal(moved[:, 6:], ws[:, 6:])
    np.testing.assert_allclose((moved[:, 3:6] - ws[:, 3:6]).numpy(),
                               np.broadcast_to(2.5 * direction, (2, 3, G.w_dim)), atol=1e-5)
    assert layer_w_indices(G, ["b16.conv0", "b16.conv1", "b16.torgb"]) == [3, 4, 5]
    with pytest.raises(DirectionError, match="w indices must be 0 to 9"):
        apply_direction(ws, direction, 1.0, [10])


def test_boundaries_are_checked(tmp_path):
    good = np.zeros([1, 32]); good[0, 3] = 2.0
    np.save(tmp_path / "smile.npy", good)
    np.testing.assert_array_equal(load_boundary(tmp_path / "smile.npy", 32), np.eye(32, dtype=np.float32)[3])
    np.save(tmp_path / "short.npy", np.ones(31))
    with pytest.raises(DirectionError, match="has 32 values .*shape \\[31\\]"):
        load_boundary(tmp_path / "short.npy", 32)
    bad = np.ones(32); bad[5] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(DirectionError, match="NaN or infinite"):
        load_boundary(tmp_path / "nan.npy", 32)
    np.save(tmp_path / "zero.npy", np.zeros(32))
    with pytest.raises(DirectionError, match="all zeros"):
        load_boundary(tmp_path / "zero.npy", 32)
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(DirectionError, match="not a .npy array"):
        load_boundary(tmp_path / "text.npy", 32)
    assert boundary_set([tmp_path / "smile.npy"], 32, "h").names == ("smile",)


def test_sets_keep_their_networks_hash_and_never_overwrite(tmp_path):
    G = tiny_stylegan2()
    assert network_hash(G) == network_hash(tiny_stylegan2()) != network_hash(tiny_stylegan2(seed=1))
    found = sefa_directions(G, COUNT)
    path = save_direction_set(found, tmp_path / "dirs.npz")
    before = path.read_bytes()
    with pytest.raises(DirectionError, match="exists; not overwriting"):
        save_direction_set(found, path)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]     # no temporary left behind
    loaded = load_direction_set(path, network_hash(G))
    np.testing.assert_array_equal(loaded.directions, found.directions)
    assert (loaded.method, loaded.names, loaded.layers) == ("sefa", found.names, found.layers)
    with torch.no_grad():
        G.synthesis.b8.conv0.affine.weight[0, 0] += 1e-3     # one weight changed: another network
    with pytest.raises(DirectionError, match="made for another network"):
        load_direction_set(path, network_hash(G))


def run_command(*argv):
    parser = argparse.ArgumentParser()
    directions_command.register(parser.add_subparsers())
    args = parser.parse_args(["directions", *argv])
    return args.handler(args)


def test_command_writes_sefa_and_refuses_an_existing_file(tmp_path, capsys):
    G = tiny_adain()
    pkl = save_network(G, tmp_path / "net.safetensors")
    out = tmp_path / "dirs.npz"
    assert run_command("--pkl", str(pkl), "--method", "sefa", "--count", "3", "--layers", "b8.conv0,b8.conv1",
                       "--out", str(out)) == 0
    with np.load(out) as data:
        assert data["directions"].shape == (3, G.w_dim)
        expected, _ = numpy_sefa([G.synthesis.b8.conv0.affine.weight, G.synthesis.b8.conv1.affine.weight], 3)
        assert_same_up_to_sign(data["directions"], expected)
    assert "wrote 3 sefa directions [3, 16]" in capsys.readouterr().out
    with pytest.raises(UserError, match="exists; not overwriting"):
        run_command("--pkl", str(pkl), "--method", "pca", "--out", str(out))
    with pytest.raises(UserError, match="--count must be 1 to 16"):
        run_command("--pkl", str(pkl), "--method", "pca", "--count", "17", "--out", str(tmp_path / "x.npz"))
    np.save(tmp_path / "b.npy", np.ones(15))
    with pytest.raises(UserError, match="has 16 values"):
        run_command("--pkl", str(pkl), "--method", "interfacegan", "--boundary", str(tmp_path / "b.npy"),
                    "--out", str(tmp_path / "y.npz"))
    assert not (tmp_path / "y.npz").exists() and not (tmp_path / "x.npz").exists()


def test_direction_offsets_as_the_render_request_carries_them():
    from explorer.analysis.directions import DirectionOffset, apply_direction_offsets
    G = tiny_stylegan2()
    found = sefa_directions(G, 2)
    ws = G.mapping(torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(2)), None)
    offsets = [DirectionOffset.of(found, 0, 1.5, 0, 3), DirectionOffset.of(found, 1, -2.0, 2, 9)]
    assert offsets[0].name == "sefa0" and len(offsets[0].direction) == G.w_dim
    moved = apply_direction_offsets(ws, offsets)
    expected = ws.clone()
    expected[:, 0:4] += 1.5 * torch.from_numpy(found.directions[0])
    expected[:, 2:10] += -2.0 * torch.from_numpy(found.directions[1])
    torch.testing.assert_close(moved, expected)
    assert torch.equal(apply_direction_offsets(ws, []), ws)
    with pytest.raises(DirectionError, match="w range 3-10 must lie in 0-9"):
        apply_direction_offsets(ws, [DirectionOffset(offsets[0].direction, 1.0, 3, 10)])


def test_command_draws_a_strip_whose_columns_are_renders_along_each_direction(tmp_path):
    from PIL import Image

    from explorer.analysis.directions import load_direction_set
    from explorer.commands import main
    from explorer.render import DirectionOffset, RenderRequest, render
    G = tiny_stylegan2("sg2_orig_32")
    network = tmp_path / "net.safetensors"
    save_network(G, network)
    strip = tmp_path / "strip.png"
    assert main(["directions", "--pkl", str(network), "--method", "sefa", "--count", "3", "--out",
                 str(tmp_path / "d.npz"), "--strip", str(strip), "--strip-seed", "4", "--strengths=-2,0,2",
                 "--w-range", "1-3"]) == 0
    sheet = np.asarray(Image.open(strip).convert("RGB"))
    gap = directions_command.STRIP_GAP
    assert sheet.shape == (3 * 32 + 2 * gap, 3 * 32 + 2 * gap, 3)
    found = load_direction_set(tmp_path / "d.npz")
    row, column = 1, 2                                       # the second direction at strength +2
    offset = DirectionOffset(found.names[row], tuple(float(v) for v in found.directions[row]), 2.0, 1, 4)
    expected = render(G, RenderRequest("x", seed_weights=((4, 1.0),), direction_offsets=(offset,))).image
    top, left = row * (32 + gap), column * (32 + gap)
    assert np.array_equal(sheet[top:top + 32, left:left + 32], expected)
    plain = render(G, RenderRequest("x", seed_weights=((4, 1.0),))).image
    assert np.array_equal(sheet[:32, 32 + gap:64 + gap], plain)          # strength 0: the seed itself
    assert main(["directions", "--pkl", str(network), "--method", "sefa", "--out", str(tmp_path / "e.npz"),
                 "--strip", str(strip)]) == 1                            # the strip is never overwritten
