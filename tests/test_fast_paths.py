"""The inference fast paths (fused modulated convolution, channels-last, polyphase upsampling, cached weight work,
preview precisions) held against the plain reference kernels, on random weights."""
import dataclasses
import math

import pytest
import torch

import kernels.modulated_conv as modulated_conv
from kernels import native
from explorer.networks import stylegan2
from explorer.networks.common import DerivedTensor, bfloat16_is_fast_on_cpu, check_compute_dtype
from explorer.networks.stylegan2 import Generator
from kernels import bias_act_reference, modulated_conv2d_reference, setup_filter
from kernels.modulated_conv import (modulated_conv2d_bias_act, modulated_conv2d_bias_act_reference,
                                    polyphase_kernels, prepare_weight)
import kernels.winograd as winograd_module
from kernels.winograd import polyphase_winograd_kernels, winograd_kernels
from tests.fixtures.images import psnr_8bit
from tests.fixtures.native import eager_only, record_results, require_native
from tests.fixtures.precision import emulate_bfloat16_units, pretend_no_bfloat16_units

torch.set_num_threads(1)
EXACT = 1e-4          # float32 fast path against the reference (DEVELOPERS.md)
HAS_BF16 = bfloat16_is_fast_on_cpu()


def force_winograd(monkeypatch, on: bool) -> None:
    """Winograd's algorithm for every 3x3 stride-1 float32 layer (on) or for none, whatever the thresholds."""
    monkeypatch.setattr(modulated_conv, "WINOGRAD_MIN_CHANNELS", 0 if on else 10 ** 6)
    monkeypatch.setattr(modulated_conv, "WINOGRAD_MIN_SIDE", 0 if on else 10 ** 6)
    monkeypatch.setattr(modulated_conv, "WINOGRAD_COMPILED_THRESHOLDS", ())
    monkeypatch.setattr(modulated_conv, "WINOGRAD_FUSED_MIN_CHANNELS", 0 if on else 10 ** 6)


@pytest.fixture(params=["plain", "channels_last+transposed", "channels_last+transposed-eager",
                        "channels_last+polyphase", "polyphase-winograd", "winograd", "winograd-fused",
                        "winograd-eager", "matrix"])
def layout(request, monkeypatch):
    """Each kernel test runs with the plain layout and transposed upsampling; channels-last with transposed
    upsampling (its FIR filter and the work after it compiled, and eager); channels-last with polyphase kernels
    (as one direct convolution, and by Winograd's algorithm in the compiled fused pass) forced on for every
    size; with Winograd's algorithm forced on for every 3x3 stride-1 layer: compiled, in separate passes
    around PyTorch's products and in the fused pass, and eager; and with every 3x3 and upsampling layer as one
    matrix product with its stored weight (the small images' path)."""
    matrix = request.param == "matrix"
    monkeypatch.setattr(modulated_conv, "MATRIX_MIN_CHANNELS", 0 if matrix else 10 ** 6)
    monkeypatch.setattr(modulated_conv, "MATRIX_MAX_SIDE", 10 ** 6)
    monkeypatch.setattr(modulated_conv, "MATRIX_MAX_SIDE_UP", 10 ** 6)
    plain = request.param == "plain"
    transposed = request.param.startswith("channels_last+transposed")
    monkeypatch.setattr(modulated_conv, "CHANNELS_LAST_MIN_SIDE", 10 ** 6 if plain else 0)
    monkeypatch.setattr(modulated_conv, "POLYPHASE_MIN_SIDE", 10 ** 6 if plain or transposed or matrix else 0)
    if request.param == "channels_last+transposed":
        require_native("fir_bias_act")
    monkeypatch.setattr(modulated_conv, "POLYPHASE_WINOGRAD", request.param == "polyphase-winograd")
    force_winograd(monkeypatch, request.param.startswith("winograd"))
    if request.param in ("winograd", "winograd-fused", "polyphase-winograd"):
        require_native("winograd")
    fused = request.param in ("winograd-fused", "polyphase-winograd")
    monkeypatch.setattr(winograd_module, "FUSED_MIN_TILES", 0 if fused else 10 ** 9)
    monkeypatch.setattr(winograd_module, "FUSED_MAX_KERNEL_BYTES", 10 ** 12 if fused else 0)
    if request.param in ("winograd-eager", "channels_last+transposed-eager"):
        eager_only(monkeypatch)
    return request.param


def _layer_inputs(batch, in_channels, out_channels, size, up, kernel, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn([batch, in_channels, size, size], generator=g)
    weight = torch.randn([out_channels, in_channels, kernel, kernel], generator=g)
    styles = torch.randn([batch, in_channels], generator=g) + 1
    bias = torch.randn([out_channels], generator=g)
    noise = torch.randn([1, 1, size * up, size * up], generator=g) * 0.5
    return x, weight, styles, bias, noise


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("size", [4, 9])
@pytest.mark.parametrize("clamp", [None, 0.7])
@pytest.mark.parametrize("with_noise", [False, True])
def test_fused_layer_matches_reference(layout, monkeypatch, batch, up, size, clamp, with_noise):
    x, weight, styles, bias, noise = _layer_inputs(batch, 6, 5, size, up, 3)
    noise = noise if with_noise else None
    f = setup_filter([1, 3, 3, 1])
    options = dict(noise=noise, up=up, padding=1, resample_filter=f, flip_weight=(up == 1), act="lrelu",
                   gain=math.sqrt(2) * 0.7, clamp=clamp)
    prepared = prepare_weight(weight, f, up=up, padding=1, flip_weight=(up == 1), in_size=size)
    if up > 1:
        assert prepared.polyphase is not None and prepared.polyphase.kernels.shape == (5 * 4, 6, 3, 3)
    if layout.startswith("winograd") and modulated_conv.use_winograd(x, weight, up, torch.float32):
        prepared = dataclasses.replace(prepared, winograd=winograd_kernels(weight))
    shuffled = []
    if layout == "polyphase-winograd" and up > 1:
        assert modulated_conv.use_polyphase_winograd(prepared.polyphase, torch.float32)
        prepared = dataclasses.replace(prepared, polyphase_winograd=polyphase_winograd_kernels(
            prepared.polyphase.kernels, up))
        compiled = winograd_module._winograd_native
        monkeypatch.setattr(winograd_module, "_winograd_native",
                            lambda *a: shuffled.append(a[-1]) or compiled(*a))
    if layout == "matrix":
        assert modulated_conv.use_matrix(x, weight, up, torch.float32, 1, f, up == 1)
        prepared = dataclasses.replace(prepared, matrix=modulated_conv.matrix_weight(weight, up, up == 1))
    products = record_results(monkeypatch, modulated_conv, "_by_matrix", lambda result: result.shape)
    fused = []
    if layout == "channels_last+transposed":
        compiled_fir = modulated_conv.fir_bias_act
        monkeypatch.setattr(modulated_conv, "fir_bias_act", lambda *a: fused.append(1) or compiled_fir(*a))
    passes = record_results(monkeypatch, winograd_module, "use_fused")   # which Winograd passes ran
    expected = modulated_conv2d_bias_act_reference(x, weight, styles, bias, **options)
    actual = modulated_conv2d_bias_act(x, weight, styles, bias, prepared=prepared, **options)
    if layout == "winograd-fused" and up == 1 or layout == "polyphase-winograd" and up > 1:
        assert passes == [True]
    if layout == "winograd" and up == 1:
        assert passes == [False]
    assert shuffled == ([up] if layout == "polyphase-winograd" and up > 1 else [])
    assert len(fused) == (1 if layout == "channels_last+transposed" and up > 1 else 0)
    assert products == ([actual.shape] if layout == "matrix" else [])
    assert actual.shape == expected.shape == (batch, 5, size * up, size * up)
    assert (actual - expected).abs().max() <= EXACT
    if clamp is not None:
        assert expected.abs().max() == pytest.approx(clamp)   # the clamp is exercised, not idle
    if layout not in ("plain", "channels_last+transposed-eager") and not (layout == "matrix" and up == 1):
        assert actual.is_contiguous(memory_format=torch.channels_last)  # (the eager FIR pass keeps its layout)


@pytest.mark.parametrize("flip_weight", [False, True])
def test_fused_layer_without_prepared_weight_and_flips(layout, flip_weight):
    x, weight, styles, bias, noise = _layer_inputs(2, 4, 3, 7, 1, 3, seed=5)
    options = dict(noise=noise, padding=1, flip_weight=flip_weight, act="lrelu", clamp=None)
    expected = modulated_conv2d_bias_act_reference(x, weight, styles, bias, **options)
    actual = modulated_conv2d_bias_act(x, weight, styles, bias, **options)
    assert (actual - expected).abs().max() <= EXACT


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("demodulate", [False, True])
def test_fused_torgb_matches_reference(layout, monkeypatch, compiled, demodulate):
    """ToRGB: 1x1, not demodulated (and demodulated), linear, clamped; by the compiled few-outputs pass (checked to
    have answered) and without the compiled kernels."""
    if compiled:
        monkeypatch.delenv(native.ENVIRONMENT_SWITCH, raising=False)     # the eager layouts turned them off
        require_native("few_outputs")
        answered = record_results(monkeypatch, modulated_conv, "few_outputs", lambda y: y is not None)
    else:
        eager_only(monkeypatch)
    x, weight, styles, bias, _ = _layer_inputs(2, 8, 3, 6, 1, 1, seed=2)
    options = dict(demodulate=demodulate, act="linear", clamp=1.5 if not demodulate else 0.9)
    expected = modulated_conv2d_bias_act_reference(x, weight, styles, bias, **options)
    actual = modulated_conv2d_bias_act(x, weight, styles, bias, **options)
    assert (actual - expected).abs().max() <= EXACT
    assert expected.abs().max() == pytest.approx(options["clamp"])
    if compiled:
        assert answered == [True] and actual.is_contiguous()


def test_which_layers_run_as_one_matrix_product():
    """The shipped rule: 3x3 layers of 256 channels or more up to 8 px, upsampling layers up to 16 px input, float32
    on the CPU only; not where the transposed convolution would be cropped."""
    f = setup_filter([1, 3, 3, 1])
    wide, narrow = torch.zeros([512, 512, 3, 3]), torch.zeros([128, 128, 3, 3])
    at = {side: torch.zeros([1, 512, side, side]) for side in (4, 8, 16, 32)}
    use = modulated_conv.use_matrix
    assert use(at[4], wide, 1, torch.float32, 1, f, True) and use(at[8], wide, 1, torch.float32, 1, f, True)
    assert not use(at[16], wide, 1, torch.float32, 1, f, True)
    assert use(at[16], wide, 2, torch.float32, 1, f, False) and not use(at[32], wide, 2, torch.float32, 1, f, False)
    assert not use(at[4], narrow, 1, torch.float32, 1, f, True)
    assert not use(at[4], wide, 1, torch.bfloat16, 1, f, True)
    assert not use(at[4], wide, 2, torch.float32, -2, f, False)        # a cropped transposed convolution


def test_fused_layer_refuses_what_it_cannot_reorder():
    x, weight, styles, bias, _ = _layer_inputs(1, 2, 2, 4, 1, 3)
    with pytest.raises(ValueError, match="linear or lrelu"):
        modulated_conv2d_bias_act(x, weight, styles, bias, act="tanh")
    with pytest.raises(ValueError, match="positive gain"):
        modulated_conv2d_bias_act(x, weight, styles, bias, gain=-1.0)


def test_polyphase_kernels_are_the_composed_convolution():
    """Each phase kernel reproduces the transposed-convolution-plus-FIR output at its phase, by itself."""
    x, weight, _, _, _ = _layer_inputs(1, 3, 2, 5, 2, 3, seed=7)
    f = setup_filter([1, 3, 3, 1])
    polyphase = polyphase_kernels(weight, f, 2, 1, False, 5)
    expected = modulated_conv.conv2d_resample_reference(x, weight, f=f, up=2, padding=1, flip_weight=False)
    phases = torch.nn.functional.conv2d(x, polyphase.kernels, padding=1)       # [1, 2 * 4, 5, 5]
    for py in range(2):
        for px in range(2):
            phase = phases[:, [o * 4 + py * 2 + px for o in range(2)]]
            assert (phase - expected[:, :, py::2, px::2]).abs().max() <= EXACT
    assert polyphase_kernels(weight, None, 2, 1, False, 5) is None


def test_preview_precision_of_the_fused_layer():
    x, weight, styles, bias, noise = _layer_inputs(1, 16, 8, 12, 2, 3, seed=3)
    f = setup_filter([1, 3, 3, 1])
    options = dict(noise=noise, up=2, padding=1, resample_filter=f, flip_weight=False, act="lrelu", clamp=None)
    prepared = prepare_weight(weight, f, up=2, padding=1, flip_weight=False, in_size=12)
    expected = modulated_conv2d_bias_act_reference(x, weight, styles, bias, **options)
    preview = modulated_conv2d_bias_act(x, weight, styles, bias, prepared=prepared, compute_dtype=torch.bfloat16,
                                        **options)
    assert preview.dtype == torch.bfloat16
    error = (preview.float() - expected).abs().max() / expected.abs().max()
    assert 0 < error < 0.02        # bfloat16 rounding (8 bits of mantissa), not exact and not wrong


# -- whole networks ---------------------------------------------------------------------------------------------

def _network(architecture="skip", resolution=32, seed=0):
    torch.manual_seed(seed)
    G = Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=resolution, img_channels=3, channel_base=256,
                  channel_max=32, architecture=architecture, conv_clamp=0.9, mapping_kwargs=dict(num_layers=2))
    with torch.no_grad():
        for name, parameter in G.synthesis.named_parameters():
            if name.endswith("noise_strength") or (name.endswith(".bias") and ".affine." not in name):
                parameter.copy_(torch.randn_like(parameter) * 0.3)
    return G.eval().requires_grad_(False)


@pytest.fixture
def reference_kernels(monkeypatch):
    """A context in which StyleGAN2 layers run the plain reference kernels (per-sample modulated convolution,
    step-by-step bias and activation), the path NVlabs' code takes."""
    import contextlib

    def reference_modulated_conv2d(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                                   demodulate=True, flip_weight=True, fused_modconv=True):
        return modulated_conv2d_reference(x, weight, styles, noise=noise, up=up, down=down, padding=padding,
                                          resample_filter=resample_filter, demodulate=demodulate,
                                          flip_weight=flip_weight)

    @contextlib.contextmanager
    def context():
        with monkeypatch.context() as patch:
            patch.setattr(stylegan2, "inference_only", lambda *tensors: False)
            patch.setattr(stylegan2, "modulated_conv2d", reference_modulated_conv2d)
            patch.setattr(stylegan2, "bias_act", bias_act_reference)
            yield
    return context


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_stylegan2_fast_synthesis_matches_reference(layout, reference_kernels, monkeypatch, architecture):
    G = _network(architecture)
    ws = G.mapping(torch.randn([2, 16], generator=torch.Generator().manual_seed(1)), None)
    with torch.no_grad():
        fast = G.synthesis(ws, noise_mode="const", capture="all")
        with reference_kernels():
            reference = G.synthesis(ws, noise_mode="const", capture="all")
    assert fast.image.is_contiguous() and fast.image.dtype == torch.float32
    assert (fast.image - reference.image).abs().max() <= EXACT
    assert reference.image.abs().max() > 0.1
    for name, activation in reference.activations.items():
        assert (fast.activations[name] - activation).abs().max() <= EXACT, name


def test_gradients_take_the_reference_path():
    """With a gradient to compute the fused (in-place) kernels stay out; values agree with the no-grad path."""
    G = _network()
    ws = G.mapping(torch.randn([1, 16]), None).requires_grad_(True)
    image = G.synthesis(ws, noise_mode="const").image
    image.square().sum().backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
    with torch.no_grad():
        assert (G.synthesis(ws, noise_mode="const").image - image).abs().max() <= EXACT


def test_stylegan3_gradients_through_styles_take_the_direct_path(monkeypatch):
    """A frozen StyleGAN3 whose styles need a gradient (a style delta being optimised): the Winograd layers
    (forced on for every layer) stay out, the gradient reaches the delta."""
    from explorer.networks import stylegan3
    force_winograd(monkeypatch, True)
    torch.manual_seed(0)
    G = stylegan3.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, channel_base=256,
                            channel_max=16, num_layers=4, num_critical=1,
                            mapping_kwargs=dict(num_layers=2)).eval().requires_grad_(False)
    ws = G.mapping(torch.randn([1, 16]), None)
    layer = G.synthesis.layer_names[2]
    delta = torch.zeros([getattr(G.synthesis, layer).in_channels], requires_grad=True)
    image = G.synthesis(ws, style_deltas={layer: delta}).image
    image.square().sum().backward()
    assert delta.grad is not None and delta.grad.abs().sum() > 0
    with torch.no_grad():
        assert (G.synthesis(ws, style_deltas={layer: delta}).image - image).abs().max() <= EXACT


@pytest.mark.parametrize("winograd", [False, True])
def test_cached_weight_work_follows_a_new_state_dict(monkeypatch, winograd):
    """The per-weight work (weight energies, polyphase kernels, Winograd kernels, scaled dense weights) is redone
    when a state dict is loaded into the same modules."""
    force_winograd(monkeypatch, winograd)
    G, other = _network(seed=0), _network(seed=1)
    ws = other.mapping(torch.randn([1, 16], generator=torch.Generator().manual_seed(2)), None)
    with torch.no_grad():
        before = G.synthesis(ws, noise_mode="const").image
        G.load_state_dict(other.state_dict())
        after = G.synthesis(ws, noise_mode="const").image
        expected = other.synthesis(ws, noise_mode="const").image
        assert (after - expected).abs().max() <= EXACT
        assert (after - before).abs().max() > 0.1
        assert (G.mapping(torch.ones([1, 16]), None) - other.mapping(torch.ones([1, 16]), None)).abs().max() == 0


def test_derived_tensor_recomputes_on_change_only():
    calls = []

    def derive(source, scale=1.0):
        calls.append(scale)
        return source * scale

    weight = torch.ones(3)
    cache = DerivedTensor(derive)
    assert torch.equal(cache.get(weight, scale=2.0), torch.full([3], 2.0))
    cache.get(weight, scale=2.0)
    assert calls == [2.0]
    weight.add_(1)
    assert torch.equal(cache.get(weight, scale=2.0), torch.full([3], 4.0))
    cache.get(weight, scale=3.0)
    assert calls == [2.0, 2.0, 3.0]


# -- the preview precision of a synthesis call ------------------------------------------------------------------

def test_compute_dtype_float32_is_the_exact_path():
    G = _network()
    ws = G.mapping(torch.randn([1, 16]), None)
    with torch.no_grad():
        assert torch.equal(G.synthesis(ws, compute_dtype=torch.float32).image, G.synthesis(ws).image)


@pytest.fixture
def bfloat16_units(monkeypatch):
    """The preview's numbers are tested on every CPU: emulated where it has no bfloat16 units."""
    if not HAS_BF16:
        emulate_bfloat16_units(monkeypatch)


def test_bfloat16_is_refused_without_its_units(monkeypatch):
    from explorer.networks.stylegan3 import Generator as StyleGAN3
    pretend_no_bfloat16_units(monkeypatch)
    torch.manual_seed(0)
    sg3 = StyleGAN3(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, channel_base=256,
                    channel_max=16, num_layers=4, num_critical=1, mapping_kwargs=dict(num_layers=2)).eval()
    for G in (_network(), sg3):
        ws = G.mapping(torch.randn([1, 16]), None)
        with pytest.raises(ValueError, match="needs a CPU with AVX-512 BF16 or AMX"):
            G.synthesis(ws, compute_dtype=torch.bfloat16)


def test_bfloat16_preview_of_stylegan2(bfloat16_units):
    """The preview is close to the exact image, with its activations in bfloat16."""
    G = _network(resolution=64)
    ws = G.mapping(torch.randn([2, 16], generator=torch.Generator().manual_seed(4)), None)
    with torch.no_grad():
        exact = G.synthesis(ws, noise_mode="const").image
        preview = G.synthesis(ws, noise_mode="const", compute_dtype=torch.bfloat16, capture=["b64.conv1"])
    assert preview.image.dtype == torch.float32 and preview.image.is_contiguous()
    assert preview.activations["b64.conv1"].dtype == torch.bfloat16
    difference = (preview.image - exact).abs().max()
    assert 0 < difference < 0.2
    assert psnr_8bit(preview.image, exact) > 30


def test_bfloat16_preview_of_stylegan3(bfloat16_units):
    from explorer.networks.stylegan3 import Generator as StyleGAN3
    torch.manual_seed(0)
    G = StyleGAN3(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, channel_base=256,
                  channel_max=16, num_layers=4, num_critical=1, mapping_kwargs=dict(num_layers=2)).eval()
    ws = G.mapping(torch.randn([1, 16]), None)
    with torch.no_grad():
        exact = G.synthesis(ws).image
        preview = G.synthesis(ws, compute_dtype=torch.bfloat16).image
    assert preview.dtype == torch.float32
    assert 0 < (preview - exact).abs().max() < 0.1 * exact.abs().max()


def test_unavailable_precisions_are_refused_by_name():
    G = _network()
    ws = G.mapping(torch.randn([1, 16]), None)
    with pytest.raises(ValueError, match="float16 is not available on cpu"):
        G.synthesis(ws, compute_dtype=torch.float16)
    with pytest.raises(ValueError, match="float64 is not available on cpu"):
        check_compute_dtype(torch.float64, torch.device("cpu"))
    check_compute_dtype(None, torch.device("cpu"))
    check_compute_dtype(torch.float16, torch.device("cuda"))    # checked by name, no GPU needed


def test_stylegan1_refuses_a_preview_precision():
    from explorer.networks.stylegan1 import Generator as StyleGAN1
    torch.manual_seed(0)
    G = StyleGAN1(z_dim=16, c_dim=0, w_dim=16, img_resolution=8, img_channels=3, fmap_base=64, fmap_max=16,
                  mapping_kwargs=dict(num_layers=2, layer_features=16)).eval()
    ws = G.mapping(torch.randn([1, 16]), None)
    for dtype in (torch.bfloat16, torch.float16):      # refused by the network, whatever this CPU has
        with pytest.raises(ValueError, match="stylegan1 networks compute in float32 only"):
            G.synthesis(ws, compute_dtype=dtype)


@pytest.mark.parametrize("radial", [False, True])
def test_stylegan3_channels_last_matches_plain_layout(monkeypatch, radial):
    from explorer.networks import stylegan3
    torch.manual_seed(0)
    extra = dict(conv_kernel=1, use_radial_filters=True) if radial else {}
    G = stylegan3.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, channel_base=256,
                            channel_max=16, num_layers=4, num_critical=1, mapping_kwargs=dict(num_layers=2),
                            **extra).eval()
    ws = G.mapping(torch.randn([2, 16]), None)
    with torch.no_grad():
        monkeypatch.setattr(stylegan3, "CHANNELS_LAST_MIN_SIDE", 10 ** 6)
        plain = G.synthesis(ws).image
        monkeypatch.setattr(stylegan3, "CHANNELS_LAST_MIN_SIDE", 0)
        channels_last = G.synthesis(ws, capture="all")
    assert (channels_last.image - plain).abs().max() <= EXACT
    assert plain.abs().max() > 0.01


@pytest.mark.parametrize("radial", [False, True])
def test_stylegan3_winograd_matches_the_direct_convolution(monkeypatch, radial):
    """Every 3x3 layer of a StyleGAN3-T network by Winograd's algorithm (R's 1x1 layers keep the direct one),
    against the direct convolution, every activation; a tracked input magnitude other than 1 included."""
    from explorer.networks import stylegan3
    torch.manual_seed(0)
    extra = dict(conv_kernel=1, use_radial_filters=True) if radial else {}
    G = stylegan3.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, channel_base=256,
                            channel_max=16, num_layers=4, num_critical=1, mapping_kwargs=dict(num_layers=2),
                            **extra).eval()
    with torch.no_grad():
        for name, buffer in G.synthesis.named_buffers():
            if name.endswith("magnitude_ema"):
                buffer.fill_(0.6)
    ws = G.mapping(torch.randn([2, 16]), None)
    calls = []
    winograd_conv3x3 = stylegan3.winograd_conv3x3
    monkeypatch.setattr(stylegan3, "winograd_conv3x3", lambda *a, **k: calls.append(1) or winograd_conv3x3(*a, **k))
    with torch.no_grad():
        force_winograd(monkeypatch, False)
        direct = G.synthesis(ws, capture="all")
        assert not calls
        force_winograd(monkeypatch, True)
        winograd = G.synthesis(ws, capture="all")
    assert len(calls) == (0 if radial else 4)
    assert (winograd.image - direct.image).abs().max() <= EXACT
    for name, activation in direct.activations.items():
        assert (winograd.activations[name] - activation).abs().max() <= EXACT, name
    assert direct.image.abs().max() > 0.01
