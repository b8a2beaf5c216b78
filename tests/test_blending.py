"""Model blending: the chosen layers come from (or fade to) the other network, the rest and the mapping stay;
through the worker's render path, with a clear error when the networks do not fit together."""
import numpy as np
import pytest
import torch

from explorer.blending import BlendError, ModelBlend, blend_generators, resolution_of, share_of_other
from explorer.formats.native import save_network
from explorer.render import RenderRequest, render
from explorer.worker import RenderWorker
from tests.fixtures.networks import tiny_stylegan2


def test_swap_takes_the_fine_layers_whole_and_keeps_the_mapping():
    A, B = tiny_stylegan2("sg2_skip_64", seed=0), tiny_stylegan2("sg2_skip_64", seed=1)
    blended = blend_generators(A, B, ModelBlend("b", "swap", 32, 1.0))
    mine, theirs, mixed = A.state_dict(), B.state_dict(), blended.state_dict()
    layers = {l.name: l.height for l in A.synthesis.layers}
    checked = 0
    for name, tensor in mixed.items():
        size = resolution_of(name, layers)
        if name.endswith("resample_filter"):
            continue
        want = theirs[name] if size is not None and size >= 32 else mine[name]
        assert torch.equal(tensor, want), name
        checked += 1
    assert checked > 40 and torch.equal(mixed["mapping.w_avg"], mine["mapping.w_avg"])
    assert torch.equal(A.state_dict()["synthesis.b64.conv1.weight"], mine["synthesis.b64.conv1.weight"])


def test_crossfade_shares_grow_by_octave_to_the_amount():
    blend = ModelBlend("b", "crossfade", 16, 0.9)
    assert [share_of_other(size, blend, 64) for size in (8, 16, 32, 64)] == pytest.approx([0, 0.3, 0.6, 0.9])
    A, B = tiny_stylegan2("sg2_skip_64", seed=0), tiny_stylegan2("sg2_skip_64", seed=1)
    mixed = blend_generators(A, B, blend).state_dict()
    name = "synthesis.b32.conv0.weight"
    want = torch.lerp(A.state_dict()[name], B.state_dict()[name], 0.6)
    assert torch.allclose(mixed[name], want, atol=1e-6)


def test_the_worker_renders_the_blend_and_refuses_networks_that_do_not_fit(tmp_path):
    A = tiny_stylegan2("sg2_skip_64", seed=0)
    other = tmp_path / "other.safetensors"
    save_network(tiny_stylegan2("sg2_skip_64", seed=1), other)
    odd = tmp_path / "odd.safetensors"
    save_network(tiny_stylegan2("sg2_orig_32"), odd)
    with RenderWorker() as worker:
        worker.set_network(A, key="a")
        assert worker.wait_idle(60)
        blend = ModelBlend(str(other), "swap", 16, 1.0)
        request = RenderRequest("a", seed_weights=((3, 1.0),), blend=blend)
        worker.submit(request)
        assert worker.wait_idle(60)
        result = worker.poll()
        assert result.ok, result.error
        B = tiny_stylegan2("sg2_skip_64", seed=1)
        expected = render(blend_generators(A, B, blend), request)
        assert np.array_equal(result.raw, expected.raw)
        assert np.abs(result.raw - render(A, RenderRequest("a", seed_weights=((3, 1.0),))).raw).max() > 1e-3
        worker.submit(RenderRequest("a", blend=ModelBlend(str(odd))))
        assert worker.wait_idle(60)
        failed = worker.poll()
        assert not failed.ok and failed.error.startswith("blend: the networks have different layers")
        worker.submit(RenderRequest("a", blend=ModelBlend(str(tmp_path / "missing.pkl"))))
        assert worker.wait_idle(60)
        assert "no such file" in worker.poll().error
    with pytest.raises(BlendError, match="different layers"):
        blend_generators(A, tiny_stylegan2("sg2_orig_32"), ModelBlend("x"))
