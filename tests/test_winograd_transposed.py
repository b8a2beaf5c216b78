"""Winograd's algorithm for the stride-2 transposed convolution of StyleGAN2's upsampling layers (kernels/winograd.py,
kernels/native/winograd_transposed.h) held against a float64 transposed convolution, and the upsampling layer that
uses it against the reference composition."""
import pytest
import torch
import torch.nn.functional as F

import kernels.modulated_conv as modulated_conv
import kernels.winograd as winograd_module
from kernels import setup_filter
from kernels.winograd import transposed_winograd_kernels, winograd_transposed_conv, winograd_transposed_conv_eager
from tests.fixtures.native import eager_only, record_answers, require_native

torch.set_num_threads(2)   # the compiled passes split their tile rows and blocks between two threads
EXACT = 1e-4               # float32 fast path against the reference (DEVELOPERS.md)
# The transforms' factors (up to 8 and 1/6) round more than a direct float32 sum does (up to 17x its error on these
# few-channel shapes): measured at most 2.4e-6 of the output's largest value; a wrong coefficient is off by O(1).
RELATIVE = 1e-5


@pytest.fixture(params=["compiled-fused", "compiled-separate", "eager"])
def transposed(request, monkeypatch):
    """winograd_transposed_conv's three forms, as one function of (x, kernels, in_scale, out_scale); the compiled
    ones checked to have answered."""
    if request.param == "eager":
        return winograd_transposed_conv_eager
    require_native("winograd")
    fused = request.param == "compiled-fused"

    def compiled(x, kernels, in_scale=None, out_scale=None):
        z = winograd_transposed_conv(x, kernels, in_scale, out_scale, fused=fused)
        assert z is not None
        return z
    return compiled


def _plain(x, weight, flip_weight, in_scale, out_scale):
    """The whole stride-2 transposed convolution in float64, as kernels/modulated_conv.py's upsampling layers
    define it: output 2u + k gets input u times weight[o, i, k] (flip_weight=False), or the flipped tap."""
    x = x.double()
    if in_scale is not None:
        x = x * in_scale.double()[:, :, None, None]
    taps = weight.double().flip([2, 3]) if flip_weight else weight.double()
    z = F.conv_transpose2d(x, taps.transpose(0, 1), stride=2)
    if out_scale is not None:
        z = z * out_scale.double()[:, :, None, None]
    return z


@pytest.mark.parametrize("batch, in_channels, out_channels, height, width", [
    (1, 8, 16, 8, 8),          # whole input tiles (the outputs' last tile holds one row and column)
    (2, 5, 7, 9, 13),          # channels that end in part of a vector, not square, a batch
    (1, 19, 33, 3, 4),         # smaller than one tile
    (2, 16, 24, 40, 36),       # many tiles: the fused pass in several blocks, the last one partial
])
@pytest.mark.parametrize("flip_weight", [False, True])
@pytest.mark.parametrize("scaled", [False, True])
def test_matches_a_float64_transposed_convolution(transposed, batch, in_channels, out_channels, height, width,
                                                  flip_weight, scaled):
    g = torch.Generator().manual_seed(in_channels * 100 + height)
    x = torch.randn([batch, in_channels, height, width], generator=g)
    weight = torch.randn([out_channels, in_channels, 3, 3], generator=g)
    in_scale = torch.rand([batch, in_channels], generator=g) + 0.5 if scaled else None
    out_scale = torch.rand([batch, out_channels], generator=g) + 0.5 if scaled else None
    expected = _plain(x, weight, flip_weight, in_scale, out_scale)
    actual = transposed(x, transposed_winograd_kernels(weight, flip_weight), in_scale, out_scale)
    assert actual.shape == expected.shape == (batch, out_channels, 2 * height + 1, 2 * width + 1)
    assert actual.dtype == torch.float32 and actual.is_contiguous(memory_format=torch.channels_last)
    scale = expected.abs().max().item()
    assert scale > 1
    error = (actual.double() - expected).abs().max().item()
    assert error <= RELATIVE * scale


@pytest.mark.parametrize("out_channels", [32, 36])
def test_large_outputs_past_the_cache(transposed, out_channels):
    """A transposed convolution of 8 MiB or more whose pixels are whole 64-byte lines of channels (32) is stored
    past the cache; 36 channels through it: the same numbers as the float64 convolution within the tolerance."""
    g = torch.Generator().manual_seed(out_channels)
    x = torch.randn([1, 8, 128, 128], generator=g)
    weight = torch.randn([out_channels, 8, 3, 3], generator=g)
    expected = _plain(x, weight, False, None, None)
    actual = transposed(x, transposed_winograd_kernels(weight, False))
    assert actual.numel() * 4 >= 8 << 20
    assert (actual.double() - expected).abs().max().item() <= RELATIVE * expected.abs().max().item()


def test_reads_either_layout(transposed):
    g = torch.Generator().manual_seed(3)
    x = torch.randn([1, 20, 10, 10], generator=g)
    weight = torch.randn([12, 20, 3, 3], generator=g)
    kernels = transposed_winograd_kernels(weight, False)
    plain = transposed(x, kernels)
    channels_last = transposed(x.contiguous(memory_format=torch.channels_last), kernels)
    assert torch.equal(plain, channels_last)


def test_kernels_are_3x3_only():
    with pytest.raises(ValueError, match="3x3"):
        transposed_winograd_kernels(torch.zeros([4, 4, 4, 4]), False)


def test_declines_what_it_does_not_compute():
    """Gradients, other types and devices go back to the caller (None), which then runs oneDNN's path."""
    require_native("winograd")
    weight = torch.randn([4, 3, 3, 3])
    kernels = transposed_winograd_kernels(weight, False)
    x = torch.randn([1, 3, 5, 5])
    assert winograd_transposed_conv(x.double(), kernels) is None
    assert winograd_transposed_conv(x.requires_grad_(), kernels) is None
    with torch.no_grad():
        assert winograd_transposed_conv(x, kernels) is not None


def test_which_passes_the_shipped_thresholds_choose():
    """The fused pass for layers whose 36 kernels fit FUSED_TRANSPOSED_MAX_KERNEL_BYTES (config F's 128 -> 64 and
    256 -> 128 channel layers), the separate passes for 512 input channels."""
    tiles = (2 * 64 + 1 + 7) // 8
    assert winograd_module.use_fused_transposed(128, 64, tiles * tiles)
    assert winograd_module.use_fused_transposed(256, 128, tiles * tiles)
    assert not winograd_module.use_fused_transposed(512, 256, tiles * tiles)
    assert not winograd_module.use_fused_transposed(128, 64, 16)


def _layer(batch, size, in_channels=19, out_channels=21, noise_batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn([batch, in_channels, size, size], generator=g)
    weight = torch.randn([out_channels, in_channels, 3, 3], generator=g)
    styles = torch.randn([batch, in_channels], generator=g) + 1
    bias = torch.randn([out_channels], generator=g)
    noise = torch.randn([noise_batch, 1, 2 * size, 2 * size], generator=g)
    return x, weight, styles, bias, noise


@pytest.mark.parametrize("batch, size, noise_batch, demodulate, padding", [
    (1, 32, 1, True, 1), (2, 33, 2, True, 1), (2, 40, 1, False, 1),
    (1, 32, 1, True, 0),      # another padding of the FIR filter after it (the output 2 px smaller)
])
def test_an_upsampling_layer(monkeypatch, batch, size, noise_batch, demodulate, padding):
    """A StyleGAN2 upsampling layer by the transposed convolution's Winograd form, then the FIR filter with the
    bias, noise, leaky ReLU and clamp: the reference layer's numbers (the compiled form checked to have run)."""
    require_native("winograd")
    answered = record_answers(monkeypatch, modulated_conv, "winograd_transposed_conv")
    x, weight, styles, bias, noise = _layer(batch, size, noise_batch=noise_batch)
    out_size = 2 * size + 2 * padding - 2
    noise = noise[..., :out_size, :out_size]
    f = setup_filter([1, 3, 3, 1])
    options = dict(noise=noise, up=2, padding=padding, resample_filter=f, flip_weight=False, act="lrelu",
                   clamp=1.2, demodulate=demodulate)
    assert modulated_conv.use_transposed_winograd(x, weight, 2, torch.float32, padding, f)
    prepared = modulated_conv.PreparedWeight(modulated_conv.prepare_weight(weight).energy,
                                             transposed_winograd=transposed_winograd_kernels(weight, False))
    expected = modulated_conv.modulated_conv2d_bias_act_reference(x, weight, styles, bias, **options)
    actual = modulated_conv.modulated_conv2d_bias_act(x, weight, styles, bias, prepared=prepared, **options)
    assert answered == [True]
    assert actual.shape == expected.shape == (batch, 21, out_size, out_size)
    assert (actual - expected).abs().max() <= EXACT
    assert (expected == 1.2).any() and ((expected < 0) & (expected > -1.2)).any()


def test_the_layer_falls_back_where_nothing_is_compiled(monkeypatch):
    """With the compiled kernels off the same prepared layer runs oneDNN's transposed convolution: same numbers."""
    eager_only(monkeypatch)
    answered = record_answers(monkeypatch, modulated_conv, "winograd_transposed_conv")
    x, weight, styles, bias, noise = _layer(1, 32)
    f = setup_filter([1, 3, 3, 1])
    options = dict(noise=noise, up=2, padding=1, resample_filter=f, flip_weight=False, act="lrelu")
    prepared = modulated_conv.PreparedWeight(modulated_conv.prepare_weight(weight).energy,
                                             transposed_winograd=transposed_winograd_kernels(weight, False))
    expected = modulated_conv.modulated_conv2d_bias_act_reference(x, weight, styles, bias, **options)
    actual = modulated_conv.modulated_conv2d_bias_act(x, weight, styles, bias, prepared=prepared, **options)
    assert answered == [False]
    assert (actual - expected).abs().max() <= EXACT


def test_a_layer_that_would_be_cropped_ignores_the_prepared_form(monkeypatch):
    """A PreparedWeight carrying the transposed convolution's Winograd form for a padding that crops it (made
    elsewhere than use_transposed_winograd allows) is not used: the layer runs oneDNN's path, the right size."""
    require_native("winograd")
    answered = record_answers(monkeypatch, modulated_conv, "winograd_transposed_conv")
    x, weight, styles, bias, _ = _layer(1, 32)
    f = setup_filter([1, 3, 3, 1])
    options = dict(up=2, padding=-2, resample_filter=f, flip_weight=False, act="lrelu")
    prepared = modulated_conv.PreparedWeight(modulated_conv.prepare_weight(weight).energy,
                                             transposed_winograd=transposed_winograd_kernels(weight, False),
                                             matrix=modulated_conv.matrix_weight(weight, 2, False))
    expected = modulated_conv.modulated_conv2d_bias_act_reference(x, weight, styles, bias, **options)
    actual = modulated_conv.modulated_conv2d_bias_act(x, weight, styles, bias, prepared=prepared, **options)
    assert answered == []
    assert actual.shape == expected.shape and (actual - expected).abs().max() <= EXACT


def test_which_layers_take_it():
    require_native("winograd")
    f = setup_filter([1, 3, 3, 1])
    weight = torch.zeros([8, 8, 3, 3])
    at = {side: torch.zeros([1, 8, side, side]) for side in (16, 32, 256, 512)}
    assert modulated_conv.use_transposed_winograd(at[32], weight, 2, torch.float32, 1, f)
    assert modulated_conv.use_transposed_winograd(at[256], weight, 2, torch.float32, 1, f)
    assert not modulated_conv.use_transposed_winograd(at[16], weight, 2, torch.float32, 1, f)      # too small
    assert not modulated_conv.use_transposed_winograd(at[512], weight, 2, torch.float32, 1, f)     # polyphase
    assert not modulated_conv.use_transposed_winograd(at[32], weight, 2, torch.bfloat16, 1, f)
    assert not modulated_conv.use_transposed_winograd(at[32], weight, 1, torch.float32, 1, f)      # no upsampling
    assert not modulated_conv.use_transposed_winograd(at[32], weight, 2, torch.float32, -2, f)     # cropped
    assert not modulated_conv.use_transposed_winograd(at[32], torch.zeros([8, 8, 1, 1]), 2, torch.float32, 0, f)


def test_a_network_takes_it_and_keeps_its_image(monkeypatch):
    """A StyleGAN2 synthesis at 128 px runs its 64 and 128 px upsampling layers by the transposed convolution's
    Winograd form, and its image stays within 1e-4 of the same synthesis with oneDNN's transposed convolution."""
    require_native("winograd")
    from explorer.networks.stylegan2 import Generator
    answered = record_answers(monkeypatch, modulated_conv, "winograd_transposed_conv")
    torch.manual_seed(0)
    G = Generator(z_dim=32, c_dim=0, w_dim=32, img_resolution=128, img_channels=3, channel_base=1024,
                  channel_max=64).eval().requires_grad_(False)
    ws = G.mapping(torch.randn([1, 32]), None)
    with torch.no_grad():
        image = G.synthesis(ws, noise_mode="const").image
        assert answered == [True, True]
        monkeypatch.setattr(modulated_conv, "TRANSPOSED_WINOGRAD_MIN_SIDE", 1 << 20)
        direct = G.synthesis(ws, noise_mode="const").image
    assert answered == [True, True]
    assert image.abs().max() > 0.1
    assert (image - direct).abs().max() <= EXACT
