"""The fast kernels against their plain references, values and gradients, on random inputs."""
import importlib
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from kernels import (bias_act, bias_act_reference, conv2d_resample, conv2d_resample_reference, modulated_conv2d,
                     modulated_conv2d_reference, setup_filter, upfirdn2d, upfirdn2d_reference, upsample2d)
from kernels.upfirdn2d import downsample2d

torch.set_num_threads(1)


@pytest.fixture(params=["matmul", "depthwise", "blocked"], autouse=True)
def resampling_path(request, monkeypatch):
    """Every test runs on each fast path: band-matrix products, depthwise convolutions, and blocked band products
    (which take separable filters of few channels, without gradients, on larger images)."""
    import importlib
    module = importlib.import_module("kernels.upfirdn2d")
    if request.param == "matmul":
        monkeypatch.setattr(module, "MATMUL_MAX_SIZE", 10 ** 6)
        return request.param
    monkeypatch.setattr(module, "MATMUL_MAX_SIZE", 0)
    monkeypatch.setattr(module, "MATMUL_MIN_TAPS", 10 ** 6)
    monkeypatch.setattr(module, "FEW_CHANNELS", 10 ** 6 if request.param == "blocked" else 0)
    return request.param


def _grads(fn, *inputs):
    inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*inputs)
    # A fixed, non-uniform output weighting, so every input gradient is checked, not just their sum.
    weight = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    (out * weight).sum().backward()
    return out.detach(), [t.grad for t in inputs]


FILTERS = {
    "1d_4tap": lambda: torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8,
    "2d_separable": lambda: setup_filter([1, 3, 3, 1]),
    "2d_general": lambda: torch.rand([3, 5], generator=torch.Generator().manual_seed(3)),
    "none": lambda: None,
}


@pytest.mark.parametrize("filter_name,up,down,padding,flip,gain", [
    (name, up, down, padding, flip, gain)
    for name, (up, down), padding, flip, gain in itertools.product(
        FILTERS, [(1, 1), (2, 1), (1, 2), (2, 2), (4, 1), ((2, 1), (1, 3))], [0, 1, (2, -1, 0, 3), (-1, 2)],
        [False, True], [1.0, 4.0])
])
def test_upfirdn2d_matches_reference(filter_name, up, down, padding, flip, gain):
    g = torch.Generator().manual_seed(1)
    x = torch.randn([2, 3, 9, 7], generator=g, dtype=torch.float64)
    f = FILTERS[filter_name]()
    if f is not None:
        f = f.double()
    expected, expected_grads = _grads(
        lambda t: upfirdn2d_reference(t, f, up=up, down=down, padding=padding, flip_filter=flip, gain=gain), x)
    actual, actual_grads = _grads(
        lambda t: upfirdn2d(t, f, up=up, down=down, padding=padding, flip_filter=flip, gain=gain), x)
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(actual_grads[0], expected_grads[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("filter_name,up,down,padding,flip", [
    (name, up, down, padding, flip)
    for name, (up, down), padding, flip in itertools.product(
        ["1d_4tap", "2d_separable", "2d_general"], [(1, 1), (2, 1), (1, 2), (4, 1), ((2, 1), (1, 3))],
        [0, (2, -1, 0, 3)], [False, True])
])
def test_upfirdn2d_without_gradients_matches_reference(resampling_path, monkeypatch, filter_name, up, down, padding,
                                                      flip):
    """Inference (no gradients), where the blocked band products take separable filters: an RGB-sized input and a
    larger one; the 2-D filter that is not separable takes another path."""
    from tests.fixtures.native import record_results
    module = importlib.import_module("kernels.upfirdn2d")   # (the package's `upfirdn2d` is the function)
    blocked = record_results(monkeypatch, module, "fir_rows_blocked", summary=lambda result: True)
    g = torch.Generator().manual_seed(6)
    f = FILTERS[filter_name]().double()
    for shape in ([2, 3, 9, 7], [1, 2, 70, 45]):
        x = torch.randn(shape, generator=g, dtype=torch.float64)
        with torch.no_grad():
            actual = upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=2.0)
        expected = upfirdn2d_reference(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=2.0)
        assert actual.shape == expected.shape
        torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)
    took_blocked = resampling_path == "blocked" and filter_name != "2d_general"
    assert bool(blocked) == took_blocked and len(blocked) in (0, 4)


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2)])
def test_upfirdn2d_in_bfloat16_matches_the_float32_reference(up, down):
    # Mixed-precision training hands these kernels bfloat16 activations (and bfloat16 filter taps).
    x = torch.randn([2, 4, 16, 16], generator=torch.Generator().manual_seed(2))
    f = setup_filter([1, 3, 3, 1])
    expected = upfirdn2d_reference(x, f, up=up, down=down, padding=1)
    actual = upfirdn2d(x.bfloat16(), f, up=up, down=down, padding=1)
    assert actual.dtype == torch.bfloat16 and actual.shape == expected.shape
    # bfloat16 keeps 8 significant bits: a relative error of about 2^-8 per rounding.
    torch.testing.assert_close(actual.float(), expected, rtol=0.02, atol=0.02)
    assert (actual.float() - expected).abs().max() > 0   # it did run in bfloat16


def test_upfirdn2d_definition_on_known_values():
    # One pixel upsampled by 2 with a box filter [1, 1] spreads into a 2x2 block of value gain/4 * 4 = 1.
    x = torch.zeros([1, 1, 3, 3])
    x[0, 0, 1, 1] = 1.0
    y = upfirdn2d_reference(x, torch.ones([2, 2]) / 4, up=2, padding=[1, 0, 1, 0], gain=4)
    assert y.shape == (1, 1, 6, 6)
    expected = torch.zeros([6, 6])
    expected[2:4, 2:4] = 1.0
    torch.testing.assert_close(y[0, 0], expected)
    # A flipped asymmetric filter shifts the response the other way.
    f = torch.tensor([[0.0, 1.0]])
    a = upfirdn2d_reference(x, f, padding=[1, 0, 0, 0])
    b = upfirdn2d_reference(x, f, padding=[1, 0, 0, 0], flip_filter=True)
    assert a[0, 0, 1].argmax() != b[0, 0, 1].argmax()


def test_upsample_keeps_dc_and_is_depthwise():
    x = torch.randn([2, 4, 8, 8])
    f = setup_filter([1, 3, 3, 1])
    y = upsample2d(torch.ones([1, 4, 8, 8]), f)
    # Away from the border, a constant stays constant.
    torch.testing.assert_close(y[:, :, 2:-2, 2:-2], torch.ones_like(y[:, :, 2:-2, 2:-2]))
    # Channels do not mix.
    x2 = x.clone()
    x2[:, 1] += 5
    d = upsample2d(x2, f) - upsample2d(x, f)
    assert d[:, 0].abs().max() == 0 and d[:, 2:].abs().max() == 0 and d[:, 1].abs().max() > 1
    assert downsample2d(x, f).shape == (2, 4, 4, 4)


@pytest.mark.parametrize("act,gain,clamp,with_bias", itertools.product(
    ["linear", "relu", "lrelu", "tanh", "sigmoid"], [None, 0.5], [None, 0.3], [True, False]))
def test_bias_act_matches_reference(act, gain, clamp, with_bias):
    g = torch.Generator().manual_seed(2)
    x = torch.randn([3, 5, 4, 4], generator=g, dtype=torch.float64)
    b = torch.randn([5], generator=g, dtype=torch.float64) if with_bias else None
    inputs = (x, b) if with_bias else (x,)

    def run(fn):
        return lambda *t: fn(t[0], t[1] if with_bias else None, act=act, gain=gain, clamp=clamp)

    expected, expected_grads = _grads(run(bias_act_reference), *inputs)
    actual, actual_grads = _grads(run(bias_act), *inputs)
    torch.testing.assert_close(actual, expected)
    for a, e in zip(actual_grads, expected_grads):
        torch.testing.assert_close(a, e)
    with torch.no_grad():
        x_before = x.clone()
        torch.testing.assert_close(bias_act(x, b, act=act, gain=gain, clamp=clamp), expected)
        assert torch.equal(x, x_before), "the no-grad path must not change the caller's tensor"


def test_bias_act_known_values():
    x = torch.tensor([[-1.0, 0.5, 300.0]])
    y = bias_act_reference(x, torch.tensor([0.0]), dim=0, act="lrelu", clamp=256)
    torch.testing.assert_close(y, torch.tensor([[-0.2 * math.sqrt(2), 0.5 * math.sqrt(2), 256.0]]))


@pytest.mark.parametrize("up,down,k,groups,flip_weight", [
    (1, 1, 3, 1, True), (2, 1, 3, 1, False), (2, 1, 3, 2, False), (1, 2, 3, 1, True), (2, 1, 1, 1, True),
    (1, 2, 1, 1, True), (1, 1, 1, 2, True), (2, 2, 3, 1, False),
])
def test_conv2d_resample_matches_reference(up, down, k, groups, flip_weight):
    g = torch.Generator().manual_seed(4)
    x = torch.randn([2, 4, 8, 8], generator=g, dtype=torch.float64)
    w = torch.randn([6, 4 // groups, k, k], generator=g, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1]).double()
    kwargs = dict(f=f, up=up, down=down, padding=k // 2, groups=groups, flip_weight=flip_weight)
    expected, (egx, egw) = _grads(lambda a, b: conv2d_resample_reference(a, b, **kwargs), x, w)
    actual, (agx, agw) = _grads(lambda a, b: conv2d_resample(a, b, **kwargs), x, w)
    assert actual.shape == expected.shape == (2, 6, 8 * up // down, 8 * up // down)
    torch.testing.assert_close(actual, expected)
    torch.testing.assert_close(agx, egx)
    torch.testing.assert_close(agw, egw)


@pytest.mark.parametrize("up,demodulate,fused,with_noise", itertools.product(
    [1, 2], [True, False], [True, False], [True, False]))
def test_modulated_conv2d_matches_reference(up, demodulate, fused, with_noise):
    g = torch.Generator().manual_seed(5)
    x = torch.randn([3, 4, 8, 8], generator=g, dtype=torch.float64)
    weight = torch.randn([5, 4, 3, 3], generator=g, dtype=torch.float64)
    styles = torch.randn([3, 4], generator=g, dtype=torch.float64)
    noise = torch.randn([3, 1, 8 * up, 8 * up], generator=g, dtype=torch.float64) if with_noise else None
    f = setup_filter([1, 3, 3, 1]).double()
    kwargs = dict(up=up, padding=1, resample_filter=f, demodulate=demodulate, flip_weight=(up == 1))

    expected, eg = _grads(lambda a, b, c: modulated_conv2d_reference(a, b, c, noise=noise, **kwargs), x, weight, styles)
    actual, ag = _grads(lambda a, b, c: modulated_conv2d(a, b, c, noise=noise, fused_modconv=fused, **kwargs),
                        x, weight, styles)
    torch.testing.assert_close(actual, expected)
    for a, e in zip(ag, eg):
        torch.testing.assert_close(a, e)
    if demodulate:
        # Demodulation normalises every output channel's kernel: unit-variance input gives ~unit output.
        per_sample_kernel = weight[None] * styles[:, None, :, None, None]
        norms = (per_sample_kernel.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        assert norms.shape == (3, 5)


def test_modulated_conv2d_float32_fused_vs_unfused_close():
    g = torch.Generator().manual_seed(6)
    x = torch.randn([2, 8, 16, 16], generator=g)
    weight = torch.randn([8, 8, 3, 3], generator=g)
    styles = torch.randn([2, 8], generator=g)
    f = setup_filter([1, 3, 3, 1])
    a = modulated_conv2d(x, weight, styles, up=2, padding=1, resample_filter=f, flip_weight=False, fused_modconv=True)
    b = modulated_conv2d(x, weight, styles, up=2, padding=1, resample_filter=f, flip_weight=False, fused_modconv=False)
    assert (a - b).abs().max() < 1e-4


def test_a_prepared_filter_is_kept_per_filter_and_follows_an_in_place_change():
    fir = importlib.import_module("kernels.upfirdn2d")     # the module; the package exports the function
    torch.manual_seed(0)
    x = torch.randn([1, 3, 16, 16])
    f = setup_filter([1, 3, 3, 1])
    first = fir.upfirdn2d(x, f, up=2, padding=2)
    assert torch.allclose(first, upfirdn2d_reference(x, f, up=2, padding=2), atol=1e-5)
    assert sum(entry[0]() is f for entry in fir._prepared_filters.values()) == 1
    assert torch.equal(fir.upfirdn2d(x, f, up=2, padding=2), first)          # from the kept preparation
    with torch.no_grad():
        f.copy_(setup_filter([1, 2, 1, 1]))       # as load_state_dict changes a stored filter: in place
    changed = fir.upfirdn2d(x, f, up=2, padding=2)
    assert torch.allclose(changed, upfirdn2d_reference(x, f, up=2, padding=2), atol=1e-5)
    assert not torch.allclose(changed, first, atol=1e-3)
    # A filter that is not rank one is kept with no factors and still filters exactly.
    g = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 0.0, 1.0]])
    assert torch.allclose(fir.upfirdn2d(x, g, down=2, padding=1), upfirdn2d_reference(x, g, down=2, padding=1),
                          atol=1e-5)
    assert fir._prepared_filter(g, x, False, 1)[1] is None
    # The band-matrix key of a kept factor is read once, and again after an in-place change.
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    key = fir._taps_key(taps)
    assert fir._taps_key(taps) is key
    with torch.no_grad():
        taps.mul_(2)
    assert fir._taps_key(taps) != key and fir._taps_key(taps)[2] == torch.tensor([2.0, 6.0, 6.0, 2.0]).numpy().tobytes()
    # A filter made under inference mode has no version counter: prepared on every call, still exact.
    with torch.inference_mode():
        h = setup_filter([1, 3, 3, 1])
        assert torch.allclose(fir.upfirdn2d(x, h, up=2, padding=2), first, atol=1e-6)
