"""The discriminator a network file holds, read with its generator: NVlabs pickles (D), rosinality checkpoints
(d) and this project's training checkpoints (D), checked against goldens that the original code computed from
the same weights (tests/golden/d_*.npz, made locally with NVlabs' networks_stylegan2.py and rosinality's
model.py, neither in the project); a D that cannot be read is noted and the generator loads all the same."""
import io

import numpy as np
import pytest
import torch

from explorer.formats import load_network
from explorer.training.trainer import Trainer, TrainingOptions
from tests.fixtures.discriminator_networks import (DISCRIMINATOR_CONFIGS, GOLDEN_BATCH, golden_inputs,
                                                   nvlabs_discriminator_kwargs, tiny_discriminator)
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.nvlabs_pickle_writer import write_nvlabs_pickle
from tests.fixtures.rosinality_writer import rosinality_d_state, rosinality_state, write_rosinality_checkpoint

TOLERANCE = 1e-4
GOLDEN = "tests/golden/{}.npz"
# The rosinality golden's discriminator: 32 px, narrow widths, weights of seed 5.
ROSINALITY_D_CHANNELS = {4: 16, 8: 16, 16: 8, 32: 8}
ROSINALITY_D_SEED = 5

torch.set_num_threads(1)


def _small_generator():
    return tiny_stylegan2("sg2_orig_32", seed=0)


@pytest.mark.parametrize("name", list(DISCRIMINATOR_CONFIGS))
@pytest.mark.parametrize("code_base", ["stylegan3", "stylegan2-ada-pytorch"])
def test_nvlabs_discriminator_matches_nvlabs_code(tmp_path, name, code_base):
    path = tmp_path / "snapshot.pkl"
    write_nvlabs_pickle(path, _small_generator(), D=tiny_discriminator(name), code_base=code_base)
    loaded = load_network(path)
    D = loaded.discriminator
    assert D is not None and "with its discriminator D" in loaded.detail and loaded.notes == ()
    assert D.config.get("architecture", "resnet") == DISCRIMINATOR_CONFIGS[name].get("architecture", "resnet")
    assert not any(p.requires_grad for p in D.parameters()) and not D.training
    golden = np.load(GOLDEN.format(name))
    images, c = golden_inputs(name)
    with torch.no_grad():
        logits = D(images, c)
        features = D.features(images)
    assert logits.shape == (GOLDEN_BATCH, 1)
    np.testing.assert_allclose(logits.numpy(), golden["logits"], rtol=0, atol=TOLERANCE)
    names = [f"feat/b{res}" for res in D.block_resolutions]
    assert sorted(names) == sorted(k for k in golden.files if k.startswith("feat/"))
    for feature, key in zip(features, names):
        np.testing.assert_allclose(feature.numpy(), golden[key], rtol=0, atol=TOLERANCE)


def test_rosinality_discriminator_matches_rosinality_code(tmp_path):
    buffer = io.BytesIO()
    torch.save({"g_ema": rosinality_state(size=32, style_dim=8, n_mlp=2, channels=ROSINALITY_D_CHANNELS),
                "latent_avg": torch.randn([8]),
                "d": rosinality_d_state(32, seed=ROSINALITY_D_SEED, channels=ROSINALITY_D_CHANNELS)}, buffer)
    path = tmp_path / "converted.pt"
    path.write_bytes(buffer.getvalue())
    loaded = load_network(path)
    D = loaded.discriminator
    assert loaded.format == "rosinality" and D is not None and "with its discriminator d" in loaded.detail
    golden = np.load(GOLDEN.format("d_rosinality_32"))
    images = torch.from_numpy(np.random.RandomState(7).uniform(-1, 1, [GOLDEN_BATCH, 3, 32, 32]).astype(np.float32))
    with torch.no_grad():
        np.testing.assert_allclose(D(images).numpy(), golden["logits"], rtol=0, atol=TOLERANCE)
        for k, feature in enumerate(D.features(images), start=1):
            np.testing.assert_allclose(feature.numpy(), golden[f"feat/{k}"], rtol=0, atol=TOLERANCE)


def test_a_rosinality_d_that_is_no_discriminator_is_noted_and_the_generator_loads(tmp_path):
    path = tmp_path / "train.pt"
    write_rosinality_checkpoint(path, layout="train", size=8, style_dim=8, n_mlp=1, channel_multiplier=1)
    loaded = load_network(path)
    assert loaded.discriminator is None and loaded.generator.img_resolution == 8
    assert [n for n in loaded.notes if n.startswith("discriminator not read: ")] == \
        ["discriminator not read: not a rosinality discriminator state dict (no convs.1.conv1.0.weight)"]


def test_rosinality_train_layout_with_a_real_d(tmp_path):
    path = tmp_path / "train.pt"
    write_rosinality_checkpoint(path, layout="train", size=8, style_dim=8, n_mlp=1, channel_multiplier=1,
                                d_channels={4: 8, 8: 4})
    loaded = load_network(path)
    assert loaded.discriminator is not None and loaded.discriminator.block_resolutions == [8]
    assert loaded.discriminator(torch.zeros([2, 3, 8, 8])).shape == (2, 1)


@pytest.mark.parametrize("change, says", [
    (dict(architecture="fancy"), "architecture='fancy'"),
    (dict(img_resolution=1 << 20), "img_resolution=1048576"),
    (dict(channel_base=1 << 25, channel_max=4096), "do not fit the discriminator"),
    (dict(square=False), "the setting 'square' is not one this explorer knows"),
    (dict(block_kwargs=dict(resample_filter=[1, 2, 1])), "not NVlabs' [1, 3, 3, 1]"),
])
def test_a_nvlabs_d_we_cannot_read_is_noted_and_the_generator_loads(tmp_path, change, says):
    D = tiny_discriminator("d_resnet_32")
    path = tmp_path / "snapshot.pkl"
    write_nvlabs_pickle(path, _small_generator(), D=D, d_init_kwargs={**nvlabs_discriminator_kwargs(D), **change})
    loaded = load_network(path)
    assert loaded.discriminator is None and loaded.generator.img_resolution == 32
    assert len(loaded.notes) == 1 and loaded.notes[0].startswith("discriminator not read: ")
    assert says in loaded.notes[0] and "\n" not in loaded.notes[0]


def test_a_d_entry_of_another_class_is_noted(tmp_path):
    path = tmp_path / "snapshot.pkl"
    write_nvlabs_pickle(path, _small_generator(), D=tiny_stylegan2("sg2_orig_32", seed=2), d_init_kwargs={})
    loaded = load_network(path)
    assert loaded.discriminator is None
    assert loaded.notes == ("discriminator not read: the D entry is a 'Generator', not NVlabs' Discriminator",)


def test_a_pickle_without_d_has_none_and_no_note(tmp_path):
    path = tmp_path / "snapshot.pkl"
    write_nvlabs_pickle(path, _small_generator())
    loaded = load_network(path)
    assert loaded.discriminator is None and loaded.notes == ()


@pytest.mark.parametrize("family", ["stylegan2", "stylegan"])
def test_training_checkpoint_opens_with_its_generator_and_discriminator(tmp_path, family):
    options = TrainingOptions(resolution=16, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8,
                              batch=4, seed=3, conv_clamp=None, family=family)
    images = torch.from_numpy(np.random.RandomState(0).randint(0, 255, [8, 3, 16, 16]).astype(np.uint8))
    trainer = Trainer(options, images)
    path = tmp_path / "run.pt"
    trainer.save(path)
    loaded = load_network(path)
    assert loaded.format == "training-checkpoint" and loaded.format_label == "stylegan-explorer training checkpoint"
    assert "with its discriminator D" in loaded.detail and loaded.notes == () and loaded.generator.family == family
    assert loaded.generator.config == trainer.G_ema.config    # the loader's settings are the trainer's
    z = torch.randn([2, 8], generator=torch.Generator().manual_seed(0))
    test_images = torch.rand([2, 3, 16, 16], generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        expected = trainer.G_ema(z, None, noise_mode="const").image
        assert torch.equal(loaded.generator(z, None, noise_mode="const").image, expected)
        assert torch.equal(loaded.discriminator(test_images), trainer.D.eval()(test_images))


def test_the_shipped_training_checkpoint_holds_the_default_model_and_its_d():
    loaded = load_network("assets/training/stylegan2.pt")
    default = load_network("assets/default.safetensors").generator
    assert loaded.discriminator is not None and loaded.discriminator.block_resolutions == [64, 32, 16, 8]
    for name, tensor in default.state_dict().items():
        assert torch.equal(loaded.generator.state_dict()[name], tensor), name
