"""The fast filtered leaky ReLU against its reference: values and gradients, 1-D (T) and radial 2-D (R) filters.

`filtered_lrelu` has two fast paths: with autograd it composes the fast upfirdn2d and bias_act; without (the
explorer's render path) it goes channel chunk by channel chunk through blocked band products. Both are held
against `filtered_lrelu_reference`, and the tests check which path ran, so that a silent fallback cannot pass.
"""
import itertools

import numpy as np
import pytest
import torch

import kernels.filtered_lrelu as flrelu_module
from explorer.networks.stylegan3 import Generator, design_lowpass_filter
from kernels.filtered_lrelu import filtered_lrelu, filtered_lrelu_reference
from tests.fixtures.native import eager_only

torch.set_num_threads(1)


def _grads(fn, *inputs):
    inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*inputs)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)).sum().backward()
    return out.detach(), [t.grad for t in inputs]


def _filters(radial, up, down, dtype=torch.float64):
    """StyleGAN3's own filter designs: a 1-D Kaiser up filter, a 1-D or radial 2-D down filter."""
    fu = design_lowpass_filter(6 * up, 3.0, 2.0, 16 * up).to(dtype) if up > 1 else None
    fd = design_lowpass_filter(6 * down, 3.0, 2.0, 16 * up, radial=radial).to(dtype) if down > 1 else None
    return fu, fd


@pytest.fixture
def blocked_calls(monkeypatch):
    """Counts the blocked band products the render path runs."""
    calls = []
    original = flrelu_module.fir_rows_blocked

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(flrelu_module, "fir_rows_blocked", counting)
    return calls


@pytest.mark.parametrize("radial,up,down,clamp", itertools.product([False, True], [1, 2], [1, 2], [None, 0.5]))
def test_fast_matches_reference(radial, up, down, clamp):
    g = torch.Generator().manual_seed(0)
    x = torch.randn([2, 3, 12, 12], generator=g, dtype=torch.float64)
    b = torch.randn([3], generator=g, dtype=torch.float64)
    fu, fd = _filters(radial, up, down)
    kwargs = dict(up=up, down=down, padding=[5, 4, 5, 4], clamp=clamp)
    expected, eg = _grads(lambda a, c: filtered_lrelu_reference(a, fu, fd, c, **kwargs), x, b)
    actual, ag = _grads(lambda a, c: filtered_lrelu(a, fu, fd, c, **kwargs), x, b)
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected)
    for a, e in zip(ag, eg):
        torch.testing.assert_close(a, e)
    assert ag[0].abs().max() > 1e-2
    if clamp is not None and fd is None:   # the down filter's negative lobes may overshoot the clamp
        assert actual.abs().max() <= clamp + 1e-12


@pytest.mark.parametrize("radial,up,down,flip,padding", [
    (radial, up, down, flip, padding)
    for radial, (up, down), flip, padding in itertools.product(
        [False, True], [(2, 2), (4, 2), (2, 1), (1, 2)], [False, True], [(5, 4, 5, 4), (-3, 7, 2, -1)])
])
def test_render_path_matches_reference(monkeypatch, blocked_calls, radial, up, down, flip, padding):
    """No autograd, images past BLOCKED_MIN_SIDE, several channel chunks (the last one short), a batch of 2."""
    monkeypatch.setattr(flrelu_module, "CHUNK_ELEMENTS", 2 * 130 * 130)
    g = torch.Generator().manual_seed(1)
    side = flrelu_module.BLOCKED_MIN_SIDE // up + 9
    x = torch.randn([2, 5, side, side - 7], generator=g, dtype=torch.float64)
    b = torch.randn([5], generator=g, dtype=torch.float64)
    fu, fd = _filters(radial, up, down)
    kwargs = dict(up=up, down=down, padding=list(padding), gain=1.7, slope=0.3, clamp=1.5, flip_filter=flip)
    expected = filtered_lrelu_reference(x, fu, fd, b, **kwargs)
    with torch.no_grad():
        actual = filtered_lrelu(x, fu, fd, b, **kwargs)
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)
    assert expected.abs().max() > 0.5
    # Separable passes run as blocked products (two a filter), chunk by chunk; the radial down filter stays a 2-D
    # depthwise convolution.
    passes = (2 if up > 1 else 0) + (2 if down > 1 and not radial else 0)
    assert len(blocked_calls) % max(passes, 1) == 0 and len(blocked_calls) // max(passes, 1) >= (2 if passes else 0)


def test_render_path_below_threshold_and_float32(blocked_calls, monkeypatch):
    """Small images keep upfirdn2d's whole-axis products; float32 stays within float32 rounding of float64 (the
    eager path: float32 would otherwise go to the compiled kernel, tests/test_native_kernels.py)."""
    eager_only(monkeypatch)
    g = torch.Generator().manual_seed(2)
    x = torch.randn([1, 4, 20, 20], generator=g, dtype=torch.float64)
    fu, fd = _filters(False, 2, 2)
    with torch.no_grad():
        small = filtered_lrelu(x, fu, fd, padding=9)
    assert not blocked_calls
    torch.testing.assert_close(small, filtered_lrelu_reference(x, fu, fd, padding=9), rtol=1e-10, atol=1e-10)
    big = torch.randn([1, 4, 100, 100], generator=g, dtype=torch.float64)
    with torch.no_grad():
        single = filtered_lrelu(big.float(), fu.float(), fd.float(), padding=9)
    assert blocked_calls
    expected = filtered_lrelu_reference(big, fu, fd, padding=9)
    assert (single.double() - expected).abs().max() <= 1e-5 * expected.abs().max()


@pytest.mark.parametrize("radial", [False, True])
def test_every_layer_of_a_network(radial):
    """Each SynthesisLayer's own filters, factors and paddings (negative ones where up = 4) at 128 px."""
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=128, img_channels=3, channel_base=256, channel_max=4,
                  num_layers=8, margin_size=6, conv_kernel=1 if radial else 3, use_radial_filters=radial)
    g = torch.Generator().manual_seed(3)
    checked, cropped = set(), False
    for name in G.synthesis.synthesis_layer_names:
        layer = getattr(G.synthesis, name)
        side = int(layer.in_size[0]) + layer.conv_kernel - 1
        x = 3 * torch.randn([1, layer.out_channels, side, side], generator=g)
        b = torch.randn([layer.out_channels], generator=g)
        kwargs = dict(fu=layer.up_filter, fd=layer.down_filter, b=b, up=layer.up_factor, down=layer.down_factor,
                      padding=layer.padding, clamp=layer.conv_clamp)
        with torch.no_grad():
            actual = filtered_lrelu(x, **kwargs)
        expected = filtered_lrelu_reference(x.double(), **{k: v.double() if torch.is_tensor(v) else v
                                                           for k, v in kwargs.items()})
        assert actual.shape == (1, layer.out_channels, int(layer.out_size[1]), int(layer.out_size[0]))
        assert (actual.double() - expected).abs().max() <= 2e-6 * max(1.0, expected.abs().max().item()), name
        checked.add((layer.up_factor, layer.down_factor))
        cropped = cropped or min(layer.padding) < 0
    assert {(2, 2), (4, 2), (1, 1)} <= checked and (cropped or radial)


def test_lowpass_filter_design():
    f = design_lowpass_filter(12, cutoff=2.0, width=2.0, fs=16).numpy()
    assert f.shape == (12,) and abs(f.sum() - 1) < 1e-6 and np.allclose(f, f[::-1])
    r = design_lowpass_filter(12, cutoff=2.0, width=2.0, fs=16, radial=True).numpy()
    assert r.shape == (12, 12) and abs(r.sum() - 1) < 1e-6 and np.allclose(r, r.T)
    assert design_lowpass_filter(1, 2.0, 2.0, 16) is None
    # A low-pass: full gain at DC, nothing left at the Nyquist frequency.
    assert abs(np.abs(np.fft.rfft(f, 256)).max() - 1) < 1e-3 and np.abs(np.fft.rfft(f, 256))[-1] < 1e-3

