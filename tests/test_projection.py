"""Projection (StyleGAN2 paper, section 5): a generated image is found again, stopping keeps the best step,
the noise maps and the schedule behave as the paper says, targets and VGG16 files are read or refused in one
line, and the `project` command writes what it promises without overwriting anything."""
import argparse
import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.commands import run_command
from explorer.commands import project as project_command
from explorer.formats import load_network
from explorer.projection import (ProjectionError, ProjectionSettings, load_target, load_vgg16, noise_regularization,
                                 project, psnr)
from explorer.projection.losses import ProjectionDistance
from explorer.projection.target import pixels_to_tensor, tensor_to_pixels
from explorer.projection.vgg16 import VGG16Features, expected_shapes
from tests.fixtures.analysis_networks import tiny_adain
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.networks_sg3 import tiny_stylegan3

DEFAULT_MODEL = "assets/default.safetensors"
# Measured: 30 steps in W on the default model's seed-1 image (psi 0.7) reach 20.9 dB from 11.4 dB at w_avg.
DEFAULT_MODEL_PSNR_BOUND_DB = 19.0
STARTING_PSNR_GAIN_DB = 6.0


def _generated(G, seed, psi=1.0):
    z = torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=psi)
        return ws, tensor_to_pixels(G.synthesis(ws, noise_mode="const").image)


def _render(G, ws):
    with torch.no_grad():
        return tensor_to_pixels(G.synthesis(torch.as_tensor(ws)[None], noise_mode="const").image)


def test_a_generated_image_is_found_again():
    G = load_network(DEFAULT_MODEL).generator.eval()
    _, target = _generated(G, seed=1, psi=0.7)
    start_psnr = psnr(pixels_to_tensor(_render(G, G.mapping.w_avg.expand(G.num_ws, -1)), "cpu"),
                      pixels_to_tensor(target, "cpu"))
    result = project(G, target, ProjectionSettings(steps=30, w_std_samples=2000))
    assert result.psnr >= DEFAULT_MODEL_PSNR_BOUND_DB
    assert result.psnr >= start_psnr + STARTING_PSNR_GAIN_DB
    assert result.ws.shape == (G.num_ws, G.w_dim) and result.ws.dtype == np.float32
    assert np.all(result.ws == result.ws[0])            # W: one w for every layer
    # The saved ws give the saved image (noise const), and that image has the PSNR reported.
    assert np.array_equal(_render(G, result.ws), result.image)
    assert math.isclose(psnr(pixels_to_tensor(result.image, "cpu"), pixels_to_tensor(target, "cpu")), result.psnr,
                        abs_tol=0.05)


def test_stopping_keeps_the_best_step_not_the_last():
    G = tiny_stylegan2("sg2_orig_32")
    _, target = _generated(G, seed=1)
    asked = []

    def should_stop():
        asked.append(True)
        return len(asked) > 9

    # A large learning rate overshoots, so the last steps are not the best (measured: best at step 6 of 9).
    result = project(G, target, ProjectionSettings(steps=12, learning_rate=0.5, w_std_samples=500),
                     should_stop=should_stop)
    assert result.stopped and len(result.history) == 9
    distances = [step.distance for step in result.history]
    assert result.best_step == 1 + int(np.argmin(distances)) and result.best_step < 9
    assert result.distance == min(distances) < distances[-1]
    assert np.array_equal(_render(G, result.ws), result.image)


def test_progress_reports_every_step_with_the_current_image():
    G = tiny_stylegan2("sg2_orig_32")
    _, target = _generated(G, seed=2)
    seen = []
    result = project(G, target, ProjectionSettings(steps=4, w_std_samples=200), on_step=seen.append)
    assert [p.step.step for p in seen] == [1, 2, 3, 4] and all(p.steps == 4 for p in seen)
    assert all(p.image.shape == target.shape and p.image.dtype == np.uint8 for p in seen)
    assert seen[-1].best_step == result.best_step and not result.stopped


def test_w_plus_and_noise_maps_leave_the_network_unchanged():
    G = tiny_stylegan2("sg2_orig_32")
    stored = {name: buffer.clone() for name, buffer in G.named_buffers() if name.endswith("noise_const")}
    _, target = _generated(G, seed=1)
    # A small learning rate: on this random-weight network larger ones overshoot in so few steps (measured).
    result = project(G, target, ProjectionSettings(steps=8, learning_rate=0.02, w_plus=True, optimize_noise=True,
                                                   w_std_samples=200))
    assert result.best_step > 0
    assert not np.all(result.ws == result.ws[0])         # W+: the layers moved apart
    assert sorted(result.noise) == sorted(stored)
    for name, noise in result.noise.items():
        assert noise.shape == tuple(stored[name].shape)
        assert abs(noise.mean()) < 1e-4 and abs(noise.std(ddof=1) - 1) < 1e-3   # renormalised each step
        assert not np.allclose(noise, (stored[name] - stored[name].mean()).numpy() / stored[name].std().item())
    for name, buffer in G.named_buffers():
        if name in stored:
            assert torch.equal(buffer, stored[name])


@pytest.mark.parametrize("make", [lambda: tiny_stylegan3("t"), tiny_adain], ids=["stylegan3-t", "stylegan-2019"])
def test_other_families_project(make):
    """StyleGAN3 (no noise maps) and StyleGAN 2019 (AdaIN, noise maps of its own) run through the same loop.
    Measured in 10 steps: StyleGAN3-T 10.4 -> 12.3 dB, StyleGAN 2019 5.4 -> 6.5 dB."""
    G = make()
    _, target = _generated(G, seed=1)
    result = project(G, target, ProjectionSettings(steps=10, learning_rate=0.05, w_plus=True, optimize_noise=True,
                                                   w_std_samples=200))
    assert result.psnr >= result.history[0].psnr + 0.8     # step 1 runs at learning rate 0: the starting point
    assert bool(result.noise) == (G.family != "stylegan3")


def test_noise_regularization_is_the_papers():
    constant = torch.ones([16, 16])        # autocorrelation 1 at both scales (16 and 8 px), in both directions
    assert float(noise_regularization([constant])) == pytest.approx(4.0)
    white = torch.randn([64, 64], generator=torch.Generator().manual_seed(0))
    assert float(noise_regularization([white])) < 1e-3


def test_learning_rate_and_exploration_schedules():
    settings = ProjectionSettings(steps=100)
    assert settings.learning_rate_at(0) == 0
    assert settings.learning_rate_at(0.025) == pytest.approx(0.05)       # halfway up the ramp
    assert settings.learning_rate_at(0.5) == pytest.approx(0.1)
    assert settings.learning_rate_at(0.875) == pytest.approx(0.05)       # halfway down the cosine
    assert settings.w_noise_at(0) == pytest.approx(0.05)
    assert settings.w_noise_at(0.375) == pytest.approx(0.05 * 0.25)
    assert settings.w_noise_at(0.8) == 0
    with pytest.raises(ProjectionError, match="steps"):
        ProjectionSettings(steps=0)


def test_target_is_centre_cropped_and_resized(tmp_path):
    pixels = np.zeros([100, 200, 3], dtype=np.uint8)
    pixels[:, :50] = (255, 0, 0)
    pixels[:, 50:150] = (0, 200, 0)          # the centred square
    pixels[:, 150:] = (0, 0, 255)
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    target = load_target(tmp_path / "wide.png", 3, 32, 32)
    assert target.shape == (32, 32, 3)
    assert np.abs(target.astype(int) - [0, 200, 0]).max() <= 1
    grey = load_target(tmp_path / "wide.png", 1, 16, 16)
    assert grey.shape == (16, 16, 1)


@pytest.mark.parametrize("content, message", [(None, "no such file"), (b"not a picture", "not an image file"),
                                              ("folder", "is a folder")])
def test_bad_target_files_give_one_line(tmp_path, content, message):
    path = tmp_path / "photo.png"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ProjectionError, match=message) as caught:
        load_target(path, 3, 32, 32)
    assert "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory):
    """Random weights under torchvision's vgg16 state-dict names (the classifier too, as torchvision's file)."""
    torch.manual_seed(0)
    state = {f"features.{key}": value for key, value in VGG16Features().features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros([4, 4])
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    torch.save(state, path)
    return path


def test_vgg16_reads_torchvision_names_and_measures_distance(vgg16_file):
    vgg = load_vgg16(vgg16_file)
    assert list(expected_shapes())[:2] == ["features.0.weight", "features.0.bias"]
    assert "features.28.weight" in expected_shapes()         # the 13th convolution, at torchvision's index
    images = torch.rand([1, 3, 32, 32], generator=torch.Generator().manual_seed(1)) * 2 - 1
    stages = vgg(images)
    assert [f.shape[1] for f in stages] == [64, 128, 256, 512, 512]
    assert [f.shape[2] for f in stages] == [32, 16, 8, 4, 2]
    distance = ProjectionDistance(images, vgg)
    same, other = distance(images), distance(images.flip(3))
    assert float(same.perceptual) == pytest.approx(0, abs=1e-6) and float(other.perceptual) > 0.01
    assert float(other.distance) > float(same.distance) and same.discriminator is None


class _NotATensor:
    """An arbitrary Python object: unpickling one may run code, so weights_only loading refuses it."""


def test_bad_vgg16_files_give_one_line(tmp_path):
    first_layer = {f"features.0.{key}": value for key, value in VGG16Features().features[0].state_dict().items()}
    torch.save(first_layer, tmp_path / "partial.pth")
    with pytest.raises(ProjectionError, match="no features.2.weight in the file"):
        load_vgg16(tmp_path / "partial.pth")
    torch.save({**first_layer, "features.0.bias": torch.zeros(3)}, tmp_path / "shapes.pth")
    with pytest.raises(ProjectionError, match=r"features.0.bias has shape \[3\], VGG16 needs \[64\]"):
        load_vgg16(tmp_path / "shapes.pth")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(ProjectionError, match="not a weights file") as caught:
        load_vgg16(tmp_path / "text.pth")
    assert "\n" not in str(caught.value)
    torch.save({"features.0.weight": _NotATensor()}, tmp_path / "code.pth")
    with pytest.raises(ProjectionError, match="refused, since loading them could run code"):
        load_vgg16(tmp_path / "code.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ProjectionError, match="found a list"):
        load_vgg16(tmp_path / "list.pth")


def _parser():
    parser = argparse.ArgumentParser()
    project_command.register(parser.add_subparsers(dest="command"))
    return parser


@pytest.fixture
def network_and_photo(tmp_path):
    from explorer.formats.native import save_network
    G = tiny_stylegan2("sg2_orig_32")
    network = tmp_path / "net.safetensors"
    save_network(G, network)
    _, pixels = _generated(G, seed=4)
    photo = tmp_path / "photo.png"
    Image.fromarray(pixels).resize((48, 40)).save(photo)
    return G, network, photo


def test_command_writes_every_result(tmp_path, network_and_photo, capsys):
    G, network, photo = network_and_photo
    out = tmp_path / "out"
    args = _parser().parse_args(["project", "--pkl", str(network), "--target", str(photo), "--out", str(out),
                                 "--steps", "5", "--video", "gif", "--threads", "1"])
    assert run_command(args) == 0
    assert sorted(os.listdir(out)) == ["projected.png", "projected_w.npy", "projection.gif", "projection.json",
                                       "target.png"]
    ws = np.load(out / "projected_w.npy")
    assert ws.shape == (G.num_ws, G.w_dim) and ws.dtype == np.float32
    assert np.array_equal(_render(G, ws), np.asarray(Image.open(out / "projected.png")))
    record = json.loads((out / "projection.json").read_text())
    assert len(record["steps"]) == 5 and record["settings"]["steps"] == 5 and not record["stopped"]
    with Image.open(out / "projection.gif") as video:
        assert video.size == (64, 32) and video.n_frames == 5       # target and projection side by side
    assert "done: best PSNR" in capsys.readouterr().out
    # A second run into the same folder refuses before doing anything.
    assert run_command(args) == 1
    assert "not overwriting" in capsys.readouterr().err


def test_command_with_noise_writes_the_maps(tmp_path, network_and_photo):
    G, network, photo = network_and_photo
    out = tmp_path / "out"
    args = _parser().parse_args(["project", "--pkl", str(network), "--target", str(photo), "--out", str(out),
                                 "--steps", "3", "--noise", "--w-plus", "--video", "none"])
    assert run_command(args) == 0
    maps = np.load(out / "projected_noise.npz")
    assert sorted(maps.files) == sorted(n for n, _ in G.named_buffers() if n.endswith("noise_const"))


@pytest.mark.parametrize("target, message", [("missing.png", "no such file"), ("text.png", "not an image file")])
def test_command_bad_target_is_one_line_and_writes_nothing(tmp_path, network_and_photo, capsys, target, message):
    _, network, _ = network_and_photo
    (tmp_path / "text.png").write_text("not an image")
    args = _parser().parse_args(["project", "--pkl", str(network), "--target", str(tmp_path / target),
                                 "--out", str(tmp_path / "out")])
    assert run_command(args) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_command_ctrl_c_stops_and_writes_the_best(tmp_path, network_and_photo, monkeypatch, capsys):
    """SIGINT during the run ends it after the current step; the results are written as for a finished run and
    Ctrl-C means what it meant before once the command is done."""
    import signal

    import explorer.projection as projection
    _, network, photo = network_and_photo
    real_project = projection.project

    def interrupted_project(*args, on_step, **kwargs):
        def step_then_interrupt(progress):
            on_step(progress)
            if progress.step.step == 2:
                os.kill(os.getpid(), signal.SIGINT)
        return real_project(*args, on_step=step_then_interrupt, **kwargs)

    monkeypatch.setattr(projection, "project", interrupted_project)
    before = signal.getsignal(signal.SIGINT)
    out = tmp_path / "out"
    args = _parser().parse_args(["project", "--pkl", str(network), "--target", str(photo), "--out", str(out),
                                 "--steps", "50", "--video", "none"])
    assert run_command(args) == 0
    record = json.loads((out / "projection.json").read_text())
    assert record["stopped"] and len(record["steps"]) == 2
    assert (out / "projected.png").is_file() and np.load(out / "projected_w.npy").shape[0] > 0
    assert "stopped: best PSNR" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is before


# -- the network file's own discriminator as a feature extractor -------------------------------------------------

def _generator_and_discriminator():
    from tests.fixtures.discriminator_networks import tiny_discriminator
    return tiny_stylegan2("sg2_orig_32"), tiny_discriminator("d_resnet_32")


def test_discriminator_features_measure_a_distance():
    _, D = _generator_and_discriminator()
    images = torch.rand([1, 3, 32, 32], generator=torch.Generator().manual_seed(1)) * 2 - 1
    distance = ProjectionDistance(images, discriminator=D, discriminator_weight=0.5)
    same, other = distance(images), distance(images.flip(3))
    assert float(same.discriminator) == pytest.approx(0, abs=1e-6) and float(other.discriminator) > 0.01
    assert float(other.distance) == pytest.approx(float(other.pixel) + 0.5 * float(other.discriminator), rel=1e-6)
    assert other.perceptual is None


def test_projection_descends_the_discriminator_features_alone():
    """With the pixel term weighed 0, only the gradient through D's features can lower the distance."""
    G, D = _generator_and_discriminator()
    _, pixels = _generated(G, seed=2)
    before = {name: tensor.clone() for name, tensor in D.state_dict().items()}
    settings = ProjectionSettings(steps=15, pixel_weight=0.0, discriminator_weight=1.0, w_std_samples=200)
    result = project(G, pixels, settings, discriminator=D)
    with torch.no_grad():
        start = float(ProjectionDistance(pixels_to_tensor(pixels, "cpu"), discriminator=D)(_start_image(G)).distance)
    assert all(step.discriminator_features is not None for step in result.history)
    assert result.distance < 0.7 * start and result.best_step > 0
    assert all(torch.equal(before[name], tensor) for name, tensor in D.state_dict().items())


def _start_image(G):
    with torch.no_grad():
        return G.synthesis(G.mapping.w_avg.reshape(1, 1, -1).expand(1, G.num_ws, -1), noise_mode="const").image


def test_a_discriminator_of_another_size_is_refused_in_one_line():
    from tests.fixtures.discriminator_networks import tiny_discriminator
    G = tiny_stylegan2("sg2_orig_32")
    _, pixels = _generated(G, seed=2)
    with pytest.raises(ProjectionError, match="takes 16x16 images with 3 channels, the generator makes 32x32"):
        project(G, pixels, ProjectionSettings(steps=1, w_std_samples=2), discriminator=tiny_discriminator("d_orig_16"))


def test_command_uses_the_files_discriminator_unless_told_not_to(tmp_path, network_and_photo):
    from tests.fixtures.nvlabs_pickle_writer import write_nvlabs_pickle
    G, D = _generator_and_discriminator()
    network = tmp_path / "snapshot.pkl"
    write_nvlabs_pickle(network, G, D=D)
    _, _, photo = network_and_photo
    records = {}
    runs = (("with", []), ("without", ["--no-discriminator"]), ("weighed", ["--discriminator-weight", "3"]))
    for name, extra in runs:
        out = tmp_path / name
        args = _parser().parse_args(["project", "--pkl", str(network), "--target", str(photo), "--out", str(out),
                                     "--steps", "3", "--video", "none", *extra])
        assert run_command(args) == 0
        records[name] = json.loads((out / "projection.json").read_text())
    assert records["with"]["discriminator"] == "the file's own discriminator, block features"
    assert all(step["discriminator_features"] > 0 for step in records["with"]["steps"])
    assert records["without"]["discriminator"] == "none (--no-discriminator)"
    assert all(step["discriminator_features"] is None for step in records["without"]["steps"])
    assert records["weighed"]["settings"]["discriminator_weight"] == 3
    # The distance is pixel + weight x features: the same first step, weighed 3 instead of the default.
    first = {name: record["steps"][0] for name, record in records.items()}
    default_weight = ProjectionSettings().discriminator_weight
    assert first["with"]["loss"] == pytest.approx(first["with"]["pixel"] + default_weight *
                                                  first["with"]["discriminator_features"], rel=1e-5)
    assert first["weighed"]["loss"] == pytest.approx(first["weighed"]["pixel"] + 3 *
                                                     first["weighed"]["discriminator_features"], rel=1e-5)


def test_command_on_a_file_without_discriminator_says_so(tmp_path, network_and_photo):
    _, network, photo = network_and_photo
    out = tmp_path / "out"
    args = _parser().parse_args(["project", "--pkl", str(network), "--target", str(photo), "--out", str(out),
                                 "--steps", "2", "--video", "none"])
    assert run_command(args) == 0
    record = json.loads((out / "projection.json").read_text())
    assert record["discriminator"] == "none (the file holds no discriminator it could read)"


def test_a_trainable_discriminator_is_left_as_it_was():
    G, D = _generator_and_discriminator()
    D.train().requires_grad_(True)
    _, pixels = _generated(G, seed=2)
    project(G, pixels, ProjectionSettings(steps=2, w_std_samples=2), discriminator=D)
    assert D.training and all(p.requires_grad and p.grad is None for p in D.parameters())
