"""The trainer on a tiny network and a tiny fixed dataset."""
import math

import numpy as np
import pytest
import torch

from explorer.formats import load_network
from explorer.training.discriminator import MinibatchStd
from explorer.training.trainer import Trainer, TrainingOptions, augment, load_images

torch.set_num_threads(1)


def _options(**overrides):
    base = dict(resolution=16, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8, batch=4,
                ema_kimg=0.01, seed=3)
    base.update(overrides)
    return TrainingOptions(**base)


def _images(count=12, size=16):
    generator = np.random.RandomState(0)
    images = np.full([count, size, size, 3], 255, np.uint8)
    for i in range(count):  # a coloured square on white: something D can tell from noise
        x, y = generator.randint(0, size // 2, 2)
        images[i, y:y + size // 2, x:x + size // 2] = generator.randint(0, 255, 3)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def _parameters(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_a_generator_step_lowers_its_loss_on_a_fixed_batch():
    trainer = Trainer(_options(augment=False, style_mixing_prob=0), _images())
    z = torch.randn([4, 8], generator=torch.Generator().manual_seed(0))

    def loss():
        image = trainer.G(z, None, noise_mode="const", fused_modconv=False).image
        return torch.nn.functional.softplus(-trainer.D(image)).mean()

    optimizer = torch.optim.Adam(trainer.G.parameters(), lr=0.002, betas=(0.0, 0.99))
    before = loss().item()
    for _ in range(3):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert loss().item() < before - 1e-3


def test_a_discriminator_step_lowers_its_loss_on_a_fixed_batch():
    trainer = Trainer(_options(augment=False), _images())
    real = trainer.images[:4].float() / 127.5 - 1
    fake = torch.randn([4, 3, 16, 16], generator=torch.Generator().manual_seed(1)) * 0.5

    def loss():
        return (torch.nn.functional.softplus(trainer.D(fake)) + torch.nn.functional.softplus(-trainer.D(real))).mean()

    optimizer = torch.optim.Adam(trainer.D.parameters(), lr=0.002, betas=(0.0, 0.99))
    before = loss().item()
    for _ in range(3):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert loss().item() < before - 1e-3


def test_full_steps_run_all_terms_with_sensible_values():
    trainer = Trainer(_options(r1_interval=1, pl_interval=1), _images())
    stats = trainer.step()
    assert stats["r1_penalty"] > 0 and stats["pl_penalty"] > 0   # squared norms: positive, and not vanishing
    assert stats["loss_G"] > 0 and stats["loss_D"] > 0
    assert trainer.progress.pl_mean > 0
    assert trainer.progress.nimg == 4 and trainer.progress.step == 1


def test_ema_moves_toward_g():
    trainer = Trainer(_options(), _images())
    before_distance = (_parameters(trainer.G_ema) - _parameters(trainer.G)).abs().sum()
    ema_before = _parameters(trainer.G_ema).clone()
    trainer.step()
    ema_after = _parameters(trainer.G_ema)
    g_after = _parameters(trainer.G)
    assert not torch.equal(ema_before, ema_after)
    # The EMA lies between where it was and where G is now.
    assert (ema_after - g_after).abs().sum() < (ema_before - g_after).abs().sum()
    assert before_distance == 0  # it starts as a copy of G


def test_checkpoint_round_trip_resumes_bit_exactly(tmp_path):
    images = _images()
    trainer = Trainer(_options(r1_interval=2, pl_interval=2), images)
    trainer.step()
    trainer.step()
    trainer.save(tmp_path / "ck.pt")
    trainer.step()
    continued = [_parameters(trainer.G), _parameters(trainer.D), _parameters(trainer.G_ema)]
    resumed = Trainer.resume(tmp_path / "ck.pt", images)
    resumed.step()
    again = [_parameters(resumed.G), _parameters(resumed.D), _parameters(resumed.G_ema)]
    for a, b in zip(continued, again):
        assert torch.equal(a, b)
    assert resumed.progress == trainer.progress


def test_augment_keeps_images_at_p0_and_changes_them_at_p1():
    images = torch.rand([4, 3, 16, 16]) * 2 - 1
    assert torch.equal(augment(images, 0.0, torch.Generator().manual_seed(0)), images)
    changed = augment(images, 1.0, torch.Generator().manual_seed(0))
    assert changed.shape == images.shape and (changed - images).abs().max() > 0.05


def test_minibatch_std_adds_the_group_spread():
    x = torch.zeros([4, 2, 4, 4])
    x[1] = 2.0
    y = MinibatchStd(group_size=4)(x)
    assert y.shape == (4, 3, 4, 4)
    # Values 0,2,0,0 in every position: population std = sqrt(0.75).
    assert torch.allclose(y[:, 2], torch.full([4, 4, 4], 0.75 ** 0.5), atol=1e-4)


def test_export_writes_a_network_the_explorer_opens(tmp_path):
    trainer = Trainer(_options(), _images())
    trainer.step()
    path = trainer.export(tmp_path / "default.safetensors")
    loaded = load_network(path)
    z = torch.randn([1, 8])
    expected = trainer.G_ema(z, None, noise_mode="const").image
    assert torch.allclose(loaded.generator(z, None, noise_mode="const").image, expected, atol=1e-6)
    with pytest.raises(FileExistsError):
        trainer.export(tmp_path / "default.safetensors")


def test_load_images_checks_layout(tmp_path):
    np.savez(tmp_path / "bad.npz", images=np.zeros([2, 3, 8, 8], np.float32))
    with pytest.raises(ValueError, match="uint8"):
        load_images(str(tmp_path / "bad.npz"))


def test_nearest_finds_the_closest_training_image():
    from explorer.training.sheets import nearest, tile
    data = np.random.RandomState(0).randint(0, 255, [20, 8, 8, 3]).astype(np.uint8)
    samples = data[[3, 17]].astype(np.int32) + 2   # small changes keep the nearest image the same
    assert list(nearest(np.clip(samples, 0, 255).astype(np.uint8), data)) == [3, 17]
    sheet = tile(data[:4], 2)
    assert sheet.shape == (8 * 2 + 2, 8 * 2 + 2, 3) and np.array_equal(sheet[:8, :8], data[0])


def test_the_adain_generator_trains_the_same_way(tmp_path):
    trainer = Trainer(_options(family="stylegan"), _images())
    before = _parameters(trainer.G).clone()
    w_avg = trainer.G.mapping.w_avg.clone()
    stats = trainer.step()
    assert trainer.G.family == "stylegan" and stats["loss_G"] > 0
    assert not torch.equal(before, _parameters(trainer.G))
    assert not torch.equal(w_avg, trainer.G.mapping.w_avg)   # w_avg is tracked, as the original's dlatent_avg
    path = trainer.export(tmp_path / "adain.safetensors")
    assert load_network(path).generator.family == "stylegan"


def test_bfloat16_steps_run_the_convolutions_in_bfloat16_and_keep_float32_weights():
    from explorer.training.discriminator import DiscriminatorBlock
    options = dict(r1_interval=1, pl_interval=1, conv_clamp=None)
    exact = Trainer(_options(**options), _images())
    mixed = Trainer(_options(precision="bfloat16", **options), _images())
    # Same seed, same initial weights: the two differ only by the precision of the passes.
    assert torch.equal(_parameters(exact.G), _parameters(mixed.G))
    # The first block of D takes the image: under autocast its convolutions see bfloat16 from the second on.
    seen = []
    for trainer in (exact, mixed):
        block = next(m for m in trainer.D.modules() if isinstance(m, DiscriminatorBlock))
        block.conv0.register_forward_hook(lambda _, __, output: seen.append(output.dtype))
    exact_stats, mixed_stats = exact.step(), mixed.step()
    assert seen[0] == torch.float32 and set(seen[len(seen) // 2:]) == {torch.bfloat16}
    for trainer in (exact, mixed):
        for net in (trainer.G, trainer.D, trainer.G_ema):
            assert {p.dtype for p in net.parameters()} == {torch.float32}
    for name in ("loss_G", "loss_D", "r1_penalty", "pl_penalty"):
        assert math.isfinite(mixed_stats[name]) and mixed_stats[name] > 0
    # bfloat16 keeps 8 bits of mantissa: losses agree to a few percent, and the weights moved the same way.
    for name in ("loss_G", "loss_D"):
        assert abs(mixed_stats[name] - exact_stats[name]) < 0.05 * exact_stats[name], name
    start = _parameters(Trainer(_options(**options), _images()).G)
    exact_move, mixed_move = _parameters(exact.G) - start, _parameters(mixed.G) - start
    assert torch.nn.functional.cosine_similarity(exact_move, mixed_move, dim=0) > 0.9


def test_bfloat16_checkpoint_round_trip_resumes_bit_exactly(tmp_path):
    images = _images()
    trainer = Trainer(_options(r1_interval=2, pl_interval=2, precision="bfloat16", conv_clamp=None), images)
    trainer.step()
    trainer.save(tmp_path / "ck.pt")
    trainer.step()
    resumed = Trainer.resume(tmp_path / "ck.pt", images)
    assert resumed.options.precision == "bfloat16" and resumed.options.conv_clamp is None
    resumed.step()
    for a, b in zip([trainer.G, trainer.D, trainer.G_ema], [resumed.G, resumed.D, resumed.G_ema]):
        assert torch.equal(_parameters(a), _parameters(b))


def test_checkpoints_written_before_the_precision_option_resume_as_float32_with_the_clamp(tmp_path):
    images = _images()
    trainer = Trainer(_options(), images)
    state = trainer.state()
    del state["options"]["precision"], state["options"]["conv_clamp"]   # as a checkpoint of 23 November holds
    torch.save(state, tmp_path / "old.pt")
    resumed = Trainer.resume(tmp_path / "old.pt", images)
    assert resumed.options.precision == "float32" and resumed.options.conv_clamp == 256
    assert torch.equal(_parameters(resumed.G), _parameters(trainer.G))


def test_a_signal_stops_the_run_after_its_minibatch_with_a_checkpoint(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    data = tmp_path / "tiny.npz"
    np.savez(data, images=_images(8).permute(0, 2, 3, 1).numpy())
    outdir = tmp_path / "run"
    command = [sys.executable, "-m", "explorer.training.trainer", "--data", str(data), "--outdir", str(outdir),
               "--kimg", "1000", "--batch", "4", "--channel-base", "64", "--channel-max", "8", "--threads", "1",
               "--checkpoint-minutes", "0"]   # a checkpoint after every minibatch: its file says the loop runs
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    deadline = time.time() + 120
    while not (outdir / "checkpoint.pt").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "stopped by signal" in output
    state = torch.load(outdir / "checkpoint.pt", weights_only=True)
    assert state["progress"]["nimg"] > 0 and state["progress"]["nimg"] % 4 == 0
    assert not (outdir / "checkpoint.pt.partial").exists()
    assert list(outdir.glob("samples-*.png"))


def test_droplet_sheet_shows_each_layers_peak_channel_with_its_ratio():
    from explorer.latents import z_from_seed
    from explorer.training.sheets import LABEL_LINE, droplet_sheet
    from tests.fixtures.networks import tiny_stylegan2
    G = tiny_stylegan2("sg2_skip_64")
    layers = ["b32.conv1", "b64.conv1"]
    sheet, peaks = droplet_sheet([("first", G), ("second", G)], seeds=[0, 5], layers=layers, tile_size=64)
    assert sheet.size == (3 * 64 + 2 * 2, 4 * (64 + 2 * LABEL_LINE + 2) - 2)
    with torch.no_grad():
        ws = G.mapping(z_from_seed(5, G.z_dim), None)
        activations = G.synthesis(ws, noise_mode="const", capture=layers).activations
    for layer, peak in zip(layers, peaks[0][1]):
        a = activations[layer][0].abs()
        assert peak.layer == layer and peak.peak_channel == int(a.amax(dim=(1, 2)).argmax())
        assert abs(peak.peak_to_mean - float(a.max() / a.mean())) < 1e-3 * peak.peak_to_mean
        # The tile is that channel normalised to its own max |x|: its extreme pixel reaches black or white.
        grey = peak.image[:, :, 0].astype(int)
        assert peak.image.shape[:2] == a.shape[1:] and max(grey.max() - 128, 128 - grey.min()) >= 126
    # Tiles are pasted where the layout says: the second network's first row starts with its image.
    pixels = np.asarray(sheet)
    top = 2 * (64 + 2 * LABEL_LINE + 2) + 2 * LABEL_LINE
    image_tile = pixels[top:top + 64, :64]
    assert image_tile.std() > 1 and not np.array_equal(image_tile, pixels[top:top + 64, 66:130])


def test_an_unknown_precision_is_refused_by_name():
    with pytest.raises(ValueError, match="bf16"):
        Trainer(_options(precision="bf16"), _images())
