"""Presets and morphs: the morph's midpoint is render() of the interpolated request (real pixels and ws), keyframe
files (format, errors, `video --keyframes`), the preset bank, and the live morph on a headless controller."""
import json

import imageio.v3 as iio
import numpy as np
import pytest

from explorer.commands import main
from explorer.controller import Controller
from explorer.formats.native import save_network
from explorer.morph import ease, morph_request
from explorer.presets import Preset, PresetBank, PresetError, keyframe_frame_count, parse_keyframes, read_keyframes
from explorer.remote.live import remote_for
from explorer.bending import LayerOperation
from explorer.controls import DirectionOffset
from explorer.render import RenderCache, RenderRequest, StyleDelta, WOffset, render
from explorer.instrument import StoredPreset
from explorer.state import NetworkFacts, Session, StateError
from tests.fixtures.networks import tiny_stylegan2


@pytest.fixture(scope="module")
def G():
    return tiny_stylegan2("sg2_orig_32")


@pytest.fixture(scope="module")
def styled_layer(G):
    return next(l.name for l in NetworkFacts.from_generator(G).layers if l.style_channels > 0)


def _image(G, request):
    result = render(G, request, RenderCache())
    assert result.ok, result.error
    return result


def test_morph_midpoint_is_the_interpolated_request(G, styled_layer):
    a = RenderRequest("k", seed_weights=((1, 1.0),), truncation_psi=0.5, noise_strength=0.5,
                      w_offsets=(WOffset(2, "random", 4, 2.0),))
    b = RenderRequest("k", seed_weights=((9, 1.0),), truncation_psi=1.0, noise_strength=1.5,
                      style_deltas=(StyleDelta(styled_layer, 0, 1.0),))
    by_hand = RenderRequest("k", seed_weights=((1, 0.5), (9, 0.5)), latent_space="w", truncation_psi=0.75,
                            noise_strength=1.0, w_offsets=(WOffset(2, "random", 4, 1.0),),
                            style_deltas=(StyleDelta(styled_layer, 0, 0.5),))
    mid = morph_request(a, b, 0.5)
    assert mid == by_hand
    image_a, image_b, image_mid = (_image(G, r).image for r in (a, b, mid))
    assert np.array_equal(image_mid, _image(G, by_hand).image)
    assert np.abs(image_mid.astype(int) - image_a).mean() > 1 and np.abs(image_mid.astype(int) - image_b).mean() > 1
    assert np.array_equal(_image(G, morph_request(a, b, 0.0)).image, image_a)
    assert np.array_equal(_image(G, morph_request(a, b, 1.0)).image, image_b)


def test_the_latents_blend_in_w(G):
    a, b = RenderRequest("k", seed_weights=((3, 1.0),)), RenderRequest("k", seed_weights=((11, 1.0),))
    ws = [_image(G, morph_request(a, b, t)).ws for t in (0.0, 0.3, 1.0)]
    np.testing.assert_allclose(ws[1], 0.7 * ws[0] + 0.3 * ws[2], atol=1e-5)


def test_offsets_of_two_directions_hand_over_halfway():
    a = RenderRequest("k", w_offsets=(WOffset(1, "random", 4, 2.0),))
    b = RenderRequest("k", w_offsets=(WOffset(1, "to_seed", 8, 1.0),), noise_mode="none", truncation_cutoff=3)
    assert morph_request(a, b, 0.25).w_offsets == (WOffset(1, "random", 4, 1.0),)
    assert morph_request(a, b, 0.75).w_offsets == (WOffset(1, "to_seed", 8, 0.5),)
    assert morph_request(a, b, 0.4).noise_mode == "const" and morph_request(a, b, 0.6).noise_mode == "none"
    assert morph_request(a, b, 0.6).truncation_cutoff == 3
    assert ease("smooth", 0.5) == 0.5 and ease("smooth", 0.1) < 0.1 and ease("linear", 0.1) == 0.1


def test_directions_and_bending_morph(G):
    facts = NetworkFacts.from_generator(G)
    layers = [l.name for l in facts.layers if l.channels >= 4 and l.name != facts.layer_names[-1]]
    direction = tuple(float(v) for v in np.random.RandomState(0).randn(facts.w_dim) / np.sqrt(facts.w_dim))
    a = RenderRequest("k", seed_weights=((1, 1.0),), direction_offsets=(DirectionOffset("d", direction, 4.0),),
                      layer_operations=(LayerOperation(layers[0], "rotate", (0, 1), 90.0),
                                        LayerOperation(layers[1], "flip_x", (3,))))
    b = RenderRequest("k", seed_weights=((1, 1.0),),
                      layer_operations=(LayerOperation(layers[0], "rotate", (0, 1), 30.0),
                                        LayerOperation(layers[1], "multiply", (2,), 3.0)))
    quarter = morph_request(a, b, 0.25)
    assert quarter.direction_offsets == (DirectionOffset("d", direction, 2.0),)
    assert quarter.layer_operations == (LayerOperation(layers[0], "rotate", (0, 1), 75.0),
                                        LayerOperation(layers[1], "flip_x", (3,)),
                                        LayerOperation(layers[1], "multiply", (2,), 1.5))
    late = morph_request(a, b, 0.75)
    assert late.direction_offsets == ()
    assert late.layer_operations == (LayerOperation(layers[0], "rotate", (0, 1), 45.0),
                                     LayerOperation(layers[1], "multiply", (2,), 2.5))
    by_hand = RenderRequest("k", seed_weights=((1, 1.0),),
                            direction_offsets=(DirectionOffset("d", direction, 2.0),),
                            layer_operations=quarter.layer_operations)
    assert np.array_equal(_image(G, quarter).image, _image(G, by_hand).image)
    assert not np.array_equal(_image(G, quarter).image, _image(G, a).image)


def test_model_blend_amount_morphs():
    from explorer.blending import ModelBlend
    swap = ModelBlend("other.pkl", "swap", 32, 1.0)
    a, b = RenderRequest("k"), RenderRequest("k", blend=swap)
    assert morph_request(a, b, 0.25).blend == ModelBlend("other.pkl", "swap", 32, 0.25)
    assert morph_request(b, a, 0.25).blend == ModelBlend("other.pkl", "swap", 32, 0.75)
    fade = ModelBlend("third.pkl", "crossfade", 16, 0.8)
    assert morph_request(b, RenderRequest("k", blend=fade), 0.25).blend == ModelBlend("other.pkl", "swap", 32, 0.5)
    assert morph_request(b, RenderRequest("k", blend=fade), 0.75).blend == ModelBlend("third.pkl", "crossfade", 16,
                                                                                       0.4)
    assert morph_request(a, a, 0.5).blend is None


def _session_file(folder, name, seed, psi) -> str:
    session = Session()
    session.latent.set_seed(seed)
    session.truncation.psi = psi
    (folder / name).write_text(session.to_json())
    return name


def test_keyframe_file_errors_are_one_line(tmp_path):
    good = {"state": {"version": 1}}
    cases = [({"keyframes": []}, "empty"),
             ({"keyframes": [{"time": 1, **good}]}, "first keyframe is at time 0"),
             ({"keyframes": [{"time": 0, **good}, {"time": 0, **good}]}, "must come after"),
             ({"keyframes": [{"time": 0, "speed": 2, **good}]}, "unknown field 'speed'"),
             ({"keyframes": [{"time": 0, "ease": "bouncy", **good}]}, "ease must be one of"),
             ({"keyframes": [{"time": 0, "state": "missing.json"}]}, "missing.json"),
             ({"keyframes": [{"time": float("nan"), **good}]}, "number of seconds"),
             ({"version": 9, "keyframes": [{"time": 0, **good}]}, "version 9")]
    for data, words in cases:
        with pytest.raises(PresetError) as error:
            parse_keyframes(data, tmp_path)
        assert words in str(error.value) and "\n" not in str(error.value)
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(PresetError, match="not JSON"):
        read_keyframes(tmp_path / "bad.json")


def test_video_keyframes_renders_the_morph(tmp_path, G):
    pkl = tmp_path / "net.safetensors"
    save_network(G, pkl)
    keyframes = {"version": 1, "keyframes": [
        {"time": 0, "state": _session_file(tmp_path, "a.json", 1, 0.5)},
        {"time": 1.0, "state": _session_file(tmp_path, "b.json", 9, 1.0), "ease": "linear"}]}
    (tmp_path / "show.json").write_text(json.dumps(keyframes))
    assert keyframe_frame_count(read_keyframes(tmp_path / "show.json"), 4) == 5
    out = tmp_path / "frames"
    assert main(["video", "--pkl", str(pkl), "--keyframes", str(tmp_path / "show.json"), "--fps", "4",
                 "--out", str(out)]) == 0
    frames = [iio.imread(p) for p in sorted(out.glob("*.png"))]
    assert len(frames) == 5
    a = RenderRequest("video", seed_weights=((1, 1.0),), truncation_psi=0.5)
    b = RenderRequest("video", seed_weights=((9, 1.0),), truncation_psi=1.0)
    assert np.array_equal(frames[0], _image(G, a).image)
    assert np.array_equal(frames[2], _image(G, morph_request(a, b, 0.5)).image)
    assert np.array_equal(frames[4], _image(G, b).image)
    # A keyframe the network cannot take is one line naming it, and nothing is written.
    keyframes["keyframes"][1]["state"] = {"version": 1, "truncation": {"cutoff": 99}}
    (tmp_path / "bad.json").write_text(json.dumps(keyframes))
    assert main(["video", "--pkl", str(pkl), "--keyframes", str(tmp_path / "bad.json"),
                 "--out", str(tmp_path / "bad.mp4")]) == 1
    assert not (tmp_path / "bad.mp4").exists()


def test_the_bank_is_the_sessions_remote_section():
    session = Session()
    bank = PresetBank(session)
    session.truncation.psi = 0.3
    bank.store(2, session.to_dict(), "soft")
    assert session.remote.presets == (StoredPreset(2, "soft", session.remote.presets[0].state),)
    assert "remote" not in json.loads(session.remote.presets[0].state)     # a preset holds no presets
    session.truncation.psi = 0.9
    reopened = Session.from_json(session.to_json())
    again = PresetBank(reopened)
    assert again.get(2) == Preset(2, "soft", bank.get(2).state)
    assert again.get(2).state["truncation"]["psi"] == 0.3 and reopened.truncation.psi == 0.9
    assert [n for n, p in enumerate(again.slots) if p is not None] == [2]
    # Recalling keeps the bank itself: the recall text carries the session's own presets.
    recalled = Session.from_json(again.recall_text(2))
    assert recalled.truncation.psi == 0.3 and recalled.remote == reopened.remote
    with pytest.raises(PresetError, match="empty"):
        again.get(0)
    for slot in (16, -1, True, "3"):
        with pytest.raises(PresetError, match="0 to 15"):
            again.store(slot, session.to_dict())
    again.clear(2)
    assert reopened.remote.presets == () and again.slots == (None,) * 16
    # A preset whose state the session cannot take is refused when it is recalled, in one line.
    odd = Session.from_json(json.dumps({"version": 1, "remote": {"presets": [
        {"slot": 1, "name": "x", "state": json.dumps({"version": 1, "truncation": {"psi": 9}})}]}}))
    with pytest.raises(StateError, match="truncation.psi must be between"):
        odd.load_json(PresetBank(odd).recall_text(1))
    assert odd.truncation.psi == 1.0
    with pytest.raises(StateError, match="two presets in slot 1"):
        Session.from_dict({"version": 1, "remote": {"presets": [{"slot": 1, "name": "a", "state": "{}"},
                                                                 {"slot": 1, "name": "b", "state": "{}"}]}})


def _exact_controller(G) -> Controller:
    controller = Controller(remember_recent=False)
    controller.session.performance.adaptive = False     # exact frames: compared pixel for pixel below
    controller.worker.set_network(G, key="tiny")
    assert controller.wait_for_frame(60)
    return controller


def _close(controller) -> None:
    remote_for(controller).close()
    controller.close()


def test_a_preset_saved_with_the_session_is_recalled_in_a_fresh_controller_with_the_same_pixels(G, tmp_path):
    first = _exact_controller(G)
    try:
        first.set("capture", "folder", str(tmp_path))
        first.edit(first.session.latent.set_seed, 9)
        first.set("truncation", "psi", 0.6)
        first.set("noise", "strength", 0.5)
        assert first.wait_for_frame(60)
        stored_image = first.frame.result.image.copy()
        remote_for(first).store(3, "storm")
        first.edit(first.session.latent.set_seed, 2)
        first.set("truncation", "psi", 1.0)
        saved = first.save_session()
        assert saved is not None and '"storm"' in saved.read_text()
    finally:
        _close(first)
    second = _exact_controller(G)
    try:
        assert remote_for(second).bank.slots == (None,) * 16
        assert second.open_session(str(saved))
        assert remote_for(second).bank.slots[3].name == "storm"
        assert second.session.latent.seed == 2 and second.wait_for_frame(60)
        assert np.abs(second.frame.result.image.astype(int) - stored_image).mean() > 1
        remote_for(second).recall(3)
        assert second.session.latent.seed == 9 and second.session.truncation.psi == pytest.approx(0.6)
        assert remote_for(second).bank.slots[3].name == "storm"      # recalling a preset keeps the bank
        assert second.wait_for_frame(60)
        assert np.array_equal(second.frame.result.image, stored_image)
    finally:
        _close(second)


def test_storing_and_clearing_are_undone_and_redone(G):
    controller = _exact_controller(G)
    try:
        remote = remote_for(controller)
        controller.set("truncation", "psi", 0.5)
        remote.store(4)
        assert remote.bank.get(4).state["truncation"]["psi"] == 0.5
        assert controller.status.undo_label == "remote.presets"
        assert controller.undo()
        assert remote.bank.slots[4] is None and controller.session.truncation.psi == 0.5   # the store, no more
        assert controller.redo() and remote.bank.get(4).name == "preset 4"
        remote.clear(4)
        assert remote.bank.slots[4] is None
        assert controller.undo() and remote.bank.get(4).state["truncation"]["psi"] == 0.5
    finally:
        _close(controller)


def test_live_morph_shows_the_interpolated_request_then_takes_the_preset(G):
    controller = Controller(remember_recent=False)
    controller.session.performance.adaptive = False     # exact frames: compared with render() below
    try:
        controller.worker.set_network(G, key="tiny")
        assert controller.wait_for_frame(60)
        remote = remote_for(controller)
        controller.edit(controller.session.latent.set_seed, 9)
        controller.set("truncation", "psi", 0.8)
        remote.store(1)
        controller.edit(controller.session.latent.set_seed, 2)
        controller.set("truncation", "psi", 0.4)
        assert controller.wait_for_frame(60)
        start, target = controller.request(), None
        now = [100.0]
        remote.morph.clock = lambda: now[0]
        remote.morph.start(1, 2.0, ticking=False)
        target = remote.morph.target_request
        now[0] += 1.0
        remote.morph.step()
        controller.worker.wait_idle(60)
        frame = controller.tick()
        expected = morph_request(start, target, 0.5)
        assert frame is not None and frame.result.request == expected
        assert np.array_equal(frame.result.image, _image(G, expected).image)
        assert controller.session.latent.seed == 2            # the state changes only when the morph ends
        now[0] += 1.5
        remote.morph.step()
        assert not remote.morph.running
        assert controller.session.latent.seed == 9 and controller.session.truncation.psi == pytest.approx(0.8)
        assert controller.wait_for_frame(60)
        assert np.array_equal(controller.frame.result.image, _image(G, target).image)
        controller.undo()                                    # the whole recall is one step
        assert controller.session.latent.seed == 2 and controller.session.truncation.psi == pytest.approx(0.4)
    finally:
        remote_for(controller).close()
        controller.close()


def run_in_fresh_process(module: str, function: str) -> None:
    """Dear PyGui has one context per process, which the window tests' app owns when they run in this one."""
    import subprocess
    import sys
    from pathlib import Path
    done = subprocess.run([sys.executable, "-c", f"import {module} as m; m.{function}()"], capture_output=True,
                          text=True, cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_presets_panel_stores_recalls_and_says_why_not():
    run_in_fresh_process("tests.test_presets", "presets_panel_check")


def presets_panel_check():
    import dearpygui.dearpygui as dpg

    from widgets.layout import Layout
    from widgets.presets_panel import PresetsPanel
    controller = Controller(remember_recent=False)
    dpg.create_context()
    try:
        controller.worker.set_network(tiny_stylegan2("sg2_orig_32"), key="tiny")
        assert controller.wait_for_frame(60)
        with dpg.window():
            panel = PresetsPanel(controller, Layout())
            panel.build()
        controller.session.events.connect(panel.on_change)     # as the app does for every panel
        controller.edit(controller.session.latent.set_seed, 12)
        dpg.set_value("presets.mode", "store")
        assert panel.click(4)
        assert dpg.get_item_label("presets.slot4") == "4 *" and dpg.get_item_label("presets.slot5") == "5"
        dpg.set_value("presets.name", "  storm at sea ")
        assert panel.click(6)
        assert dpg.get_item_label("presets.slot6") == "6: storm at"
        assert controller.session.remote.preset(6).name == "storm at sea"
        dpg.set_value("presets.mode", "recall")
        controller.edit(controller.session.latent.set_seed, 30)
        assert panel.click(4)
        assert controller.session.latent.seed == 12
        assert not panel.click(5)
        assert "preset 5 is empty" in dpg.get_value(panel.error_tag)
        assert controller.session.latent.seed == 12
        dpg.set_value("presets.mode", "clear")
        assert panel.click(6) and dpg.get_item_label("presets.slot6") == "6"
        # What the section holds shows whoever changed it: undo brings the slot back, a session file empties it.
        controller.undo()
        assert dpg.get_item_label("presets.slot6") == "6: storm at"
        controller.session.load_json(Session().to_json(), keep_network=True)
        assert [dpg.get_item_label(f"presets.slot{n}") for n in (4, 6)] == ["4", "6"]
    finally:
        dpg.destroy_context()
        remote_for(controller).close()
        controller.close()
