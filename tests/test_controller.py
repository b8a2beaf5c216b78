"""The controller headless: typed commands, typed status, undo and redo, as the window, scripts and remote
control use them. No display is needed."""
import time

import numpy as np
import pytest

from explorer.controller import Controller
from explorer.formats.native import save_network
from explorer.render import render
from explorer.state import StateError
from tests.controller_driver import pump
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.precision import emulate_bfloat16_units, pretend_no_bfloat16_units

TIMEOUT_S = 60


@pytest.fixture
def controller(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    network = tmp_path / "net.safetensors"
    save_network(tiny_stylegan2("sg2_skip_64"), network)
    c = Controller()
    c.session.capture.folder = str(tmp_path / "captures")
    c.open_network(str(network))
    assert c.wait_for_frame(TIMEOUT_S), c.status.load_error
    c.network_file = network
    yield c
    c.close()


def _settle(c):
    assert c.wait_for_frame(TIMEOUT_S), c.status.render_error or c.status.load_error


def test_open_network_reports_a_typed_description_and_the_frame_is_render(controller):
    c = controller
    assert c.status.network.facts.num_ws == 10 and c.status.network.family == "stylegan2"
    assert c.status.recent_files[0] == str(c.network_file)
    c.set("truncation", "psi", 0.5)
    _settle(c)
    G = c.worker._generator
    assert np.array_equal(c.frame.result.image, render(G, c.request()).image)
    assert c.status.timings.total_s > 0 and c.status.layer_stats.layer is None


def test_undo_and_redo_every_change_a_drag_is_one_step(controller):
    c = controller
    c.set("truncation", "psi", 0.9)
    time.sleep(0.8)                                     # a pause: the next drag is a new step
    for psi in np.linspace(0.8, 0.2, 30):                # a slider drag: 30 changes, one step
        c.set("truncation", "psi", float(psi))
    c.edit(c.session.latent.set_seed, 42)
    c.edit(c.session.mixing.add_source, 9)
    assert (c.session.latent.seed, c.session.mixing.sources) == (42, (9,))
    assert c.undo() and c.session.mixing.sources == ()
    assert c.undo() and c.session.latent.seed == 0
    assert c.undo() and c.session.truncation.psi == 0.9  # the whole drag at once
    assert c.status.redo_label == "truncation.psi"
    assert c.redo() and c.session.truncation.psi == pytest.approx(0.2)
    assert c.redo() and c.redo() and c.session.mixing.sources == (9,)
    assert not c.redo()
    c.undo()
    c.set("noise", "strength", 2.0)                      # a new change clears the redo list
    assert c.status.redo_label is None and not c.redo()
    _settle(c)
    G = c.worker._generator
    assert np.array_equal(c.frame.result.image, render(G, c.request()).image)


def test_a_refused_value_changes_nothing_and_makes_no_step(controller):
    c = controller
    steps = len(c.history.done)
    with pytest.raises(StateError, match="truncation.psi must be between -1 and 2"):
        c.set("truncation", "psi", 5)
    assert c.session.truncation.psi == 1.0 and len(c.history.done) == steps


def test_history_keeps_at_least_200_steps(controller):
    c = controller
    for seed in range(1, 251):
        c.edit(c.session.latent.set_seed, seed)
    undone = 0
    while c.undo():
        undone += 1
    assert undone >= 250 and c.session.latent.seed == 0


def test_loading_a_network_is_one_step_that_keeps_the_history(controller, tmp_path):
    c = controller
    c.set("layers", "layer", "b64.conv1")
    c.edit(c.session.latent.set_seed, 12)
    small = tmp_path / "small.safetensors"
    save_network(tiny_stylegan2("sg2_orig_32"), small)
    c.open_network(str(small))
    _settle(c)
    # The 32 px network has no b64.conv1: the view was reset as part of the load step.
    assert c.status.network.facts.img_resolution == 32 and c.session.layers.layer is None
    assert c.undo()                                       # back to the first network, with its layer view
    _settle(c)
    assert c.loaded_path == str(c.network_file) and c.session.layers.layer == "b64.conv1"
    assert c.session.latent.seed == 12 and c.frame.result.image.shape == (64, 64, 3)
    assert c.undo() and c.session.latent.seed == 0        # the edits before the load are still there
    assert c.redo() and c.redo()
    _settle(c)
    assert c.loaded_path == str(small) and c.session.layers.layer is None


def test_a_bad_file_keeps_the_previous_network_and_says_why_in_one_line(controller, tmp_path):
    c = controller
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x04this is not a network")
    steps = len(c.history.done)
    c.open_network(str(bad))
    deadline = time.monotonic() + TIMEOUT_S
    while c.status.load_error is None and time.monotonic() < deadline:
        c.tick()
        time.sleep(0.01)
    assert c.status.load_error.startswith(str(bad)) and "\n" not in c.status.load_error
    assert c.session.network.path == str(c.network_file) and c.loaded_path == str(c.network_file)
    assert len(c.history.done) == steps                    # the failed load left no step to undo


def test_screenshot_session_latents_and_background_recording(controller, tmp_path):
    from PIL import Image

    from explorer.export import read_state_from_png
    c = controller
    c.edit(c.session.latent.set_seed, 3)
    _settle(c)
    shot = c.screenshot()
    assert np.array_equal(np.asarray(Image.open(shot)), c.frame.result.image)
    assert '"seed_weights"' not in read_state_from_png(shot) and '"latent"' in read_state_from_png(shot)
    assert "reproduce: stylegan-explorer render" in c.status.capture_message
    session_file = c.save_session()
    assert session_file.exists() and c.save_latents().exists()
    c.set("capture", "format", "gif")
    assert c.start_recording()
    for seed in (4, 5, 6):
        c.edit(c.session.latent.set_seed, seed)
        _settle(c)
    c.stop_recording()
    gifs = list((tmp_path / "captures").glob("*.gif"))
    assert len(gifs) == 1
    with Image.open(gifs[0]) as gif:
        assert gif.n_frames >= 3
    # Opening the saved session brings back seed 3 as one undo step.
    c.open_session(str(session_file))
    assert c.session.latent.seed == 3
    assert c.undo() and c.session.latent.seed == 6


def test_posted_commands_run_on_the_controllers_thread_and_bad_values_are_refused(controller):
    import threading
    c = controller
    thread = threading.Thread(target=lambda: c.post(lambda: c.set("truncation", "psi", 0.3)))
    thread.start()
    thread.join()
    assert c.wakeup.is_set() and c.session.truncation.psi == 1.0   # not yet: only at the next tick
    c.tick()
    assert c.session.truncation.psi == 0.3
    c.post(lambda: c.set("truncation", "psi", 99))
    c.tick()
    assert c.session.truncation.psi == 0.3 and "refused: truncation.psi" in c.status.capture_message


def _tick_until(c, condition, timeout=TIMEOUT_S):
    assert pump(c, condition, timeout), "timed out"


def test_adaptive_mode_without_a_preview_precision_shows_exact_frames(controller, monkeypatch):
    # A device without one (a CPU with AVX2 only, as on most laptops): a moving control gets the exact frame.
    import explorer.controller
    monkeypatch.setattr(explorer.controller, "preview_dtype", lambda device: None)
    c = controller
    c.adaptive_threshold_s = 0.0              # the tiny network is fast: treat it as slower than a frame
    assert c.preview_precision is None and c.session.performance.adaptive
    _tick_until(c, lambda: c.frame is not None)
    for psi in (0.6, 0.7):
        c.set("truncation", "psi", psi)       # moving
        _tick_until(c, lambda: c.frame.result.request.truncation_psi == psi)
        assert c.frame.result.request.dtype == "float32" and c.status.tier == "exact"
        assert np.array_equal(c.frame.result.image, render(c.worker._generator, c.request()).image)


def test_bfloat16_is_refused_by_name_without_its_units(controller, monkeypatch):
    pretend_no_bfloat16_units(monkeypatch)
    c = controller
    assert c.preview_precision is None
    with pytest.raises(StateError, match="no bfloat16 units"):
        c.set("performance", "dtype", "bfloat16")


def test_adaptive_mode_previews_a_moving_control_and_shows_the_exact_frame_at_rest(controller, monkeypatch):
    from explorer.networks.common import bfloat16_is_fast_on_cpu
    if not bfloat16_is_fast_on_cpu():
        emulate_bfloat16_units(monkeypatch)
    from explorer.render import preview_dtype
    c = controller
    preview = preview_dtype("cpu")
    c.adaptive_threshold_s = 0.0              # the tiny network is fast: treat it as slower than a frame
    G = c.worker._generator
    assert preview == "bfloat16" and c.preview_precision == "bfloat16"
    c.set("truncation", "psi", 0.6)            # moving
    _tick_until(c, lambda: c.frame is not None and c.frame.result.request.truncation_psi == 0.6)
    assert c.frame.result.request.dtype == preview and c.status.tier == f"preview {preview}"
    previewed = c.frame.result
    exact = render(G, c.request())
    assert 0 < np.abs(previewed.raw - exact.raw).max() < 0.5      # close, not equal
    # The screenshot of a preview on screen holds the exact pixels.
    shot = c.screenshot()
    from PIL import Image
    assert np.array_equal(np.asarray(Image.open(shot)), exact.image)
    # At rest, the exact frame replaces the preview.
    _tick_until(c, lambda: c.frame.result.request.dtype == "float32")
    assert np.array_equal(c.frame.result.image, exact.image) and c.status.tier == "exact"
    _tick_until(c, c.settled, timeout=10)
    # Off: every frame exact.
    c.set("performance", "adaptive", False)
    c.set("truncation", "psi", 0.7)
    _tick_until(c, lambda: c.frame.result.request.truncation_psi == 0.7)
    assert c.frame.result.request.dtype == "float32"


def test_adaptive_mode_leaves_a_preview_tier_that_is_not_faster(controller, monkeypatch):
    """Once the preview's full frames are measured no faster than the exact ones (bfloat16 StyleGAN3-T on a CPU with
    AVX-512 BF16 but no AMX), a moving control gets exact frames."""
    import explorer.controller
    from explorer.networks.common import bfloat16_is_fast_on_cpu
    if not bfloat16_is_fast_on_cpu():
        emulate_bfloat16_units(monkeypatch)
    c = controller
    c.adaptive_threshold_s = 0.0              # the tiny network is fast: treat it as slower than a frame
    _tick_until(c, lambda: c.frame is not None and c.exact_render_s is not None)
    c.set("truncation", "psi", 0.6)            # moving: a preview frame, and its cost measured
    _tick_until(c, lambda: c.frame.result.request.dtype == "bfloat16")
    _tick_until(c, lambda: c.frame.result.request.dtype == "float32")      # at rest
    _tick_until(c, c.settled, timeout=10)
    # Every measured preview now counts as too slow against the exact frame.
    monkeypatch.setattr(explorer.controller, "PREVIEW_MAX_SHARE", 0.0)
    c.set("truncation", "psi", 0.7)            # moving again
    _tick_until(c, lambda: c.frame.result.request.truncation_psi == 0.7)
    assert c.frame.result.request.dtype == "float32" and c.status.tier == "exact"
    # A share that the measured preview meets brings the preview tier back: the measurements decide, not a flag.
    monkeypatch.setattr(explorer.controller, "PREVIEW_MAX_SHARE", 10.0)
    c.set("truncation", "psi", 0.8)
    _tick_until(c, lambda: c.frame.result.request.truncation_psi == 0.8 and c.frame.result.request.dtype == "bfloat16")


def test_droplet_detection_runs_in_the_background_and_ablation_is_one_step(controller):
    c = controller
    assert c.detect_droplets(seeds=[0, 1, 2])
    assert c.status.analysis is not None and c.status.analysis.name == "droplets"
    assert c.wait_for_analysis()
    report = c.status.droplets
    assert report is not None and report.seeds == (0, 1, 2) and c.status.analysis_error is None
    best = report.findings[0]
    assert best.score == max(f.score for f in report.findings)
    assert c.ablate_top_droplets(1) == 1
    op = c.session.bending.operations[0]
    assert (op.layer, op.channels, op.operation) == (best.layer, (best.channel,), "ablate")
    _settle(c)
    assert c.undo() and c.session.bending.operations == ()


def test_ablating_the_droplet_is_one_step_and_refused_with_a_message_without_one(controller, tmp_path):
    from tests.fixtures.analysis_networks import planted_droplet
    c = controller
    assert c.ablate_droplet_spots() == 0 and "run the detector first" in c.status.analysis_error
    assert c.detect_droplets(seeds=[0, 1]) and c.wait_for_analysis()
    assert c.ablate_droplet_spots() == 0 and "no droplet to ablate" in c.status.analysis_error
    assert c.session.bending.operations == ()
    planted = tmp_path / "planted.safetensors"
    save_network(planted_droplet("b32.conv1", y=20, x=11), planted)
    c.open_network(str(planted))
    _settle(c)
    assert c.status.droplets is None          # the last report named the other network's channels
    c.set("noise", "mode", "const")          # the planted spike is the stored noise
    assert c.detect_droplets(seeds=[0, 1]) and c.wait_for_analysis()
    layer = next(l for l in c.status.droplets.layers if l.layer == "b32.conv1")
    assert c.ablate_droplet_spots() == len(layer.spot_channels) > 0
    (op,) = c.session.bending.operations
    assert (op.layer, op.operation, op.channels) == ("b32.conv1", "ablate", tuple(sorted(layer.spot_channels)))
    assert c.ablate_droplet_spots() == 0 and "ablated already" in c.status.analysis_error
    assert len(c.session.bending.operations) == 1
    # Detecting again sees the ablation: the layer's spot is gone.
    assert c.detect_droplets(seeds=[0, 1]) and c.wait_for_analysis()
    after = next(l for l in c.status.droplets.layers if l.layer == "b32.conv1")
    assert not after.droplet and after.widest_share < layer.widest_share
    _settle(c)
    assert c.undo() and c.session.bending.operations == ()


def test_directions_are_offered_at_strength_zero_and_move_the_image(controller):
    c = controller
    assert c.compute_directions("sefa", 4)
    assert c.wait_for_analysis() and c.status.analysis_error is None
    offsets = c.session.directions.offsets
    assert len(offsets) == 4 and all(o.strength == 0 for o in offsets)
    _settle(c)
    before = c.frame.result.image
    c.edit(c.session.directions.set_strength, offsets[0].name, 3.0)
    _settle(c)
    assert np.abs(c.frame.result.image.astype(int) - before.astype(int)).max() > 0
    saved = c.save_directions()
    assert saved is not None and saved.exists()
    c.edit(c.session.directions.reset)
    assert c.load_directions(str(saved)) and len(c.session.directions.offsets) == 4


def test_projection_runs_in_the_background_and_becomes_the_main_latent(controller, tmp_path):
    from PIL import Image
    c = controller
    c.edit(c.session.latent.set_seed, 5)
    _settle(c)
    target = tmp_path / "photo.png"
    Image.fromarray(c.frame.result.image).save(target)
    assert c.project(str(target), steps=12)
    assert c.wait_for_analysis() and c.status.analysis_error is None, c.status.analysis_error
    step = c.status.projection
    assert step is not None and step.steps == 12 and step.image.shape == (64, 64, 3)
    assert c.session.latent.w_plus is not None and "projection: best step" in c.status.capture_message
    _settle(c)
    shown = c.frame.result.image.astype(float)
    start_psnr = step.best_psnr
    mse = ((shown - np.asarray(Image.open(target), float)) ** 2).mean()
    assert 10 * np.log10(255 ** 2 / mse) == pytest.approx(start_psnr, abs=0.5)     # the best step is on screen
    saved = sorted((tmp_path / "captures").glob("projected-*.npy"))
    assert len(saved) == 1 and np.array_equal(np.load(saved[0]), np.float32(c.frame.result.ws))
    assert list((tmp_path / "captures").glob("projection-*.mp4"))
    # Undo puts the seed back; the W+ file opens again as the main latent.
    assert c.undo() and c.session.latent.w_plus is None and c.session.latent.seed == 5
    assert c.open_latents(str(saved[0])) and c.session.latent.w_plus is not None
    c.edit(c.session.latent.set_seed, 6)                    # choosing a seed gives way to the seeds
    assert c.session.latent.w_plus is None
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 4), np.float32))
    assert not c.open_latents(str(bad)) and "10 rows of 32 numbers" in c.status.load_error
    assert not c.project(str(tmp_path / "missing.png")) and "no such file" in c.status.analysis_error


def test_the_window_projection_uses_the_files_own_discriminator(tmp_path, monkeypatch):
    """A file with a D: the worker keeps it, and the projection's record says its features were used."""
    from PIL import Image

    import explorer.projection
    from tests.fixtures.discriminator_networks import tiny_discriminator
    from tests.fixtures.nvlabs_pickle_writer import write_nvlabs_pickle
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    G = tiny_stylegan2("sg2_orig_32")
    D = tiny_discriminator("d_resnet_32")
    path = tmp_path / "snapshot.pkl"
    write_nvlabs_pickle(path, G, D=D)
    seen = []
    real = explorer.projection.project

    def spy(*args, discriminator=None, **kwargs):
        seen.append(discriminator)
        return real(*args, discriminator=discriminator, **kwargs)

    monkeypatch.setattr(explorer.projection, "project", spy)
    c = Controller(remember_recent=False)
    try:
        c.session.capture.folder = str(tmp_path / "captures")
        c.open_network(str(path))
        assert c.wait_for_frame(TIMEOUT_S), c.status.load_error
        assert c.worker.discriminator is not None
        target = tmp_path / "photo.png"
        Image.fromarray(c.frame.result.image).save(target)
        assert c.project(str(target), steps=3) and c.wait_for_analysis()
        assert c.status.analysis_error is None, c.status.analysis_error
        assert c.status.projection.step.discriminator_features is not None
        assert seen and seen[0] is c.worker.discriminator
        assert c.project(str(target), steps=2, use_discriminator=False) and c.wait_for_analysis()
        assert seen[-1] is None and c.status.projection.step.discriminator_features is None
    finally:
        c.close()


def test_a_network_the_user_names_wins_over_the_one_a_session_file_names(controller, tmp_path):
    c = controller
    small = tmp_path / "small.safetensors"
    save_network(tiny_stylegan2("sg2_orig_32"), small)
    c.set("truncation", "psi", 0.6)
    session_file = c.save_session()                      # names the 64 px network
    fresh = Controller(remember_recent=False)
    try:
        assert fresh.open_session(str(session_file), network=str(small))
        assert fresh.wait_for_frame(TIMEOUT_S), fresh.status.load_error
        assert fresh.loaded_path == str(small) and fresh.session.truncation.psi == 0.6
        assert fresh.frame.result.image.shape == (32, 32, 3)
    finally:
        fresh.close()
