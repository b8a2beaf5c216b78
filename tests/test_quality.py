"""Precision, recall and KID on pixel features (explorer.training.quality), on tiny sets with known answers."""
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.formats.native import save_network
from explorer.render import RenderRequest, render
from explorer.training.quality import (EXIT_BAD_INPUT, image_features, kid, main, mmd2_unbiased,
                                       polynomial_kernel, precision_recall, sample_images)
from explorer.training.trainer import Trainer, TrainingOptions
from tests.fixtures.networks import tiny_stylegan2

torch.set_num_threads(1)


def _images(count=64, size=16, seed=0):
    """uint8 [count, size, size, 3]: a coloured square on white, at a random place, of a random colour."""
    draw = np.random.RandomState(seed)
    images = np.full([count, size, size, 3], 255, np.uint8)
    for i in range(count):
        x, y = draw.randint(0, size // 2, 2)
        images[i, y:y + size // 2, x:x + size // 2] = draw.randint(0, 255, 3)
    return images


def _numpy_mmd2_unbiased(x, y):
    """The unbiased MMD² written out pair by pair, with the kernel (x·y / d + 1)^3."""
    d = x.shape[1]

    def k(a, b):
        return (np.dot(a, b) / d + 1) ** 3

    m, n = len(x), len(y)
    within_x = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    within_y = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    across = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return within_x + within_y - 2 * across


def test_kid_is_the_unbiased_mmd2_of_the_formula_averaged_over_seeded_subsets():
    draw = np.random.RandomState(1)
    x, y = draw.rand(30, 7), draw.rand(24, 7) * 0.8 + 0.3
    expected = _numpy_mmd2_unbiased(x, y)
    assert mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(expected, rel=1e-6)
    assert expected > 0.01   # different distributions: the test is not comparing two zeros
    # Subsets drawn as the docstring says: per subset, reals then fakes, without replacement, from RandomState(5).
    subsets = np.random.RandomState(5)
    means = []
    for _ in range(4):
        real_subset, fake_subset = subsets.choice(30, 10, replace=False), subsets.choice(24, 10, replace=False)
        means.append(_numpy_mmd2_unbiased(x[real_subset], y[fake_subset]))
    measured = kid(torch.from_numpy(x), torch.from_numpy(y), subsets=4, subset_size=10, seed=5)
    assert measured == pytest.approx(np.mean(means), rel=1e-6)


def test_identical_sets_give_precision_and_recall_1_and_kid_near_0():
    real = image_features(_images(64))
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    darker = image_features((_images(64).astype(np.int32) * 9 // 10).astype(np.uint8))
    scale = kid(real, darker)    # what a 10% darker copy of the data scores
    # Two sets of one distribution: 0 within the estimator's noise.
    assert abs(kid(real, image_features(_images(64, seed=1)))) < 0.05 * scale
    # One set against itself: the unbiased estimator assumes independent sets, and here every point meets itself
    # across, so it gives exactly 2 (mean k(x, y), x != y - mean k(x, x)) / n, slightly below 0.
    same = kid(real, real.clone())
    kernel = polynomial_kernel(real, real).double()
    n = len(real)
    self_pairs, distinct_pairs = kernel.diagonal().mean(), (kernel.sum() - kernel.diagonal().sum()) / (n * (n - 1))
    assert same == pytest.approx(2 * (distinct_pairs - self_pairs).item() / n, rel=1e-6)
    assert -0.2 * scale < same < 0


def test_samples_far_from_the_reals_have_precision_0_and_recall_0():
    real = image_features(_images(64))
    far = real + 1.0    # every feature moved by 1: a distance of sqrt(3072) from its real image
    assert precision_recall(real, far) == (0.0, 0.0)
    assert kid(real, far) > 100 * abs(kid(real, real.clone()))


def test_a_mode_collapsed_generator_is_precise_and_covers_nothing():
    real = image_features(_images(64))
    collapsed = real[:1].repeat(64, 1)     # every sample is the first real image
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0
    assert recall <= 1 / 64                # at most the one real image the samples copy


def test_generator_output_and_its_saved_image_have_the_same_features(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    samples = sample_images(G, [0, 1, 2])
    for seed, sample in enumerate(samples):
        result = render(G, RenderRequest("quality", seed_weights=((seed, 1.0),)))
        # The sampler's image is the explorer's image of the seed (psi 1, constant noise)...
        assert torch.allclose(sample, torch.from_numpy(result.raw), atol=1e-5)
        # ...and its features are those of the uint8 image the explorer shows and saves, read back from a PNG.
        buffer = io.BytesIO()
        Image.fromarray(result.image).save(buffer, format="png")
        saved = np.asarray(Image.open(buffer))[None]
        assert torch.equal(image_features(torch.from_numpy(result.raw)[None]), image_features(saved))
    features = image_features(samples)
    assert features.shape == (3, 32 * 32 * 3) and 0 <= features.min() and features.max() <= 1


def _training_checkpoint(path, nimg):
    """A tiny trainer checkpoint whose G differs from its G_ema, so the file shows which one the loader takes."""
    options = TrainingOptions(resolution=16, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8,
                              batch=4, seed=3)
    trainer = Trainer(options, torch.from_numpy(_images(8)).permute(0, 3, 1, 2).contiguous())
    with torch.no_grad():
        for parameter in trainer.G.parameters():
            parameter.add_(0.5)
    trainer.progress.nimg = nimg
    trainer.save(path)
    return trainer


def test_the_command_prints_the_data_ceiling_and_a_row_per_file(tmp_path, capsys):
    data = tmp_path / "data.npz"
    np.savez(data, images=_images(64))
    checkpoint = tmp_path / "checkpoint.pt"
    trainer = _training_checkpoint(checkpoint, nimg=12345)
    snapshot = save_network(tiny_stylegan2("sg2_orig_32"), tmp_path / "tiny.safetensors")

    from explorer.formats import load_network
    z = torch.randn([2, 8], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():   # the loader gives the checkpoint's EMA generator, not its G
        loaded = load_network(checkpoint).generator(z, None, noise_mode="const").image
        assert torch.equal(loaded, trainer.G_ema(z, None, noise_mode="const").image)
        assert not torch.allclose(loaded, trainer.G(z, None, noise_mode="const").image)

    assert main(["--data", str(data), str(checkpoint), str(snapshot), "--count", "16"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "| file | images seen | precision | recall | KID x 1000 |"
    assert len(lines) == 5
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    assert [row[:2] for row in cells] == [["data vs data (2 x 32)", "-"], [str(checkpoint), "12,345"],
                                          [str(snapshot), "-"]]
    for row in cells:
        precision, recall, _ = (float(value) for value in row[2:])
        assert 0 <= precision <= 1 and 0 <= recall <= 1
    # The halves of one dataset are far closer to each other than untrained networks are to the data.
    assert float(cells[0][4]) < float(cells[1][4]) and float(cells[0][4]) < float(cells[2][4])

    assert main(["--data", str(data), str(checkpoint), "--count", "16", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["file"], row["images_seen"], row["samples"], row["reals"]) for row in rows] == [
        ("data vs data (2 x 32)", None, 32, 32), (str(checkpoint), 12345, 16, 64)]
    assert float(cells[1][4]) == pytest.approx(rows[1]["kid_x1000"], abs=1e-3)


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    data = tmp_path / "data.npz"
    np.savez(data, images=_images(16))
    snapshot = save_network(tiny_stylegan2("sg2_orig_32"), tmp_path / "tiny.safetensors")
    not_a_network = tmp_path / "notes.txt"
    not_a_network.write_text("hello\n")
    no_images = tmp_path / "labels.npz"
    np.savez(no_images, labels=np.arange(4))
    cases = [(["--data", str(data), str(tmp_path / "missing.pt")], "missing.pt"),
             (["--data", str(data), str(not_a_network)], "notes.txt"),
             (["--data", str(no_images), str(snapshot)], "'images'"),
             (["--data", str(tmp_path / "absent.npz"), str(snapshot)], "absent.npz")]
    for argv, named in cases:
        assert main(argv) == EXIT_BAD_INPUT
        captured = capsys.readouterr()
        assert captured.out == ""
        assert len(captured.err.strip().splitlines()) == 1 and named in captured.err, captured.err
