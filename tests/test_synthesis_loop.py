"""The synthesis loop that every family shares (LayeredSynthesis) and its per-call `layer_edits` hook.

The goldens (test_stylegan2_golden.py, test_stylegan3.py, test_stylegan1.py) hold the pixels; here: that every
family runs through the one loop, that the loop's bookkeeping (capture, stop, resume, edits) behaves the same for
any list of layers, and that an edit replaces exactly the layer's output, as a hand-edited resume state does.
"""
import pytest
import torch

from explorer.networks.common import LayeredSynthesis, LayerInfo, SynthesisState
from explorer.networks.stylegan1 import Generator as StyleGAN
from kernels import upsample2d
from tests.fixtures.networks import randomize_, tiny_stylegan2
from tests.fixtures.networks_sg3 import tiny_stylegan3

BATCH = 2


def tiny_stylegan(seed: int = 0) -> StyleGAN:
    torch.manual_seed(seed)
    G = StyleGAN(z_dim=16, c_dim=0, w_dim=16, img_resolution=32, img_channels=3,
                 mapping_kwargs=dict(num_layers=2, layer_features=16), fmap_base=128, fmap_max=16)
    return randomize_(G, seed).eval().requires_grad_(False)


NETWORKS = {
    "stylegan": tiny_stylegan,
    "sg2_skip": lambda: tiny_stylegan2("sg2_skip_64"),
    "sg2_resnet": lambda: tiny_stylegan2("sg2_resnet_cond_64"),
    "sg2_orig": lambda: tiny_stylegan2("sg2_orig_32"),
    "sg3_t": lambda: tiny_stylegan3("t"),
}


@pytest.fixture(scope="module", params=list(NETWORKS))
def network(request):
    G = NETWORKS[request.param]()
    generator = torch.Generator().manual_seed(11)
    z = torch.randn([BATCH, G.z_dim], generator=generator)
    c = torch.eye(G.c_dim)[:BATCH] if G.c_dim else None
    return request.param, G, G.mapping(z, c, truncation_psi=0.8)


def channel_mask(channels: int, seed: int) -> torch.Tensor:
    """A per-channel gain with some channels switched off: what channel ablation and bending apply."""
    gains = torch.rand([channels], generator=torch.Generator().manual_seed(seed)) * 2
    gains[::3] = 0
    return gains.reshape(1, -1, 1, 1)


def test_every_family_runs_the_shared_loop(network):
    _, G, _ = network
    assert isinstance(G.synthesis, LayeredSynthesis)
    assert type(G.synthesis).forward is LayeredSynthesis.forward
    assert G.synthesis.layer_names == [layer.name for layer in G.synthesis.layers]


def test_identity_edits_change_nothing(network):
    _, G, ws = network
    names = G.synthesis.layer_names
    plain = G.synthesis(ws, capture="all", noise_mode="random", noise_seed=5)
    edited = G.synthesis(ws, capture="all", noise_mode="random", noise_seed=5,
                         layer_edits={name: (lambda t: t) for name in names})
    assert torch.equal(plain.image, edited.image)
    for name in names:
        assert torch.equal(plain.activations[name], edited.activations[name]), name


def test_an_edit_is_what_an_edited_resume_state_gives(network):
    """For layers whose output is the state's x, editing through the hook equals stopping after the layer,
    editing the state by hand and resuming: the edit reaches every later layer and nothing else changes."""
    family, G, ws = network
    for info in G.synthesis.layers:
        if info.kind not in ("conv", "input") or (family == "sg2_resnet" and info.name.endswith("conv1")):
            continue   # torgb and resnet conv1 fold their output into img / a sum (tested below)
        mask = channel_mask(info.channels, seed=len(info.name))
        via_hook = G.synthesis(ws, layer_edits={info.name: lambda t: t * mask}, capture=[info.name])
        state = G.synthesis(ws, stop_after=info.name).state
        state.x = state.x * mask
        by_hand = G.synthesis(ws, resume=state)
        assert torch.equal(via_hook.image, by_hand.image), info.name
        assert torch.equal(via_hook.activations[info.name], state.x), info.name


def test_channel_ablation_zeroes_the_channel_and_changes_the_image(network):
    _, G, ws = network
    layers = [info for info in G.synthesis.layers if info.kind != "torgb"]
    info = layers[len(layers) // 2]
    plain = G.synthesis(ws, capture=[info.name])

    def ablate(t):
        t = t.clone()
        t[:, 1] = 0
        return t

    ablated = G.synthesis(ws, capture=[info.name], layer_edits={info.name: ablate})
    before, after = plain.activations[info.name], ablated.activations[info.name]
    assert before[:, 1].abs().max() > 0
    assert torch.equal(after[:, 1], torch.zeros_like(after[:, 1]))
    assert torch.equal(after[:, :1], before[:, :1]) and torch.equal(after[:, 2:], before[:, 2:])
    assert (ablated.image - plain.image).abs().max() > 1e-4


def test_zeroing_the_layer_before_the_output_leaves_only_the_output_bias(network):
    """A ToRGB of zeros is its bias: the image is then a flat colour per channel (and StyleGAN2 skip networks
    add the upsampled image of the blocks before)."""
    family, G, ws = network
    synthesis = G.synthesis
    last = synthesis.layers[-1]
    zero = {synthesis.layers[-2].name: torch.zeros_like}
    if family == "sg2_skip":
        # The last block's conv1 zeroed: image = upsampled image so far + the bias of the last ToRGB.
        block = getattr(synthesis, last.name.split(".")[0])
        before = synthesis(ws, stop_after=synthesis.layers[-3].name).state.img
        expected = upsample2d(before, block.resample_filter) + block.torgb.bias.reshape(1, -1, 1, 1)
        assert torch.equal(synthesis(ws, layer_edits=zero).image, expected)
        # ... and the last ToRGB's output zeroed: the upsampled image so far, exactly.
        image = synthesis(ws, layer_edits={last.name: torch.zeros_like}).image
        assert torch.equal(image, upsample2d(before, block.resample_filter))
        return
    if family == "sg2_resnet":
        # conv1's output is edited before the block's skip path is added: zero both.
        zero[last.name.replace("torgb", "skip")] = torch.zeros_like
    if family in ("sg2_resnet", "sg2_orig"):
        bias = getattr(synthesis, last.name.split(".")[0]).torgb.bias
    elif family == "stylegan":
        bias = synthesis.torgb.bias
    else:
        bias = getattr(synthesis, last.name).bias.clamp(-256, 256) * synthesis.output_scale
    image = synthesis(ws, layer_edits=zero).image
    expected = bias.reshape(1, -1, 1, 1).expand_as(image)
    torch.testing.assert_close(image, expected, rtol=0, atol=1e-6)
    assert bias.abs().max() > 1e-3   # a real colour, not zero by chance


def test_edits_of_layers_before_a_resumed_state_are_already_in_it(network):
    _, G, ws = network
    names = G.synthesis.layer_names
    edited, stop = names[1], names[len(names) // 2]
    mask = channel_mask(G.synthesis.layers[1].channels, seed=3)
    calls = []

    def edit(t):
        calls.append(t.shape)
        return t * mask

    full = G.synthesis(ws, layer_edits={edited: edit}).image
    assert len(calls) == 1
    state = G.synthesis(ws, stop_after=stop, layer_edits={edited: edit}).state
    resumed = G.synthesis(ws, resume=state, layer_edits={edited: edit}).image
    assert len(calls) == 2      # the resumed call skips the edited layer: its edit is in the state
    assert torch.equal(full, resumed)


def test_edits_keep_the_layer_dtype_and_carry_gradients(network):
    _, G, ws = network
    info = G.synthesis.layers[2]
    widened = G.synthesis(ws, capture=[info.name], layer_edits={info.name: lambda t: t.double() * 0.5})
    halved = G.synthesis(ws, capture=[info.name], layer_edits={info.name: lambda t: t * 0.5})
    assert widened.activations[info.name].dtype == torch.float32
    assert torch.equal(widened.image, halved.image)

    gains = torch.ones([1, info.channels, 1, 1], requires_grad=True)
    with torch.enable_grad():
        G.synthesis(ws, layer_edits={info.name: lambda t: t * gains}).image.square().mean().backward()
    assert gains.grad is not None and gains.grad.abs().max() > 0


def test_bad_edits_are_refused_by_name(network):
    _, G, ws = network
    name = G.synthesis.layer_names[1]
    with pytest.raises(KeyError, match="no layer named 'nowhere'"):
        G.synthesis(ws, layer_edits={"nowhere": lambda t: t})
    with pytest.raises(TypeError, match=f"layer_edits\\['{name}'\\] must be a callable"):
        G.synthesis(ws, layer_edits={name: 0.5})
    with pytest.raises(ValueError, match=f"layer_edits\\['{name}'\\] must return a tensor of the layer's shape"):
        G.synthesis(ws, layer_edits={name: lambda t: t[:, :1]})


def test_generator_call_passes_edits_on(network):
    _, G, _ = network
    z = torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(2))
    c = torch.eye(G.c_dim)[:1] if G.c_dim else None
    name = G.synthesis.layer_names[0]
    edited = G(z, c, layer_edits={name: torch.zeros_like}, capture=[name])
    assert torch.equal(edited.activations[name], torch.zeros_like(edited.activations[name]))
    assert not torch.equal(edited.image, G(z, c).image)


# -- the loop itself, on a family of three made-up layers ----------------------------------------------------------

class Counting(LayeredSynthesis):
    """x0 = w0; x1 = x0 * 2 + w1; img = x1 + w2 (as a 1-channel 1x1 image), with a log of the layers run."""

    def __init__(self):
        super().__init__()
        self.w_dim, self.num_ws = 1, 3
        self.declare_layers([LayerInfo(name, kind, 1, 1, 1, index) for index, (name, kind) in
                             enumerate([("first", "input"), ("double", "conv"), ("out", "torgb")])])
        self.ran: list[str] = []

    def run_layer(self, info, state, call):
        self.ran.append(info.name)
        w = call.ws[:, info.w_index].reshape(-1, 1, 1, 1)
        if info.name == "first":
            return w
        if info.name == "double":
            return state.x * 2 + w
        return state.x + w

    def carry(self, info, state, output, call):
        if info.kind == "torgb":
            return SynthesisState(info.name, state.x, output)
        return super().carry(info, state, output, call)


def test_the_loop_captures_stops_resumes_and_edits_any_family():
    net = Counting()
    ws = torch.tensor([[[1.0], [10.0], [100.0]]])
    out = net(ws, capture="all")
    assert net.ran == ["first", "double", "out"]
    assert {name: float(a) for name, a in out.activations.items()} == {"first": 1, "double": 12, "out": 112}
    assert float(out.image) == 112 and out.state is None

    net.ran.clear()
    stopped = net(ws, stop_after="double", capture=["first"])
    assert net.ran == ["first", "double"] and stopped.image is None
    assert stopped.state.after == "double" and float(stopped.state.x) == 12
    assert list(stopped.activations) == ["first"]

    net.ran.clear()
    resumed = net(ws, resume=stopped.state, capture=["out"])
    assert net.ran == ["out"] and float(resumed.image) == 112

    net.ran.clear()
    edited = net(ws, layer_edits={"first": lambda t: t + 1}, capture=["first"])
    assert float(edited.activations["first"]) == 2 and float(edited.image) == 114

    with pytest.raises(ValueError, match=r"ws must be \[N, 3, 1\]"):
        net(ws[:, :2])
    with pytest.raises(KeyError, match="no layer named 'last'"):
        net(ws, stop_after="last")
    with pytest.raises(TypeError, match="input_transform"):
        net(ws, input_transform=(0, 0, 0))   # an option no layer of this family reads is an error, not ignored
