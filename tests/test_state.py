"""The session state: validation, change events, network facts, JSON, and the render request it builds."""
import json

import pytest
import torch

from explorer.render import LayerViewRequest, RenderRequest, StyleDelta, WCopy, WOffset
from explorer.state import (STATE_VERSION, NetworkFacts, Session, StateChange, StateError)
from tests.fixtures.networks import tiny_stylegan2

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def facts():
    return NetworkFacts.from_generator(tiny_stylegan2("sg2_skip_64"))   # 64 px: num_ws 10, c_dim 0


@pytest.fixture(scope="module")
def cond_facts():
    return NetworkFacts.from_generator(tiny_stylegan2("sg2_resnet_cond_64"))   # c_dim 5


def recorded(session):
    changes = []
    session.events.connect(changes.append)
    return changes


def test_facts_describe_the_network(facts):
    assert (facts.num_ws, facts.c_dim, facts.z_dim, facts.w_dim, facts.img_resolution) == (10, 0, 32, 32, 64)
    assert facts.layer_names[0] == "b4.conv1" and facts.layer_names[-1] == "b64.torgb"
    assert "b64.conv1" in facts.noise_layers and "b64.torgb" not in facts.noise_layers
    # StyleGAN's coarse / middle / fine split: 4-8 px, 16-32 px, 64 px and up.
    assert [facts.preset_range(p) for p in ("coarse", "middle", "fine")] == [(0, 4), (4, 8), (8, 10)]


def test_a_change_emits_exactly_what_changed_and_nothing_when_equal():
    session = Session()
    changes = recorded(session)
    session.truncation.psi = 0.5
    session.truncation.psi = 0.5
    session.truncation.psi = 0.5          # an int equal to the float would also be "no change"
    session.latent.space = "z"
    assert changes == [StateChange("truncation", "psi", 1.0, 0.5), StateChange("latent", "space", "w", "z")]
    session.truncation.psi = 1            # ints are accepted and stored as floats
    assert session.truncation.psi == 1.0 and type(session.truncation.psi) is float
    assert changes[-1] == StateChange("truncation", "psi", 0.5, 1.0)


@pytest.mark.parametrize("section, name, value, message", [
    ("truncation", "psi", 2.5, r"truncation.psi must be between -1 and 2, not 2.5"),
    ("truncation", "psi", float("nan"), r"truncation.psi must be a finite number"),
    ("truncation", "psi", "0.5", r"truncation.psi must be a number"),
    ("truncation", "cutoff", -1, r"truncation.cutoff must be at least 0"),
    ("latent", "space", "q", r"latent.space must be one of 'z', 'w'"),
    ("latent", "animate", 1, r"latent.animate must be true or false"),
    ("noise", "mode", "loud", r"noise.mode must be one of 'const', 'random', 'none'"),
    ("noise", "seed", 2 ** 32, r"noise.seed must be at most 4294967295"),
    ("noise", "strength", -0.1, r"noise.strength must be between 0 and 10"),
    ("layers", "channel_count", 0, r"layers.channel_count must be at least 1"),
    ("viewer", "zoom", 0, r"viewer.zoom must be at least 1"),
    ("performance", "dtype", "float16", r"performance.dtype: float16 runs on CUDA only"),
    ("performance", "device", "gpu", r"performance.device must be 'cpu', 'cuda', 'cuda:N' or 'mps'"),
])
def test_invalid_values_raise_naming_field_and_range(section, name, value, message):
    session = Session()
    changes = recorded(session)
    before = getattr(session.section(section), name)
    with pytest.raises(ValueError, match=message):
        setattr(session.section(section), name, value)
    assert getattr(session.section(section), name) == before and changes == []


def test_validation_against_network_facts(facts, cond_facts):
    session = Session(facts=facts)
    session.truncation.cutoff = 10
    with pytest.raises(StateError, match=r"truncation.cutoff must be at most 10"):
        session.truncation.cutoff = 11
    with pytest.raises(StateError, match=r"unconditional"):
        session.latent.class_index = 0
    with pytest.raises(StateError, match=r"no layer named 'b128.conv1'"):
        session.layers.layer = "b128.conv1"
    with pytest.raises(StateError, match=r"'b64.torgb' adds no noise"):
        session.noise.set_layer_strength("b64.torgb", 0.5)
    with pytest.raises(StateError, match=r"channel must be at most 31"):   # b16.conv1 styles 32 channels
        session.styles.set_style_delta("b16.conv1", 32, 1.0)
    with pytest.raises(StateError, match=r"w_index must be at most 9"):
        session.styles.set_offset(10, "random", 0, 1.0)
    conditional = Session(facts=cond_facts)
    conditional.latent.class_index = 4
    with pytest.raises(StateError, match=r"class_index must be at most 4"):
        conditional.latent.class_index = 5
    # Without facts, only what needs no network is checked.
    free = Session()
    free.truncation.cutoff = 40
    free.layers.layer = "b128.conv1"


def test_set_facts_resets_what_the_new_network_cannot_take(facts):
    session = Session()
    session.truncation.cutoff = 14
    session.layers.layer = "b128.conv1"
    session.layers.first_channel = 3
    session.styles.set_offset(12, "random", 1, 2.0)
    session.styles.set_offset(2, "random", 1, 2.0)
    session.noise.set_layer_strength("b128.conv0", 0.5)
    changes = recorded(session)
    notes = session.set_facts(facts)
    assert session.truncation.cutoff is None and session.layers.layer is None
    assert session.layers.first_channel == 3                      # still valid: kept, not reported
    assert [o.w_index for o in session.styles.offsets] == [2]
    assert session.noise.layer_strength == ()
    assert {(c.section, c.field) for c in changes} == {("truncation", "cutoff"), ("layers", "layer"),
                                                       ("styles", "offsets"), ("noise", "layer_strength")}
    assert len(notes) == 4 and any("truncation.cutoff must be at most 10" in n for n in notes)


def test_a_failing_listener_does_not_stop_the_others():
    session = Session()
    heard = []

    def broken(change):
        raise RuntimeError("listener bug")

    session.events.connect(broken)
    session.events.connect(heard.append)
    session.noise.mode = "none"
    assert heard == [StateChange("noise", "mode", "const", "none")]
    session.events.disconnect(heard.append)
    session.noise.mode = "const"
    assert len(heard) == 1


def test_unknown_fields_and_replacing_sections_are_refused():
    session = Session()
    with pytest.raises(AttributeError, match=r"truncation has no setting 'psy'"):
        session.truncation.psy = 0.5
    with pytest.raises(AttributeError, match=r"change the fields of session.truncation"):
        session.truncation = None


def test_latent_position_seed_drag_snap_and_animation():
    session = Session()
    latent = session.latent
    latent.set_seed(1234)
    assert (latent.x, latent.y, latent.seed) == (1234.0, 0.0, 1234)
    latent.drag(0.25, 1.5)
    assert latent.seed_weights() == ((1334, 0.375), (1335, 0.125), (1434, 0.375), (1435, 0.125))
    latent.snap()
    assert (latent.x, latent.y, latent.seed) == (1234.0, 2.0, 1434)
    latent.speed = 2.0
    session.advance(0.5)
    assert latent.x == 1234.0                  # animation off: nothing moves
    latent.animate = True
    session.advance(0.5)
    assert latent.x == 1235.0
    with pytest.raises(StateError, match=r"latent.seed must be at most"):
        latent.set_seed(2 ** 32)


def test_mixing_sources_presets_ranges_and_removal(facts):
    session = Session(facts=facts)
    mixing = session.mixing
    a = mixing.add_source(11)
    b = mixing.add_source(22)
    mixing.apply_preset("fine", a)
    assert mixing.layer_sources == (None,) * 8 + (0, 0)
    mixing.set_range(b, 0, 4)
    assert mixing.layer_sources == (1, 1, 1, 1, None, None, None, None, 0, 0)
    assert mixing.range_of(b) == (0, 4) and mixing.range_of(a) == (8, 10)
    mixing.set_layer_source(2, None)
    assert mixing.range_of(b) is None          # no longer one contiguous run
    request = session.render_request("net")
    assert request.layer_seeds == (22, 22, None, 22, None, None, None, None, 11, 11)
    changes = recorded(session)
    mixing.remove_source(a)                    # its layers go back to the main latent; b becomes source 0
    assert mixing.sources == (22,) and mixing.layer_sources == (0, 0, None, 0)
    assert [c.field for c in changes] == ["layer_sources", "sources"]
    mixing.sources = ()                        # dropping every source frees the layers that used them
    assert mixing.layer_sources == ()
    with pytest.raises(StateError, match=r"no mixing sources"):
        mixing.set_layer_source(0, 0)


def test_styles_edits_are_kept_sorted_and_unique(facts):
    session = Session(facts=facts)
    styles = session.styles
    styles.set_offset(5, "to_seed", 3, 0.5)
    styles.set_offset(1, "random", 7, -2.0)
    styles.set_offset(5, "random", 4, 1.0)     # replaces the first offset at w index 5
    assert styles.offsets == (WOffset(1, "random", 7, -2.0), WOffset(5, "random", 4, 1.0))
    styles.copy_layer(3, seed=9, from_w_index=7)
    styles.set_style_delta("b16.conv0", 2, 1.5)
    styles.set_style_delta("b8.conv1", 0, -1.0)
    assert styles.style_deltas == (StyleDelta("b8.conv1", 0, -1.0), StyleDelta("b16.conv0", 2, 1.5))
    styles.set_style_delta("b8.conv1", 0, 0.0)     # 0 removes the entry
    assert styles.style_deltas == (StyleDelta("b16.conv0", 2, 1.5),)
    styles.reset_layer(3)                          # w index 3 styles b8.torgb and b16.conv0
    assert styles.copies == () and styles.style_deltas == () and len(styles.offsets) == 2
    with pytest.raises(StateError, match=r"two offsets for w index 1"):
        styles.offsets = (WOffset(1), WOffset(1))
    styles.reset()
    assert styles.offsets == ()


def test_render_request_holds_every_pixel_setting_and_no_view_setting(facts):
    session = Session(facts=facts)
    session.latent.x, session.latent.y = 3.0, 1.0
    session.truncation.psi, session.truncation.cutoff = 0.7, 6
    session.noise.mode, session.noise.seed, session.noise.strength = "random", 5, 0.5
    session.noise.set_layer_strength("b64.conv1", 2.0)
    session.styles.copy_layer(2, 8)
    session.layers.layer, session.layers.mode, session.layers.scale_db = "b32.conv1", "rgb", 12.0
    request = session.render_request("net#1")
    assert request == RenderRequest(
        network_key="net#1", seed_weights=((103, 1.0),), latent_space="w", class_index=None,
        truncation_psi=0.7, truncation_cutoff=6, layer_seeds=(), w_copies=(WCopy(2, 8, 2),), w_offsets=(),
        style_deltas=(), noise_mode="random", noise_seed=5, noise_strength=0.5,
        layer_noise_strength=(("b64.conv1", 2.0),),
        view=LayerViewRequest(layer="b32.conv1", mode="rgb", scale_db=12.0), device="cpu", dtype="float32")
    hash(request)
    session.viewer.zoom, session.viewer.fit, session.viewer.fullscreen = 4, False, True
    session.viewer.pan_x = 10.0
    session.performance.fps_limit = 30
    assert session.render_request("net#1") == request


def test_json_round_trip_keeps_every_value(facts):
    session = Session(facts=facts)
    session.network.path = "/models/ffhq.pkl"
    session.latent.x, session.latent.y, session.latent.space = 12.25, -3.5, "z"
    session.truncation.psi, session.truncation.cutoff = -0.5, 4
    k = session.mixing.add_source(77)
    session.mixing.apply_preset("middle", k)
    session.styles.set_offset(0, "to_seed", 9, 0.25)
    session.styles.copy_layer(9, 3, 1)
    session.styles.set_style_delta("b32.conv1", 4, -3.0)
    session.noise.set_layer_strength("b16.conv1", 0.0)
    session.layers.layer, session.layers.fft = "b64.conv0", True
    session.viewer.zoom = 3
    text = session.to_json()
    data = json.loads(text)
    assert data["version"] == STATE_VERSION and data["styles"]["copies"] == [
        {"w_index": 9, "seed": 3, "from_w_index": 1}]
    loaded = Session.from_json(text, facts=facts)
    assert loaded == session and loaded.to_json() == text
    assert loaded.render_request("k") == session.render_request("k")
    # Key order in the file does not matter; missing settings keep their defaults.
    data["performance"] = {"fps_limit": 24, "device": "cpu"}
    data["mixing"] = dict(reversed(list(data["mixing"].items())))
    del data["latent"]["speed"]
    again = Session.from_json(json.dumps(data))
    assert again.mixing == session.mixing and again.performance.fps_limit == 24 and again.latent.speed == 0.25


@pytest.mark.parametrize("text, message", [
    ("{not json", r"not valid JSON"),
    ("[1, 2]", r"one JSON object"),
    ("[" * 100_000 + "]" * 100_000, r"nested too deeply"),
    ('{"latent": {}}', r"no 'version' field"),
    ('{"version": 99}', r"newer explorer \(version 99"),
    ('{"version": 1, "camera": {}}', r"unknown state section 'camera'"),
    ('{"version": 1, "latent": {"seed": 4}}', r"unknown setting latent.seed"),
    ('{"version": 1, "truncation": {"psi": 3}}', r"truncation.psi must be between -1 and 2, not 3"),
    ('{"version": 1, "styles": {"offsets": [{"w_index": 1, "strenght": 2}]}}', r"unknown field 'strenght'"),
    ('{"version": 1, "styles": {"copies": [{"w_index": 1}]}}', r"missing seed, from_w_index"),
    ('{"version": 1, "mixing": {"layer_sources": [0]}}', r"no mixing sources"),
    ('{"version": 1, "layers": {"layer": "b512.conv1"}}', r"no layer named 'b512.conv1'"),
])
def test_bad_state_files_give_one_clear_error(facts, text, message):
    with pytest.raises(StateError, match=message):
        Session.from_json(text, facts=facts)


def test_load_json_into_a_live_session_is_all_or_nothing(facts):
    session = Session(facts=facts)
    source = Session(facts=facts)
    source.truncation.psi = 0.3
    source.noise.mode = "none"
    changes = recorded(session)
    with pytest.raises(StateError):
        session.load_json('{"version": 1, "truncation": {"psi": 0.3}, "noise": {"mode": "loud"}}')
    assert changes == [] and session.truncation.psi == 1.0
    session.load_json(source.to_json())
    assert session == source
    assert changes == [StateChange("truncation", "psi", 1.0, 0.3), StateChange("noise", "mode", "const", "none")]


def test_a_stylegan_2019_network_starts_with_its_original_truncation_cutoff(tmp_path):
    from explorer.formats import load_network
    from explorer.state import NetworkFacts, Session
    from tests.fixtures.tf_pickle_writer import write_stylegan1_tf_pickle
    path = tmp_path / "sg1.pkl"
    write_stylegan1_tf_pickle(path, resolution=32)
    facts = NetworkFacts.from_generator(load_network(path).generator)
    session = Session()
    notes = session.set_facts(facts)
    assert facts.default_truncation_cutoff == 8 and session.truncation.cutoff == 8
    assert any("cutoff" in note for note in notes)
    session.truncation.cutoff = None          # all layers stays available
    assert session.render_request("k").truncation_cutoff is None


def test_zooming_from_fit_starts_at_the_whole_zoom_nearest_the_scale_shown():
    session = Session()
    viewer = session.viewer
    assert viewer.fit
    viewer.zoom_by(+1, shown_scale=2.7)          # in: from 2 (the whole zoom at or below 2.7) to 3
    assert (viewer.fit, viewer.zoom) == (False, 3)
    viewer.fit_to_window()
    viewer.zoom_by(-1, shown_scale=2.7)          # out: from 3 (at or above 2.7) to 2
    assert (viewer.fit, viewer.zoom, viewer.pan_x) == (False, 2, 0.0)
