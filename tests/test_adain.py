"""AdaIN (kernels/adain.py): the fast path (torch's fused instance norm + addcmul) against the plain reference,
and both against the definition written out by hand."""
import numpy as np
import pytest
import torch

from kernels import adain, adain_reference, instance_norm_reference

torch.set_num_threads(1)


def _by_hand(x, scale, shift, eps=1e-8):
    x = x.double().numpy()
    mean = x.mean(axis=(2, 3), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(2, 3), keepdims=True)   # biased, as the original's reduce_mean
    y = (x - mean) / np.sqrt(var + eps)
    return y * (scale.double().numpy()[:, :, None, None] + 1) + shift.double().numpy()[:, :, None, None]


@pytest.mark.parametrize("shape", [(1, 3, 4, 4), (2, 16, 32, 32), (3, 5, 7, 9)])
def test_fast_and_reference_match_the_definition(shape):
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(shape, generator=g) * 3 + 1.5
    scale = torch.randn(shape[:2], generator=g)
    shift = torch.randn(shape[:2], generator=g)
    expected = _by_hand(x, scale, shift)
    for fn in (adain, adain_reference):
        out = fn(x, scale, shift).double().numpy()
        assert np.abs(out - expected).max() <= 2e-5, fn.__name__
    assert (adain(x, scale, shift) - adain_reference(x, scale, shift)).abs().max() <= 2e-5


def test_each_channel_is_normalised_then_styled():
    g = torch.Generator().manual_seed(0)
    x = torch.randn([2, 4, 8, 8], generator=g) * 5 - 2
    y = instance_norm_reference(x)
    assert y.mean(dim=[2, 3]).abs().max() < 1e-5
    assert (y.square().mean(dim=[2, 3]) - 1).abs().max() < 1e-4
    scale, shift = torch.full([2, 4], 2.0), torch.full([2, 4], -0.5)
    out = adain(x, scale, shift)
    assert (out.mean(dim=[2, 3]) + 0.5).abs().max() < 1e-5          # mean = shift
    assert (out.std(dim=[2, 3], unbiased=False) - 3.0).abs().max() < 1e-4   # std = scale + 1


def test_a_constant_channel_stays_finite_through_eps():
    """A flat channel has zero variance: eps 1e-8 keeps it at 0 (then the shift), never NaN."""
    x = torch.zeros([1, 2, 4, 4])
    x[0, 1] = torch.arange(16.0).reshape(4, 4)
    scale, shift = torch.ones([1, 2]), torch.tensor([[0.25, 0.0]])
    for fn in (adain, adain_reference):
        out = fn(x, scale, shift)
        assert torch.isfinite(out).all()
        assert torch.equal(out[0, 0], torch.full([4, 4], 0.25))


def test_a_single_spike_dominates_its_channel():
    """The droplet mechanism: one large pixel sets the variance and squeezes every other pixel toward the mean."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn([1, 1, 16, 16], generator=g)
    spiked = x.clone()
    spiked[0, 0, 3, 3] = 500.0
    zero = torch.zeros([1, 1])
    calm, squeezed = adain(x, zero, zero), adain(spiked, zero, zero)
    others = torch.ones([16, 16], dtype=torch.bool)
    others[3, 3] = False
    assert squeezed[0, 0][others].std() < 0.1 * calm[0, 0][others].std()
    assert squeezed[0, 0, 3, 3] > 10
