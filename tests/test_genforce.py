"""genforce .pth checkpoints (StyleGAN2 skip and orig, StyleGAN at 32 px and, with its fused upsampling, 128 px),
written in genforce's exact layout by the project's fixture writer (tests/fixtures/genforce_writer.py), loaded by
our loader, against outputs that genforce's own models/stylegan2_generator.py and stylegan_generator.py computed
from the same weights (tests/golden/genforce.npz, made locally with genforce's code, which is not part of this
project: float32, z = RandomState(seed).randn(1, 16), G(z, trunc_psi=psi, trunc_layers=num_layers), fixed noise).
"""
import numpy as np
import pytest
import torch

from explorer.formats import NetworkLoadError, load_network
from tests.fixtures.genforce_writer import (genforce_checkpoint, genforce_stylegan2_state, genforce_stylegan_state,
                                            write_genforce_checkpoint)

torch.set_num_threads(1)
TOLERANCE = 1e-4
NETWORKS = {
    "sg2_skip_32": (lambda: genforce_stylegan2_state(architecture="skip", seed=0), "stylegan2", "skip"),
    "sg2_orig_32": (lambda: genforce_stylegan2_state(architecture="orig", seed=1), "stylegan2", "orig"),
    "sg1_32": (lambda: genforce_stylegan_state(seed=2), "stylegan", None),
    "sg1_128": (lambda: genforce_stylegan_state(128, fmaps_base=1024, fmaps_max=16, seed=3), "stylegan", None),
}


@pytest.fixture(scope="module")
def golden():
    return np.load("tests/golden/genforce.npz")


# Every network in torch's zip layout; one also in the legacy layout (PyTorch before 1.6), as older files are.
CASES = [(name, False) for name in NETWORKS] + [("sg2_skip_32", True)]


@pytest.mark.parametrize("name, legacy", CASES, ids=[f"{n}-{'legacy' if l else 'zip'}" for n, l in CASES])
def test_loaded_checkpoint_matches_genforce(tmp_path, golden, name, legacy):
    make_state, family, architecture = NETWORKS[name]
    path = tmp_path / f"{name}.pth"
    # A training generator that differs from the average: a loader that took it would fail below.
    write_genforce_checkpoint(path, genforce_checkpoint(make_state(), generator=genforce_stylegan2_state(seed=9)),
                              legacy=legacy)
    loaded = load_network(path)
    G = loaded.generator
    assert loaded.format == "genforce" and G.family == family and "entry generator_smooth" in loaded.detail
    if architecture:
        assert G.architecture == architecture
    keys = sorted(k[len(name) + 5:] for k in golden.files if k.startswith(f"{name}_img_"))
    assert keys
    with torch.no_grad():
        for key in keys:
            seed, psi = int(key.split("_")[0][1:]), float(key.split("_")[1][1:])
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, 16)).float()
            ws = G.mapping(z, None, truncation_psi=psi, truncation_cutoff=G.num_ws)   # genforce: trunc_layers
            np.testing.assert_allclose(ws.numpy(), golden[f"{name}_ws_{key}"], rtol=0, atol=1e-5)
            image = G.synthesis(ws, noise_mode="const").image.numpy()
            expected = golden[f"{name}_img_{key}"]
            assert image.shape == expected.shape
            assert np.abs(image - expected).max() <= TOLERANCE
            assert np.abs(expected).max() > 0.5, "a trivially small image would hide errors"


def test_the_training_generator_is_used_when_there_is_no_average(tmp_path):
    state = genforce_stylegan2_state(seed=4)
    write_genforce_checkpoint(tmp_path / "g.pth", {"generator": state})
    loaded = load_network(tmp_path / "g.pth")
    assert "entry generator" in loaded.detail and any("generator_smooth" in note for note in loaded.notes)
    assert torch.equal(loaded.generator.synthesis.b4.const, state["synthesis.early_layer.const"][0])


@pytest.mark.parametrize("change, pattern", [
    (lambda s: s.pop("synthesis.layer3.weight"), "lacks the weights of TF's synthesis/16x16/Conv0_up/weight"),
    (lambda s: s.update({"synthesis.layer1.filter.kernel": torch.ones(1, 1, 4, 4)}), "custom filter"),
    (lambda s: s.update({"synthesis.layer2.weight": torch.zeros(16, 16, 3)}), "has 3 dimensions, not 4"),
    (lambda s: s.update({"synthesis.layer2.extra": torch.zeros(2)}), "does not know: 'synthesis.layer2.extra'"),
    (lambda s: s.update({"mapping.label_weight": torch.zeros(3, 16)}), "conditional genforce generator"),
    (lambda s: s.update({"truncation.w_avg": torch.zeros(8 * 16)}), "repeat_w=False"),
    (lambda s: s.update({"synthesis.layer4.weight": torch.zeros(16, 16, 3, 3).fill_(float("nan"))}), "NaN"),
])
def test_damaged_genforce_checkpoints_are_refused_in_one_line(tmp_path, change, pattern):
    state = genforce_stylegan2_state(seed=5)
    change(state)
    write_genforce_checkpoint(tmp_path / "bad.pth", genforce_checkpoint(state))
    with pytest.raises(NetworkLoadError, match=pattern.replace("(", r"\(").replace(")", r"\)")) as error:
        load_network(tmp_path / "bad.pth")
    assert "\n" not in str(error.value)


def test_a_progressive_growing_snapshot_is_refused(tmp_path):
    state = genforce_stylegan_state(seed=6)
    state["synthesis.lod"] = torch.tensor(1.0)
    write_genforce_checkpoint(tmp_path / "lod.pth", genforce_checkpoint(state))
    with pytest.raises(NetworkLoadError, match="progressive growing"):
        load_network(tmp_path / "lod.pth")
