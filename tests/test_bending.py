"""Network bending, channel ablation and direction offsets, held to their definitions on known inputs and
through the whole render path (with and without the render cache)."""
import numpy as np
import pytest
import torch
from scipy import ndimage

from explorer.bending import OPERATIONS, LayerOperation, apply_operation, bend
from explorer.render import DirectionOffset, RenderCache, RenderRequest, render
from tests.fixtures.networks import tiny_stylegan2


def maps(seed=0, shape=(2, 5, 8, 8)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_each_operation_against_its_definition():
    x = maps()
    assert torch.equal(bend(x, "ablate", 1.0), torch.zeros_like(x))
    assert torch.equal(bend(x, "multiply", -2.5), x * -2.5)
    assert torch.equal(bend(x, "invert", 1.0), -x)
    assert torch.equal(bend(x, "flip_x", 1.0), x.flip(-1)) and torch.equal(bend(x, "flip_y", 1.0), x.flip(-2))
    # Whole-pixel shifts move exactly, with zeros coming in.
    shifted = bend(x, "translate_x", 2 / 8)
    assert torch.allclose(shifted[..., 2:], x[..., :-2], atol=1e-6) and shifted[..., :2].abs().max() == 0
    down = bend(x, "translate_y", -3 / 8)
    assert torch.allclose(down[..., :-3, :], x[..., 3:, :], atol=1e-6) and down[..., -3:, :].abs().max() == 0
    # A quarter turn of a square map lands pixel centres on pixel centres: exactly rot90 (counter-clockwise).
    assert torch.allclose(bend(x, "rotate", 90.0), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)
    assert torch.allclose(bend(x, "rotate", 360.0), x, atol=1e-5)
    assert torch.allclose(bend(x, "scale", 1.0), x, atol=1e-6)
    # Zooming in by 2 about the centre: the middle 4x4 fills the map (each pixel seen at 4 sample points).
    zoomed = bend(x, "scale", 2.0)
    assert torch.allclose(zoomed[..., 3:5, 3:5].mean(dim=(-1, -2)), x[..., 3:5, 3:5].mean(dim=(-1, -2)), atol=0.3)
    for radius in (1, 2):
        size = 2 * radius + 1
        want_min = ndimage.minimum_filter(x.numpy(), size=(1, 1, size, size), mode="constant", cval=np.inf)
        want_max = ndimage.maximum_filter(x.numpy(), size=(1, 1, size, size), mode="constant", cval=-np.inf)
        assert np.allclose(bend(x, "erode", radius).numpy(), want_min)
        assert np.allclose(bend(x, "dilate", radius).numpy(), want_max)
    assert set(OPERATIONS) == {"ablate", "multiply", "invert", "translate_x", "translate_y", "rotate", "scale",
                               "flip_x", "flip_y", "erode", "dilate"}


def test_only_the_chosen_channels_bend():
    x = maps(1)
    out = apply_operation(x, LayerOperation("l", "multiply", (1, 3), 3.0))
    assert torch.equal(out[:, [1, 3]], x[:, [1, 3]] * 3) and torch.equal(out[:, [0, 2, 4]], x[:, [0, 2, 4]])
    with pytest.raises(ValueError, match="channel 9 is out of range"):
        apply_operation(x, LayerOperation("l", "ablate", (9,)))


def test_ablation_through_render_equals_stopping_zeroing_and_resuming():
    G = tiny_stylegan2("sg2_skip_64")
    layer = "b16.conv1"
    request = RenderRequest("net", seed_weights=((4, 1.0),),
                            layer_operations=(LayerOperation(layer, "ablate", (2, 5)),))
    result = render(G, request)
    assert result.ok, result.error
    plain = render(G, RenderRequest("net", seed_weights=((4, 1.0),)))
    ws = torch.from_numpy(plain.ws)[None]
    with torch.no_grad():
        stopped = G.synthesis(ws, stop_after=layer)
        stopped.state.x[:, [2, 5]] = 0
        expected = G.synthesis(ws, resume=stopped.state).image[0].numpy()
    assert np.array_equal(result.raw, expected)
    assert np.abs(result.raw - plain.raw).max() > 1e-3
    # The view of the bent layer shows the bent maps: the ablated channels are flat.
    viewed = render(G, RenderRequest("net", seed_weights=((4, 1.0),), layer_operations=request.layer_operations,
                                     view=RenderRequest("x").view.__class__(layer=layer, channel_count=8)))
    assert viewed.stats is not None and np.abs(result.raw - viewed.raw).max() == 0


def test_bending_a_fine_layer_resumes_from_the_cache_with_the_same_pixels():
    G = tiny_stylegan2("sg2_skip_64")
    cache = RenderCache()
    base = RenderRequest("net", seed_weights=((7, 1.0),))
    assert render(G, base, cache).ok
    bent = RenderRequest("net", seed_weights=((7, 1.0),),
                         layer_operations=(LayerOperation("b64.conv0", "rotate", (), 30.0),))
    cached = render(G, bent, cache)
    assert cached.timings.resumed_after is not None and cached.timings.layers_run < cached.timings.layers_total
    assert np.array_equal(cached.raw, render(G, bent).raw)


def test_a_direction_offset_moves_only_its_w_indices():
    G = tiny_stylegan2("sg2_skip_64")
    direction = tuple(np.random.RandomState(0).randn(G.w_dim) / np.sqrt(G.w_dim))
    plain = render(G, RenderRequest("net", seed_weights=((2, 1.0),)))
    moved = render(G, RenderRequest("net", seed_weights=((2, 1.0),),
                                    direction_offsets=(DirectionOffset("d", direction, 3.0, 2, 5),)))
    delta = moved.ws - plain.ws
    assert np.allclose(delta[2:5], 3.0 * np.float32(direction), atol=1e-5)
    assert np.abs(delta[:2]).max() == 0 and np.abs(delta[5:]).max() == 0
    wrong = render(G, RenderRequest("net", direction_offsets=(DirectionOffset("d", (1.0, 2.0), 1.0),)))
    assert not wrong.ok and "has 2 values" in wrong.error
