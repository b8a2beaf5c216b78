"""The compiled filtered leaky ReLU (kernels/native/filtered_lrelu.c) against the reference composition, and the
build machinery around it: what happens without a compiler, with a broken source, when turned off."""
import itertools
import math

import pytest
import torch

import kernels.filtered_lrelu as flrelu_module
from explorer.networks.stylegan3 import Generator
from kernels import native
from kernels.filtered_lrelu import filtered_lrelu, filtered_lrelu_reference
from tests.fixtures.native import eager_only, record_answers, record_results, require_native

torch.set_num_threads(2)   # two ranges of channels, run by two threads at once


@pytest.fixture
def native_calls(monkeypatch):
    """Counts the calls that the compiled kernel answered (not None), so that a silent fallback cannot pass."""
    require_native("filtered_lrelu")
    return record_answers(monkeypatch, flrelu_module, "_filtered_lrelu_native")


def _random_filters(g, up, down, radial, taps_per_factor=6):
    """Asymmetric random filters (a flip or an off-by-one in the kernel shows), 1-D or 2-D."""
    fu = torch.rand([taps_per_factor * up], generator=g, dtype=torch.float64) + 0.1 if up > 1 else None
    if down == 1:
        return fu, None
    shape = [taps_per_factor * down] * (2 if radial else 1)
    return fu, torch.rand(shape, generator=g, dtype=torch.float64) - 0.2


@pytest.mark.parametrize("radial,up,down,flip,padding,channels,batch", [
    (radial, up, 2, flip, padding, channels, batch)
    for (radial, up, flip), padding, (channels, batch) in itertools.product(
        [(False, 2, False), (False, 4, True), (True, 2, True), (True, 4, False)],
        [(5, 4, 5, 4), (-3, 7, 2, -1), (13, 12, 11, 14)],
        [(16, 1), (37, 2), (3, 1)])
])
def test_matches_reference(native_calls, radial, up, down, flip, padding, channels, batch):
    """Separable and 2-D down filters, both flips, cropping and padding, channel counts that fill one block, end
    in a short block or are smaller than one block, batches."""
    g = torch.Generator().manual_seed(channels + up)
    x = torch.randn([batch, channels, 23, 19], generator=g, dtype=torch.float64) * 3
    b = torch.randn([channels], generator=g, dtype=torch.float64)
    fu, fd = _random_filters(g, up, down, radial)
    kwargs = dict(up=up, down=down, padding=list(padding), gain=1.7, slope=0.3, clamp=4.0, flip_filter=flip)
    expected = filtered_lrelu_reference(x, fu, fd, b, **kwargs)
    with torch.no_grad():
        actual = filtered_lrelu(x.float(), fu.float(), fd.float(), b.float(), **kwargs)
    assert native_calls == [True]
    assert actual.shape == expected.shape and actual.dtype == torch.float32
    scale = expected.abs().max().item()
    assert scale > 1
    # Within float32 rounding: no further from float64 than the reference composition run in float32 (these
    # random filters with gains up to 16 amplify rounding) or a millionth of the output's scale.
    reference_float32 = filtered_lrelu_reference(x.float(), fu.float(), fd.float(), b.float(), **kwargs)
    rounding = (reference_float32.double() - expected).abs().max().item()
    assert (actual.double() - expected).abs().max().item() <= max(2 * rounding, 1e-6 * scale)
    # The clamp is reached somewhere (the 2-D filter's negative taps keep the output from simply saturating).
    assert (expected.abs() > 0.5 * 4.0).any()


def test_no_bias_no_clamp_and_plain_layout_input(native_calls):
    g = torch.Generator().manual_seed(5)
    x = torch.randn([1, 20, 30, 30], generator=g) * 50
    fu, fd = (f.float() for f in _random_filters(g, 2, 2, False))
    with torch.no_grad():
        actual = filtered_lrelu(x, fu, fd, None, up=2, down=2, padding=10, clamp=None)
    expected = filtered_lrelu_reference(x.double(), fu.double(), fd.double(), None, up=2, down=2, padding=10)
    assert native_calls == [True]
    assert expected.abs().max() > 256   # no clamp was applied
    assert (actual.double() - expected).abs().max().item() <= 1e-6 * expected.abs().max().item()


def test_nan_and_infinity_pass_through_as_in_pytorch(native_calls):
    x = torch.zeros([1, 16, 24, 24])
    x[0, 3, 10, 10] = float("nan")
    x[0, 5, 4, 4] = float("inf")
    fu = torch.ones(12) / 12
    fd = torch.ones(12) / 12
    with torch.no_grad():
        actual = filtered_lrelu(x, fu, fd, up=2, down=2, padding=10, clamp=None)
        expected = filtered_lrelu_reference(x, fu, fd, up=2, down=2, padding=10)
    assert native_calls == [True]
    assert torch.equal(actual.isnan(), expected.isnan()) and actual.isnan().any()
    assert torch.equal(actual.isinf(), expected.isinf()) and actual.isinf().any()
    finite = expected.isfinite()
    assert torch.allclose(actual[finite], expected[finite], atol=1e-6)


def _within_float32_rounding(actual, x, fu, fd, b, **kwargs):
    """The compiled result against the reference composition in float64: no further than that composition run in
    float32 (twice its error) or a millionth of the output's scale. Returns the output's scale."""
    expected = filtered_lrelu_reference(x.double(), fu.double(), fd.double(), None if b is None else b.double(),
                                        **kwargs)
    reference_float32 = filtered_lrelu_reference(x, fu, fd, b, **kwargs)
    rounding = (reference_float32.double() - expected).abs().max().item()
    scale = expected.abs().max().item()
    assert actual.shape == expected.shape
    assert (actual.double() - expected).abs().max().item() <= max(2 * rounding, 1e-6 * scale)
    return scale


def _radial_filters():
    """StyleGAN3-R's radial downsampling filters as its layers have them (cutoffs and widths of a 256 px network)."""
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=256, img_channels=3, channel_base=2048, channel_max=16,
                  conv_kernel=1, use_radial_filters=True).synthesis
    layers = [getattr(G, name) for name in G.synthesis_layer_names]
    return [(layer.up_filter, layer.down_filter, layer.padding) for layer in layers
            if layer.down_filter is not None and layer.down_filter.ndim == 2]


def test_radial_filters_run_as_folded_sums_of_separable_terms(native_calls):
    """R's radial filters are, to float32's precision, sums of 2-4 separable symmetric terms; the kernel runs them
    so (about half the multiply-adds of the 2-D pass) and the outputs stay within float32 rounding of the float64
    reference with the true 2-D filter."""
    filters = _radial_filters()
    assert len(filters) >= 6
    seen = set()
    g = torch.Generator().manual_seed(4)
    for fu, fd, padding in filters:
        factors = flrelu_module.low_rank_factors(fd, 2)
        assert factors is not None
        fy, fx = factors
        assert 2 <= fy.shape[0] <= 4 and torch.equal(fy, fy.flip(-1)) and torch.equal(fx, fx.flip(-1))
        error = (torch.einsum("ti,tj->ij", fy.double(), fx.double()) - fd.double()).abs().sum()
        assert error <= flrelu_module.LOW_RANK_TOLERANCE * fd.double().abs().sum()
        kind = flrelu_module.down_pass(fd, 2)
        assert kind == f"folded symmetric terms ({fy.shape[0]})"
        seen.add(kind)
        x = torch.randn([2, 21, 26, 26], generator=g) * 3
        b = torch.randn([21], generator=g)
        kwargs = dict(up=2, down=2, padding=[11, 10, 11, 10], gain=math.sqrt(2), slope=0.2, clamp=4.0)
        with torch.no_grad():
            actual = filtered_lrelu(x, fu, fd, b, **kwargs)
        assert _within_float32_rounding(actual, x, fu, fd, b, **kwargs) > 1
    assert len(seen) >= 2     # two different term counts met
    assert native_calls == [True] * len(filters)


def _even(g, n):
    v = torch.rand([n // 2], generator=g, dtype=torch.float64) - 0.3
    return torch.cat([v, v.flip(0)])


def test_sums_of_separable_terms_where_they_pay_and_the_2d_pass_where_not(native_calls):
    """The fewest terms within the tolerance; asymmetric terms run unfolded, symmetric ones folded; where the
    terms would take as many multiply-adds as the 2-D pass (4 asymmetric terms of 12 taps with down 2, or more than
    4), the 2-D pass runs. Every one matches the reference."""
    g = torch.Generator().manual_seed(12)
    rand = lambda: torch.rand([12], generator=g, dtype=torch.float64) - 0.3   # noqa: E731
    asymmetric2 = rand().outer(rand()) + 0.5 * rand().outer(rand())
    symmetric4 = sum(_even(g, 12).outer(_even(g, 12)) * 0.5 ** i for i in range(4))
    asymmetric4 = sum(rand().outer(rand()) * 0.5 ** i for i in range(4))
    full = torch.rand([12, 12], generator=g, dtype=torch.float64)
    cases = [(asymmetric2, "separable terms (2)", 2), (symmetric4, "folded symmetric terms (4)", 4),
             (asymmetric4, "2-D", None), (full, "2-D", None)]
    x = torch.randn([1, 19, 24, 22], generator=g) * 3
    fu = torch.rand([12], generator=g) + 0.1
    for fd, kind, terms in cases:
        fd = fd.float()
        factors = flrelu_module.low_rank_factors(fd, 2)
        assert (factors is None) == (terms is None)
        if terms is not None:
            assert factors[0].shape == (terms, 12)
        assert flrelu_module.down_pass(fd, 2) == kind
        kwargs = dict(up=2, down=2, padding=[5, 4, 5, 4], gain=1.3, slope=0.25, clamp=None)
        with torch.no_grad():
            actual = filtered_lrelu(x, fu, fd, None, **kwargs)
        _within_float32_rounding(actual, x, fu, fd, None, **kwargs)
    assert native_calls == [True] * len(cases)


def test_symmetric_terms_of_other_lengths_are_costed_unfolded():
    """The kernel folds symmetric terms of 12 taps only: 4 symmetric terms of 8 taps would take 96 multiply-adds
    an output unfolded against the 2-D pass's 64, so the 2-D pass runs; 2 of them (48) are worth it, unfolded."""
    g = torch.Generator().manual_seed(21)
    four = sum(_even(g, 8).outer(_even(g, 8)) * 0.5 ** i for i in range(4)).float()
    two = sum(_even(g, 8).outer(_even(g, 8)) * 0.5 ** i for i in range(2)).float()
    assert flrelu_module.low_rank_factors(four, 2) is None
    assert flrelu_module.down_pass(four, 2) == "2-D"
    assert flrelu_module.low_rank_factors(two, 2)[0].shape == (2, 8)
    assert flrelu_module.down_pass(two, 2) == "separable terms (2)"


def test_large_outputs_are_stored_past_the_cache_with_the_same_numbers(native_calls, monkeypatch):
    """An output of at least 8 MiB with whole vectors of channels is stored past the cache; the numbers equal
    the eager path's within float32 rounding, and a channel count that is not whole vectors (stored through the
    cache) as well."""
    g = torch.Generator().manual_seed(3)
    fu, fd = (f.float() for f in _random_filters(g, 2, 2, False))
    for channels in (32, 37):
        x = torch.randn([1, channels, 264, 262], generator=g)
        kwargs = dict(up=2, down=2, padding=10, gain=1.5, slope=0.2, clamp=3.0)
        with torch.no_grad():
            compiled = filtered_lrelu(x, fu, fd, None, **kwargs)
            assert compiled.numel() * 4 >= 8 << 20
            with monkeypatch.context() as m:
                eager_only(m)
                eager = filtered_lrelu(x, fu, fd, None, **kwargs)
        assert (compiled - eager).abs().max().item() <= 2e-6 * eager.abs().max().item()
    assert native_calls == [True, False, True, False]     # compiled, then declined with the kernels off


@pytest.mark.parametrize("slope,gain", [(0.0, 1.7), (1.5, 1.2), (0.2, -0.5)])
def test_activations_whose_gain_cannot_go_into_the_weights(native_calls, slope, gain):
    """A ReLU (slope 0: -inf * 0 is NaN, as in PyTorch), a slope above 1 and a negative gain take the kernel's
    general activation; the numbers match the reference, NaN and infinity included."""
    g = torch.Generator().manual_seed(8)
    x = torch.randn([1, 17, 20, 20], generator=g) * 3
    x[0, 2, 5, 5] = float("-inf")
    x[0, 4, 9, 9] = float("nan")
    fu = torch.ones(12) / 12
    fd = torch.ones(12) / 12
    kwargs = dict(up=2, down=2, padding=10, gain=gain, slope=slope, clamp=None)
    with torch.no_grad():
        actual = filtered_lrelu(x, fu, fd, None, **kwargs)
    expected = filtered_lrelu_reference(x, fu, fd, None, **kwargs)
    assert torch.equal(actual.isnan(), expected.isnan()) and actual.isnan().any()
    assert torch.equal(actual.isinf(), expected.isinf())
    finite = expected.isfinite()
    assert torch.allclose(actual[finite], expected[finite], atol=1e-5)
    assert native_calls == [True]


@pytest.mark.parametrize("radial", [False, True])
def test_every_layer_of_a_network_and_the_whole_image(native_calls, monkeypatch, radial):
    """StyleGAN3's own filters, factors and paddings at 128 px; the image with the compiled kernel equals the
    image without it (the eager fast path) within float32 rounding."""
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=128, img_channels=3, channel_base=1024, channel_max=24,
                  num_layers=8, margin_size=6, conv_kernel=1 if radial else 3, use_radial_filters=radial).eval()
    ws = G.mapping(torch.randn([2, 8], generator=torch.Generator().manual_seed(1)), None)
    with torch.no_grad():
        compiled = G.synthesis(ws).image
    layers = len(G.synthesis.synthesis_layer_names) - 1      # ToRGB has no filters
    assert native_calls.count(True) == layers
    eager_only(monkeypatch)
    with torch.no_grad():
        eager = G.synthesis(ws).image
    assert native_calls.count(True) == layers                 # the second run did not use it
    assert compiled.abs().max() > 0.05
    assert (compiled - eager).abs().max().item() <= 1e-5


def test_out_of_scope_calls_take_the_eager_path(native_calls):
    """float64, gradients, a missing filter: the compiled kernel declines (returns None), the eager path answers."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn([1, 4, 20, 20], generator=g)
    fu, fd = (f.float() for f in _random_filters(g, 2, 2, False))
    with torch.no_grad():
        filtered_lrelu(x.double(), fu.double(), fd.double(), up=2, down=2, padding=10)
        filtered_lrelu(x, fu, None, up=2, down=1, padding=10)
    filtered_lrelu(x.requires_grad_(True), fu, fd, up=2, down=2, padding=10)
    assert native_calls == [False, False]   # the gradient case never asks


def test_switched_off_by_the_environment(monkeypatch):
    require_native("filtered_lrelu")
    eager_only(monkeypatch)
    assert native.library("filtered_lrelu") is None
    assert "STYLEGAN_EXPLORER_NATIVE" in native.unavailable_reason("filtered_lrelu")
    x = torch.randn([1, 16, 24, 24])
    with torch.no_grad():
        assert flrelu_module._filtered_lrelu_native(x, torch.ones(12), torch.ones(12), None, 2, 2, (10,) * 4,
                                                    math.sqrt(2), 0.2, None, False) is None


@pytest.fixture
def fresh_builds(monkeypatch, tmp_path):
    """An empty build cache and no libraries loaded yet in this process."""
    monkeypatch.setenv("STYLEGAN_EXPLORER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "_libraries", {})
    monkeypatch.setattr(native, "_reasons", {})
    return tmp_path


def test_without_a_compiler_the_reason_is_kept_and_logged(fresh_builds, monkeypatch, caplog):
    monkeypatch.setenv("CC", "")
    monkeypatch.setattr(native.shutil, "which", lambda name: None)
    with caplog.at_level("WARNING"):
        assert native.library("filtered_lrelu") is None
    assert "no C compiler" in native.unavailable_reason("filtered_lrelu")
    assert "using the eager path" in caplog.text


def test_a_source_that_does_not_compile_gives_no_library_and_the_compiler_message(fresh_builds, monkeypatch):
    require_native("filtered_lrelu")   # a compiler is here
    sources = fresh_builds / "sources"
    sources.mkdir()
    (sources / "broken.c").write_text("int f(void) { return undefined_name; }\n")
    monkeypatch.setattr(native, "SOURCE_DIR", sources)
    assert native.library("broken") is None
    assert "undefined_name" in native.unavailable_reason("broken")
    assert not list((fresh_builds / "cache" / "native").glob("*broken*"))   # no half-written library is left


def test_a_build_is_kept_and_reused(fresh_builds, monkeypatch):
    require_native("filtered_lrelu")
    sources = fresh_builds / "sources"
    sources.mkdir()
    (sources / "answer.c").write_text("int answer(void) { return 42; }\n")
    monkeypatch.setattr(native, "SOURCE_DIR", sources)
    assert native.library("answer").answer() == 42
    built = list((fresh_builds / "cache" / "native").glob("answer-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    monkeypatch.setattr(native, "_libraries", {})
    assert native.library("answer").answer() == 42
    assert built[0].stat().st_mtime_ns == stamp   # loaded from the cache, not built again
    # A changed source is a new build beside the old one.
    (sources / "answer.c").write_text("int answer(void) { return 43; }\n")
    monkeypatch.setattr(native, "_libraries", {})
    assert native.library("answer").answer() == 43
    assert len(list((fresh_builds / "cache" / "native").glob("answer-*.so"))) == 2


def test_threads_split_channels_in_whole_blocks():
    seen = []
    results = native.run_split(lambda begin, end: seen.append((begin, end)) or end - begin, 100, 16)
    assert sorted(seen)[0][0] == 0 and sum(results) == 100
    assert all(begin % 16 == 0 for begin, _ in seen)
    assert len(seen) == min(torch.get_num_threads(), 7)


def test_openmp_shares_pytorchs_runtime_and_python_threads_give_the_same_numbers(monkeypatch):
    """Built with OpenMP (gcc has it), the kernels run on the OpenMP runtime PyTorch loaded (one libgomp in the
    process, no second pool of threads); with the work split over Python threads instead (a compiler without
    OpenMP) every number is the same."""
    import os
    library = require_native("filtered_lrelu")
    if os.environ.get("CI") == "true":
        assert native.uses_openmp(library)
    if native.uses_openmp(library) and os.path.exists("/proc/self/maps"):
        with open("/proc/self/maps") as maps:
            runtimes = {line.split()[-1] for line in maps if "libgomp" in line}
        assert len(runtimes) == 1, runtimes
    g = torch.Generator().manual_seed(9)
    x = torch.randn([2, 45, 30, 30], generator=g)
    fu, fd = (f.float() for f in _random_filters(g, 2, 2, False))
    with torch.no_grad():
        shared = filtered_lrelu(x, fu, fd, None, up=2, down=2, padding=10, clamp=3.0)
        monkeypatch.setattr(native, "uses_openmp", lambda lib: False)
        split = filtered_lrelu(x, fu, fd, None, up=2, down=2, padding=10, clamp=3.0)
    assert torch.equal(shared, split)


@pytest.mark.parametrize("fused", [False, True])
def test_winograd_and_fir_kernels_split_over_python_threads_give_the_same_numbers(monkeypatch, fused):
    """Without OpenMP the kernels split their rows (or Winograd's fused blocks) over Python threads: the same
    numbers as one OpenMP call."""
    import kernels.winograd as winograd_module
    from kernels.fir_bias_act import fir_bias_act
    from kernels.winograd import polyphase_winograd_kernels, winograd_conv3x3, winograd_kernels
    require_native("winograd")
    require_native("fir_bias_act")
    monkeypatch.setattr(winograd_module, "FUSED_MIN_TILES", 0 if fused else 10 ** 9)
    monkeypatch.setattr(winograd_module, "FUSED_FEWEST_TILES", 24)
    monkeypatch.setattr(winograd_module, "FUSED_MOST_TILES", 24)         # several blocks to split
    passes = record_results(monkeypatch, winograd_module, "use_fused")
    g = torch.Generator().manual_seed(4)
    x = torch.randn([2, 24, 21, 18], generator=g)
    kernels = winograd_kernels(torch.randn([20, 24, 3, 3], generator=g))
    shuffled = polyphase_winograd_kernels(torch.randn([80, 24, 3, 3], generator=g), 2)
    noise = torch.randn([2, 1, 23, 20], generator=g)
    bias = torch.randn([24], generator=g)
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])

    def run():
        with torch.no_grad():
            return (winograd_conv3x3(x, kernels, padding=2, noise=noise, slope=0.2, clamp=4.0),
                    winograd_conv3x3(x, shuffled, padding=1, slope=0.2, shuffle=2),
                    fir_bias_act(x, f, (2, 1, 2, 1), 4.0, bias, noise[:, :, :21, :18], 1.5, 0.2, 2.0))

    shared = run()
    monkeypatch.setattr(native, "uses_openmp", lambda lib: False)
    split = run()
    assert all(s is not None for s in shared + split)
    assert all(torch.equal(a, b) for a, b in zip(shared, split))
    assert passes == [fused] * 4


@pytest.mark.parametrize("padding, noise_batch", [((1, 2, 1, 2), 1), ((-1, 3, 0, 2), 2), ((3, 3, 3, 3), 1)])
def test_fir_bias_act_matches_the_eager_composition(padding, noise_batch):
    """The second half of an upsampling layer: FIR filter (cropping and padding), bias, noise (one map or one per
    sample), leaky ReLU, clamp; 37 channels (a short last vector); a 2-D filter of rank 2 is declined."""
    from kernels.fir_bias_act import fir_bias_act
    from kernels.upfirdn2d import upfirdn2d_reference
    require_native("fir_bias_act")
    g = torch.Generator().manual_seed(sum(padding))
    x = torch.randn([2, 37, 19, 23], generator=g, dtype=torch.float64) * 3
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    bias = torch.randn([37], generator=g, dtype=torch.float64)
    filtered = upfirdn2d_reference(x, f / f.sum(), padding=list(padding), gain=4)
    noise = torch.randn([noise_batch, 1, *filtered.shape[2:]], generator=g, dtype=torch.float64)
    expected = torch.nn.functional.leaky_relu(filtered + bias.reshape(1, -1, 1, 1) + 1.5 * noise, 0.2).clamp(-5, 5)
    with torch.no_grad():
        actual = fir_bias_act(x.float(), (f / f.sum()).float(), padding, 4.0, bias.float(), noise.float(), 1.5,
                              0.2, 5.0)
    assert actual is not None and actual.shape == expected.shape
    assert (actual.double() - expected).abs().max().item() <= 1e-5
    assert (expected == 5).any() and ((expected < 0) & (expected > -5)).any()
    rank_two = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    with torch.no_grad():
        assert fir_bias_act(x.float(), rank_two, 0) is None


def test_fir_bias_act_stores_large_outputs_past_the_cache_with_the_same_numbers():
    """An output of 8 MiB or more whose pixels are whole 64-byte lines of channels (32) is stored past the cache;
    36 channels (not whole lines) through it: both equal the float64 composition within float32 rounding."""
    from kernels.fir_bias_act import fir_bias_act
    from kernels.upfirdn2d import upfirdn2d_reference
    require_native("fir_bias_act")
    g = torch.Generator().manual_seed(5)
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    for channels in (32, 36):
        x = torch.randn([1, channels, 259, 259], generator=g, dtype=torch.float64)
        bias = torch.randn([channels], generator=g, dtype=torch.float64)
        expected = torch.nn.functional.leaky_relu(
            upfirdn2d_reference(x, f / f.sum(), padding=[1, 1, 1, 1], gain=4) + bias.reshape(1, -1, 1, 1), 0.2)
        with torch.no_grad():
            actual = fir_bias_act(x.float().contiguous(memory_format=torch.channels_last), (f / f.sum()).float(),
                                  [1, 1, 1, 1], 4.0, bias.float(), None, 1.0, 0.2, -1.0)
        assert actual is not None and actual.numel() * 4 >= 8 << 20
        assert (actual.double() - expected).abs().max().item() <= 1e-5


def test_status_names_what_runs_and_why(fresh_builds, monkeypatch):
    """The Performance panel's line: before any kernel is needed, once one is loaded (and with which threads),
    when one did not build, without a compiler, and when turned off; it never builds anything itself."""
    require_native("filtered_lrelu")
    monkeypatch.setattr(native, "_libraries", {})
    monkeypatch.setenv("STYLEGAN_EXPLORER_CACHE", str(fresh_builds / "empty"))
    assert native.status() == "compiled on first use (none needed yet)"
    assert not (fresh_builds / "empty").exists()                       # asking built nothing
    native.library("filtered_lrelu")
    assert native.status().startswith("compiled: filtered_lrelu (")
    sources = fresh_builds / "sources"
    sources.mkdir()
    (sources / "broken.c").write_text("int f(void) { return undefined_name; }\n")
    monkeypatch.setattr(native, "SOURCE_DIR", sources)
    native.library("broken")
    assert native.status().startswith("eager paths: broken did not build (")
    monkeypatch.setattr(native, "_libraries", {})
    monkeypatch.setattr(native.shutil, "which", lambda name: None)
    assert "no C compiler found" in native.status()
    eager_only(monkeypatch)
    assert native.status() == "off (STYLEGAN_EXPLORER_NATIVE=0): eager paths"


@pytest.mark.parametrize("batch, channels, height, width, outputs", [
    (1, 32, 16, 16, 3),        # whole vectors of channels and of pixels
    (2, 37, 5, 7, 3),          # a short last vector of channels and of pixels, a batch
    (1, 5, 3, 3, 1),           # fewer channels than a vector
    (2, 64, 17, 9, 4),
])
@pytest.mark.parametrize("channels_last", [True, False])
def test_few_outputs_match_a_float64_pointwise_convolution(batch, channels, height, width, outputs, channels_last):
    """ToRGB's compiled pass: a 1x1 convolution with a kernel per sample, the bias and the clamp, from either layout
    to the plain layout; NaN stays NaN through the clamp, as in PyTorch."""
    from kernels.few_outputs import few_outputs
    require_native("few_outputs")
    g = torch.Generator().manual_seed(channels * 10 + height)
    x = torch.randn([batch, channels, height, width], generator=g)
    x[0, 1, 2, 2] = float("nan")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn([batch, outputs, channels], generator=g)
    bias = torch.randn([outputs], generator=g)
    expected = torch.stack([torch.nn.functional.conv2d(x[n:n + 1].double(), weight[n].double()[:, :, None, None])[0]
                            for n in range(batch)]) + bias.double()[None, :, None, None]
    for clamp in (None, 0.8):
        with torch.no_grad():
            actual = few_outputs(x, weight, bias, clamp)
        reference = expected if clamp is None else expected.clamp(-clamp, clamp)
        assert actual is not None and actual.shape == reference.shape and actual.is_contiguous()
        assert torch.equal(actual.isnan(), reference.isnan()) and actual.isnan().any()
        finite = ~reference.isnan()
        assert (actual.double()[finite] - reference[finite]).abs().max().item() <= 1e-5 * channels ** 0.5
    assert (expected.abs() > 0.8).any()


def test_few_outputs_declines_what_it_does_not_compute():
    from kernels.few_outputs import few_outputs
    require_native("few_outputs")
    x = torch.randn([1, 8, 4, 4])
    assert few_outputs(x, torch.randn([1, 5, 8])) is None                  # more outputs than the kernel holds
    assert few_outputs(x.double(), torch.randn([1, 3, 8])) is None
    assert few_outputs(x.requires_grad_(), torch.randn([1, 3, 8])) is None


def test_an_empty_image_runs_nothing(monkeypatch):
    """Zero rows or pixels split into no ranges (not a division by zero), with or without OpenMP."""
    from kernels.few_outputs import few_outputs
    require_native("few_outputs")
    assert native.run_split(lambda begin, end: (begin, end), 0, 16) == []
    monkeypatch.setattr(native, "uses_openmp", lambda lib: False)      # the Python threads' split
    with torch.no_grad():
        y = few_outputs(torch.randn([1, 8, 0, 5]), torch.randn([1, 3, 8]))
    assert y is not None and y.shape == (1, 3, 0, 5)
