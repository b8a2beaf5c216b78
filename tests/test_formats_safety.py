"""Loading never runs code from a file, and bad files give one clear error."""
import io
import os
import pickle

import pytest
import torch

from explorer.formats import NetworkLoadError, load_network
from explorer.formats.restricted_pickle import ForbiddenGlobal
from tests.fixtures.networks import tiny_stylegan2
from tests.fixtures.nvlabs_pickle_writer import nvlabs_pickle_bytes

PERSISTENCE = b"torch_utils.persistence"


class _Evil:
    """Pickles as a call of `target(*args)`."""

    def __init__(self, target, *args):
        self.target, self.args = target, args

    def __reduce__(self):
        return self.target, self.args


def _evil_snapshot(target, *args) -> bytes:
    # The stand-in G_ema: a real-looking snapshot dict whose training_set_kwargs runs `target`; the persistence
    # global's name is in the bytes too, so the file is sniffed as an NVlabs pickle.
    payload = {"G_ema": _Evil(target, *args), "note": "torch_utils.persistence._reconstruct_persistent_obj"}
    return pickle.dumps(payload, protocol=4)


@pytest.mark.parametrize("target,args,global_name", [
    (os.system, ("touch {marker}",), "system"),
    (eval, ("open({marker!r}, 'w').write('ran')",), "builtins.eval"),
    (exec, ("open({marker!r}, 'w').write('ran')",), "builtins.exec"),
])
def test_malicious_globals_are_refused_and_nothing_runs(tmp_path, target, args, global_name):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(_evil_snapshot(target, *(a.format(marker=str(marker)) for a in args)))
    with pytest.raises(NetworkLoadError) as info:
        load_network(path)
    assert global_name in str(info.value) and "not allowed" in str(info.value)
    assert not marker.exists()


def test_unknown_class_is_refused_by_name(tmp_path):
    data = _evil_snapshot(io.BytesIO, b"x")
    path = tmp_path / "unknown.pkl"
    path.write_bytes(data)
    with pytest.raises(NetworkLoadError, match=r"'_io\.BytesIO'"):
        load_network(path)


def test_nested_torch_storage_bytes_are_loaded_with_weights_only(tmp_path):
    # The stock torch.storage._load_from_bytes runs a full unpickler over the bytes it gets; ours must not.
    marker = tmp_path / "ran"
    inner = pickle.dumps(_Evil(os.system, f"touch {marker}"), protocol=2)
    # Replace the dict with a call of torch.storage._load_from_bytes(inner).
    evil = (b"\x80\x04" + b"\x8c\rtorch.storage\x8c\x10_load_from_bytes\x93"
            + b"C" + bytes([len(inner)]) + inner + b"\x85R" + b"\x8c\x17torch_utils.persistence0" + b".")
    path = tmp_path / "nested.pkl"
    path.write_bytes(evil)
    with pytest.raises(NetworkLoadError, match=r"asks for '\w+\.system', which is not allowed"):
        load_network(path)
    assert not marker.exists()


def test_restricted_unpickler_lists_the_global(tmp_path):
    data = pickle.dumps(_Evil(os.system, "true"), protocol=2)
    from explorer.formats.restricted_pickle import restricted_load
    with pytest.raises(ForbiddenGlobal) as info:
        restricted_load(data, {})
    assert info.value.name == "system"


def test_missing_empty_foreign_and_truncated_files(tmp_path):
    with pytest.raises(NetworkLoadError, match="no such file"):
        load_network(tmp_path / "nope.pkl")
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(NetworkLoadError, match="empty"):
        load_network(empty)
    foreign = tmp_path / "photo.pkl"
    foreign.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(NetworkLoadError, match="not a network file"):
        load_network(foreign)
    other_pickle = tmp_path / "list.pkl"
    other_pickle.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(NetworkLoadError, match="not a network format"):
        load_network(other_pickle)
    with pytest.raises(NetworkLoadError, match="folder"):
        load_network(tmp_path)
    # Devices and pipes never end: refused before reading.
    pipe = tmp_path / "pipe.pkl"
    os.mkfifo(pipe)
    for special in ("/dev/zero", pipe):
        with pytest.raises(NetworkLoadError, match="is not a regular file"):
            load_network(special)

    good = nvlabs_pickle_bytes(tiny_stylegan2("sg2_orig_32"))
    for fraction in (0.1, 0.5, 0.99):
        truncated = tmp_path / f"truncated{fraction}.pkl"
        truncated.write_bytes(good[: int(len(good) * fraction)])
        with pytest.raises(NetworkLoadError, match="truncated or damaged"):
            load_network(truncated)


def test_snapshot_without_generator_and_wrong_class(tmp_path):
    G = tiny_stylegan2("sg2_orig_32")
    data = nvlabs_pickle_bytes(G, G=None)
    loaded = load_network(_write(tmp_path / "ok.pkl", data))
    assert loaded.detail.endswith("entry G_ema")
    # A bare persistent Generator (not in a snapshot dict) loads too.
    bare = load_network(_write(tmp_path / "bare.pkl", nvlabs_pickle_bytes(G, snapshot=False)))
    for a, b in zip(bare.generator.state_dict().values(), G.state_dict().values()):
        assert torch.equal(a, b)


def _write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_of_every_protocol_reads_as_python_reads_it(protocol):
    import numpy as np
    from explorer.formats.numpy_data import as_array
    from explorer.formats.restricted_pickle import DATA_GLOBALS, restricted_load
    value = {"list": [1, 2.5, "x", True, None, (1, 2)], "big": 10 ** 30, "negative": -5, "bytes": b"xy",
             "set": {1, 2}, "frozen": frozenset([3]), "text": "é\n", "nested": {"a": [{"b": ()}]}}
    assert restricted_load(pickle.dumps(value, protocol), DATA_GLOBALS) == value
    arrays = {"c": np.arange(6, dtype=np.float32).reshape(2, 3), "f": np.asfortranarray(np.ones((2, 3))),
              "scalar": np.float64(2.5), "tensor": torch.arange(6.0).reshape(2, 3)[:, 1:]}
    loaded = restricted_load(pickle.dumps(arrays, protocol), DATA_GLOBALS)
    for key in ("c", "f"):
        assert np.array_equal(as_array(loaded[key]), arrays[key]) and as_array(loaded[key]).dtype == arrays[key].dtype
    assert loaded["scalar"] == 2.5 and torch.equal(loaded["tensor"], arrays["tensor"])


def test_the_pickle_machine_bounds_operations_and_stack():
    from explorer.formats import limits
    from explorer.formats.pickle_machine import Budget, PickleMachine
    many = b"\x80\x04" + b"N0" * 20_000 + b"N."
    assert PickleMachine(many, {}).load() is None
    with pytest.raises(NetworkLoadError, match=r"more than [\d,]+ pickle operations"):
        PickleMachine(many, {}, budget=Budget(10_000)).load()
    stacked = b"\x80\x04" + b"N" * (limits.MAX_PICKLE_STACK + 2048) + b"."
    with pytest.raises(NetworkLoadError, match=r"stacks more than [\d,]+ values"):
        PickleMachine(stacked, {}).load()
