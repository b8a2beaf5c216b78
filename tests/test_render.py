"""render(): pixels against direct generator calls, the cache against uncached renders, the layer view on
a made-up droplet, errors as values, and the seed-space latents."""
import math

import numpy as np
import pytest
import torch

from explorer.latents import blend, lerp, seed_at, seed_weights, slerp, z_and_class_from_seed, z_from_seed
from explorer.networks.common import truncate
from explorer.networks.stylegan2 import Generator
from explorer.render import (LayerViewRequest, RenderCache, RenderRequest, StyleDelta, WCopy, WOffset,
                             layer_view, render, to_uint8_rgb)
from explorer.state import NetworkFacts, Session
from tests.fixtures.networks import randomize_

torch.set_num_threads(1)


def tiny_generator(c_dim=0, architecture="skip", seed=0, resolution=64):
    """A tiny StyleGAN2 with every weight random (tests/fixtures/networks.py), its ToRGB weights scaled so
    that the output sits mostly inside [-1, 1] and the uint8 pixels carry information."""
    torch.manual_seed(seed)
    G = Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=resolution, img_channels=3,
                  mapping_kwargs=dict(num_layers=2), channel_base=512, channel_max=32,
                  num_fp16_res=0, conv_clamp=256, architecture=architecture)
    randomize_(G, seed).eval().requires_grad_(False)
    with torch.no_grad():
        for name, parameter in G.synthesis.named_parameters():
            if name.endswith("torgb.weight"):
                parameter.mul_(TORGB_SCALE)
    return G


TORGB_SCALE = 0.15   # brings the random network's output std from about 4 to about 0.6


@pytest.fixture(scope="module")
def G():
    return tiny_generator()          # 64 px, num_ws 10: coarse w 0-3, middle 4-7, fine 8-9


@pytest.fixture(scope="module")
def G_cond():
    return tiny_generator(c_dim=5, architecture="resnet")


def ws_of(G, seed, psi=1.0, cutoff=None, c=None):
    ws = G.mapping(z_from_seed(seed, G.z_dim), c)
    return truncate(ws, G.mapping.w_avg, psi, cutoff) if psi != 1 else ws


def image_of(G, ws, **controls):
    return G.synthesis(ws, **controls).image[0]


def ok(result):
    assert result.error is None, result.error
    return result


def req(seed=0, **kwargs):
    return RenderRequest("net", seed_weights=((seed, 1.0),), **kwargs)


# --------------------------------------------------------------------------------------------------------------
# Pixels.

def test_plain_seed_equals_the_generator_and_nvlabs_uint8(G):
    result = ok(render(G, req(5)))
    expected = G(z_from_seed(5, G.z_dim)).image[0]
    assert np.array_equal(result.raw, expected.numpy())
    nvlabs = (expected * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert result.image.dtype == np.uint8 and result.image.shape == (64, 64, 3)
    assert np.array_equal(result.image, nvlabs) and np.array_equal(to_uint8_rgb(expected), nvlabs)


def test_seed_change_changes_the_image(G):
    a, b = ok(render(G, req(1))), ok(render(G, req(2)))
    assert np.abs(a.raw - b.raw).max() > 0.05
    assert (a.image != b.image).mean() > 0.5


def test_psi_zero_gives_the_w_avg_image_for_every_seed(G):
    w_avg = G.mapping.w_avg[None, None].repeat(1, G.num_ws, 1)
    expected = image_of(G, w_avg).numpy()
    for seed in (0, 9):
        result = ok(render(G, req(seed, truncation_psi=0.0)))
        np.testing.assert_allclose(result.raw, expected, atol=1e-6)
    # A cutoff keeps the layers from it on untruncated.
    result = ok(render(G, req(9, truncation_psi=0.0, truncation_cutoff=4)))
    np.testing.assert_allclose(result.raw, image_of(G, ws_of(G, 9, 0.0, 4)).numpy(), atol=1e-6)
    assert np.abs(result.raw - expected).max() > 1e-3


def test_mixing_a_layer_range_changes_exactly_those_ws(G):
    main, source = ws_of(G, 3, psi=0.8), ws_of(G, 40, psi=0.8)
    mixed = main.clone()
    mixed[:, 8:10] = source[:, 8:10]                  # the fine preset of this network
    layer_seeds = (None,) * 8 + (40, 40)
    view = LayerViewRequest(layer="b32.torgb")       # the last layer before the mixed ones
    plain = ok(render(G, req(3, truncation_psi=0.8, view=view)))
    result = ok(render(G, req(3, truncation_psi=0.8, layer_seeds=layer_seeds, view=view)))
    np.testing.assert_array_equal(result.raw, image_of(G, mixed).numpy())
    assert np.abs(result.raw - plain.raw).max() > 1e-4
    # Everything up to 32 px is untouched: the captured b32.torgb output is identical.
    assert np.array_equal(result.layer_image, plain.layer_image) and result.stats == plain.stats
    # And mixing coarse layers changes that too.
    coarse = ok(render(G, req(3, truncation_psi=0.8, layer_seeds=(40, 40, 40, 40), view=view)))
    assert not np.array_equal(coarse.layer_image, plain.layer_image)


def test_noise_strength_zero_equals_noise_mode_none(G):
    none = ok(render(G, req(4, noise_mode="none")))
    zero = ok(render(G, req(4, noise_strength=0.0)))
    per_layer = tuple((layer.name, 0.0) for layer in G.synthesis.layers if layer.has_noise)
    zero_each = ok(render(G, req(4, layer_noise_strength=per_layer)))
    const = ok(render(G, req(4)))
    assert np.array_equal(none.raw, zero.raw) and np.array_equal(none.raw, zero_each.raw)
    assert np.abs(none.raw - const.raw).max() > 1e-3
    # Random noise is repeatable by seed and differs between seeds.
    r1, r1b, r2 = (ok(render(G, req(4, noise_mode="random", noise_seed=s))) for s in (1, 1, 2))
    assert np.array_equal(r1.raw, r1b.raw) and np.abs(r1.raw - r2.raw).max() > 1e-3
    # One layer's multiplier equals the synthesis control it stands for.
    half = ok(render(G, req(4, noise_strength=0.5, layer_noise_strength=(("b64.conv1", 3.0),))))
    strengths = {layer.name: 0.5 for layer in G.synthesis.layers if layer.has_noise}
    strengths["b64.conv1"] = 1.5
    np.testing.assert_array_equal(half.raw, image_of(G, ws_of(G, 4), noise_strength=strengths).numpy())


def test_style_deltas_offsets_and_copies_equal_their_direct_edits(G):
    main = ws_of(G, 6)
    # Style-channel deltas.
    result = ok(render(G, req(6, style_deltas=(StyleDelta("b16.conv1", 3, 4.0),))))
    delta = torch.zeros(32)
    delta[3] = 4.0
    np.testing.assert_array_equal(result.raw, image_of(G, main, style_deltas={"b16.conv1": delta}).numpy())
    assert np.abs(result.raw - ok(render(G, req(6))).raw).max() > 1e-3
    # A random-direction offset: RandomState(seed).randn(w_dim) times the strength, at one w index.
    edited = main.clone()
    edited[:, 2] += 1.5 * torch.from_numpy(np.random.RandomState(11).randn(G.w_dim)).float()
    result = ok(render(G, req(6, w_offsets=(WOffset(2, "random", 11, 1.5),))))
    np.testing.assert_allclose(result.raw, image_of(G, edited).numpy(), atol=1e-6)
    # Toward another seed with strength 1 is that seed's w at that index, i.e. mixing that one layer.
    toward = ok(render(G, req(6, w_offsets=(WOffset(5, "to_seed", 21, 1.0),))))
    mixed = ok(render(G, req(6, layer_seeds=(None,) * 5 + (21,))))
    np.testing.assert_allclose(toward.raw, mixed.raw, atol=1e-5)
    # A copy from another layer of another seed.
    edited = main.clone()
    edited[:, 7] = ws_of(G, 30)[:, 1]
    result = ok(render(G, req(6, w_copies=(WCopy(7, 30, 1),))))
    np.testing.assert_array_equal(result.raw, image_of(G, edited).numpy())


def test_seed_space_blends_in_w_and_in_z(G):
    weights = seed_weights(0.25, 0.0)
    assert weights == ((0, 0.75), (1, 0.25))
    in_w = ok(render(G, RenderRequest("net", seed_weights=weights, latent_space="w")))
    expected_w = 0.75 * ws_of(G, 0) + 0.25 * ws_of(G, 1)
    np.testing.assert_allclose(in_w.raw, image_of(G, expected_w).numpy(), atol=1e-5)
    in_z = ok(render(G, RenderRequest("net", seed_weights=weights, latent_space="z")))
    z = 0.75 * z_from_seed(0, G.z_dim) + 0.25 * z_from_seed(1, G.z_dim)
    np.testing.assert_allclose(in_z.raw, image_of(G, G.mapping(z, None)).numpy(), atol=1e-5)
    assert np.abs(in_z.raw - in_w.raw).max() > 1e-3
    # An integer position is the plain seed in both spaces.
    for space in ("z", "w"):
        assert np.array_equal(ok(render(G, RenderRequest("net", seed_weights=seed_weights(7, 0),
                                                         latent_space=space))).raw, ok(render(G, req(7))).raw)


def test_conditional_class_from_index_or_from_seed(G_cond):
    def c(index):
        vector = torch.zeros([1, G_cond.c_dim])
        vector[0, index] = 1
        return vector

    two = ok(render(G_cond, req(3, class_index=2)))
    np.testing.assert_array_equal(two.raw, image_of(G_cond, G_cond.mapping(z_from_seed(3, 16), c(2))).numpy())
    assert np.abs(two.raw - ok(render(G_cond, req(3, class_index=0))).raw).max() > 1e-3
    drawn = z_and_class_from_seed(3, 16, G_cond.c_dim)[1]
    rnd = np.random.RandomState(3)
    rnd.randn(16)
    assert drawn == rnd.randint(G_cond.c_dim)
    np.testing.assert_array_equal(ok(render(G_cond, req(3))).raw,
                                  ok(render(G_cond, req(3, class_index=drawn))).raw)
    assert "class_index must be at most 4 and at least 0, not 5" in render(G_cond, req(3, class_index=5)).error


def test_json_round_trip_renders_identical_pixels(G):
    facts = NetworkFacts.from_generator(G)
    session = Session(facts=facts)
    session.latent.x, session.latent.y = 2.3, 0.6
    session.truncation.psi = 0.6
    session.mixing.apply_preset("middle", session.mixing.add_source(50))
    session.styles.set_offset(1, "random", 2, 0.8)
    session.styles.set_style_delta("b32.conv1", 1, -2.0)
    session.noise.mode, session.noise.seed = "random", 12
    session.layers.layer = "b64.conv0"
    before = ok(render(G, session.render_request("net")))
    after = ok(render(G, Session.from_json(session.to_json(), facts=facts).render_request("net")))
    for name in ("raw", "image", "layer_image"):
        assert np.array_equal(getattr(before, name), getattr(after, name)), name
    assert before.stats == after.stats


def test_one_channel_networks_show_grey_rgb():
    torch.manual_seed(0)
    G1 = randomize_(Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=1,
                              mapping_kwargs=dict(num_layers=1), channel_base=64, channel_max=8), 0).eval()
    result = ok(render(G1, req(1)))
    assert result.image.shape == (16, 16, 3) and result.raw.shape == (1, 16, 16)
    assert np.array_equal(result.image[..., 0], result.image[..., 2])


# --------------------------------------------------------------------------------------------------------------
# The cache.

def test_cache_gives_the_uncached_pixels_and_runs_fewer_layers(G):
    cache = RenderCache()
    total = len(G.synthesis.layers)
    steps = [
        req(3, view=LayerViewRequest(layer="b64.conv0")),
        req(3, layer_seeds=(None,) * 8 + (9, 9), view=LayerViewRequest(layer="b64.conv0")),     # fine mix
        req(3, layer_seeds=(None,) * 8 + (9, 9), layer_noise_strength=(("b64.conv1", 0.0),),
            view=LayerViewRequest(layer="b64.conv0")),                                          # 64 px noise
        req(3, layer_seeds=(None,) * 8 + (9, 9), layer_noise_strength=(("b64.conv1", 0.0),),
            view=LayerViewRequest(layer="b64.conv0", normalise="global", scale_db=6.0)),        # view only
        req(3, layer_seeds=(None,) * 8 + (9, 9), view=LayerViewRequest(layer="b16.conv1")),     # earlier capture
        req(3, truncation_psi=0.5, view=LayerViewRequest(layer="b16.conv1")),                   # every w changes
        req(3, view=LayerViewRequest(layer="b64.conv0")),                                       # back to start
        req(3),                                                                                 # output view
        req(3, layer_seeds=(None,) * 8 + (9, 9)),                                               # fine mix
    ]
    runs = []
    for request in steps:
        cached, plain = ok(render(G, request, cache)), ok(render(G, request))
        for name in ("raw", "image", "layer_image"):
            assert np.array_equal(getattr(cached, name), getattr(plain, name)), (request, name)
        assert cached.stats == plain.stats
        assert plain.timings.layers_run == total
        runs.append((cached.timings.layers_run, cached.timings.resumed_after))
    assert runs == [
        (total, None),
        (3, "b32.torgb"),      # only b64.conv0, b64.conv1, b64.torgb ran
        (3, "b32.torgb"),
        (0, "b64.torgb"),      # nothing ran: only the view changed
        (8, "b16.conv0"),      # capturing b16.conv1 needs it to run: resumed from the state before it
        (total, None),         # psi changes every w
        (total, None),         # the states of psi 1 were replaced by those of psi 0.5
        (0, "b64.torgb"),      # same inputs, nothing to capture: the last image as it is
        (2, "b64.conv0"),      # w 8 styles b64.conv1 first: b64.conv0 is kept
    ]
    assert cache.state_nbytes > 0


def test_cache_keeps_mapping_results_per_seed(G):
    cache = RenderCache()
    first = ok(render(G, req(3, layer_seeds=(8,)), cache))
    assert (first.timings.mapping_cache_hits, first.timings.mapping_cache_misses) == (0, 2)
    second = ok(render(G, req(8, layer_seeds=(3,)), cache))
    assert (second.timings.mapping_cache_hits, second.timings.mapping_cache_misses) == (2, 0)
    # Another generator (or device, dtype) starts afresh.
    other = tiny_generator(seed=1)
    third = ok(render(other, req(8, layer_seeds=(3,)), cache))
    assert third.timings.mapping_cache_misses == 2 and third.timings.layers_run == len(other.synthesis.layers)
    assert not np.array_equal(third.raw, second.raw)


# --------------------------------------------------------------------------------------------------------------
# The layer view.

def droplet_activation(channels=4, size=64, spike_at=(2, 40, 17), spike=60.0):
    """Feature maps of smooth noise around 1, one channel with a droplet: a single very large value."""
    generator = torch.Generator().manual_seed(0)
    x = 1 + 0.3 * torch.randn([channels, size, size], generator=generator)
    x[spike_at] = spike
    return x


def test_layer_view_makes_a_droplet_stand_out():
    activation = droplet_activation()
    image, fft, stats = layer_view(activation, LayerViewRequest(layer="b64.conv1", channel_count=4))
    assert stats.shape == (4, 64, 64) and stats.channels == (0, 4) and fft is None
    assert (stats.peak_channel, stats.peak_y, stats.peak_x) == (2, 40, 17)
    assert stats.all.max_abs == pytest.approx(60.0) and stats.all.peak_to_mean > 40
    clean = droplet_activation(spike=1.0)
    assert layer_view(clean, LayerViewRequest(channel_count=4))[2].all.peak_to_mean < 4
    # Grid of 2 x 2 tiles, 64 px each, GRID_GAP 1 between them.
    assert image.shape == (129, 129, 3)
    tile = image[65:, 65:, 0]           # channel 3 (no spike) ...
    spiky = image[65:, :64, 0]          # ... and channel 2 (the droplet)
    assert spiky[40, 17] == 255 and tile.max() > 180
    # Per channel, the droplet's channel is flat mid-grey but for its spike; the clean channel uses the range.
    assert np.median(spiky) < 135 and np.median(tile) > 170
    # A global normalisation flattens every channel; +30 dB lifts them back, the spike saturates.
    flat, _, _ = layer_view(activation, LayerViewRequest(channel_count=4, normalise="global"))
    assert flat[65:, 65:, 0].max() < 140
    lifted, _, _ = layer_view(activation, LayerViewRequest(channel_count=4, normalise="global", scale_db=30))
    assert np.median(lifted[65:, 65:, 0]) > 185 and lifted[65 + 40, 17, 0] == 255


def test_layer_view_modes_clip_channels_and_show_the_spectrum():
    activation = droplet_activation(channels=5, size=32, spike_at=(2, 20, 17))
    image, _, stats = layer_view(activation, LayerViewRequest(mode="rgb", first_channel=4))
    assert image.shape == (32, 32, 3) and stats.channels == (2, 5)      # clipped to the last 3 channels
    assert image[20, 17, 0] == 255 and image[20, 17, 1:].max() < 255    # red is channel 2, the droplet's
    assert stats.selected.max_abs == pytest.approx(60.0)
    single, _, stats = layer_view(activation, LayerViewRequest(mode="single", first_channel=1))
    assert single.shape == (32, 32, 3) and stats.channels == (1, 2)
    grid, _, stats = layer_view(activation, LayerViewRequest(first_channel=3, channel_count=10))
    assert stats.channels == (3, 5) and grid.shape == (32, 65, 3)
    # A cosine of 8 cycles across a 64 px map: the spectrum peaks 8 bins from the centre.
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    wave = torch.cos(2 * math.pi * 8 * xs / 64)[None]
    _, fft, _ = layer_view(wave, LayerViewRequest(mode="single", fft=True))
    assert fft.shape == (64, 64, 3)
    peak_y, peak_x = np.unravel_index(np.argmax(fft[..., 0].astype(int)), fft.shape[:2])
    assert peak_y == 32 and abs(int(peak_x) - 32) == 8


def test_render_fills_layer_view_and_output_statistics(G):
    output = ok(render(G, req(2)))
    assert output.stats.layer is None and output.stats.shape == (3, 64, 64)
    assert output.layer_image.shape == (129, 129, 3)         # 3 output channels, 2 x 2 grid with one empty
    layer = ok(render(G, req(2, view=LayerViewRequest(layer="b32.conv1", mode="rgb", fft=True))))
    assert layer.stats.shape == (16, 32, 32) and layer.layer_image.shape == (32, 32, 3)
    assert layer.fft_image.shape == (32, 32, 3)
    captured = G.synthesis(ws_of(G, 2), capture=["b32.conv1"]).activations["b32.conv1"][0]
    assert layer.stats.all.max_abs == pytest.approx(captured.abs().max().item())
    assert layer.stats.all.mean == pytest.approx(captured.double().mean().item())


# --------------------------------------------------------------------------------------------------------------
# Errors come back as values.

def test_errors_are_values_not_exceptions(G):
    cases = [
        (req(1, view=LayerViewRequest(layer="b999.conv1")), "no layer named 'b999.conv1'"),
        (req(1, w_offsets=(WOffset(10, "random", 0, 1.0),)), "w_offsets[0].w_index must be at most 9 and at least 0, not 10"),
        (req(1, style_deltas=(StyleDelta("b64.conv1", 8, 1.0),)), "style_deltas[0].channel must be at most 7"),
        (req(1, layer_noise_strength=(("b64.torgb", 2.0),)), "'b64.torgb' adds no noise"),
        (req(1, noise_mode="loud"), "noise_mode must be one of 'const', 'random', 'none', not 'loud'"),
        (req(1, dtype="float16"), "float16 runs on CUDA only"),
        (req(2 ** 32), "seed must be at most 4294967295 and at least 0, not 4294967296"),
        (RenderRequest("net", seed_weights=()), "seed_weights is empty"),
        (RenderRequest("net", seed_weights=((1, math.nan),)), "weight of seed 1 must be a finite number"),
        (req(1, truncation_psi=math.inf), "truncation_psi must be a finite number"),
        (req(1, truncation_psi=0.5, truncation_cutoff=11), "truncation_cutoff must be at most 10 and at least 0, not 11"),
        (req(1, truncation_psi=0.5, truncation_cutoff=-1), "truncation_cutoff must be at least 0 and at most 10, not -1"),
        (req(1, style_deltas=(StyleDelta("b64.conv1", 0, math.nan),)), "style_deltas[0].delta must be a finite number, not nan"),
        (req(1, w_offsets=(WOffset(0, "random", -1, 1.0),)), "w_offsets[0].seed must be at least 0"),
        (req(1, view=LayerViewRequest(channel_count=0)), "view.channel_count must be at least 1"),
        (req(1, view=LayerViewRequest(first_channel=-2)), "view.first_channel must be at least 0"),
        (req(1, view=LayerViewRequest(scale_db=1e6)), "view.scale_db must be between -60 and 60"),
        (req(1, view=LayerViewRequest(fft=True, fft_range_db=0.0)), "view.fft_range_db must be between 10 and 120"),
        (req(1, device="banana"), "device must be 'cpu', 'cuda', 'cuda:N' or 'mps', not 'banana'"),
    ]
    if not torch.cuda.is_available():
        cases.append((req(1, device="cuda"), "CUDA is not available"))
    for request, message in cases:
        result = render(G, request)
        assert result.error is not None and message in result.error, (request, result.error)
        assert result.image is None and result.raw is None


def test_out_of_memory_comes_back_as_a_value_and_clears_the_cache(G, monkeypatch):
    cache = RenderCache()
    ok(render(G, req(1), cache))
    assert cache.state_nbytes > 0

    def exhausted(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(G.synthesis, "forward", exhausted)
    result = render(G, req(2), cache)
    assert result.error.startswith("out of memory on cpu (CUDA out of memory. Tried to allocate 2.00 GiB)")
    assert cache.state_nbytes == 0
    monkeypatch.undo()
    assert ok(render(G, req(2), cache)).timings.layers_run == len(G.synthesis.layers)


# --------------------------------------------------------------------------------------------------------------
# Latents.

def test_z_from_seed_is_numpy_randomstate():
    z = z_from_seed(42, 512)
    assert z.dtype == torch.float32 and z.shape == (1, 512)
    assert np.array_equal(z.numpy(), np.random.RandomState(42).randn(1, 512).astype(np.float32))


def test_seed_space_layout_and_weights():
    assert seed_at(3, 2) == 203 and seed_at(-1, 0) == 2 ** 32 - 1 and seed_at(0, -1) == 2 ** 32 - 100
    assert seed_weights(5.0, 2.0) == ((205, 1.0),)
    weights = dict(seed_weights(5.5, 2.25))
    assert weights == pytest.approx({205: 0.375, 206: 0.375, 305: 0.125, 306: 0.125})
    assert sum(dict(seed_weights(-0.3, 7.9)).values()) == pytest.approx(1.0)


def test_lerp_slerp_blend():
    a = torch.tensor([[3.0, 0.0]])
    b = torch.tensor([[0.0, 3.0]])
    assert torch.equal(lerp(a, b, 0.5), torch.tensor([[1.5, 1.5]]))
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid, torch.tensor([[3 / math.sqrt(2), 3 / math.sqrt(2)]]), atol=1e-6)
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)          # parallel: falls back to a straight line
    z = torch.randn(4, 512, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(slerp(z[:2], z[2:], 0.3).norm(dim=-1),
                          lerp(z[:2].norm(dim=-1), z[2:].norm(dim=-1), 0.3), atol=1e-4)
    assert torch.equal(blend([a, b], [0.25, 0.75]), torch.tensor([[0.75, 2.25]]))
    with pytest.raises(ValueError, match="as many weights as latents"):
        blend([a], [0.5, 0.5])


def test_stylegan3_input_transform_reaches_the_synthesis():
    from explorer.state import NetworkFacts, Session
    from tests.fixtures.networks import tiny_stylegan2
    from tests.fixtures.networks_sg3 import tiny_stylegan3
    G = tiny_stylegan3("t")
    session = Session(facts=NetworkFacts.from_generator(G))
    plain = render(G, session.render_request("k"))
    session.transform.angle = 45.0
    request = session.render_request("k")
    assert request.input_transform == (0.0, 0.0, 45.0)
    rotated = render(G, request)
    assert plain.ok and rotated.ok
    assert np.abs(plain.raw - rotated.raw).max() > 1e-3
    with torch.no_grad():
        direct = G.synthesis(G.mapping(z_from_seed(0, G.z_dim), None), input_transform=(0.0, 0.0, 45.0)).image
    assert np.abs(rotated.raw - direct[0].numpy()).max() < 1e-5
    # Other families refuse it with a clear error, as a value.
    other = render(tiny_stylegan2("sg2_orig_32"), RenderRequest("k", input_transform=(0.1, 0.0, 0.0)))
    assert not other.ok and "StyleGAN3" in other.error


def test_result_carries_the_w_plus_it_was_made_from():
    from tests.fixtures.networks import tiny_stylegan2
    G = tiny_stylegan2("sg2_orig_32")
    result = render(G, RenderRequest("k", seed_weights=((3, 1.0),), truncation_psi=0.5))
    expected = G.mapping(z_from_seed(3, G.z_dim), None, truncation_psi=0.5)[0]
    assert result.ws.shape == (G.num_ws, G.w_dim)
    assert np.abs(result.ws - expected.detach().numpy()).max() < 1e-6
    with torch.no_grad():
        again = G.synthesis(torch.from_numpy(result.ws)[None]).image[0].numpy()
    assert np.abs(again - result.raw).max() < 1e-5
