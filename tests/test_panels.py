"""Every panel driven through its own callbacks, as a click or an edit would; what the viewer window then shows
(read back with glReadPixels) is held against render() called directly with the request that setting means."""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.formats.native import save_network
from explorer.render import LayerViewRequest, RenderRequest, StyleDelta, WCopy, WOffset, render
from explorer.state import Session
from renderer import messages as msg
from tests.fixtures.networks import tiny_stylegan2
from widgets.layers_panel import format_stats
from tests.gui_driver import expected_image, fire, panel, reset, settle, viewer_pixels

LOAD_TIMEOUT_S = 60


@pytest.fixture
def gui(app):
    """The shared app in its default state; put back afterwards, with the test network loaded."""
    reset(app)
    yield app
    if app.controller.loaded_path != str(app.network_file):
        load_through_panel(app, app.network_file)
    for name in ("viewer", "performance"):
        section = app.session.section(name)
        for key in section.field_names():
            setattr(section, key, getattr(type(section)(), key))
    reset(app)


def load_through_panel(app, path):
    """Types a path into the Network panel and waits for the load to finish (or fail)."""
    fire(panel(app, "NetworkPanel").path_tag, str(path))
    wait_until(app, lambda: app.controller.loaded_path == str(path) or app.controller.status.load_error)
    settle(app)


def wait_until(app, condition, timeout=LOAD_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        app.step()


def differs(a, b):
    return np.abs(a.astype(int) - b.astype(int)).max() > 0


def seed(n):
    return ((n, 1.0),)


# -- Network ---------------------------------------------------------------------------------------------------

def test_network_panel_opens_from_the_dialog_remembers_recent_files_and_reloads(gui, tmp_path):
    import dearpygui.dearpygui as dpg
    network = panel(gui, "NetworkPanel")
    small = tmp_path / "small.safetensors"
    save_network(tiny_stylegan2("sg2_orig_32"), small)
    dpg.get_item_callback(network.dialog_tag)(network.dialog_tag, {"file_path_name": str(small)})
    wait_until(gui, lambda: gui.controller.loaded_path == str(small))
    settle(gui)
    shown = viewer_pixels(gui, tmp_path)
    assert shown.shape == (32, 32, 3)
    assert np.array_equal(shown, expected_image(gui, seed_weights=seed(0)))
    assert "32x32" in dpg.get_value(network.info_tag) and "stylegan2" in dpg.get_value(network.info_tag)
    # What `info` says, its table of layers folded away under a node that counts them.
    layer_lines = dpg.get_value(network.layers_tag).splitlines()
    assert tuple(line.split()[0] for line in layer_lines) == gui.session.facts.layer_names
    assert dpg.get_item_configuration(network.layers_node)["label"] == f"layers ({len(layer_lines)})"
    assert "b4.conv1" not in dpg.get_value(network.info_tag)
    assert dpg.get_value(network.path_tag) == str(small)

    recent = json.loads((Path(os.environ["XDG_CONFIG_HOME"]) / "stylegan-explorer" / "recent.json").read_text())
    assert recent[:2] == [str(small), str(gui.network_file)]
    assert dpg.get_item_configuration(network.recent_tag)["items"][:2] == recent[:2]
    fire(network.recent_tag, str(gui.network_file))
    wait_until(gui, lambda: gui.controller.loaded_path == str(gui.network_file))
    settle(gui)
    assert viewer_pixels(gui, tmp_path).shape == (64, 64, 3)

    key = gui.controller.worker.network_key
    fire(network.reload_tag, None)
    wait_until(gui, lambda: gui.controller.worker.network_key != key)
    settle(gui)
    assert np.array_equal(viewer_pixels(gui, tmp_path), expected_image(gui, seed_weights=seed(0)))


def test_a_file_dropped_on_the_viewer_loads(gui, tmp_path):
    small = tmp_path / "dropped.safetensors"
    save_network(tiny_stylegan2("sg2_orig_32"), small)
    gui.viewer.events.put(msg.Dropped((str(small),)))
    wait_until(gui, lambda: gui.controller.loaded_path == str(small))
    settle(gui)
    assert viewer_pixels(gui, tmp_path).shape == (32, 32, 3)


# -- Latent ----------------------------------------------------------------------------------------------------

def test_latent_panel_steps_blends_animates_and_picks_the_space(gui, tmp_path):
    latent = panel(gui, "LatentPanel")
    fire(latent.seed_tag, 7)
    fire(latent.plus_tag, None)
    fire(latent.plus_tag, None)
    fire(latent.minus_tag, None)
    settle(gui)
    assert gui.session.latent.seed == 8
    assert np.array_equal(viewer_pixels(gui, tmp_path), expected_image(gui, seed_weights=seed(8)))

    fire(latent.random_tag, None)
    assert gui.session.latent.seed != 8

    # Halfway between seeds 3 and 4: a blend of their ws, and (another image) of their zs.
    fire(latent.position_tag, [3.5, 0.0, 0.0, 0.0])
    settle(gui)
    in_w = viewer_pixels(gui, tmp_path, "w.png")
    blend = ((3, 0.5), (4, 0.5))
    assert np.array_equal(in_w, expected_image(gui, seed_weights=blend, latent_space="w"))
    fire(latent.space_tag, "z")
    settle(gui)
    in_z = viewer_pixels(gui, tmp_path, "z.png")
    assert np.array_equal(in_z, expected_image(gui, seed_weights=blend, latent_space="z"))
    assert differs(in_w, in_z) and differs(in_w, expected_image(gui, seed_weights=seed(3)))

    fire(latent.speed_tag, 2.0)
    fire(latent.animate_tag, True)
    gui.step()
    start_x, start = gui.session.latent.x, gui.last_frame_time
    for _ in range(10):
        gui.step()
    moved, elapsed = gui.session.latent.x - start_x, gui.last_frame_time - start
    fire(latent.animate_tag, False)
    assert moved == pytest.approx(2.0 * elapsed) and moved > 0     # speed in seeds per second
    assert gui.session.latent.animate is False


def test_class_input_appears_for_a_conditional_network_and_picks_the_class(gui, tmp_path):
    import dearpygui.dearpygui as dpg
    latent = panel(gui, "LatentPanel")
    assert not dpg.is_item_shown(latent.class_tag)          # unconditional network: no class
    conditional = tmp_path / "conditional.safetensors"
    save_network(tiny_stylegan2("sg2_resnet_cond_64"), conditional)
    load_through_panel(gui, conditional)
    assert dpg.is_item_shown(latent.class_tag)
    fire(latent.seed_tag, 1)
    fire(latent.class_tag, 3)
    settle(gui)
    three = viewer_pixels(gui, tmp_path, "3.png")
    assert np.array_equal(three, expected_image(gui, seed_weights=seed(1), class_index=3))
    fire(latent.class_tag, -1)                              # the seed draws its class, as NVlabs' viz does
    settle(gui)
    assert gui.session.latent.class_index is None
    assert np.array_equal(viewer_pixels(gui, tmp_path), expected_image(gui, seed_weights=seed(1)))
    fire(latent.class_tag, 5)                               # c_dim is 5: refused, shown, nothing changes
    assert gui.session.latent.class_index is None
    assert "class_index" in dpg.get_value(latent.error_tag)


# -- Truncation -------------------------------------------------------------------------------------------------

def test_truncation_cutoff_truncates_only_the_first_ws(gui, tmp_path):
    truncation = panel(gui, "TruncationPanel")
    fire(panel(gui, "LatentPanel").seed_tag, 3)
    fire(truncation.psi_tag, 0.0)
    fire(truncation.all_tag, False)
    fire(truncation.cutoff_tag, 4)
    settle(gui)
    assert gui.session.truncation.cutoff == 4
    partial = viewer_pixels(gui, tmp_path, "partial.png")
    assert np.array_equal(partial, expected_image(gui, seed_weights=seed(3), truncation_psi=0.0,
                                                  truncation_cutoff=4))
    fire(truncation.all_tag, True)
    settle(gui)
    assert gui.session.truncation.cutoff is None
    import dearpygui.dearpygui as dpg
    assert dpg.get_value(truncation.cutoff_tag) == gui.session.facts.num_ws      # all layers: cutoff num_ws
    full = viewer_pixels(gui, tmp_path, "full.png")
    assert differs(partial, full) and differs(partial, expected_image(gui, seed_weights=seed(3)))
    fire(truncation.psi_tag, 2.5)                             # out of range: refused with a message
    assert gui.session.truncation.psi == 0.0


# -- Style mixing -----------------------------------------------------------------------------------------------

def test_mixing_presets_ranges_source_seeds_and_removal(gui, tmp_path):
    import dearpygui.dearpygui as dpg
    mixing = panel(gui, "MixingPanel")
    fire(panel(gui, "LatentPanel").seed_tag, 2)
    dpg.set_value(mixing.new_seed_tag, 9)
    fire("mixing.add_source", None)
    fire("mixing.preset.coarse.0", None)
    settle(gui)
    assert gui.session.mixing.layer_sources == (0, 0, 0, 0)        # 4 and 8 px ws of a 64 px network
    coarse = viewer_pixels(gui, tmp_path, "coarse.png")
    assert np.array_equal(coarse, expected_image(gui, seed_weights=seed(2), layer_seeds=(9,) * 4))

    fire("mixing.range.0", [2, 5, 0, 0])
    settle(gui)
    assert gui.session.mixing.layer_sources == (None, None, 0, 0, 0)
    assert np.array_equal(viewer_pixels(gui, tmp_path),
                          expected_image(gui, seed_weights=seed(2), layer_seeds=(None, None, 9, 9, 9)))

    fire("mixing.source.0", 11)
    settle(gui)
    assert np.array_equal(viewer_pixels(gui, tmp_path),
                          expected_image(gui, seed_weights=seed(2), layer_seeds=(None, None, 11, 11, 11)))

    fire("mixing.remove.0", None)
    settle(gui)
    assert gui.session.mixing.sources == () and gui.session.mixing.layer_sources == ()
    assert np.array_equal(viewer_pixels(gui, tmp_path), expected_image(gui, seed_weights=seed(2)))


# -- Per-layer styles --------------------------------------------------------------------------------------------

def test_styles_panel_offsets_copies_edits_channels_and_resets(gui, tmp_path):
    import dearpygui.dearpygui as dpg
    styles = panel(gui, "StylesPanel")
    fire(panel(gui, "LatentPanel").seed_tag, 4)
    dpg.set_value(styles.w_tag, 3)
    dpg.set_value(styles.direction_tag, "random")
    dpg.set_value(styles.seed_tag, 5)
    fire(styles.strength_tag, 2.0)
    settle(gui)
    offset = viewer_pixels(gui, tmp_path, "offset.png")
    assert np.array_equal(offset, expected_image(gui, seed_weights=seed(4),
                                                 w_offsets=(WOffset(3, "random", 5, 2.0),)))

    fire(styles.copy_tag, None)
    settle(gui)
    assert np.array_equal(viewer_pixels(gui, tmp_path), expected_image(
        gui, seed_weights=seed(4), w_offsets=(WOffset(3, "random", 5, 2.0),), w_copies=(WCopy(3, 5, 3),)))

    fire(styles.reset_layer_tag, None)
    settle(gui)
    plain = viewer_pixels(gui, tmp_path, "plain.png")
    assert np.array_equal(plain, expected_image(gui, seed_weights=seed(4)))

    fire(styles.layer_tag, "b8.conv1")
    fire(styles.channel_tag, 2)
    fire(styles.delta_tag, 3.0)
    settle(gui)
    edited = viewer_pixels(gui, tmp_path, "edited.png")
    assert np.array_equal(edited, expected_image(gui, seed_weights=seed(4),
                                                 style_deltas=(StyleDelta("b8.conv1", 2, 3.0),)))
    assert differs(edited, plain)
    assert "b8.conv1 s[2] += 3" in dpg.get_value(styles.summary_tag)

    fire(styles.reset_all_tag, None)
    settle(gui)
    assert np.array_equal(viewer_pixels(gui, tmp_path), plain)
    assert dpg.get_value(styles.summary_tag) == "no edits"


# -- Noise ------------------------------------------------------------------------------------------------------

def test_random_noise_follows_the_noise_seed_and_per_layer_strengths_apply(gui, tmp_path):
    noise = panel(gui, "NoisePanel")
    fire(noise.mode_tag, "random")
    fire(noise.seed_tag, 1)
    settle(gui)
    one = viewer_pixels(gui, tmp_path, "1.png")
    assert np.array_equal(one, expected_image(gui, noise_mode="random", noise_seed=1))
    fire(noise.seed_tag, 2)
    settle(gui)
    assert differs(viewer_pixels(gui, tmp_path, "2.png"), one)
    fire(noise.mode_tag, "const")
    fire(noise.layer_tags["b64.conv1"], 3.0, "b64.conv1")
    settle(gui)
    assert np.array_equal(viewer_pixels(gui, tmp_path),
                          expected_image(gui, layer_noise_strength=(("b64.conv1", 3.0),)))


# -- Layers -----------------------------------------------------------------------------------------------------

def layer_result(app, **view):
    request = RenderRequest(app.controller.worker.network_key, view=LayerViewRequest(**view))
    result = render(app.controller.worker._generator, request)
    assert result.ok, result.error
    return result


def test_layer_view_modes_normalisation_decibels_and_spectrum(gui, tmp_path):
    from explorer.view import compose_view
    layers = panel(gui, "LayersPanel")
    label = next(l for l, name in layers.labels().items() if name == "b16.conv1")
    assert label.endswith("32x16x16")                       # the shape is in the list
    fire(layers.layer_tag, label)
    fire(layers.mode_tag, "rgb")
    fire(layers.first_tag, 4)
    settle(gui)
    expected = layer_result(gui, layer="b16.conv1", mode="rgb", first_channel=4)
    assert np.array_equal(gui.controller.frame.result.layer_image, expected.layer_image)
    assert np.array_equal(viewer_pixels(gui, tmp_path), compose_view(expected))

    fire(layers.mode_tag, "single")
    fire(layers.normalise_tag, "global")
    fire(layers.db_tag, 20.0)
    settle(gui)
    expected = layer_result(gui, layer="b16.conv1", mode="single", first_channel=4, normalise="global",
                            scale_db=20.0)
    assert np.array_equal(viewer_pixels(gui, tmp_path), compose_view(expected))

    fire(layers.fft_tag, True)
    settle(gui)
    expected = layer_result(gui, layer="b16.conv1", mode="single", first_channel=4, normalise="global",
                            scale_db=20.0, fft=True)
    shown = viewer_pixels(gui, tmp_path, "fft.png")
    assert np.array_equal(shown, compose_view(expected))
    assert shown.shape[1] > 64 * 3                           # output, layer and spectrum side by side
    assert format_stats(gui.controller.status.layer_stats).startswith("b16.conv1 (32, 16, 16), showing channels 4-4")


# -- Capture ----------------------------------------------------------------------------------------------------

def test_recording_writes_every_rendered_frame_and_sessions_save_and_open(gui, tmp_path):
    capture, latent = panel(gui, "CapturePanel"), panel(gui, "LatentPanel")
    fire(capture.folder_tag, str(tmp_path / "out"))
    fire(capture.format_tag, "gif")
    fire(capture.record_tag, None)
    for n in (1, 2, 3):
        fire(latent.seed_tag, n)
        settle(gui)
    fire(capture.record_tag, None)
    gui.step()
    assert not gui.controller.recording and gui.controller.status.recording is None
    gifs = list((tmp_path / "out").glob("*.gif"))
    assert len(gifs) == 1
    with Image.open(gifs[0]) as gif:
        assert gif.n_frames >= 3
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"))
    assert np.abs(last.astype(int) - expected_image(gui, seed_weights=seed(3)).astype(int)).mean() < 8

    fire(panel(gui, "TruncationPanel").psi_tag, 0.5)
    fire("capture.save_state", None)
    gui.step()
    saved = list((tmp_path / "out").glob("session-*.json"))
    assert len(saved) == 1 and Session.from_json(saved[0].read_text()) == gui.session
    fire(panel(gui, "TruncationPanel").psi_tag, 1.0)
    fire(latent.seed_tag, 40)
    assert capture.open_state(saved[0])
    settle(gui)
    assert gui.session.truncation.psi == 0.5 and gui.session.latent.seed == 3

    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1, "truncation": {"psi": 9}}')
    assert not capture.open_state(broken)
    assert gui.session.truncation.psi == 0.5                   # a bad file changes nothing


# -- Performance -------------------------------------------------------------------------------------------------

def test_performance_panel_reports_a_device_error_and_limits_the_viewer_frame_rate(gui, tmp_path):
    import dearpygui.dearpygui as dpg
    import torch
    performance = panel(gui, "PerformancePanel")
    before = viewer_pixels(gui, tmp_path, "before.png")
    fire(performance.dtype_tag, "float16")                     # float16 is for CUDA only: refused in the panel
    assert gui.session.performance.dtype == "float32"
    assert "float16" in dpg.get_value(performance.error_tag)
    if not torch.cuda.is_available():
        fire(performance.device_tag, "cuda")
        assert not gui.wait_for_frame()                       # rendered, and failed
        assert "CUDA is not available" in gui.controller.status.render_error
        assert "CUDA is not available" in dpg.get_value(performance.render_error_tag)
        assert np.array_equal(viewer_pixels(gui, tmp_path, "after.png", wait=False), before)  # the last image stays
        fire(performance.device_tag, "cpu")
        settle(gui)
    fire(performance.fps_tag, 10)
    gui.session.latent.speed = 20.0
    gui.session.latent.animate = True
    draws = []
    start = time.monotonic()
    while time.monotonic() - start < 2.0:
        gui.step()
        if gui.controller.status.display.draws_per_s:
            draws.append(gui.controller.status.display.draws_per_s)
    gui.session.latent.animate = False
    assert 0 < draws[-1] <= 10 + 1
    assert "render" in dpg.get_value(performance.timings_tag)


def test_performance_panel_says_when_the_device_has_no_preview_precision(gui, monkeypatch):
    import dearpygui.dearpygui as dpg
    import explorer.controller
    performance = panel(gui, "PerformancePanel")
    note = "cpu here has no preview precision; every frame is exact"
    for available, shown in ((None, True), ("bfloat16", False)):     # an AVX2-only CPU, then one with bf16 units
        monkeypatch.setattr(explorer.controller, "preview_dtype", lambda device, available=available: available)
        assert gui.controller.preview_precision == available
        performance.refresh()
        assert (note in dpg.get_value(performance.timings_tag)) == shown
    fire(performance.adaptive_tag, False)                            # off: nothing to say
    monkeypatch.setattr(explorer.controller, "preview_dtype", lambda device: None)
    performance.refresh()
    assert note not in dpg.get_value(performance.timings_tag)
    fire(performance.adaptive_tag, True)


def test_performance_panel_says_whether_the_compiled_kernels_run(gui, monkeypatch):
    """The CPU's compiled kernels: what this process loaded, or why the eager paths run (turned off here)."""
    import dearpygui.dearpygui as dpg
    from kernels import native
    performance = panel(gui, "PerformancePanel")
    assert native.library("filtered_lrelu") is not None or native.unavailable_reason("filtered_lrelu")
    performance.refresh()
    shown = dpg.get_value(performance.timings_tag)
    assert f"cpu kernels: {native.status()}" in shown
    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, "0")
    performance.refresh()
    assert "cpu kernels: off (STYLEGAN_EXPLORER_NATIVE=0)" in dpg.get_value(performance.timings_tag)


# -- Help, and the keys the viewer sends ---------------------------------------------------------------------------

def test_help_lists_every_shortcut_and_the_viewer_keys_do_what_it_says(gui):
    import dearpygui.dearpygui as dpg
    from renderer.shortcuts import SHORTCUTS
    texts = {dpg.get_value(item) for item in dpg.get_all_items()
             if dpg.get_item_type(item) == "mvAppItemType::mvText"}
    assert all(keys in texts and action in texts for keys, action in SHORTCUTS)

    s = gui.session

    def key(name):
        gui.viewer.events.put(msg.Key(name))
        before = s.to_dict(), gui.controller.status.capture_message
        deadline = time.monotonic() + 10
        while (s.to_dict(), gui.controller.status.capture_message) == before and time.monotonic() < deadline:
            gui.step()
        gui.step()      # requests (a screenshot) are taken up at the start of the next frame

    fire(panel(gui, "LatentPanel").seed_tag, 5)
    key("right")
    assert s.latent.seed == 6
    key("left")
    assert s.latent.seed == 5
    key("down")
    assert s.truncation.psi == pytest.approx(0.9)
    key("n")
    assert s.noise.mode == "random"
    key("2")
    assert (s.viewer.fit, s.viewer.zoom) == (False, 2)
    key("plus")
    assert s.viewer.zoom == 3
    key("0")
    assert s.viewer.fit
    key("l")
    assert s.layers.layer is not None
    key("l")
    assert s.layers.layer is None
    key("f")
    assert s.viewer.fullscreen
    key("escape")
    assert not s.viewer.fullscreen
    key("s")
    assert gui.controller.status.capture_message.startswith("saved ")


@pytest.mark.skipif(shutil.which("xdotool") is None and os.environ.get("CI") != "true",
                    reason="xdotool is not installed (in CI, where setup.sh installs it, the test runs and fails)")
def test_a_real_mouse_drag_on_the_viewer_moves_the_latent_panel(gui, tmp_path):
    """The whole path: X events in the viewer process, Drag messages to the app, the session, the panel."""
    import dearpygui.dearpygui as dpg
    from widgets.keymap import DRAG_SEEDS_PER_PIXEL
    found = subprocess.run(["xdotool", "search", "--name", "^stylegan-explorer viewer$"], capture_output=True,
                           text=True, timeout=10).stdout.split()
    assert found, "the viewer window is not on the X server"
    window = found[0]
    latent = panel(gui, "LatentPanel")
    fire(latent.seed_tag, 30)
    settle(gui)

    def xdotool(*args):
        subprocess.run(["xdotool", *map(str, args)], check=True, timeout=10)

    xdotool("mousemove", "--window", window, 100, 100)
    xdotool("mousedown", "--window", window, 1)
    for step in range(1, 5):
        xdotool("mousemove", "--window", window, 100 + 25 * step, 100)
    xdotool("mouseup", "--window", window, 1)
    expected_x = 30 + 100 * DRAG_SEEDS_PER_PIXEL
    wait_until(gui, lambda: gui.session.latent.x == pytest.approx(expected_x), timeout=10)
    assert dpg.get_value(latent.position_tag)[0] == pytest.approx(expected_x)
    assert gui.session.latent.y == 0.0
    settle(gui)
    assert np.array_equal(viewer_pixels(gui, tmp_path),
                          expected_image(gui, seed_weights=gui.session.latent.seed_weights()))
