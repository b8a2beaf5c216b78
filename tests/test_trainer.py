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


def test_droplet_sheet_marks_the_planted_shared_spot_and_shows_the_channels_there():
    from explorer.analysis.droplets import SHARED_SPOT_SHARE, shared_spots, window_radius
    from explorer.analysis.latent import seed_ws
    from explorer.training.sheets import (GAP, LABEL_LINE, LAYER_GAP, MARK_COLOUR, NETWORK_GAP, STRIP_CHANNELS,
                                          droplet_sheet)
    from tests.fixtures.analysis_networks import planted_droplet, tiny_adain
    # A spike planted in every channel of b32.conv1 (a droplet); b32.conv0 before it has none.
    planted, plain = planted_droplet("b32.conv1", y=20, x=11), tiny_adain()
    layers, seeds, size = ["b32.conv0", "b32.conv1"], [0, 3], 64
    sheet, tiles, reports = droplet_sheet([("planted", planted), ("plain", plain)], seeds, layers, tile_size=size)
    red = np.all(np.asarray(sheet) == MARK_COLOUR, axis=2)
    for s, seed in enumerate(seeds):
        one, spread = tiles[0][s]
        with torch.no_grad():
            activation = planted.synthesis(seed_ws(planted, seed), capture=["b32.conv1"]).activations["b32.conv1"]
        spots = shared_spots(activation)                      # the detector's own measure, on the same maps
        assert (spread.y, spread.x, spread.share) == (20, 11, pytest.approx(float(spots.share[0])))
        assert spread.droplet and spread.share > 0.5 and spread.radius == window_radius(32, 32) == 1
        assert len(spread.spot_channels) == round(spread.share * spread.channels)
        # The outline: 2 px wide just outside the 3 x 3 window of map pixels 19-21, 10-12 (2 tile px each).
        marked = np.all(spread.tile == MARK_COLOUR, axis=2)
        assert marked[36:38, 18:28].all() and marked[44:46, 18:28].all() and marked[36:46, 18:20].all()
        assert marked.sum() == 10 * 10 - 6 * 6 and not marked[38:44, 20:26].any()
        # The layer before has no droplet: no outline on its tile.
        assert not one.droplet and one.share < SHARED_SPOT_SHARE and not np.all(one.tile == MARK_COLOUR, axis=2).any()
    assert not any(t.droplet for row in tiles[1] for t in row)
    # The per-seed shares add up to the detector's report: the median over the seeds and the seeds reaching it.
    spread_line = reports[0].layers[1]
    assert spread_line.layer == "b32.conv1" and spread_line.seeds == 2 and spread_line.droplet
    assert spread_line.shared_share == pytest.approx(float(np.median([row[1].share for row in tiles[0]])))
    # Layout: a caption, then a row per seed; each layer's energy tile is followed by its 2 x 2 channel tiles, which
    # carry the outline too. Nothing else is red but the droplet rows' outlines (and their labels' "droplet").
    stride = 2 * LABEL_LINE + size + GAP + GAP                 # a row: labels, the 2 x 2 channel block, a gap
    caption = sheet.size[1] - (2 * len(seeds) * stride + NETWORK_GAP - GAP)    # the caption's lines, wrapped
    assert caption % LABEL_LINE == GAP and sheet.size[0] == size + 2 * (LAYER_GAP + size + GAP + size + GAP)
    top = caption + 2 * LABEL_LINE                              # the first row's tiles
    left = size + LAYER_GAP + (LAYER_GAP + size + GAP + size + GAP) * 1        # the second layer
    assert np.array_equal(np.asarray(sheet)[top:top + size, left:left + size], tiles[0][0][1].tile)
    # The first STRIP_CHANNELS channels counted at the spot, 2 x 2, each a 32 px map in a 32 px tile with a 1 px
    # outline just outside the window (rows and columns 18-22 and 9-13).
    small = size // 2
    assert len(tiles[0][0][1].spot_channels) >= STRIP_CHANNELS == 4
    for k in range(STRIP_CHANNELS):
        y0, x0 = top + (k // 2) * (small + GAP), left + size + GAP + (k % 2) * (small + GAP)
        outline = red[y0:y0 + small, x0:x0 + small]
        assert outline[18, 9:14].all() and outline[22, 9:14].all() and outline[18:23, 9].all()
        assert outline.sum() == 5 * 5 - 3 * 3
    assert not red[caption + len(seeds) * stride:].any()       # the plain network's rows


def test_droplet_sheet_command_writes_the_sheet_and_prints_each_layers_shared_spot(tmp_path, capsys):
    from PIL import Image

    from explorer.formats.native import save_network
    from explorer.training.sheets import main
    from tests.fixtures.analysis_networks import planted_droplet, tiny_adain
    first = save_network(planted_droplet("b32.conv1", y=20, x=11), tmp_path / "planted.safetensors")
    second = save_network(tiny_adain(), tmp_path / "plain.safetensors")
    assert main(["--droplets", str(first), str(second), "--layers", "b32.conv1", "--seeds", "0,3",
                 "--outdir", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"wrote {tmp_path / 'out' / 'droplets.png'}") and "seeds 0,3" in lines[0]
    assert len(lines) == 3
    assert lines[1].split()[1:3] == ["(AdaIN)", "b32.conv1"] and lines[1].endswith("2 of 2 seeds  droplets")
    assert not lines[2].endswith("droplets")
    sheet = Image.open(tmp_path / "out" / "droplets.png")
    assert sheet.size[0] == 2 * (128 + 8 + 128 + 2 + 64 + 2 + 64)  # the image, a layer's tile and 2 x 2 channels
    with pytest.raises(SystemExit):
        main(["--droplets", str(first), str(second), "--layers", "b8.conv0", "--outdir", str(tmp_path / "out")])
    assert "too small for a local spike" in capsys.readouterr().err


def test_an_unknown_precision_is_refused_by_name():
    with pytest.raises(ValueError, match="bf16"):
        Trainer(_options(precision="bf16"), _images())


@pytest.mark.parametrize("family", ["stylegan", "stylegan2"])
def test_growing_keeps_the_shared_layers_weights_and_adam_moments(tmp_path, family):
    trainer = Trainer(_options(family=family), _images())
    trainer.step()
    trainer.step()
    trainer.save(tmp_path / "small.pt")
    grown = Trainer.grow(tmp_path / "small.pt", _images(size=32))
    assert grown.options.resolution == 32 and grown.G.img_resolution == 32
    assert grown.options.r1_gamma == pytest.approx(0.0002 * 32 ** 2 / 4)
    assert grown.progress.nimg == trainer.progress.nimg == grown.progress.grown_at_nimg
    for old, new, opt_old, opt_new in ((trainer.G, grown.G, trainer.opt_G, grown.opt_G),
                                       (trainer.D, grown.D, trainer.opt_D, grown.opt_D)):
        old_parameters = dict(old.named_parameters())
        shared = kept = 0
        for name, parameter in new.named_parameters():
            before = old_parameters.get(name)
            if before is None or before.shape != parameter.shape:
                assert opt_new.state.get(parameter) is None   # a new layer starts without Adam moments
                continue
            shared += 1
            assert torch.equal(parameter, before), name
            if before in opt_old.state:
                kept += 1
                assert torch.equal(opt_new.state[parameter]["exp_avg_sq"], opt_old.state[before]["exp_avg_sq"]), name
        assert shared > 0 and kept > 0
    assert any(name.startswith("synthesis.b32.") for name, _ in grown.G.named_parameters())
    stats = grown.step()
    assert math.isfinite(stats["loss_G"]) and grown.progress.nimg == trainer.progress.nimg + 4
    grown.save(tmp_path / "grown.pt")
    assert Trainer.resume(tmp_path / "grown.pt", _images(size=32)).progress.grown_at_nimg == trainer.progress.nimg


def test_growing_refuses_images_no_larger_than_the_checkpoints(tmp_path):
    trainer = Trainer(_options(), _images())
    trainer.save(tmp_path / "small.pt")
    with pytest.raises(ValueError, match="larger than the checkpoint's 16 px"):
        Trainer.grow(tmp_path / "small.pt", _images(size=16))


def test_pl_weight_given_on_resume_changes_the_runs_option_and_drops_the_term(tmp_path, capsys):
    data = tmp_path / "tiny.npz"
    np.savez(data, images=_images(8).permute(0, 2, 3, 1).numpy())
    trainer = Trainer(_options(), _images(8))
    trainer.step()                                   # step 0 runs the path length term: pl_mean moves from 0
    trainer.save(tmp_path / "ck.pt")
    assert trainer.progress.pl_mean != 0
    # Four more minibatches, steps 1-4: the term would run at step 4.
    kimg = (trainer.progress.nimg + 4 * trainer.options.batch) / 1000
    for weight, outdir in ((None, "kept"), (0.0, "dropped")):
        extra = [] if weight is None else ["--pl-weight", str(weight)]
        assert _run_main(["--data", str(data), "--outdir", str(tmp_path / outdir), "--resume", str(tmp_path / "ck.pt"),
                          "--kimg", str(kimg), "--sample-minutes", "1000", *extra]) == 0
    kept = torch.load(tmp_path / "kept" / "checkpoint.pt", weights_only=True)
    dropped = torch.load(tmp_path / "dropped" / "checkpoint.pt", weights_only=True)
    assert kept["progress"]["step"] == dropped["progress"]["step"] == 5
    assert kept["options"]["pl_weight"] == 2.0 and kept["progress"]["pl_mean"] != trainer.progress.pl_mean
    assert dropped["options"]["pl_weight"] == 0.0 and dropped["progress"]["pl_mean"] == trainer.progress.pl_mean
    assert "path length weight 2 -> 0 from image 4" in capsys.readouterr().out


def _run_main(arguments):
    """trainer.main, with the signal handlers it installs put back afterwards."""
    import signal
    from explorer.training.trainer import main
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        return main(arguments)
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])


def test_every_checkpoint_is_measured_and_kept_without_changing_the_run(tmp_path, capsys):
    from explorer.analysis.droplets import detect_droplets
    from explorer.training.measures import DROPLET_SEEDS, markdown_table, read_measures
    from explorer.training.quality import evaluate
    data = tmp_path / "tiny.npz"
    np.savez(data, images=_images(8).permute(0, 2, 3, 1).numpy())
    start = Trainer(_options(), _images(8))
    start.save(tmp_path / "start.pt")
    kimg = str(3 * start.options.batch / 1000)      # three minibatches, a checkpoint after each (0 minutes apart)
    common = ["--data", str(data), "--resume", str(tmp_path / "start.pt"), "--kimg", kimg, "--sample-minutes", "1000"]
    assert _run_main([*common, "--outdir", str(tmp_path / "measured"), "--checkpoint-minutes", "0",
                      "--keep-checkpoints"]) == 0
    assert "measured at 12 images: precision" in capsys.readouterr().out
    assert _run_main([*common, "--outdir", str(tmp_path / "plain"), "--no-measure"]) == 0
    assert not (tmp_path / "plain" / "measures.jsonl").exists()

    records = read_measures(tmp_path / "measured" / "measures.jsonl")
    assert [r.images_seen for r in records] == [4, 8, 12]          # the end does not measure 12 again
    kept = sorted(p.name for p in (tmp_path / "measured").glob("checkpoint-*.pt"))
    assert kept == ["checkpoint-000000004.pt", "checkpoint-000000008.pt", "checkpoint-000000012.pt"]
    # Each record is what measuring its kept checkpoint's EMA generator afresh gives.
    for record in (records[0], records[2]):
        G = load_network(tmp_path / "measured" / f"checkpoint-{record.images_seen:09d}.pt").generator
        quality = evaluate(G, _images(8).permute(0, 2, 3, 1).numpy())
        assert record.quality.precision == pytest.approx(quality.precision, abs=1e-4)
        assert record.quality.recall == pytest.approx(quality.recall, abs=1e-4)
        assert record.quality.kid * 1000 == pytest.approx(quality.kid * 1000, abs=2e-3)
        report = detect_droplets(G, list(DROPLET_SEEDS))
        assert [layer.layer for layer in record.layers] == [layer.layer for layer in report.layers] == \
            ["b16.conv0", "b16.conv1"]
        for mine, theirs in zip(record.layers, report.layers):
            assert mine.droplet_seeds == theirs.seeds and mine.widest_seed == theirs.best_seed
            assert mine.median_share == pytest.approx(theirs.shared_share, abs=1e-4)
            assert mine.widest_share == pytest.approx(max(theirs.shares), abs=1e-4)
    assert records[0].quality != records[2].quality             # the generator moved between them
    # Measuring reads no random numbers of the training: both runs end in the same networks, bit for bit.
    measured = torch.load(tmp_path / "measured" / "checkpoint.pt", weights_only=True)
    plain = torch.load(tmp_path / "plain" / "checkpoint.pt", weights_only=True)
    for part in ("G", "G_ema", "D"):
        for name, value in measured[part].items():
            assert torch.equal(value, plain[part][name]), (part, name)
    table = markdown_table(records).splitlines()
    assert table[0] == ("| images seen | hours | precision | recall | KID x 1000 | b16.conv0: droplet seeds, widest "
                        "spot | b16.conv1: droplet seeds, widest spot |")
    assert table[2].startswith(f"| 4 | {records[0].hours:.2f} | {records[0].quality.precision:.3f} |")
    assert len(table) == 5


def test_a_broken_measures_file_is_named_with_its_line(tmp_path, capsys):
    from explorer.training.measures import main
    path = tmp_path / "measures.jsonl"
    path.write_text('{"images_seen": 4}\n')
    assert main([str(path)]) == 2
    assert f"{path}, line 1: not a measures record" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.jsonl")]) == 2


def test_a_failed_measurement_is_reported_and_the_run_goes_on(tmp_path, capsys, monkeypatch):
    import explorer.training.trainer as trainer_module
    failures = iter([RuntimeError("out of memory: tried to allocate 2.00 GiB\nmore lines"), MemoryError()])

    def out_of_memory(*_args, **_kwargs):
        raise next(failures)
    monkeypatch.setattr(trainer_module, "measure_checkpoint", out_of_memory)
    data = tmp_path / "tiny.npz"
    np.savez(data, images=_images(8).permute(0, 2, 3, 1).numpy())
    Trainer(_options(), _images(8)).save(tmp_path / "start.pt")
    assert _run_main(["--data", str(data), "--resume", str(tmp_path / "start.pt"), "--kimg", "0.008",
                      "--sample-minutes", "1000", "--checkpoint-minutes", "0", "--outdir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "measuring at 4 images failed (out of memory: tried to allocate 2.00 GiB); the run goes on" in out
    assert "measuring at 8 images failed (MemoryError); the run goes on" in out      # no message of its own
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["progress"]["nimg"] == 8
    assert not (tmp_path / "run" / "measures.jsonl").exists()


def test_a_run_that_has_nothing_left_to_train_saves_but_measures_nothing(tmp_path, capsys):
    data = tmp_path / "tiny.npz"
    np.savez(data, images=_images(8).permute(0, 2, 3, 1).numpy())
    trainer = Trainer(_options(), _images(8))
    trainer.step()
    trainer.save(tmp_path / "start.pt")
    assert _run_main(["--data", str(data), "--resume", str(tmp_path / "start.pt"), "--kimg", "0.004",
                      "--sample-minutes", "1000", "--outdir", str(tmp_path / "run"), "--keep-checkpoints"]) == 0
    assert "measured" not in capsys.readouterr().out
    assert not (tmp_path / "run" / "measures.jsonl").exists()      # the starting checkpoint is not the run's
    assert (tmp_path / "run" / "checkpoint-000000004.pt").exists()


def test_measures_of_a_network_too_small_for_the_detector_have_no_droplet_lines():
    from explorer.training.measures import markdown_table, measure_checkpoint
    small = Trainer(_options(resolution=8), _images(8, size=8))
    measures = measure_checkpoint(small.G_ema, _images(8, size=8).permute(0, 2, 3, 1).numpy(), 8, 0.01)
    assert measures.layers == () and measures.quality.samples == 8
    assert measures.line().startswith("measured at 8 images: precision") and "droplets" not in measures.line()
    # A table of records with and without layers has every layer's column; "-" where a record lacks it.
    big = Trainer(_options(), _images(8))
    later = measure_checkpoint(big.G_ema, _images(8).permute(0, 2, 3, 1).numpy(), 16, 0.02)
    rows = markdown_table([measures, later]).splitlines()
    assert rows[0].endswith("| b16.conv0: droplet seeds, widest spot | b16.conv1: droplet seeds, widest spot |")
    assert rows[2].endswith("| - | - |") and not rows[3].endswith("| - | - |")


def test_precision_given_on_resume_changes_the_runs_precision_and_keeps_it_otherwise(tmp_path, capsys):
    # A run saved in bfloat16 on a CPU with bfloat16 units must go on in float32 on one without (there bfloat16
    # passes are emulated, about 20x slower): --precision changes it, as --pl-weight changes the path length term.
    from explorer.networks.common import bfloat16_is_fast_on_cpu
    data = tmp_path / "tiny.npz"
    np.savez(data, images=_images(8).permute(0, 2, 3, 1).numpy())
    trainer = Trainer(_options(precision="bfloat16"), _images(8))
    trainer.save(tmp_path / "ck.pt")
    kimg = (trainer.progress.nimg + trainer.options.batch) / 1000
    for precision, outdir in ((None, "kept"), ("float32", "changed")):
        extra = [] if precision is None else ["--precision", precision]
        assert _run_main(["--data", str(data), "--outdir", str(tmp_path / outdir), "--resume", str(tmp_path / "ck.pt"),
                          "--kimg", str(kimg), "--sample-minutes", "1000", "--no-measure", *extra]) == 0
    kept = torch.load(tmp_path / "kept" / "checkpoint.pt", weights_only=True)
    changed = torch.load(tmp_path / "changed" / "checkpoint.pt", weights_only=True)
    assert kept["options"]["precision"] == "bfloat16" and changed["options"]["precision"] == "float32"
    assert kept["progress"]["step"] == changed["progress"]["step"] == 1
    assert not torch.equal(kept["G"]["synthesis.b16.conv1.weight"], changed["G"]["synthesis.b16.conv1.weight"])
    out = capsys.readouterr().out
    assert "precision bfloat16 -> float32 from image 0" in out
    assert ("this CPU has no bfloat16 units" in out) == (not bfloat16_is_fast_on_cpu())


def test_minutes_stop_a_run_in_time_and_save_it(tmp_path, capsys):
    data = tmp_path / "tiny.npz"
    np.savez(data, images=_images(8).permute(0, 2, 3, 1).numpy())
    Trainer(_options(), _images(8)).save(tmp_path / "ck.pt")
    assert _run_main(["--data", str(data), "--outdir", str(tmp_path / "run"), "--resume", str(tmp_path / "ck.pt"),
                      "--kimg", "1000", "--minutes", "0.01", "--no-measure"]) == 0
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert 0 < saved["progress"]["nimg"] < 1_000_000
    assert f"stopped after 0.01 minutes at {saved['progress']['nimg']} images" in capsys.readouterr().out
    # A run that reaches --kimg first is not said to have run out of time.
    assert _run_main(["--data", str(data), "--outdir", str(tmp_path / "short"), "--resume", str(tmp_path / "ck.pt"),
                      "--kimg", "0.004", "--minutes", "100", "--no-measure"]) == 0
    assert "stopped after" not in capsys.readouterr().out
    for bad in ("0", "nan"):
        with pytest.raises(SystemExit):
            _run_main(["--data", str(data), "--outdir", str(tmp_path / "bad"), "--minutes", bad])
        assert "--minutes must be more than 0" in capsys.readouterr().err
