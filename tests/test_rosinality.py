"""rosinality checkpoints in both layouts, written by the project's fixture writer, against outputs that
rosinality's own model.py computed from the same weights (tests/golden/rosinality_32.npz, made locally:
Generator(32, 16, 2, channel_multiplier=2), g([z], truncation=psi, truncation_latent=latent_avg,
randomize_noise=False); images for seeds 0-3 at psi 1 and 0.7, the StyledConv outputs for seed 0 at psi 0.7 cropped
to 4 channels x 16 x 16)."""
import numpy as np
import pytest
import torch

from explorer.description import describe
from explorer.formats import NetworkLoadError, load_network
from explorer.formats.native import save_network
from explorer.formats.rosinality import W_AVG_SAMPLES, convert_state, infer_config
from explorer.networks.stylegan2 import Generator
from tests.fixtures.rosinality_writer import (blur_kernel, rosinality_channels, rosinality_shapes, rosinality_state,
                                              write_rosinality_checkpoint)

torch.set_num_threads(1)
ACT_CROP = (slice(None), slice(0, 4), slice(0, 16), slice(0, 16))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ros")
    write_rosinality_checkpoint(folder / "convert.pt", layout="convert")
    write_rosinality_checkpoint(folder / "train.pt", layout="train")
    return folder


@pytest.fixture(scope="module")
def converted(files):
    return load_network(files / "convert.pt")


@pytest.fixture(scope="module")
def golden():
    return np.load("tests/golden/rosinality_32.npz")


def _z(seed):
    return torch.from_numpy(np.random.RandomState(seed).randn(1, 16)).float()


def _images(G, psis):
    out = {}
    with torch.no_grad():
        for seed in range(4):
            for psi in psis:
                ws = G.mapping(_z(seed), None, truncation_psi=psi)
                out[f"img_s{seed}_p{psi}"] = G.synthesis(ws, noise_mode="const").image.numpy()
    return out


def test_convert_weight_layout_matches_rosinality(converted, golden):
    loaded = converted
    assert loaded.format == "rosinality" and not loaded.w_avg_estimated
    assert "convert_weight.py" in loaded.detail and "size 32" in loaded.detail and "n_mlp 2" in loaded.detail
    description = describe(loaded)
    assert description.format == "rosinality stylegan2-pytorch checkpoint" and description.architecture == "skip"
    G = loaded.generator
    assert G.img_resolution == 32 and G.z_dim == 16 and G.num_ws == 8
    for key, image in _images(G, (1.0, 0.7)).items():
        assert np.abs(image - golden[key]).max() <= 1e-4, key
        assert np.abs(image).max() > 1


def test_activations_match_rosinality(converted, golden):
    G = converted.generator
    acts = {key[4:]: golden[key] for key in golden.files if key.startswith("act/")}
    assert len(acts) == 7
    with torch.no_grad():
        out = G(_z(0), None, truncation_psi=0.7, noise_mode="const", capture=list(acts))
    for name, expected in acts.items():
        assert np.abs(out.activations[name].numpy()[ACT_CROP] - expected).max() <= 1e-3, name


def test_train_layout_uses_g_ema_and_estimates_w_avg(files, golden):
    loaded = load_network(files / "train.pt")
    assert loaded.w_avg_estimated and any(f"{W_AVG_SAMPLES:,}" in note for note in loaded.notes)
    assert "train.py" in loaded.detail
    assert describe(loaded).w_avg_estimated
    for key, image in _images(loaded.generator, (1.0,)).items():
        assert np.abs(image - golden[key]).max() <= 1e-4, key   # g_ema, not g
    # The file's g (another seed) gives other images.
    G_train = Generator(**infer_config(rosinality_state(seed=1)))
    G_train.load_state_dict(convert_state(rosinality_state(seed=1), G_train.config), strict=False)
    with torch.no_grad():
        other = G_train(_z(0), None).image.numpy()
    assert np.abs(other - golden["img_s0_p1.0"]).max() > 0.1
    # The estimate is the mean w of many z: close to the mean w of other z, and repeatable.
    G = loaded.generator
    fresh = G.mapping(torch.randn([2000, 16], generator=torch.Generator().manual_seed(9)), None)[:, 0].mean(0)
    assert (G.mapping.w_avg - fresh).abs().max() < 0.2 * fresh.abs().max()
    assert torch.equal(load_network(files / "train.pt").generator.mapping.w_avg, G.mapping.w_avg)


@pytest.mark.parametrize("size,multiplier", [(64, 1), (128, 2), (64, 4), (256, 3)])
def test_constructor_arguments_from_shapes(size, multiplier):
    """Shapes only (meta tensors): the inferred network has exactly rosinality's tensors for every multiplier,
    including 4 (1024 channels at 64 px), which needs the explicit channel list."""
    shapes = rosinality_shapes(size, style_dim=32, n_mlp=3, channel_multiplier=multiplier)
    state = {k: blur_kernel() if k.endswith("kernel") else torch.empty(shape, device="meta")
             for k, shape in shapes.items()}
    config = infer_config(state)
    assert config["img_resolution"] == size and config["w_dim"] == 32 and config["mapping_kwargs"]["num_layers"] == 3
    assert ("channels" in config) == (multiplier > 2)
    with torch.device("meta"):
        G = Generator(**config)
    table = rosinality_channels(size, multiplier)
    layers = {layer.name: layer.channels for layer in G.synthesis.layers}
    assert all(layers[f"b{res}.conv1"] == channels for res, channels in table.items())
    ours = G.state_dict()
    converted = convert_state(state, config)
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(ours[k].shape) for k in converted}
    assert set(ours) - set(converted) == {k for k in ours if k.endswith("resample_filter")} | {"mapping.w_avg"}


def test_channel_list_round_trips_through_our_format(tmp_path):
    config = infer_config({k: blur_kernel() if k.endswith("kernel") else torch.empty(shape, device="meta")
                           for k, shape in rosinality_shapes(64, 8, 1, channel_multiplier=4).items()})
    small = {**config, "channels": [c // 64 for c in config["channels"]]}   # the same kind of list, cheaply
    G = Generator(**small).eval()
    save_network(G, tmp_path / "net.safetensors")
    again = load_network(tmp_path / "net.safetensors").generator
    assert again.config["channels"] == small["channels"]
    with torch.no_grad():
        z = torch.randn([1, 8], generator=torch.Generator().manual_seed(0))
        assert torch.equal(again(z, None).image, G(z, None).image)


def test_bad_checkpoints_get_clear_messages(tmp_path):
    state = rosinality_state(size=8, style_dim=8, n_mlp=1)
    swagan = dict(state, **{"iwt.ll": torch.zeros(2, 2)})
    torch.save({"g_ema": swagan, "latent_avg": torch.zeros(8)}, tmp_path / "swagan.pt")
    with pytest.raises(NetworkLoadError, match="SWAGAN"):
        load_network(tmp_path / "swagan.pt")
    wrong = dict(state, **{"convs.1.conv.weight": torch.zeros(1, 512, 256, 3, 3)})
    torch.save({"g_ema": wrong, "latent_avg": torch.zeros(8)}, tmp_path / "wrong.pt")
    with pytest.raises(NetworkLoadError, match="do not fit"):
        load_network(tmp_path / "wrong.pt")
    torch.save({"g_ema": state, "latent_avg": torch.zeros(5)}, tmp_path / "avg.pt")
    with pytest.raises(NetworkLoadError, match="latent_avg"):
        load_network(tmp_path / "avg.pt")
    custom = dict(state, **{"convs.0.conv.blur.kernel": torch.ones(4, 4) / 4})
    torch.save({"g_ema": custom, "latent_avg": torch.zeros(8)}, tmp_path / "blur.pt")
    with pytest.raises(NetworkLoadError, match="blur kernel"):
        load_network(tmp_path / "blur.pt")


def test_a_checkpoint_with_foreign_globals_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    path = tmp_path / "evil.pt"
    torch.save({"g_ema": {}, "payload": Evil()}, path)
    with pytest.raises(NetworkLoadError, match="refused to load"):
        load_network(path)
    other = tmp_path / "other.pt"
    torch.save({"model": torch.zeros(3)}, other)
    with pytest.raises(NetworkLoadError, match="not a rosinality one"):
        load_network(other)
