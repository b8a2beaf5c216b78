"""The fast filtered leaky ReLU against its reference: values and gradients, 1-D (T) and radial 2-D (R) filters."""
import itertools

import numpy as np
import pytest
import torch

from kernels.filtered_lrelu import filtered_lrelu, filtered_lrelu_reference
from explorer.networks.stylegan3 import design_lowpass_filter


def _grads(fn, *inputs):
    inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*inputs)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)).sum().backward()
    return out.detach(), [t.grad for t in inputs]


@pytest.mark.parametrize("radial,up,down,clamp", itertools.product([False, True], [1, 2], [1, 2], [None, 0.5]))
def test_fast_matches_reference(radial, up, down, clamp):
    g = torch.Generator().manual_seed(0)
    x = torch.randn([2, 3, 12, 12], generator=g, dtype=torch.float64)
    b = torch.randn([3], generator=g, dtype=torch.float64)
    fu = design_lowpass_filter(6 * up, 3.0, 2.0, 16 * up).double() if up > 1 else None
    fd = design_lowpass_filter(6 * down, 3.0, 2.0, 16 * down, radial=radial).double() if down > 1 else None
    kwargs = dict(up=up, down=down, padding=[5, 4, 5, 4], clamp=clamp)
    expected, eg = _grads(lambda a, c: filtered_lrelu_reference(a, fu, fd, c, **kwargs), x, b)
    actual, ag = _grads(lambda a, c: filtered_lrelu(a, fu, fd, c, **kwargs), x, b)
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected)
    for a, e in zip(ag, eg):
        torch.testing.assert_close(a, e)
    if clamp is not None:
        assert actual.abs().max() <= clamp + 1e-12


def test_lowpass_filter_design():
    f = design_lowpass_filter(12, cutoff=2.0, width=2.0, fs=16).numpy()
    assert f.shape == (12,) and abs(f.sum() - 1) < 1e-6 and np.allclose(f, f[::-1])
    r = design_lowpass_filter(12, cutoff=2.0, width=2.0, fs=16, radial=True).numpy()
    assert r.shape == (12, 12) and abs(r.sum() - 1) < 1e-6 and np.allclose(r, r.T)
    assert design_lowpass_filter(1, 2.0, 2.0, 16) is None
