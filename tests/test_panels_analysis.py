"""The panels of the generator's meaning (Droplets, Directions, Regions, Bending) and undo in the window, driven
through their own callbacks and the viewer's events; what the viewer shows is held against render()."""
import time

import dearpygui.dearpygui as dpg
import numpy as np
import pytest

from explorer.bending import LayerOperation
from explorer.view import MARK_COLOUR
from renderer import messages as msg
from tests.gui_driver import expected_image, fire, panel, reset, settle, viewer_pixels

ANALYSIS_TIMEOUT_S = 120


@pytest.fixture
def gui(app):
    reset(app)
    yield app
    app.controller.cancel_analysis()
    wait_for_analysis(app)
    for name in ("bending", "directions", "layers", "styles"):
        section = app.session.section(name)
        for key in section.field_names():
            setattr(section, key, getattr(type(section)(), key))
    reset(app)


def wait_for_analysis(app):
    deadline = time.monotonic() + ANALYSIS_TIMEOUT_S
    while app.controller.status.analysis is not None or (app.controller._analysis is not None
                                                         and app.controller._analysis.is_alive()):
        assert time.monotonic() < deadline, "analysis timed out"
        app.step()
    app.step()


def test_droplets_panel_lists_findings_shows_one_marked_and_ablates_the_top(gui, tmp_path):
    droplets = panel(gui, "DropletsPanel")
    fire("droplets.current", None)
    wait_for_analysis(gui)
    report = gui.controller.status.droplets
    assert report is not None and report.seeds == (gui.session.latent.seed,)
    assert dpg.get_value(droplets.bars_tag)[1] == [l.best_score for l in report.layers]
    for i, layer in enumerate(report.layers):          # a line per layer: its shared spot
        line = dpg.get_value(f"droplets.layer.{i}")
        assert line.startswith(layer.layer) and f"{layer.seeds}/1 seeds" in line
        assert line.endswith("droplet") == layer.droplet
    best = report.findings[0]
    assert dpg.get_item_label("droplets.finding.0").startswith(best.layer)
    fire("droplets.finding.0", None)
    settle(gui)
    layers = gui.session.layers
    assert (layers.layer, layers.mode, layers.first_channel, layers.mark_spikes) == (best.layer, "single",
                                                                                        best.channel, True)
    view = gui.controller.frame.view
    assert (view.reshape(-1, 3) == MARK_COLOUR).all(axis=1).any()          # the spike is marked
    before = viewer_pixels(gui, tmp_path, "before.png")
    fire("droplets.ablate", None)
    settle(gui)
    top = report.findings[:3]
    ablated = {(op.layer, c) for op in gui.session.bending.operations for c in op.channels}
    assert ablated == {(f.layer, f.channel) for f in top}
    after = viewer_pixels(gui, tmp_path, "after.png")
    assert not np.array_equal(before, after)
    assert np.array_equal(gui.controller.frame.result.image,
                          expected_image(gui, layer_operations=gui.session.bending.operations,
                                         view=gui.controller.request().view))
    # The default model (StyleGAN2) has no droplet: "Ablate droplet" says so and ablates nothing more.
    operations = gui.session.bending.operations
    fire("droplets.ablate_spot", None)
    settle(gui)
    assert gui.session.bending.operations == operations
    assert "no droplet to ablate" in dpg.get_value(droplets.progress_tag)
    # Over 16 seeds each layer's line also gives its widest spot and the seed of it.
    fire("droplets.seeds", None)
    wait_for_analysis(gui)
    report = gui.controller.status.droplets
    assert len(report.seeds) == 16
    for i, layer in enumerate(report.layers):
        line = dpg.get_value(f"droplets.layer.{i}")
        assert f"widest {layer.widest_share:.0%} (seed {layer.best_seed}), {layer.seeds}/16 seeds" in line


def test_directions_panel_sliders_move_the_image_along_sefa_directions(gui, tmp_path):
    fire("directions.compute", None)
    wait_for_analysis(gui)
    offsets = gui.session.directions.offsets
    assert len(offsets) == 10 and dpg.does_item_exist("directions.slider.0")
    assert dpg.get_item_label("directions.slider.0") == offsets[0].name
    fire("directions.range", [2, 6, 0, 0])
    fire("directions.slider.0", 4.0)
    settle(gui)
    moved = gui.session.directions.offsets[0]
    assert (moved.strength, moved.w_start, moved.w_stop) == (4.0, 2, 6)
    assert np.array_equal(viewer_pixels(gui, tmp_path),
                          expected_image(gui, direction_offsets=(moved,)))
    fire("directions.reset", None)
    assert all(o.strength == 0 for o in gui.session.directions.offsets)


def test_bending_panel_adds_operations_in_order_and_the_amount_slider_bends(gui, tmp_path):
    dpg.set_value("bending.layer", "b16.conv1")
    dpg.set_value("bending.operation", "rotate")
    dpg.set_value("bending.channels", "0-7")
    fire("bending.add", None)
    dpg.set_value("bending.layer", "b32.conv0")
    dpg.set_value("bending.operation", "ablate")
    dpg.set_value("bending.channels", "all")
    fire("bending.add", None)
    ops = gui.session.bending.operations
    assert ops == (LayerOperation("b16.conv1", "rotate", tuple(range(8)), 45.0),
                   LayerOperation("b32.conv0", "ablate", (), 1.0))
    fire("bending.amount.0", 90.0)
    settle(gui)
    assert gui.session.bending.operations[0].amount == 90.0
    assert np.array_equal(viewer_pixels(gui, tmp_path), expected_image(gui, layer_operations=gui.session.bending.operations))
    dpg.set_value("bending.channels", "x,y")
    fire("bending.add", None)
    assert "channels" in dpg.get_value(panel(gui, "BendingPanel").error_tag)
    fire("bending.remove.1", None)
    assert len(gui.session.bending.operations) == 1


def test_a_region_drawn_on_the_viewer_offers_its_channels_as_sliders(gui):
    gui.viewer.events.put(msg.Selected(top=8, left=8, bottom=24, right=24))
    deadline = time.monotonic() + 10
    while gui.controller.status.analysis is None and gui.controller.status.region is None:
        assert time.monotonic() < deadline
        gui.step()
    wait_for_analysis(gui)
    ranking = gui.controller.status.region
    assert ranking is not None and (ranking.rectangle.top, ranking.rectangle.right) == (8, 24)
    unit = ranking.channels[0]
    assert unit.ratio >= ranking.channels[-1].ratio
    assert dpg.does_item_exist("regions.slider.0")
    fire("regions.slider.0", 3.0)
    assert {(d.layer, d.channel, d.delta) for d in gui.session.styles.style_deltas} == {(unit.layer, unit.channel,
                                                                                         3.0)}


def test_undo_and_redo_from_both_windows_and_the_history_panel(gui):
    fire(panel(gui, "LatentPanel").seed_tag, 8)
    fire(panel(gui, "TruncationPanel").psi_tag, 0.5)
    settle(gui)
    gui.viewer.events.put(msg.Key("z", ctrl=True))                    # Ctrl+Z in the viewer
    deadline = time.monotonic() + 10
    while gui.session.truncation.psi != 1.0:
        assert time.monotonic() < deadline
        gui.step()
    assert gui.session.latent.seed == 8
    fire("history.undo", None)
    assert gui.session.latent.seed == 0
    assert "redo: latent" in dpg.get_value(panel(gui, "HistoryPanel").label_tag)
    gui.keymap.key(msg.Key("z", shift=True, ctrl=True))               # Ctrl+Shift+Z, as the panel window sends it
    assert gui.session.latent.seed == 8
    fire("history.redo", None)
    settle(gui)
    assert gui.session.truncation.psi == 0.5
    assert np.array_equal(gui.controller.frame.result.image,
                          expected_image(gui, seed_weights=((8, 1.0),), truncation_psi=0.5))


def test_project_panel_shows_each_step_and_the_result_becomes_the_main_latent(gui, tmp_path):
    from PIL import Image
    fire(panel(gui, "LatentPanel").seed_tag, 9)
    settle(gui)
    target = tmp_path / "photo.png"
    Image.fromarray(gui.controller.frame.result.image).save(target)
    project = panel(gui, "ProjectPanel")
    dpg.set_value("project.target", str(target))
    dpg.set_value("project.steps", 8)
    fire("project.start", None)
    wait_for_analysis(gui)
    assert gui.session.latent.w_plus is not None
    assert dpg.get_value(project.info_tag).startswith("step 8 of 8")
    preview = np.asarray(dpg.get_value(project.texture_tag)).reshape(128, 128, 4)
    assert preview[..., :3].std() > 0.05 and np.all(preview[..., 3] == 1)   # the last step's image, not blank
    assert "seeds" in dpg.get_item_label("latent.use_seeds") and dpg.is_item_shown("latent.use_seeds")
    fire("latent.use_seeds", None)
    assert gui.session.latent.w_plus is None
    dpg.set_value("project.target", str(tmp_path / "nothing.png"))
    fire("project.start", None)
    assert "no such file" in dpg.get_value(project.error_tag)


def test_blend_panel_swaps_in_another_networks_fine_layers(gui, tmp_path):
    from explorer.blending import ModelBlend, blend_generators
    from explorer.formats.native import save_network
    from explorer.render import RenderRequest, render
    from tests.fixtures.networks import tiny_stylegan2
    other = tmp_path / "other.safetensors"
    save_network(tiny_stylegan2("sg2_skip_64", seed=7), other)
    fire("blend.other", str(other))
    fire("blend.split", "16")
    fire("blend.amount", 0.75)
    settle(gui)
    blend = ModelBlend(str(other), "swap", 16, 0.75)
    assert gui.session.blend.as_request() == blend
    G = gui.controller.worker.generator
    expected = render(blend_generators(G, tiny_stylegan2("sg2_skip_64", seed=7), blend),
                      RenderRequest(gui.controller.network_key, blend=blend))
    assert np.array_equal(viewer_pixels(gui, tmp_path), expected.image)
    fire("blend.off", None)
    settle(gui)
    assert gui.session.blend.other is None


def test_osc_messages_reach_the_window_and_the_command_line_flag_starts_the_server(gui, xvfb, tmp_path):
    import os
    import subprocess
    import sys

    from pythonosc.udp_client import SimpleUDPClient

    from explorer.remote.live import remote_for, start_osc_server
    server = start_osc_server(gui.controller, 0)
    try:
        SimpleUDPClient("127.0.0.1", server.port).send_message("/explorer/truncation/psi", 0.4)
        deadline = time.monotonic() + 10
        while abs(gui.session.truncation.psi - 0.4) > 1e-6:          # OSC floats are 32-bit
            assert time.monotonic() < deadline, "the OSC message never arrived"
            gui.step()
        settle(gui)
        assert np.array_equal(gui.controller.frame.result.image,
                              expected_image(gui, truncation_psi=gui.session.truncation.psi))
        assert dpg.get_value(panel(gui, "TruncationPanel").psi_tag) == pytest.approx(0.4)
    finally:
        remote_for(gui.controller).stop_osc()
    env = dict(os.environ, DISPLAY=xvfb)
    result = subprocess.run([sys.executable, "-m", "explorer.cli", "--osc", "0", "--screenshot",
                             str(tmp_path / "shot.png"), "--quit"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "OSC: listening on 127.0.0.1:" in result.stdout
