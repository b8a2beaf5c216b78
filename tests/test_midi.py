"""MIDI: mido messages fed to the mapper of a headless controller (no MIDI system is needed); MIDI learn by touching a
control; commands on pads; bindings kept in the session (saved, reopened, undone); the one-line message when no input
can be opened."""
import time

import mido
import pytest

from explorer.controller import Controller
from explorer.remote.addresses import AddressError
from explorer.remote.live import remote_for
from explorer.instrument import MidiBinding
from explorer.remote.midi import MidiUnavailable, describe, message_key_and_level
from explorer.controls import PSI_RANGE, ROTATE_RANGE
from tests.fixtures.networks import tiny_stylegan2
from tests.test_presets import run_in_fresh_process
from tests.controller_driver import pump



@pytest.fixture(scope="module")
def controller():
    controller = Controller(remember_recent=False)
    controller.worker.set_network(tiny_stylegan2("sg2_orig_32"), key="tiny")
    assert controller.wait_for_frame(60)
    yield controller
    remote_for(controller).close()
    controller.close()


@pytest.fixture
def mapper(controller):
    mapper = remote_for(controller).mapper()
    controller.set("remote", "midi_bindings", ())
    mapper.cancel_learning()
    return mapper



def cc(number, value, channel=0):
    return mido.Message("control_change", channel=channel, control=number, value=value)


def test_a_knob_sweeps_psi_over_its_range(controller, mapper):
    mapper.bind("control_change", 0, 7, "/explorer/truncation/psi")
    for value, psi in ((0, PSI_RANGE[0]), (127, PSI_RANGE[1]), (64, PSI_RANGE[0] + 3 * 64 / 127)):
        assert mapper.feed(cc(7, value))
        assert pump(controller, lambda: controller.session.truncation.psi == pytest.approx(psi))
    assert not mapper.feed(cc(7, 10, channel=3))           # another channel is another knob: unbound
    assert not mapper.feed(mido.Message("clock"))
    assert controller.wait_for_frame(60)
    assert controller.frame.result.request.truncation_psi == pytest.approx(PSI_RANGE[0] + 3 * 64 / 127)


def test_learn_touch_a_control_then_move_a_knob(controller, mapper):
    controller.session.latent.animate = True
    mapper.start_learning()
    controller.advance(0.5)                               # animation moves the latent: not a control touched
    assert mapper.learn_address is None
    mapper.cancel_learning()
    controller.session.latent.animate = False
    mapper.start_learning()
    controller.set("mixing", "sources", (4,))            # a list: no knob for it, learning keeps waiting
    assert mapper.learn_address is None
    controller.set("noise", "strength", 0.5)             # the control touched in the window
    assert mapper.learn_address == "/explorer/noise/strength"
    assert mapper.feed(cc(21, 127))
    assert not mapper.learning
    assert pump(controller, lambda: controller.session.noise.strength == pytest.approx(2.0))
    assert controller.session.remote.midi_bindings == (
        MidiBinding("control_change", 0, 21, "/explorer/noise/strength", 0.0, 2.0),)
    assert [describe(b) for b in mapper.bindings.values()] == ["ch 1 CC 21 -> /explorer/noise/strength [0, 2]"]
    mapper.feed(cc(21, 0))
    assert pump(controller, lambda: controller.session.noise.strength == 0.0)
    controller.set("mixing", "sources", ())


def test_pads_run_commands_once_per_strike_and_switch_settings(controller, mapper):
    mapper.bind("note", 9, 36, "/explorer/history/undo")
    mapper.bind("note", 9, 38, "/explorer/latent/animate")
    time.sleep(0.8)                                       # past the history's merge window
    controller.set("truncation", "psi", 0.3)
    time.sleep(0.8)
    controller.set("truncation", "psi", 0.6)
    mapper.feed(mido.Message("note_on", channel=9, note=36, velocity=100))
    mapper.feed(mido.Message("note_on", channel=9, note=36, velocity=90))   # still held: not a second strike
    assert pump(controller, lambda: controller.session.truncation.psi == pytest.approx(0.3))
    controller.tick()
    assert controller.session.truncation.psi == pytest.approx(0.3)
    mapper.feed(mido.Message("note_off", channel=9, note=36))
    mapper.feed(mido.Message("note_on", channel=9, note=36, velocity=100))
    assert pump(controller, lambda: controller.session.truncation.psi != pytest.approx(0.3))
    mapper.feed(mido.Message("note_on", channel=9, note=38, velocity=127))
    assert pump(controller, lambda: controller.session.latent.animate is True)
    mapper.feed(mido.Message("note_off", channel=9, note=38))
    assert pump(controller, lambda: controller.session.latent.animate is False)


def test_whole_numbers_pitch_wheel_and_presets(controller, mapper):
    mapper.bind("control_change", 0, 1, "/explorer/latent/seed")
    mapper.feed(cc(1, 42))
    assert pump(controller, lambda: controller.session.latent.seed == 42)
    mapper.bind("pitchwheel", 2, 0, "/explorer/transform/angle")
    mapper.feed(mido.Message("pitchwheel", channel=2, pitch=8191))
    assert pump(controller, lambda: controller.session.transform.angle == pytest.approx(ROTATE_RANGE[1]))
    assert message_key_and_level(mido.Message("pitchwheel", pitch=-8192))[1] == 0.0
    remote_for(controller).store(5)
    mapper.bind("note", 0, 60, "/explorer/preset/5")
    mapper.feed(cc(1, 7))
    assert pump(controller, lambda: controller.session.latent.seed == 7)
    mapper.feed(mido.Message("note_on", note=60, velocity=64))
    assert pump(controller, lambda: controller.session.latent.seed == 42)


def test_a_knob_turns_one_bending_amount_with_a_fixed_index(controller, mapper):
    layer = controller.session.facts.layer_names[2]
    controller.edit(controller.session.bending.add, layer, "rotate", (0, 1), 10.0)
    mapper.bind("control_change", 0, 40, "/explorer/bending/set_amount", -90, 90, fixed=(0,))
    assert "set_amount 0 [-90, 90]" in describe(mapper.bindings[("control_change", 0, 40)])
    mapper.feed(cc(40, 127))
    assert pump(controller, lambda: controller.session.bending.operations[0].amount == pytest.approx(90.0))
    assert controller.wait_for_frame(60)
    assert controller.frame.result.request.layer_operations[0].amount == pytest.approx(90.0)
    with pytest.raises(AddressError, match="3 are fixed"):
        mapper.bind("control_change", 0, 41, "/explorer/bending/set_amount", fixed=(0, 1, 2))
    # Every argument fixed: a pad that sets operation 0's amount to 45 when struck.
    mapper.bind("note", 0, 50, "/explorer/bending/set_amount", fixed=(0, 45.0))
    mapper.feed(mido.Message("note_on", note=50, velocity=90))
    assert pump(controller, lambda: controller.session.bending.operations[0].amount == pytest.approx(45.0))
    controller.edit(controller.session.bending.clear)


def test_a_learned_binding_is_one_undo_step_and_survives_save_and_reopen(controller, mapper, tmp_path):
    controller.set("capture", "folder", str(tmp_path))
    time.sleep(0.8)                                       # past the history's merge window
    mapper.start_learning("/explorer/truncation/psi")
    assert mapper.feed(cc(14, 127, channel=2))
    assert pump(controller, lambda: mapper.bindings)
    learned = MidiBinding("control_change", 2, 14, "/explorer/truncation/psi", PSI_RANGE[0], PSI_RANGE[1])
    assert controller.session.remote.midi_bindings == (learned,)
    assert pump(controller, lambda: controller.session.truncation.psi == pytest.approx(PSI_RANGE[1]))
    screenshot, saved = controller.screenshot(), controller.save_session()
    assert screenshot is not None and saved is not None
    # Undo: first the value the knob moved, then the binding learned (one step of its own).
    assert controller.undo() and controller.session.remote.midi_bindings == (learned,)
    assert controller.undo() and controller.session.remote.midi_bindings == ()
    assert not mapper.feed(cc(14, 0, channel=2))         # unbound now
    assert controller.redo() and mapper.bindings == {("control_change", 2, 14): learned}
    for path in (saved, screenshot):
        fresh = Controller(remember_recent=False)
        try:
            fresh.worker.set_network(tiny_stylegan2("sg2_orig_32"), key="tiny")
            assert fresh.wait_for_frame(60)
            assert fresh.open_session(str(path))
            assert fresh.session.remote.midi_bindings == (learned,)
            fresh_mapper = remote_for(fresh).mapper()
            assert fresh_mapper.feed(cc(14, 0, channel=2))  # the reopened binding drives the fresh window's psi
            assert pump(fresh, lambda: fresh.session.truncation.psi == pytest.approx(PSI_RANGE[0]))
        finally:
            remote_for(fresh).close()
            fresh.close()


def test_unbinding_and_refusals(controller, mapper):
    mapper.bind("control_change", 0, 7, "/explorer/truncation/psi", 0.0, 1.0)
    mapper.bind("note", 0, 60, "/explorer/preset/1")
    mapper.bind("control_change", 0, 7, "/explorer/noise/strength")    # one knob, one control: replaced
    assert [describe(b) for b in controller.session.remote.midi_bindings] == [
        "ch 1 note 60 -> /explorer/preset/1 [0, 1]", "ch 1 CC 7 -> /explorer/noise/strength [0, 2]"]
    mapper.unbind(("note", 0, 60))
    assert list(mapper.bindings) == [("control_change", 0, 7)]
    assert controller.undo() and list(mapper.bindings) == [("note", 0, 60), ("control_change", 0, 7)]
    held = controller.session.remote.midi_bindings
    for address, words in (("/explorer/mixing/sources", "one value"), ("/explorer/noise/mode", "takes text"),
                           ("/explorer/styles/set_style_delta", "one value"), ("/explorer/nope", "unknown address"),
                           ("/explorer/remote/presets", "one value")):
        with pytest.raises(AddressError, match=words):
            mapper.bind("control_change", 0, 9, address)
    with pytest.raises(AddressError, match="channel"):
        mapper.bind("control_change", 16, 9, "/explorer/truncation/psi")
    with pytest.raises(AddressError, match="number"):
        mapper.bind("control_change", 0, 128, "/explorer/truncation/psi")
    assert controller.session.remote.midi_bindings == held                   # nothing changed
    # A binding in a session file whose address this explorer does not have: refused when its knob moves.
    controller.set("remote", "midi_bindings", held + (MidiBinding("control_change", 0, 99, "/explorer/gone/knob"),))
    assert not mapper.feed(cc(99, 64))
    assert "/explorer/gone/knob" in remote_for(controller).last_error


def test_no_midi_input_is_one_clear_line(mapper):
    with pytest.raises(MidiUnavailable) as error:
        mapper.open_input("no such MIDI input")
    text = str(error.value)
    assert "\n" not in text and any(words in text for words in ("no MIDI system", "no MIDI input"))
    assert mapper.input is None


def test_remote_panel_starts_osc_learns_and_lists_bindings():
    run_in_fresh_process("tests.test_midi", "remote_panel_check")


def remote_panel_check():
    import dearpygui.dearpygui as dpg

    from widgets.layout import Layout
    from widgets.remote_panel import RemotePanel
    controller = Controller(remember_recent=False)
    controller.worker.set_network(tiny_stylegan2("sg2_orig_32"), key="tiny")
    assert controller.wait_for_frame(60)
    mapper = remote_for(controller).mapper()
    dpg.create_context()
    try:
        with dpg.window():
            panel = RemotePanel(controller, Layout())
            panel.build()
        dpg.set_value("remote.port", 0)
        assert panel.toggle_osc()
        osc = remote_for(controller).osc
        assert osc is not None and f"127.0.0.1:{osc.port}" in dpg.get_value(panel.osc_tag)
        assert dpg.get_item_label("remote.osc") == "Stop"
        controller.session.events.connect(panel.on_change)     # as the app does for every panel
        panel.toggle_learning()
        assert dpg.get_item_label("remote.learn") == "Cancel learn"
        controller.set("truncation", "psi", 0.9)
        assert "/explorer/truncation/psi" in dpg.get_value(panel.midi_tag)
        assert mapper.feed(cc(30, 127))
        controller.tick()                                   # the binding learned is stored on the controller's thread
        rows = dpg.get_item_children("remote.bindings", 1)
        assert len(rows) == 1 and dpg.get_item_label("remote.learn") == "Learn"
        row_text = dpg.get_item_children(rows[0], 1)[1]
        assert dpg.get_value(row_text) == "ch 1 CC 30 -> /explorer/truncation/psi [-1, 2]"
        assert panel.unbind(("control_change", 0, 30))
        assert dpg.get_item_children("remote.bindings", 1) == [] and controller.session.remote.midi_bindings == ()
        controller.undo()                                   # the row comes back with the binding
        assert len(dpg.get_item_children("remote.bindings", 1)) == 1
        assert dpg.get_value(panel.midi_tag) == "MIDI: no input open"
        panel.open_midi()
        assert "MIDI" in dpg.get_value(panel.midi_tag)
        started = panel.toggle_audio()                      # no sound input here: one line, nothing running
        assert started or "sound" in dpg.get_value(panel.audio_tag)
        if started:
            assert panel.toggle_audio() and dpg.get_value(panel.audio_tag) == "live sound off"
        assert not remote_for(controller).audio().running
        assert panel.toggle_osc() and remote_for(controller).osc is None
        assert dpg.get_value(panel.osc_tag) == "OSC off"
    finally:
        dpg.destroy_context()
        remote_for(controller).close()
        controller.close()
