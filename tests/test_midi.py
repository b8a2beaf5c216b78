"""MIDI: mido messages fed to the mapper of a headless controller (no MIDI system is needed); MIDI learn by touching a
control; commands on pads; saved mappings; the one-line message when no input can be opened."""
import time

import mido
import pytest

from explorer.controller import Controller
from explorer.remote.addresses import AddressError
from explorer.remote.live import remote_for
from explorer.remote.midi import MidiUnavailable, message_key_and_level
from explorer.state import PSI_RANGE, ROTATE_RANGE
from tests.fixtures.networks import tiny_stylegan2
from tests.test_presets import run_in_fresh_process

WAIT_S = 30.0                 # generous: the machine running the tests may be busy


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
    mapper.bindings.clear()
    mapper.cancel_learning()
    return mapper


def pump(controller, until, timeout=WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        controller.wakeup.wait(0.02)
        controller.tick()
        if until():
            return True
    return False


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
    assert [b.describe() for b in mapper.bindings.values()] == ["ch 1 CC 21 -> /explorer/noise/strength [0, 2]"]
    assert pump(controller, lambda: controller.session.noise.strength == pytest.approx(2.0))
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
    assert "set_amount 0 [-90, 90]" in mapper.bindings[("control_change", 0, 40)].describe()
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


def test_mappings_save_and_load_and_refusals(mapper):
    mapper.bind("control_change", 0, 7, "/explorer/truncation/psi", 0.0, 1.0)
    saved = mapper.to_dict()
    mapper.bindings.clear()
    mapper.load_dict(saved)
    assert mapper.to_dict() == saved
    assert saved["bindings"][0] == {"kind": "control_change", "channel": 0, "number": 7,
                                    "address": "/explorer/truncation/psi", "low": 0.0, "high": 1.0, "fixed": ()}
    bad = {"bindings": saved["bindings"] + [dict(saved["bindings"][0], address="/explorer/nope")]}
    with pytest.raises(AddressError, match="MIDI binding 1: unknown address"):
        mapper.load_dict(bad)
    assert mapper.to_dict() == saved                     # nothing changed
    for address, words in (("/explorer/mixing/sources", "one value"), ("/explorer/noise/mode", "takes text"),
                           ("/explorer/styles/set_style_delta", "one value")):
        with pytest.raises(AddressError, match=words):
            mapper.bind("control_change", 0, 9, address)
    with pytest.raises(AddressError, match="channel"):
        mapper.bind("control_change", 16, 9, "/explorer/truncation/psi")


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
        panel.toggle_learning()
        assert dpg.get_item_label("remote.learn") == "Cancel learn"
        controller.set("truncation", "psi", 0.9)
        panel.on_change(None)
        assert "/explorer/truncation/psi" in dpg.get_value(panel.midi_tag)
        assert mapper.feed(cc(30, 127))
        panel.refresh()
        rows = dpg.get_item_children("remote.bindings", 1)
        assert len(rows) == 1 and dpg.get_item_label("remote.learn") == "Learn"
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
