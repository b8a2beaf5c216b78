"""Winograd's F(4x4, 3x3) (kernels/winograd.py) held against a plain float64 convolution, and the layers that
use it against the float32 reference path."""
import sys

import pytest
import torch
import torch.nn.functional as F

import kernels.modulated_conv as modulated_conv
import kernels.winograd as winograd_module
from kernels.winograd import winograd_conv3x3, winograd_kernels
from kernels.native import declared
from tests.fixtures.native import compiled_or_eager, record_results

torch.set_num_threads(2)   # the compiled transforms split the tile rows between two threads
EXACT = 1e-4          # float32 fast path against the reference (DEVELOPERS.md)
# The fused pass's thresholds as shipped (the fixture below moves them).
FUSED_THRESHOLDS = dict(FUSED_MIN_TILES=winograd_module.FUSED_MIN_TILES,
                        FUSED_MAX_KERNEL_BYTES=winograd_module.FUSED_MAX_KERNEL_BYTES)


@pytest.fixture(autouse=True, params=["compiled-fused", "compiled-separate", "eager"])
def transforms(request, monkeypatch):
    """Every test runs with the compiled transforms (kernels/native/winograd.c), checked to have answered: in
    the fused pass wherever the compiled transforms run (checked to have been chosen at least once), and in the
    separate passes around PyTorch's products; and with the eager transforms."""
    compiled = request.param.startswith("compiled")
    calls = compiled_or_eager(monkeypatch, "compiled" if compiled else "eager", "winograd", winograd_module,
                              "_winograd_native")
    fused = record_results(monkeypatch, winograd_module, "use_fused")
    everywhere = request.param == "compiled-fused"
    monkeypatch.setattr(winograd_module, "FUSED_MIN_TILES", 0 if everywhere else sys.maxsize)
    if everywhere:
        monkeypatch.setattr(winograd_module, "FUSED_MAX_KERNEL_BYTES", sys.maxsize)
    yield request.param
    convolves = request.node.get_closest_marker("convolves") is not None
    assert all(calls) and bool(calls) == (compiled and convolves)
    if convolves:
        assert any(fused) == everywhere


def _plain(x, g, in_scale, out_scale, bias, padding):
    """The same convolution in float64: scale the input, correlate, scale the output, add the bias."""
    x = x.double()
    if in_scale is not None:
        x = x * in_scale.double()[:, :, None, None]
    y = F.conv2d(x, g.double(), padding=padding)
    if out_scale is not None:
        y = y * out_scale.double()[:, :, None, None]
    if bias is not None:
        y = y + bias.double()[None, :, None, None]
    return y


@pytest.mark.parametrize("batch, in_channels, out_channels, height, width, padding", [
    (1, 8, 12, 8, 8, 1),          # whole tiles
    (2, 5, 7, 9, 13, 1),          # partial tiles on both axes, a batch
    (1, 6, 4, 10, 10, 2),         # StyleGAN3's padding (the output grows by 2)
    (2, 6, 4, 9, 11, 2),          # the same with partial tiles
    (1, 3, 2, 7, 5, 0),           # no padding
    (1, 4, 3, 2, 2, 1),           # smaller than one tile
])
@pytest.mark.parametrize("scaled", [False, True])
@pytest.mark.parametrize("tile", [4, 6])
@pytest.mark.convolves
def test_matches_a_plain_convolution(batch, in_channels, out_channels, height, width, padding, scaled, tile):
    g = torch.Generator().manual_seed(height * 100 + width)
    x = torch.randn([batch, in_channels, height, width], generator=g)
    kernels = torch.randn([out_channels, in_channels, 3, 3], generator=g) / 3
    in_scale = torch.rand([batch, in_channels], generator=g) + 0.5 if scaled else None
    out_scale = torch.rand([batch, out_channels], generator=g) + 0.5 if scaled else None
    bias = torch.randn([out_channels], generator=g) if scaled else None
    expected = _plain(x, kernels, in_scale, out_scale, bias, padding)
    actual = winograd_conv3x3(x, winograd_kernels(kernels, tile), in_scale, out_scale, bias, padding=padding)
    assert actual.shape == expected.shape and actual.dtype == torch.float32
    assert actual.is_contiguous(memory_format=torch.channels_last)
    assert (actual.double() - expected).abs().max() <= EXACT
    assert expected.abs().max() > 1


@pytest.mark.convolves
def test_reads_either_layout_and_many_channels():
    """512 channels at unit scale (a StyleGAN2 layer's size): within the tolerance of the direct float32
    convolution, from a plain or a channels-last input."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn([1, 512, 16, 16], generator=g)
    kernels = torch.randn([256, 512, 3, 3], generator=g) / (512 * 9) ** 0.5
    expected = _plain(x, kernels, None, None, None, 1)
    prepared = winograd_kernels(kernels)
    for layout in (torch.contiguous_format, torch.channels_last):
        actual = winograd_conv3x3(x.contiguous(memory_format=layout), prepared)
        assert (actual.double() - expected).abs().max() <= EXACT
    direct = F.conv2d(x, kernels, padding=1)
    assert (actual - direct).abs().max() <= EXACT


def test_only_3x3_kernels_and_known_tiles():
    with pytest.raises(ValueError, match="3x3"):
        winograd_kernels(torch.ones([2, 2, 1, 1]))
    with pytest.raises(ValueError, match="not Winograd kernels"):
        winograd_module.tile_of(torch.ones([49, 2, 2]))


def test_which_convolutions_take_it(transforms, monkeypatch):
    """float32 3x3 stride-1 convolutions with many channels on the CPU; not upsampling, not 1x1, not previews,
    not few channels or small images. The compiled transforms carry it down to 128 channels, and to 16 where
    their fused pass takes the layer."""
    for name, value in FUSED_THRESHOLDS.items():         # the shipped thresholds, not the fixture's
        monkeypatch.setattr(winograd_module, name, value)
    x = torch.zeros([1, 512, 32, 32])
    many = torch.zeros([512, 512, 3, 3])
    use = modulated_conv.use_winograd
    assert use(x, many, 1, torch.float32)
    assert not use(x, many, 2, torch.float32)
    assert not use(x, many, 1, torch.bfloat16)
    assert not use(x, torch.zeros([512, 512, 1, 1]), 1, torch.float32)
    assert not use(torch.zeros([1, 512, 8, 8]), many, 1, torch.float32)
    compiled = transforms.startswith("compiled")
    assert use(x, torch.zeros([128, 512, 3, 3]), 1, torch.float32) == compiled
    # With the compiled transforms, down to 16 channels where the fused pass takes the layer: from 64 px; not
    # where it would fall to the separate passes (few tiles of 6, kernels over 4 MiB).
    assert use(torch.zeros([1, 64, 256, 256]), torch.zeros([64, 64, 3, 3]), 1, torch.float32) == compiled
    assert use(torch.zeros([1, 32, 1024, 1024]), torch.zeros([32, 32, 3, 3]), 1, torch.float32) == compiled
    assert use(torch.zeros([1, 16, 64, 64]), torch.zeros([16, 16, 3, 3]), 1, torch.float32) == compiled
    assert not use(torch.zeros([1, 64, 32, 32]), torch.zeros([64, 64, 3, 3]), 1, torch.float32)
    assert not use(torch.zeros([1, 8, 256, 256]), torch.zeros([8, 8, 3, 3]), 1, torch.float32)
    assert use(torch.zeros([1, 64, 64, 64]), torch.zeros([64, 64, 3, 3]), 1, torch.float32, 4) == compiled
    assert not use(torch.zeros([1, 64, 64, 64]), torch.zeros([64, 64, 3, 3]), 1, torch.float32, 6)
    assert not use(torch.zeros([1, 64, 256, 256]), torch.zeros([512, 64, 3, 3]), 1, torch.float32)


def test_which_layers_take_the_fused_pass(monkeypatch):
    """Many tiles and kernels that stay in the cache: the fused pass; few tiles, or 512 channels, the separate
    passes (read at the real thresholds, not the fixture's)."""
    for name, value in FUSED_THRESHOLDS.items():
        monkeypatch.setattr(winograd_module, name, value)
    fused = winograd_module.use_fused
    assert fused(32, 32, 256 * 256)                       # 32 channels at 1024 px
    assert fused(64, 4 * 32, 128 * 128)                   # an upsampling layer's polyphase kernels at 512 px
    assert fused(128, 128, 64 * 64)
    assert fused(128, 128, 43 * 43, tile=6)               # StyleGAN3's tiles: 4 MiB of kernels
    assert not fused(32, 32, 8 * 8)                       # 32 px
    assert not fused(512, 512, 64 * 64)                   # 37 MiB of kernels


@pytest.mark.parametrize("out_channels", [50, 19, 16])
@pytest.mark.parametrize("tile", [4, 6])
@pytest.mark.convolves
def test_blocks_across_samples_and_a_last_partial_block(monkeypatch, out_channels, tile):
    """Tiles go in blocks numbered across the batch: blocks that hold the end of one sample and the start of the
    next, a last block with fewer tiles, product channels that end in part of a vector (with AVX-512 padded to 16,
    32 and 64: each register block shape)."""
    monkeypatch.setattr(winograd_module, "FUSED_MOST_TILES", 24)
    g = torch.Generator().manual_seed(out_channels)
    x = torch.randn([3, 21, 17, 23], generator=g)                          # 5 x 6 tiles of 4 (3 x 4 of 6) a sample
    kernels = torch.randn([out_channels, 21, 3, 3], generator=g) / (21 * 9) ** 0.5      # unit-scale outputs
    in_scale, out_scale = torch.rand([3, 21], generator=g) + 0.5, torch.rand([3, out_channels], generator=g) + 0.5
    bias = torch.randn([out_channels], generator=g)
    noise = torch.randn([3, 1, 17, 23], generator=g)
    expected = F.leaky_relu(_plain(x, kernels, in_scale, out_scale, bias, 1) + noise.double(), 0.2)
    actual = winograd_conv3x3(x, winograd_kernels(kernels, tile), in_scale, out_scale, bias, padding=1, noise=noise,
                              slope=0.2)
    assert actual.shape == expected.shape
    assert (actual.double() - expected).abs().max() <= EXACT
    assert expected.abs().max() > 1


@pytest.mark.parametrize("out_channels, shuffle", [(16, 1), (20, 1), (16, 2)])
@pytest.mark.convolves
def test_large_outputs_past_the_cache(out_channels, shuffle):
    """Outputs of 8 MiB or more whose pixels are whole 64-byte lines of channels (16) are stored past the cache,
    also pixel-shuffled; 20 channels through it: all within the tolerance of the float64 convolution."""
    g = torch.Generator().manual_seed(out_channels + shuffle)
    side = 384 // shuffle
    x = torch.randn([1, 4, side, side], generator=g)
    kernels = torch.randn([out_channels * shuffle * shuffle, 4, 3, 3], generator=g) / 3
    bias = torch.randn([out_channels], generator=g)
    expected = _plain(x, kernels, None, None, bias.repeat(shuffle * shuffle), 1)
    if shuffle > 1:       # phase-major channels (py, px, o) to pixels (Y * 2 + py, X * 2 + px) of channel o
        expected = (expected.reshape(1, shuffle, shuffle, out_channels, side, side).permute(0, 3, 4, 1, 5, 2)
                    .reshape(1, out_channels, side * shuffle, side * shuffle))
    transformed = (winograd_module.polyphase_winograd_kernels(kernels.reshape(shuffle * shuffle, out_channels, 4, 3, 3)
                                                              .transpose(0, 1).reshape(kernels.shape), shuffle)
                   if shuffle > 1 else winograd_kernels(kernels))
    actual = winograd_conv3x3(x, transformed, None, None, bias, padding=1, shuffle=shuffle)
    assert actual.numel() * 4 >= 8 << 20
    assert (actual.double() - expected).abs().max() <= EXACT


@pytest.mark.parametrize("noise_batch", [1, 2])
@pytest.mark.parametrize("tile", [4, 6])
@pytest.mark.convolves
def test_the_work_after_the_convolution(noise_batch, tile):
    """Noise (one map for the batch, or one per sample), leaky ReLU and clamp, applied by the output transform
    where it is compiled; channel counts that end in part of a vector."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn([2, 21, 11, 14], generator=g)
    kernels = torch.randn([19, 21, 3, 3], generator=g) / 3
    in_scale, out_scale = torch.rand([2, 21], generator=g) + 0.5, torch.rand([2, 19], generator=g) + 0.5
    bias = torch.randn([19], generator=g)
    noise = torch.randn([noise_batch, 1, 11, 14], generator=g)
    plain = _plain(x, kernels, in_scale, out_scale, bias, 1) + 1.3 * noise.double()
    expected = F.leaky_relu(plain, 0.2).clamp(-3.0, 3.0)
    actual = winograd_conv3x3(x, winograd_kernels(kernels, tile), in_scale, out_scale, bias, padding=1, noise=noise,
                              noise_gain=1.3, slope=0.2, clamp=3.0)
    assert (actual.double() - expected).abs().max() <= EXACT
    assert (expected == 3.0).any() and (expected == -3.0).any() and (expected.abs() < 1).any()
    assert ((expected < 0) & (expected > -3)).any()                       # the leaky slope is reached


@pytest.mark.parametrize("batch, size, noise_batch", [(1, 8, 1), (2, 7, 2), (2, 9, 1)])
@pytest.mark.convolves
def test_an_upsampling_layer_by_polyphase_kernels_and_shuffle(monkeypatch, batch, size, noise_batch):
    """An upsampling layer's polyphase kernels by Winograd's algorithm, pixel-shuffled (by the compiled output
    transform, or eagerly), with the demodulation, bias, noise at the output's size, leaky ReLU and clamp: the
    reference layer's numbers; partial tiles, batches, channel counts that end in part of a vector."""
    from kernels import setup_filter
    g = torch.Generator().manual_seed(size)
    x = torch.randn([batch, 19, size, size], generator=g)
    weight = torch.randn([21, 19, 3, 3], generator=g)
    styles = torch.randn([batch, 19], generator=g) + 1
    bias = torch.randn([21], generator=g)
    noise = torch.randn([noise_batch, 1, 2 * size, 2 * size], generator=g)
    f = setup_filter([1, 3, 3, 1])
    options = dict(noise=noise, up=2, padding=1, resample_filter=f, flip_weight=False, act="lrelu", clamp=1.2)
    prepared = modulated_conv.prepare_weight(weight, f, up=2, padding=1, flip_weight=False, in_size=size)
    prepared = modulated_conv.PreparedWeight(prepared.energy, polyphase=prepared.polyphase,
                                             polyphase_winograd=winograd_module.polyphase_winograd_kernels(
                                                 prepared.polyphase.kernels, 2))
    expected = modulated_conv.modulated_conv2d_bias_act_reference(x, weight, styles, bias, **options)
    monkeypatch.setattr(modulated_conv, "POLYPHASE_MIN_SIDE", 0)      # the polyphase kernels at this size
    actual = modulated_conv.modulated_conv2d_bias_act(x, weight, styles, bias, prepared=prepared, **options)
    assert actual.shape == expected.shape == (batch, 21, 2 * size, 2 * size)
    assert actual.is_contiguous(memory_format=torch.channels_last)
    assert (actual - expected).abs().max() <= EXACT
    assert (expected == 1.2).any() and ((expected < 0) & (expected > -1.2)).any()


@pytest.mark.convolves
def test_the_fused_layer_without_demodulation():
    """The modulated convolution's Winograd branch with the styles only (no demodulation), against the
    reference composition."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn([2, 6, 9, 9], generator=g)
    weight = torch.randn([5, 6, 3, 3], generator=g)
    styles = torch.randn([2, 6], generator=g) + 1
    bias = torch.randn([5], generator=g)
    noise = torch.randn([1, 1, 9, 9], generator=g)
    options = dict(noise=noise, padding=1, demodulate=False, act="lrelu", gain=1.3, clamp=2.0)
    prepared = modulated_conv.prepare_weight(weight)
    prepared = modulated_conv.PreparedWeight(prepared.energy, winograd=winograd_kernels(weight))
    expected = modulated_conv.modulated_conv2d_bias_act_reference(x, weight, styles, bias, **options)
    actual = modulated_conv.modulated_conv2d_bias_act(x, weight, styles, bias, prepared=prepared, **options)
    assert actual.is_contiguous(memory_format=torch.channels_last)      # it took the Winograd branch
    assert (actual - expected).abs().max() <= EXACT
    assert expected.abs().max() > 1


def test_the_networks_tile(transforms):
    """F(6x6, 3x3) where the transforms are compiled, for StyleGAN2's layers from 128 px and StyleGAN3's at every
    side; F(4x4, 3x3) below and wherever the transforms are eager."""
    from explorer.networks.stylegan3 import WINOGRAD_F6_MIN_SIDE
    compiled = transforms.startswith("compiled")
    assert winograd_module.network_tile(64) == 4
    assert winograd_module.network_tile(128) == (6 if compiled else 4)
    assert winograd_module.network_tile(36, WINOGRAD_F6_MIN_SIDE) == (6 if compiled else 4)


@pytest.mark.parametrize("count, rows, in_channels, out_channels", [
    (3, 100, 40, 32),      # pieces of 96 rows, a last piece of 4 (less than a register block)
    (2, 24, 7, 16),        # exactly one register block
    (1, 5, 512, 64),       # fewer rows than a register block
    (4, 250, 33, 48),      # three vectors of outputs (strips of two vectors and one)
    (2, 70, 24, 362),      # StyleGAN3-T's 362 channels: 23 vectors (5 strips of four, one of two, one of one)
    (1, 30, 9, 5),         # fewer outputs than a vector (padded with zeros)
])
def test_the_compiled_products(transforms, count, rows, in_channels, out_channels):
    """The separate passes' products by the compiled register blocks, against float64 matrix products: rows that
    end in part of a register block, any inner size, output channels padded to whole vectors with zeros."""
    compiled = declared("winograd", winograd_module._declare)
    if not transforms.startswith("compiled"):
        assert compiled is None
        return
    g = torch.Generator().manual_seed(rows)
    a = torch.randn([count, rows, in_channels], generator=g)
    kernels = torch.randn([count, out_channels, in_channels], generator=g)
    products = winograd_module.native_products(compiled, a, winograd_module.padded_kernels(kernels, compiled.lanes))
    assert products is not None and len(products) == count
    expected = torch.bmm(a.double(), kernels.double().transpose(1, 2))
    padded = -(-out_channels // compiled.lanes) * compiled.lanes
    for product, reference in zip(products, expected):
        assert product.shape == (rows, padded)
        assert torch.equal(product[:, out_channels:], torch.zeros([rows, padded - out_channels]))
        error = (product[:, :out_channels].double() - reference).abs().max().item()
        assert error <= 1e-5 * in_channels ** 0.5 * reference.abs().max()


@pytest.mark.convolves
@pytest.mark.parametrize("out_channels", [32, 21])
def test_a_layer_by_the_compiled_products(transforms, monkeypatch, out_channels):
    """A 3x3 layer in the separate passes takes the compiled products (and the same numbers as the float64
    convolution), the output transform reading their rows padded to whole vectors (21 channels) or not (32)."""
    answered = record_results(monkeypatch, winograd_module, "native_products", lambda result: result is not None)
    g = torch.Generator().manual_seed(12)
    x = torch.randn([2, 20, 30, 26], generator=g)
    kernels = torch.randn([out_channels, 20, 3, 3], generator=g) / 3
    expected = _plain(x, kernels, None, None, None, 1)
    actual = winograd_conv3x3(x, winograd_kernels(kernels), padding=1)
    assert actual.shape == expected.shape
    assert (actual.double() - expected).abs().max() <= EXACT
    separate = transforms == "compiled-separate"
    assert answered == ([True] if separate else [])
