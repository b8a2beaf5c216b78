"""OSC: real UDP packets on the loopback to a server on an ephemeral port, driving a headless controller with a tiny
network; the generated address table; bad messages refused with one log line and nothing changed."""
import logging
import socket
import time

import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from explorer.controller import Controller
from explorer.export import read_state_file
from explorer.remote.addresses import address_table, markdown_table, resolve
from explorer.remote.live import remote_for
from explorer.remote.live import start_osc_server
from explorer.remote.osc import OscError, OscServer
from explorer.render import RenderCache, WOffset, render
from explorer.controls import PSI_RANGE
from explorer.state import SECTIONS
from tests.fixtures.networks import tiny_stylegan2
from tests.controller_driver import WAIT_S, pump



@pytest.fixture(scope="module")
def G():
    return tiny_stylegan2("sg2_orig_32")


@pytest.fixture(scope="module")
def controller(G):
    controller = Controller(remember_recent=False)
    # Exact frames only: these tests compare pixels with render() of the state's exact request, and a busy machine
    # would otherwise turn on the preview tier (adaptive mode) part of the way through.
    controller.session.performance.adaptive = False
    controller.worker.set_network(G, key="tiny")
    assert controller.wait_for_frame(60)
    yield controller
    remote_for(controller).close()
    controller.close()


@pytest.fixture(scope="module")
def server(controller):
    handle = start_osc_server(controller, 0)
    yield handle
    handle.close()


@pytest.fixture
def client(server):
    return SimpleUDPClient("127.0.0.1", server.port)



def settle(controller):
    # Says why when it does not settle: which request finished last against the one the state asks for.
    assert controller.wait_for_frame(60), (controller.worker.busy, controller.status.render_error,
                                           controller.last_finished, controller.request())


def test_a_setting_arrives_and_is_rendered(controller, client, G):
    client.send_message("/explorer/truncation/psi", 0.7)
    assert pump(controller, lambda: controller.session.truncation.psi == pytest.approx(0.7))
    settle(controller)
    request = controller.frame.result.request
    assert request.truncation_psi == pytest.approx(0.7)
    expected = render(G, request, RenderCache())
    assert np.array_equal(controller.frame.result.image, expected.image)


def test_seed_goes_through_set_seed_and_floats_count_as_whole_numbers(controller, client):
    client.send_message("/explorer/latent/seed", 42)
    assert pump(controller, lambda: controller.session.latent.seed == 42)
    assert (controller.session.latent.x, controller.session.latent.y) == (42.0, 0.0)
    client.send_message("/explorer/latent/seed", 43.0)        # TouchOSC and others send floats only
    assert pump(controller, lambda: controller.session.latent.seed == 43)


def _refused(controller, client, caplog, path, *args) -> str:
    before = controller.session.to_dict()
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        client.send_message(path, list(args) if args else [])
        assert pump(controller, lambda: any(path in r.getMessage() or "OSC" in r.getMessage()
                                            for r in caplog.records))
        controller.tick()
    assert controller.session.to_dict() == before
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0]
    return errors[0]


def test_bad_messages_change_nothing_and_log_one_line(controller, client, caplog):
    line = _refused(controller, client, caplog, "/explorer/truncation/psi", 5.0)
    assert f"between {PSI_RANGE[0]:g} and {PSI_RANGE[1]:g}" in line
    assert "refused" in controller.status.capture_message
    assert "unknown address" in _refused(controller, client, caplog, "/explorer/truncation/nope", 1.0)
    assert "takes 1 argument" in _refused(controller, client, caplog, "/explorer/truncation/psi")
    assert "must be a number" in _refused(controller, client, caplog, "/explorer/truncation/psi", "high")
    assert "true or false" in _refused(controller, client, caplog, "/explorer/latent/animate", 0.5)
    assert "must be one of" in _refused(controller, client, caplog, "/explorer/noise/mode", "loud")
    assert "empty" in _refused(controller, client, caplog, "/explorer/preset/15")


def test_a_packet_that_is_not_osc_is_logged(controller, server, caplog):
    with caplog.at_level(logging.ERROR), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"/explorer\x00\x00\x00,f\x00", ("127.0.0.1", server.port))   # type tag without its value
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and not caplog.records:
            time.sleep(0.01)
    assert any("OSC packet" in r.getMessage() for r in caplog.records)


def test_lists_records_and_methods(controller, client):
    client.send_message("/explorer/mixing/sources", [5, 7])
    assert pump(controller, lambda: controller.session.mixing.sources == (5, 7))
    client.send_message("/explorer/mixing/apply_preset", ["middle", 1])
    assert pump(controller, lambda: 1 in controller.session.mixing.layer_sources)
    start, stop = controller.session.facts.preset_range("middle")
    assert controller.session.mixing.layer_sources == (None,) * start + (1,) * (stop - start)
    client.send_message("/explorer/styles/offsets", '[{"w_index": 1, "direction": "random", "seed": 3, '
                                                   '"strength": 2.5}]')
    assert pump(controller, lambda: controller.session.styles.offsets == (WOffset(1, "random", 3, 2.5),))
    client.send_message("/explorer/mixing/layer_sources", '[]')
    client.send_message("/explorer/styles/reset", [])
    assert pump(controller, lambda: not (controller.session.styles.offsets or controller.session.mixing.layer_sources))


def test_bending_by_osc_with_a_list_argument(controller, client):
    layer = controller.session.facts.layer_names[2]
    client.send_message("/explorer/bending/add", [layer, "multiply", "[0, 2]", 3.0])
    assert pump(controller, lambda: len(controller.session.bending.operations) == 1)
    operation = controller.session.bending.operations[0]
    assert (operation.layer, operation.operation, operation.channels) == (layer, "multiply", (0, 2))
    assert operation.amount == 3.0
    client.send_message("/explorer/bending/set_amount", [0, 1.5])
    assert pump(controller, lambda: controller.session.bending.operations[0].amount == 1.5)
    settle(controller)
    assert controller.frame.result.request.layer_operations == controller.session.bending.operations
    client.send_message("/explorer/bending/clear", [])
    assert pump(controller, lambda: not controller.session.bending.operations)


def test_commands_screenshot_undo_redo(controller, client, tmp_path):
    client.send_message("/explorer/capture/folder", str(tmp_path))
    client.send_message("/explorer/truncation/psi", 0.55)
    assert pump(controller, lambda: controller.session.truncation.psi == pytest.approx(0.55))
    settle(controller)
    client.send_message("/explorer/capture/screenshot", [])
    assert pump(controller, lambda: list(tmp_path.glob("shot-*.png")))
    shot = next(tmp_path.glob("shot-*.png"))
    assert '"psi": 0.55' in read_state_file(shot)
    time.sleep(0.8)       # past the history's merge window: the next psi is its own step
    client.send_message("/explorer/truncation/psi", 0.25)
    assert pump(controller, lambda: controller.session.truncation.psi == pytest.approx(0.25))
    client.send_message("/explorer/history/undo", [])
    assert pump(controller, lambda: controller.session.truncation.psi == pytest.approx(0.55))
    client.send_message("/explorer/history/redo", [])
    assert pump(controller, lambda: controller.session.truncation.psi == pytest.approx(0.25))


def test_presets_store_and_recall(controller, client):
    client.send_message("/explorer/truncation/psi", 0.4)
    client.send_message("/explorer/latent/seed", 7)
    assert pump(controller, lambda: controller.session.latent.seed == 7)
    client.send_message("/explorer/preset/store", 3)
    assert pump(controller, lambda: remote_for(controller).bank.slots[3] is not None)
    client.send_message("/explorer/truncation/psi", 1.2)
    client.send_message("/explorer/latent/seed", 99)
    assert pump(controller, lambda: controller.session.latent.seed == 99)
    client.send_message("/explorer/preset/3", [])
    assert pump(controller, lambda: controller.session.latent.seed == 7)
    assert controller.session.truncation.psi == pytest.approx(0.4)
    # Named, cleared and the clear undone, all by OSC; the slots are the session's remote section.
    client.send_message("/explorer/preset/store", [3, "calm"])
    assert pump(controller, lambda: controller.session.remote.preset(3).name == "calm")
    client.send_message("/explorer/remote/clear_preset", 3)
    assert pump(controller, lambda: controller.session.remote.preset(3) is None)
    client.send_message("/explorer/history/undo", [])
    assert pump(controller, lambda: remote_for(controller).bank.slots[3] is not None)
    assert remote_for(controller).bank.get(3).state["latent"]["x"] == 7.0


def test_server_is_on_the_loopback_and_a_taken_port_is_one_line(controller, server):
    assert server.host == "127.0.0.1"
    with pytest.raises(OscError) as error:
        OscServer(remote_for(controller), server.port)
    assert str(server.port) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(OscError):
        OscServer(remote_for(controller), 70000)


def test_the_table_has_every_setting_and_command():
    paths = {a.path for a in address_table()}
    for section in SECTIONS:
        for field in section.field_names():
            assert f"/explorer/{section.name}/{field}" in paths
    for path in ("/explorer/latent/seed", "/explorer/capture/screenshot", "/explorer/history/undo",
                 "/explorer/mixing/apply_preset", "/explorer/preset/N"):
        assert path in paths
    assert resolve("/explorer/preset/12")[1] == 12
    assert "/explorer/latent/seed_weights" not in paths       # a query, not a control
    # Arguments no message can carry (a MidiBinding record, a whole session) get no address; their ways in are
    # MIDI learn and /explorer/preset/store.
    assert "/explorer/remote/bind" not in paths and "/explorer/remote/store_preset" not in paths
    assert "/explorer/remote/preset" not in paths             # a query
    assert {"/explorer/remote/clear_preset", "/explorer/remote/unbind", "/explorer/preset/store"} <= paths
    assert resolve("/explorer/preset/store")[0].arguments_text() == "n:int [name:str|none]"
    table = markdown_table()
    assert table.count("\n") == len(address_table()) + 2
    assert "| `/explorer/truncation/psi` | psi:float |" in table


def test_a_preset_morph_by_osc_shows_steps_then_lands(controller, client):
    client.send_message("/explorer/latent/seed", 21)
    assert pump(controller, lambda: controller.session.latent.seed == 21)
    client.send_message("/explorer/preset/store", 6)
    client.send_message("/explorer/latent/seed", 22)
    assert pump(controller, lambda: controller.session.latent.seed == 22 and remote_for(controller).bank.slots[6])
    settle(controller)
    shown = controller.frames_shown
    client.send_message("/explorer/preset/6", 1.0)
    assert pump(controller, lambda: controller.session.latent.seed == 21)
    # The state changed only at the end; the frames before that were the morph's in-between requests.
    assert controller.frames_shown > shown
    settle(controller)


def test_the_osc_addresses_command_prints_the_table(capsys):
    from explorer.commands import remote
    import argparse
    parser = argparse.ArgumentParser()
    remote.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["osc-addresses"])
    assert args.handler(args) == 0
    assert capsys.readouterr().out == markdown_table()
