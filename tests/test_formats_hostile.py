"""Hostile files: none changes the loader's process, exhausts memory or time, or puts memory it does not hold into
the weights; each is refused with one line that says what is wrong, fast, under a memory limit."""
import contextlib
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import explorer.formats.restricted_pickle as restricted_pickle
import explorer.formats.tf_pickle as tf_pickle
from explorer.formats import LoadCancelled, NetworkLoadError, load_network
from explorer.formats.native import save_network
from tests.fixtures import hostile_files
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.networks_sg3 import tiny_stylegan3
from tests.fixtures.nvlabs_pickle_writer import generator_init_kwargs, nvlabs_pickle_bytes
from tests.fixtures.rosinality_writer import write_rosinality_checkpoint
from tests.fixtures.tf_pickle_writer import tf_pickle_bytes, stylegan2_tf_variables

FAST_S = 2.0                  # every refusal here comes well within this
MEMORY_HEADROOM = 2 << 30     # what a refusal may allocate beyond the process's size (thread arenas included)
TF_FUNCS = ("training.networks_stylegan2.G_main", "training.networks_stylegan2.G_mapping",
            "training.networks_stylegan2.G_synthesis_stylegan2")


def _vm_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")


@contextlib.contextmanager
def memory_limit(headroom: int = MEMORY_HEADROOM):
    """The process may grow by `headroom` bytes of address space at most, for the duration."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_vm_bytes() + headroom, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _refused(path, pattern: str) -> str:
    """Loads `path` under a memory limit; it must fail fast with one line matching `pattern`."""
    started = time.monotonic()
    with memory_limit(), pytest.raises(NetworkLoadError) as info:
        load_network(path)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert "\n" not in message and re.search(pattern, message), message
    assert elapsed < FAST_S, f"{elapsed:.2f} s: {message}"
    return message


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _image(G, seed=0):
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    with torch.no_grad():
        return G(z, None).image


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    """A valid file of each pickle-based format and its image before any attack."""
    folder = tmp_path_factory.mktemp("valid")
    G = tiny_stylegan2("sg2_orig_32")
    nvlabs = _write(folder / "nvlabs.pkl", nvlabs_pickle_bytes(G))
    kwargs, top, mapping, synthesis = stylegan2_tf_variables(G)
    tf = _write(folder / "tf.pkl", tf_pickle_bytes([("G", kwargs, top, mapping, synthesis, TF_FUNCS)] * 3))
    rosinality = folder / "rosinality.pt"
    write_rosinality_checkpoint(rosinality, size=8, style_dim=8, n_mlp=1, channel_multiplier=1)
    return {path: _image(load_network(path).generator) for path in (nvlabs, tf, rosinality)}


def _class_attributes(cls) -> dict:
    return {name: value for name, value in vars(cls).items() if name != "__weakref__"}


@pytest.mark.parametrize("module,name,state,sniff", [
    # The function that rebuilds every tensor: defaults changed for the whole process would change every load.
    ("torch._utils", "_rebuild_tensor_v2", (None, {"__defaults__": (True, None, None)}),
     hostile_files.PERSISTENCE_NAME),
    ("torch._utils", "_rebuild_tensor_v2", {"__code__": 1}, hostile_files.PERSISTENCE_NAME),
    # The record classes a file's data becomes.
    ("dnnlib.util", "EasyDict", (None, {"__getattr__": None, "keys": 0}), hostile_files.PERSISTENCE_NAME),
    ("dnnlib.tflib.network", "Network", (None, {"set_state": None, "children": 0}), hostile_files.TF_NETWORK_NAME),
    ("collections", "OrderedDict", (None, {"__setitem__": None}), hostile_files.PERSISTENCE_NAME),
    ("numpy", "ndarray", (None, {"__setstate__": None}), hostile_files.TF_NETWORK_NAME),
])
def test_build_on_a_global_or_a_class_changes_nothing(tmp_path, valid_files, module, name, state, sniff):
    defaults = torch._utils._rebuild_tensor_v2.__defaults__
    code = torch._utils._rebuild_tensor_v2.__code__
    classes = {cls: _class_attributes(cls) for cls in (restricted_pickle.EasyDict, restricted_pickle.PlainOrderedDict,
                                                       tf_pickle.TFNetworkRecord, np.ndarray)}
    path = _write(tmp_path / "build.pkl", hostile_files.build_on_global(module, name, state, sniff))
    _refused(path, rf"refused to load: the file sets the state of '{re.escape(module)}\.{name}'")
    assert torch._utils._rebuild_tensor_v2.__defaults__ == defaults
    assert torch._utils._rebuild_tensor_v2.__code__ is code
    for cls, attributes in classes.items():
        assert _class_attributes(cls) == attributes, cls
    # Valid files of every pickle format still load, in this same process, to the same pixels.
    for valid, image in valid_files.items():
        assert torch.equal(_image(load_network(valid).generator), image), valid.name


def test_a_tensor_larger_than_its_storage_is_refused(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    channels = G.synthesis.b4.const.shape[0]
    path = _write(tmp_path / "stretched.pkl", nvlabs_pickle_bytes(G, stretch={"synthesis.b4.const": [channels, 8, 8]}))
    _refused(path, r"a tensor of size \[\d+, 8, 8\] reaches value [\d,]+ of a storage that holds [\d,]+")
    # The same tensor recorded at its own size loads, with exactly the file's values.
    loaded = load_network(_write(tmp_path / "ok.pkl", nvlabs_pickle_bytes(G))).generator
    assert torch.equal(loaded.synthesis.b4.const, G.synthesis.b4.const)


@pytest.mark.parametrize("make,pattern", [
    (hostile_files.numpy_object_array_bomb, r"numpy dtype 'O8' \(only numbers"),
    (hostile_files.numpy_array_declared_larger, r"shape \[100000000\] needs 400,000,000 bytes and has 4"),
    (hostile_files.storage_declared_larger, r"storage declared with 100,000,000 values holds 6"),
    (lambda: hostile_files.storage_declared_larger(2 ** 31 - 1), r"a storage of 2147483647 values \(at most"),
])
def test_declared_sizes_far_above_the_data(tmp_path, make, pattern):
    data = make()
    assert len(data) < 1000   # tiny files that would ask for gigabytes
    _refused(_write(tmp_path / "declared.pkl", data), pattern)


def test_settings_that_declare_a_network_far_larger_than_the_file(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    kwargs = dict(generator_init_kwargs(G, "stylegan3"), channel_base=2 ** 24, channel_max=4096)
    path = _write(tmp_path / "wide.pkl", nvlabs_pickle_bytes(G, init_kwargs=kwargs))
    _refused(path, r"needs at least [\d,]+ values and the file holds 45,890 \(nothing was allocated\)")


def test_shared_list_bomb_cycles_and_deep_nesting(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    base = generator_init_kwargs(G, "stylegan3")
    bomb = dict(base, mapping_kwargs=dict(num_layers=3, extra=hostile_files.shared_list_bomb(levels=30)))
    path = _write(tmp_path / "laughs.pkl", nvlabs_pickle_bytes(G, init_kwargs=bomb))
    assert path.stat().st_size < 400_000
    _refused(path, r"repeats shared parts inside each other")
    cycle = dict(base, channels=hostile_files.self_referring_list())
    _refused(_write(tmp_path / "cycle.pkl", nvlabs_pickle_bytes(G, init_kwargs=cycle)),
             r"nests more than 100 levels|repeats shared parts")
    _refused(_write(tmp_path / "deep.pkl", hostile_files.deep_nesting(20_000)), r"nests more than 100 levels deep")


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    path = tmp_path / "bomb.pt"
    hostile_files.zip_bomb_checkpoint(path)
    assert path.stat().st_size < 200_000
    _refused(path, r"'archive/data/0' expands [\d,]+ bytes to 67,108,864 \(a zip bomb\)")


@pytest.mark.parametrize("changes,pattern", [
    (dict(conv_clamp="skip"), r"conv_clamp='skip' is not valid: it must be a number"),
    (dict(num_fp16_res=-2 ** 31), r"num_fp16_res=-2147483648 is not valid"),
    (dict(img_resolution=2 ** 20), r"img_resolution=1048576 is not valid"),
    (dict(img_resolution=48), r"img_resolution=48 is not valid: it must be a power of two"),
    (dict(w_dim=10 ** 9), r"w_dim=1000000000 is not valid"),
    (dict(channel_max=10 ** 9), r"channel_max=1000000000 is not valid"),
    (dict(architecture=42), r"architecture=42 is not valid"),
    (dict(resample_filter=[1, -1]), r"resample_filter=\[1, -1\] is not valid: .*sum is not zero"),
    (dict(activation="os.system"), r"activation='os.system' is not valid"),
    (dict(z_dim=True), r"z_dim=True is not valid"),
    (dict(mapping_kwargs=dict(num_layers=10 ** 6)), r"mapping_kwargs.num_layers=1000000 is not valid"),
    (dict(mapping_kwargs=dict(lr_multiplier=float("nan"))), r"mapping_kwargs.lr_multiplier=nan is not valid"),
    (dict(exec_on_load="print(1)"), r"the setting 'exec_on_load' is not one this explorer knows"),
])
def test_hostile_constructor_values_are_refused_when_loading(tmp_path, changes, pattern):
    G = tiny_stylegan2("sg2_orig_32")
    kwargs = dict(generator_init_kwargs(G, "stylegan3"), **changes)
    _refused(_write(tmp_path / "settings.pkl", nvlabs_pickle_bytes(G, init_kwargs=kwargs)), pattern)
    # The same values in the explorer's own format.
    native = tmp_path / "settings.safetensors"
    save_network(G, native)
    flat = {}
    for key, value in changes.items():
        flat.update({f"{key}.{k}": v for k, v in value.items()} if key == "mapping_kwargs" else {key: value})
    hostile_files.rewrite_native_settings(native, **flat)
    _refused(native, pattern)


@pytest.mark.parametrize("changes,pattern", [
    (dict(first_stopband=1e-6), r"make filters of [\d,]+ taps"),
    (dict(num_critical=6), r"num_critical=6 is not valid: it must be below num_layers"),
    (dict(conv_kernel=4), r"conv_kernel=4 is not valid: it must be an odd number"),
    (dict(magnitude_ema_beta=2), r"magnitude_ema_beta=2 is not valid"),
])
def test_hostile_stylegan3_settings(tmp_path, changes, pattern):
    G = tiny_stylegan3("t")
    kwargs = dict(generator_init_kwargs(G, "stylegan3"), **changes)
    _refused(_write(tmp_path / "sg3.pkl", nvlabs_pickle_bytes(G, init_kwargs=kwargs)), pattern)


def test_native_header_with_absurd_sizes(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    path = tmp_path / "net.safetensors"
    for changes, pattern in [(dict(img_resolution=2 ** 20), r"img_resolution=1048576"),
                             (dict(channel_max=10 ** 9), r"channel_max=1000000000"),
                             (dict(w_dim=10 ** 9), r"w_dim=1000000000"),
                             (dict(channel_base=2 ** 24, channel_max=4096), r"needs at least [\d,]+ values")]:
        if path.exists():
            path.unlink()
        save_network(G, path)
        hostile_files.rewrite_native_settings(path, **changes)
        _refused(path, pattern)
    # A tensor whose recorded shape needs more bytes than its byte range holds.
    path.unlink()
    save_network(G, path)
    data = path.read_bytes()
    patched = data.replace(b'"shape":[32,4,4]', b'"shape":[32,4,9]', 1)
    assert patched != data
    _refused(_write(path, patched), r"of shape \[32, 4, 9\] has [\d,]+ bytes, not [\d,]+")


def test_weights_that_are_not_finite_are_refused(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    with torch.no_grad():
        G.synthesis.b8.conv1.weight[0, 0, 0, 0] = float("nan")
    _refused(_write(tmp_path / "nan.pkl", nvlabs_pickle_bytes(G)), r"NaN or infinite values \(first in "
                                                                   r"synthesis\.b8\.conv1\.weight\)")


def test_saving_never_overwrites_and_leaves_no_partial_file(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    target = tmp_path / "net.safetensors"
    users_file = tmp_path / "net.safetensors.partial"
    users_file.write_bytes(b"the user's own file")
    save_network(G, target)
    with pytest.raises(FileExistsError):
        save_network(G, target)
    assert users_file.read_bytes() == b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.safetensors", "net.safetensors.partial"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert torch.equal(_image(load_network(target).generator), _image(G))


def test_a_load_can_be_cancelled_while_it_reads(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    path = _write(tmp_path / "net.pkl", nvlabs_pickle_bytes(G, G=G))
    asked = []

    def cancelled():
        asked.append(True)
        return len(asked) > 3   # a few checkpoints into the pickle, then the user picks another file

    with pytest.raises(LoadCancelled, match="^loading was cancelled$"):
        load_network(path, cancelled=cancelled)
    assert len(asked) == 4
    # Nothing lingers: the next load (never cancelled) reads the same file to the same pixels.
    calls = []
    loaded = load_network(path, cancelled=lambda: calls.append(True) and False)
    assert len(calls) > 4 and torch.equal(_image(loaded.generator), _image(G))


def test_a_deeply_nested_dictionary_key_is_refused_without_crashing(tmp_path):
    # Run apart: if the key were hashed, the interpreter itself would crash (stack overflow in C).
    path = _write(tmp_path / "key.pkl", hostile_files.deep_tuple_key())
    code = ("import sys; from explorer.formats import NetworkLoadError, load_network\n"
            "try:\n    load_network(sys.argv[1])\nexcept NetworkLoadError as error:\n    print(error)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "the file is damaged: a tuple used as a dictionary key or set item"
