"""The explorer window under a real X server: panels driven through their callbacks, pixels read back from the
viewer window (glReadPixels in the viewer process)."""
import time

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.formats.native import save_network
from explorer.render import RenderRequest, render
from tests.fixtures.networks import tiny_stylegan2
from tests.gui_driver import expected_image, fire, panel, settle, viewer_pixels

SLOW_FRAME_S = 1.0


def test_the_viewer_shows_the_rendered_image_exactly(app, tmp_path):
    fire(panel(app, "LatentPanel").seed_tag, 0)
    settle(app)
    shown = viewer_pixels(app, tmp_path)
    assert np.array_equal(shown, app.controller.frame.result.image)
    assert np.array_equal(shown, expected_image(app, seed_weights=((0, 1.0),)))


def test_a_seed_change_changes_the_image(app, tmp_path):
    latent = panel(app, "LatentPanel")
    fire(latent.seed_tag, 5)
    settle(app)
    a = viewer_pixels(app, tmp_path, "a.png")
    fire(latent.seed_tag, 6)
    settle(app)
    b = viewer_pixels(app, tmp_path, "b.png")
    assert app.session.latent.seed == 6
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 5
    assert np.array_equal(b, expected_image(app, seed_weights=((6, 1.0),)))


def test_psi_zero_gives_the_w_avg_image_for_every_seed(app, tmp_path):
    truncation, latent = panel(app, "TruncationPanel"), panel(app, "LatentPanel")
    fire(truncation.psi_tag, 0.0)
    fire(latent.seed_tag, 11)
    settle(app)
    a = viewer_pixels(app, tmp_path, "a.png")
    fire(latent.seed_tag, 12)
    settle(app)
    b = viewer_pixels(app, tmp_path, "b.png")
    assert np.array_equal(a, b)
    G = app.controller.worker._generator
    with torch.no_grad():
        ws = G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
        raw = G.synthesis(ws, noise_mode="const").image
    direct = (raw[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    assert np.array_equal(a, direct)
    fire(truncation.psi_tag, 1.0)
    settle(app)


def test_mixing_a_layer_range_changes_what_it_should_and_nothing_else(app, tmp_path):
    mixing, latent = panel(app, "MixingPanel"), panel(app, "LatentPanel")
    fire(latent.seed_tag, 2)
    import dearpygui.dearpygui as dpg
    dpg.set_value(mixing.new_seed_tag, 9)
    fire("mixing.add_source", None)
    settle(app)
    assert app.session.mixing.sources == (9,)
    fire("mixing.layer.8", "0: seed 9", 8)
    fire("mixing.layer.9", "0: seed 9", 9)
    settle(app)
    shown = viewer_pixels(app, tmp_path)
    assert app.session.mixing.layer_sources[8:10] == (0, 0)
    mixed = expected_image(app, seed_weights=((2, 1.0),), layer_seeds=(None,) * 8 + (9, 9))
    plain = expected_image(app, seed_weights=((2, 1.0),))
    assert np.array_equal(shown, mixed)
    assert np.abs(shown.astype(int) - plain.astype(int)).max() > 0
    # Only the finest layers changed: every activation before them is the same as without mixing.
    G = app.controller.worker._generator
    from explorer.latents import z_from_seed
    with torch.no_grad():
        ws = G.mapping(z_from_seed(2, G.z_dim), None)
        ws_mixed = ws.clone()
        ws_mixed[:, 8:] = G.mapping(z_from_seed(9, G.z_dim), None)[:, 8:]
        a = G.synthesis(ws, capture="all").activations
        b = G.synthesis(ws_mixed, capture="all").activations
    for layer in G.synthesis.layers:
        same = torch.equal(a[layer.name], b[layer.name])
        assert same == (layer.w_index is not None and layer.w_index < 8), layer.name
    fire("mixing.clear", None)
    settle(app)
    assert app.session.mixing.layer_sources == ()


def test_noise_strength_zero_equals_noise_mode_none(app, tmp_path):
    noise = panel(app, "NoisePanel")
    fire(noise.mode_tag, "none")
    settle(app)
    none = viewer_pixels(app, tmp_path, "none.png")
    fire(noise.mode_tag, "const")
    fire(noise.strength_tag, 0.0)
    settle(app)
    zero = viewer_pixels(app, tmp_path, "zero.png")
    assert np.array_equal(none, zero)
    fire(noise.strength_tag, 1.0)
    settle(app)
    const = viewer_pixels(app, tmp_path, "const.png")
    assert np.abs(const.astype(int) - none.astype(int)).max() > 0
    layer = next(iter(noise.layer_tags))
    fire(noise.layer_tags[layer], 0.0, layer)
    settle(app)
    assert app.session.noise.layer_multiplier(layer) == 0.0
    fire(noise.layer_tags[layer], 1.0, layer)
    settle(app)


def test_selecting_a_layer_shows_its_channels(app, tmp_path):
    layers = panel(app, "LayersPanel")
    labels = layers.labels()
    label = next(l for l, name in labels.items() if name == "b32.conv1")
    fire(layers.layer_tag, label)
    fire(layers.count_tag, "4")
    settle(app)
    assert app.session.layers.layer == "b32.conv1"
    shown = viewer_pixels(app, tmp_path)
    assert shown.shape[1] > app.controller.frame.result.image.shape[1]          # the grid beside the output
    assert np.array_equal(shown[:, :64], app.controller.frame.result.image)
    grid = shown[:, 64 + 4:]
    # The grid shows b32.conv1's channels: compare with the activations themselves.
    assert app.controller.frame.result.layer_image is not None and app.controller.frame.result.stats.layer == "b32.conv1"
    assert app.controller.frame.result.stats.shape == (16, 32, 32)
    assert grid.std() > 5
    assert app.controller.status.layer_stats.layer == "b32.conv1"
    fire(layers.layer_tag, "output image")
    settle(app)
    assert viewer_pixels(app, tmp_path, "out.png").shape[1] == 64


def test_a_bad_file_keeps_the_previous_network_and_shows_the_error(app, tmp_path):
    before = viewer_pixels(app, tmp_path, "before.png")
    bad = tmp_path / "broken.pkl"
    bad.write_bytes(b"\x80\x04not really a pickle torch_utils.persistence")
    network = panel(app, "NetworkPanel")
    fire(network.path_tag, str(bad))
    deadline = time.monotonic() + 30
    while app.controller.status.load_error is None and time.monotonic() < deadline:
        app.step()
    import dearpygui.dearpygui as dpg
    assert "truncated or damaged" in app.controller.status.load_error
    assert "could not load" in dpg.get_value(network.error_text)
    settle(app)
    assert app.session.network.path == str(app.network_file)
    after = viewer_pixels(app, tmp_path, "after.png")
    assert np.array_equal(before, after)


def test_drag_in_the_viewer_moves_the_latent_and_the_panel_shows_it(app, tmp_path):
    from renderer import messages as msg
    import dearpygui.dearpygui as dpg
    latent = panel(app, "LatentPanel")
    fire(latent.seed_tag, 20)
    settle(app)
    app.viewer.events.put(msg.Drag(dx=150.0, dy=0.0))
    deadline = time.monotonic() + 10
    while app.session.latent.x == 20.0 and time.monotonic() < deadline:
        app.step()
    assert app.session.latent.x == pytest.approx(21.5)
    assert dpg.get_value(latent.position_tag)[0] == pytest.approx(21.5)
    weights = app.session.latent.seed_weights()
    assert [seed for seed, _ in weights] == [21, 22] and weights[0][1] == pytest.approx(0.5)
    assert np.array_equal(viewer_pixels(app, tmp_path), expected_image(app, seed_weights=weights))
    settle(app)


def test_screenshot_from_the_capture_panel_carries_the_state(app):
    from explorer.export import read_state_from_png
    fire("capture.screenshot", None)
    app.step()
    status = app.controller.status.capture_message
    assert status.startswith("saved ")
    path = status.split("\n")[0][len("saved "):]
    assert np.array_equal(np.asarray(Image.open(path)), app.controller.frame.result.image)
    assert '"latent"' in read_state_from_png(path)
    assert "stylegan-explorer render" in status


def test_panels_stay_fast_while_a_slow_network_renders(app, monkeypatch):
    """Every frame of the network takes a second; the panels keep drawing above 20 fps meanwhile, and the worker
    drops the requests a dragged slider leaves behind instead of queueing them."""
    import explorer.worker
    fast_render = explorer.worker.render

    def slow_render(*args, **kwargs):
        time.sleep(SLOW_FRAME_S)
        return fast_render(*args, **kwargs)

    monkeypatch.setattr(explorer.worker, "render", slow_render)
    latent = panel(app, "LatentPanel")
    rendered, dropped = app.controller.worker.rendered, app.controller.worker.dropped
    start, frames, seed = time.monotonic(), 0, 100
    while time.monotonic() - start < 3.0:
        if frames % 10 == 0:
            seed += 1
            fire(latent.seed_tag, seed)   # a new request every few frames, while renders take 1 s
        app.step()
        frames += 1
    fps = frames / (time.monotonic() - start)
    assert fps > 20, f"panels at {fps:.1f} fps while rendering"
    assert 2 <= app.controller.worker.rendered - rendered <= 4
    assert app.controller.worker.dropped - dropped > 0
    monkeypatch.setattr(explorer.worker, "render", fast_render)
    settle(app)
    assert app.controller.frame.result.request.seed_weights == ((seed, 1.0),)


def test_automation_flags_capture_both_windows_and_exit(xvfb, tmp_path):
    """`--state FILE --screenshot OUT.png --quit` as a user runs it: a separate process, real windows."""
    import json
    import os
    import subprocess
    import sys
    network = tmp_path / "net.safetensors"
    save_network(tiny_stylegan2("sg2_orig_32"), network)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"version": 1, "network": {"path": str(network)}, "latent": {"x": 4.0},
                                 "layers": {"layer": "b16.conv1"}}))
    out = tmp_path / "both.png"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    result = subprocess.run([sys.executable, "-m", "explorer", "--state", str(state), "--screenshot", str(out),
                             "--quit"], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    sheet = np.asarray(Image.open(out).convert("RGB"))
    assert sheet.shape[1] > 400 and sheet.shape[0] > 300
    # The viewer half shows the seed-4 image of that network somewhere at a whole-number scale.
    expected = render(tiny_stylegan2("sg2_orig_32"), RenderRequest("k", seed_weights=((4, 1.0),))).image
    colours = {tuple(c) for c in expected.reshape(-1, 3)[:50]}
    found = {tuple(c) for c in sheet.reshape(-1, 3)}
    assert len(colours & found) >= 40


def test_capture_panel_saves_the_w_plus_of_the_image(app):
    fire(panel(app, "LatentPanel").seed_tag, 31)
    settle(app)
    fire("capture.save_latents", None)
    app.step()
    status = app.controller.status.capture_message
    assert status.startswith("saved W+ "), status
    ws = np.load(status[len("saved W+ "):])
    G = app.controller.worker._generator
    assert ws.shape == (G.num_ws, G.w_dim)
    # The same W+ a fresh render of the request on screen starts from.
    assert np.abs(ws - render(G, app.controller.frame.result.request).ws).max() < 1e-6
    assert np.abs(ws).max() > 0.1


def test_without_a_network_the_file_dialog_opens_and_the_viewer_says_what_to_do(xvfb, tmp_path):
    """No --pkl and no default model: nothing to render, but a window that asks for a file (not an error)."""
    import os
    import subprocess
    import sys
    out = tmp_path / "empty.png"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    code = f"import sys; from widgets.app import run_app; sys.exit(run_app(pkl=None, screenshot={str(out)!r}, " \
           f"quit_after=True))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no network file given" in result.stderr
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    from widgets.layout import Layout
    viewer = sheet[:, Layout().panel_width + Layout().em(1):]
    hud = viewer[:20, :300]
    assert (hud.max(axis=2) > 200).sum() > 100      # the heads-up line's text is there
    assert viewer[200:700].std() < 1                 # and nothing else: no image


def test_a_viewer_that_cannot_open_is_reported_in_one_line_and_leaves_nothing_behind(xvfb, tmp_path):
    """GLFW in the viewer process pointed at a Wayland display that does not exist: the window cannot open. The
    command says so in one line and exits 1: no traceback, no shared memory left, no screenshot."""
    import os
    import subprocess
    import sys
    network = tmp_path / "net.safetensors"
    save_network(tiny_stylegan2("sg2_orig_32"), network)
    out = tmp_path / "never.png"
    (tmp_path / "runtime").mkdir(mode=0o700)
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), PYGLFW_LIBRARY_VARIANT="wayland",
               XDG_RUNTIME_DIR=str(tmp_path / "runtime"))
    env.pop("WAYLAND_DISPLAY", None)
    result = subprocess.run([sys.executable, "-m", "explorer", "--pkl", str(network), "--screenshot", str(out),
                             "--quit"], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "stylegan-explorer: the viewer window could not open: " in result.stderr
    assert "Traceback" not in result.stderr and "leaked shared_memory" not in result.stderr, result.stderr
    assert not out.exists()


def test_run_app_without_a_display_says_so_and_returns_2(tmp_path):
    """run_app checks for itself (not only the command does): Dear PyGui would abort the interpreter."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    code = "import sys; from widgets.app import run_app; sys.exit(run_app(pkl=None))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no display" in result.stderr and "Traceback" not in result.stderr


def test_a_fast_render_reaches_the_viewer_in_the_panel_frame_of_its_change(app, tmp_path, monkeypatch):
    """A network whose frame renders within FAST_RENDER_WAIT_S is waited for before the panels are drawn: the frame
    of a change goes to the viewer in the same app step, not after the next panel draw. (The wait is widened here,
    so that a loaded test machine cannot make this tiny network's render miss it.)"""
    import widgets.app as app_module
    latent = panel(app, "LatentPanel")
    fire(latent.seed_tag, 3)
    settle(app)
    assert app.controller.exact_render_s is not None
    monkeypatch.setattr(app_module, "FAST_RENDER_WAIT_S", max(5.0, 2 * app.controller.exact_render_s))
    shown, original_show = [], app.show
    monkeypatch.setattr(app, "show", lambda frame: (shown.append(frame), original_show(frame)))
    app.controller.edit(app.session.latent.set_seed, 4)
    app.step()
    assert shown and shown[0].result.request == app.controller.request()
    assert shown[0].result.request.seed_weights == ((4, 1.0),)
    monkeypatch.undo()
    settle(app)
    assert np.array_equal(viewer_pixels(app, tmp_path), expected_image(app, seed_weights=((4, 1.0),)))


def test_a_slow_render_is_not_waited_for(app, monkeypatch):
    """Above FAST_RENDER_WAIT_S the panels are drawn while the render runs: the step does not block on it."""
    import widgets.app as app_module
    latent = panel(app, "LatentPanel")
    fire(latent.seed_tag, 3)
    settle(app)
    monkeypatch.setattr(app_module, "FAST_RENDER_WAIT_S", 0.0)
    waited = []
    original_wait = app.controller.wakeup.wait
    monkeypatch.setattr(app.controller.wakeup, "wait", lambda timeout=None: waited.append(timeout) or
                        original_wait(0))
    app.controller.edit(app.session.latent.set_seed, 5)
    app.step()
    assert waited == []
    monkeypatch.undo()
    settle(app)
