"""The CUDA path (issue 11, item 6), where a CUDA device is present: every family and every kernel gives the CPU's
numbers within DEVELOPERS.md's tolerance in float32 (TF32 off: it rounds products to 10 bits), the float16 preview
stays close to them, and render() on 'cuda' gives the CPU's image.

These tests need a GPU: CI has none, so there they do not run; `benchmarks/gpu_session.sh` runs them on a lent GPU
machine. The device is a constant so that the same file can be checked on the CPU (DEVICE = "cpu") while writing it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.render import RenderRequest, render
from kernels import bias_act, bias_act_reference, setup_filter, upfirdn2d, upfirdn2d_reference
from kernels.filtered_lrelu import filtered_lrelu, filtered_lrelu_reference
from tests.fixtures.images import psnr_8bit
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.networks_sg3 import tiny_stylegan3

DEVICE = "cuda"
TOLERANCE = 1e-4          # max abs difference of raw float32 outputs (DEVELOPERS.md)
PREVIEW_MIN_PSNR_DB = 30  # the float16 preview against float32, 8-bit images

pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def exact_float32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _stylegan1():
    from explorer.networks.stylegan1 import Generator
    torch.manual_seed(0)
    return Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=32, img_channels=3, fmap_base=128, fmap_max=32,
                     mapping_kwargs=dict(num_layers=2, layer_features=16)).eval().requires_grad_(False)


NETWORKS = {
    "stylegan2-skip": lambda: tiny_stylegan2("sg2_skip_64"),
    "stylegan2-resnet-conditional": lambda: tiny_stylegan2("sg2_resnet_cond_64"),
    "stylegan2-orig": lambda: tiny_stylegan2("sg2_orig_32"),
    "stylegan3-t": lambda: tiny_stylegan3("t"),
    "stylegan3-r": lambda: tiny_stylegan3("r"),
    "stylegan-2019": _stylegan1,
}


def _ws(G, batch=2, seed=0):
    """ws of the seed's z (and class 0 where the network is conditional), on the network's device."""
    device = G.mapping.w_avg.device
    z = torch.from_numpy(np.random.RandomState(seed).randn(batch, G.z_dim)).float().to(device)
    c = torch.zeros([batch, G.c_dim], device=device)
    if G.c_dim:
        c[:, 0] = 1
    with torch.no_grad():
        return G.mapping(z, c)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_family_gives_the_cpus_image_on_the_device(name):
    G = NETWORKS[name]()
    ws = _ws(G)
    with torch.no_grad():
        on_cpu = G.synthesis(ws, noise_mode="const").image
        G_device = G.to(DEVICE)
        on_device = G_device.synthesis(ws.to(DEVICE), noise_mode="const").image
    assert on_device.device.type == torch.device(DEVICE).type and on_device.dtype == torch.float32
    assert float((on_device.cpu() - on_cpu).abs().max()) <= TOLERANCE
    assert float(on_cpu.std()) > 0.01                       # an image, not a constant


@pytest.mark.parametrize("name", ["stylegan2-skip", "stylegan3-t"])
def test_the_float16_preview_is_close_to_float32(name):
    G = NETWORKS[name]().to(DEVICE)
    ws = _ws(G).to(DEVICE)
    with torch.no_grad():
        exact = G.synthesis(ws, noise_mode="const").image
        preview = G.synthesis(ws, noise_mode="const", compute_dtype=torch.float16).image
    assert preview.dtype == torch.float32
    difference = (preview - exact).abs()
    assert 0 < float(difference.max()) < 0.2
    assert psnr_8bit(preview, exact) > PREVIEW_MIN_PSNR_DB


def test_render_on_the_device_gives_the_cpus_pixels():
    G = tiny_stylegan2("sg2_skip_64")
    request = RenderRequest("cuda-test", seed_weights=((3, 1.0),), truncation_psi=0.7)
    on_cpu = render(G, request)
    on_device = render(G.to(DEVICE), RenderRequest(**{**request.__dict__, "device": DEVICE}))
    assert on_cpu.ok and on_device.ok, (on_cpu.error, on_device.error)
    assert np.abs(on_device.raw - on_cpu.raw).max() <= TOLERANCE
    assert np.abs(on_device.image.astype(int) - on_cpu.image.astype(int)).max() <= 1


@pytest.mark.parametrize("up, down", [(1, 1), (2, 1), (1, 2)])
def test_upfirdn2d_on_the_device_matches_the_reference(up, down):
    x = torch.randn([2, 5, 24, 24], generator=torch.Generator().manual_seed(1))
    f = setup_filter([1, 3, 3, 1])
    expected = upfirdn2d_reference(x, f, up=up, down=down, padding=2)
    got = upfirdn2d(x.to(DEVICE), f.to(DEVICE), up=up, down=down, padding=2)
    assert float((got.cpu() - expected).abs().max()) <= TOLERANCE


def test_bias_act_on_the_device_matches_the_reference():
    x = torch.randn([2, 7, 9, 9], generator=torch.Generator().manual_seed(2))
    b = torch.randn([7], generator=torch.Generator().manual_seed(3))
    expected = bias_act_reference(x, b, act="lrelu", clamp=0.5)
    got = bias_act(x.to(DEVICE), b.to(DEVICE), act="lrelu", clamp=0.5)
    assert float((got.cpu() - expected).abs().max()) <= TOLERANCE


def test_filtered_lrelu_on_the_device_matches_the_reference():
    generator = torch.Generator().manual_seed(4)
    x = torch.randn([1, 6, 20, 20], generator=generator)
    b = torch.randn([6], generator=generator)
    fu = setup_filter(torch.randn([12], generator=generator).abs(), separable=True)
    fd = setup_filter(torch.randn([12], generator=generator).abs(), separable=True)
    expected = filtered_lrelu_reference(x, fu, fd, b, up=2, down=2, padding=10, clamp=1.0)
    got = filtered_lrelu(x.to(DEVICE), fu.to(DEVICE), fd.to(DEVICE), b.to(DEVICE), up=2, down=2, padding=10,
                         clamp=1.0)
    assert float((got.cpu() - expected).abs().max()) <= TOLERANCE
