"""Non-square StyleGAN2 networks: StyleGAN-Human's pickles (its fork of stylegan2-ada-pytorch: `square=False`, the
synthesis starting from a 4x2 constant, images twice as tall as wide), written in that fork's layout by the
project's fixture writer (tests/fixtures/nvlabs_pickle_writer.py, code_base='stylegan-human'), against outputs
that the fork's own training_scripts/sg2/training/networks.py computed from the same weights
(tests/golden/stylegan_human.npz, made locally with its code, which is not part of this project: float32,
noise_mode='const', z = RandomState(seed).randn(1, z_dim)); the 1024x512 and 512x256 layouts at narrow widths;
any NVlabs-layout fork whose constant is not square; and render() of such a network.
"""
import numpy as np
import pytest
import torch

from explorer.formats import NetworkLoadError, load_network
from explorer.formats.native import save_network
from explorer.networks.stylegan2 import Generator
from explorer.render import LayerViewRequest, RenderRequest, render
from tests.fixtures.networks import randomize_
from tests.fixtures.nvlabs_pickle_writer import write_nvlabs_pickle

torch.set_num_threads(1)
TOLERANCE = 1e-4
HUMAN_BASE = [4, 2]
NETWORKS = {
    "human_skip_32": (dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=32, img_channels=3,
                           mapping_kwargs=dict(num_layers=2)),
                      dict(channel_base=256, channel_max=16, num_fp16_res=0, conv_clamp=256, architecture="skip")),
    "human_fp16_64": (dict(z_dim=12, c_dim=0, w_dim=12, img_resolution=64, img_channels=3,
                           mapping_kwargs=dict(num_layers=3)),
                      dict(channel_base=512, channel_max=16, num_fp16_res=2, conv_clamp=256, architecture="skip")),
}


def human_network(name: str, seed: int = 0) -> Generator:
    config, synthesis = NETWORKS[name]
    return randomize_(Generator(**config, **synthesis, base_shape=HUMAN_BASE), seed).eval()


@pytest.fixture(scope="module")
def golden():
    return np.load("tests/golden/stylegan_human.npz")


@pytest.mark.parametrize("name", list(NETWORKS))
def test_a_stylegan_human_pickle_matches_the_fork(tmp_path, golden, name):
    config, _ = NETWORKS[name]
    path = tmp_path / f"{name}.pkl"
    write_nvlabs_pickle(path, human_network(name), G=human_network(name, seed=1), code_base="stylegan-human")
    loaded = load_network(path)
    G = loaded.generator
    assert loaded.format == "nvlabs-pickle" and "StyleGAN-Human" in loaded.detail and "G_ema" in loaded.detail
    side = config["img_resolution"]
    assert G.img_shape == G.synthesis.img_shape == (side, side // 2) and G.config["base_shape"] == HUMAN_BASE
    with torch.no_grad():
        for seed in (0, 1):
            for psi in (1.0, 0.7):
                key = f"s{seed}_p{psi}"
                z = torch.from_numpy(np.random.RandomState(seed).randn(1, config["z_dim"])).float()
                ws = G.mapping(z, None, truncation_psi=psi)
                np.testing.assert_allclose(ws.numpy(), golden[f"{name}_ws_{key}"], rtol=0, atol=1e-5)
                image = G.synthesis(ws, noise_mode="const").image.numpy()
                expected = golden[f"{name}_img_{key}"]
                assert image.shape == expected.shape == (1, 3, side, side // 2)
                assert np.abs(image - expected).max() <= TOLERANCE
                assert np.abs(expected).max() > 0.5, "a trivially small image would hide errors"


@pytest.mark.parametrize("resolution", [512, 1024])
def test_the_released_layouts_load_with_every_layer_half_as_wide(tmp_path, resolution):
    """StyleGAN-Human's 512x256 and 1024x512 pickles, at a narrow width (their layout is the same)."""
    G_ema = randomize_(Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=resolution, img_channels=3,
                                 mapping_kwargs=dict(num_layers=2), channel_base=resolution * 4, channel_max=8,
                                 num_fp16_res=4, conv_clamp=256, base_shape=HUMAN_BASE), 2).eval()
    write_nvlabs_pickle(tmp_path / "h.pkl", G_ema, code_base="stylegan-human")
    G = load_network(tmp_path / "h.pkl").generator
    assert G.synthesis.b4.const.shape[1:] == (4, 2)
    for info in G.synthesis.layers:
        res = int(info.name.split(".")[0][1:])
        assert (info.height, info.width) == (res, res // 2), info
    z = torch.randn([1, 8], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = G(z, None, noise_mode="random", noise_seed=3, capture=["b64.conv1"])
        reference = G_ema(z, None, noise_mode="random", noise_seed=3).image
    assert out.image.shape == (1, 3, resolution, resolution // 2)
    assert out.activations["b64.conv1"].shape[-2:] == (64, 32)
    assert torch.equal(out.image, reference) and out.image.abs().max() > 0.1


def test_a_square_network_says_so():
    from tests.fixtures.networks import tiny_stylegan2
    assert tiny_stylegan2("sg2_skip_64").img_shape == (64, 64)


def test_render_gives_the_non_square_image_and_layer_views(tmp_path):
    G = human_network("human_skip_32")
    result = render(G, RenderRequest(network_key="h", seed_weights=((5, 1.0),)), capture_all=True)
    assert result.ok, result.error
    assert result.image.shape == (32, 16, 3) and result.raw.shape == (3, 32, 16)
    with torch.no_grad():
        z = torch.from_numpy(np.random.RandomState(5).randn(1, 8)).float()
        expected = G(z, None, noise_mode="const").image[0].numpy()
    np.testing.assert_allclose(result.raw, expected, rtol=0, atol=1e-5)
    assert result.activations["b16.conv1"].shape[-2:] == (16, 8)
    view = render(G, RenderRequest(network_key="h", seed_weights=((5, 1.0),),
                                   view=LayerViewRequest(layer="b8.conv1", mode="single")))
    assert view.ok, view.error
    assert view.layer_image.shape[:2] == (8, 4)


def test_a_non_square_network_survives_the_native_format(tmp_path):
    G = human_network("human_skip_32")
    save_network(G, tmp_path / "h.safetensors")
    loaded = load_network(tmp_path / "h.safetensors").generator
    z = torch.randn([2, 8], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(z, None).image, G(z, None).image)
    assert loaded.synthesis.img_shape == (32, 16)


def test_an_nvlabs_fork_with_a_rectangular_constant_opens_by_its_shapes(tmp_path):
    """A stylegan2-ada-pytorch fork that records no setting for it: the constant's shape says the network is wide."""
    wide = randomize_(Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                                mapping_kwargs=dict(num_layers=2), channel_base=128, channel_max=8, num_fp16_res=0,
                                conv_clamp=None, base_shape=[4, 8]), 4).eval()
    init_kwargs = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                       mapping_kwargs=dict(num_layers=2),
                       synthesis_kwargs=dict(channel_base=128, channel_max=8, num_fp16_res=0, conv_clamp=None))
    write_nvlabs_pickle(tmp_path / "wide.pkl", wide, code_base="stylegan2-ada-pytorch", init_kwargs=init_kwargs)
    G = load_network(tmp_path / "wide.pkl").generator
    z = torch.randn([1, 8], generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        image = G(z, None).image
        assert torch.equal(image, wide(z, None).image)
    assert image.shape == (1, 3, 16, 32)


@pytest.mark.parametrize("base_shape, pattern", [
    ([4, 0], "base_shape"), ([4, 2, 1], r"a \[height, width\] pair"), ([64, 2], "base_shape"),
    ("4x2", r"a \[height, width\] pair"),
])
def test_bad_base_shapes_are_refused_in_one_line(tmp_path, base_shape, pattern):
    G = human_network("human_skip_32")
    config = dict(G.config, base_shape=base_shape)
    init_kwargs = {k: config.pop(k) for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels",
                                               "mapping_kwargs")}
    init_kwargs["synthesis_kwargs"] = config
    write_nvlabs_pickle(tmp_path / "bad.pkl", G, code_base="stylegan2-ada-pytorch", init_kwargs=init_kwargs)
    with pytest.raises(NetworkLoadError, match=pattern):
        load_network(tmp_path / "bad.pkl")


def test_a_square_flag_that_is_not_a_boolean_is_refused(tmp_path):
    G = human_network("human_skip_32")
    config = dict(G.config)
    config.pop("base_shape")
    init_kwargs = {k: config.pop(k) for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels",
                                               "mapping_kwargs")}
    init_kwargs.update(synthesis_kwargs=config, square="no")
    write_nvlabs_pickle(tmp_path / "bad.pkl", G, code_base="stylegan2-ada-pytorch", init_kwargs=init_kwargs)
    with pytest.raises(NetworkLoadError, match="square='no' is not valid"):
        load_network(tmp_path / "bad.pkl")


def test_stylegan_humans_rectangular_stylegan3_pickles_are_named(tmp_path):
    from explorer.networks.stylegan3 import Generator as StyleGAN3
    G = StyleGAN3(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2),
                  channel_base=128, channel_max=8, num_layers=4, num_critical=1, margin_size=2).eval()
    write_nvlabs_pickle(tmp_path / "h3.pkl", G, init_kwargs=dict(G.config, square=False))
    with pytest.raises(NetworkLoadError, match="^StyleGAN-Human's rectangular StyleGAN3 pickle: not supported yet"):
        load_network(tmp_path / "h3.pkl")
