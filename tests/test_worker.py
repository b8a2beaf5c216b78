"""The background render worker: newest request wins, the caller never waits, errors come back as values,
network swaps keep the old network on failure, shutdown is clean."""
import threading
import time

import numpy as np
import pytest
import torch

from explorer.formats.native import save_network
from explorer.render import LayerViewRequest, RenderCache, RenderRequest, render
from explorer.worker import RenderWorker
from tests.fixtures.networks import tiny_stylegan2

torch.set_num_threads(1)

FRAME_SECONDS = 1.0
SUBMITS = 100


def req(key, seed=0, **kwargs):
    return RenderRequest(key, seed_weights=((seed, 1.0),), **kwargs)


class Recorder:
    """Collects callbacks from the worker thread."""

    def __init__(self):
        self.items = []
        self.lock = threading.Lock()

    def __call__(self, item):
        with self.lock:
            self.items.append(item)


@pytest.fixture
def worker():
    results, loads = Recorder(), Recorder()
    w = RenderWorker(on_result=results, on_load=loads)
    w.results, w.loads = results, loads
    yield w
    assert w.shutdown(timeout=30)


def slow_generator(seconds: float):
    """A tiny generator whose synthesis takes `seconds` a frame."""
    G = tiny_stylegan2("sg2_orig_32")
    fast = G.synthesis.forward

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return fast(*args, **kwargs)

    G.synthesis.forward = slow
    return G


def test_rapid_submits_return_at_once_and_only_the_newest_is_rendered():
    results = Recorder()
    # No resume states kept, so one frame is one synthesis call (one second).
    worker = RenderWorker(on_result=results, cache=RenderCache(state_bytes=0))
    try:
        worker.set_network(slow_generator(FRAME_SECONDS), key="slow")
        assert worker.wait_idle(10)
        worker.submit(req("slow", 0))
        deadline = time.perf_counter() + 5
        while worker.current is None and time.perf_counter() < deadline:
            time.sleep(0.01)
        assert worker.current == req("slow", 0)       # the current frame is running
        started = time.perf_counter()
        slowest = 0.0
        for seed in range(1, SUBMITS + 1):
            before = time.perf_counter()
            worker.submit(req("slow", seed))
            slowest = max(slowest, time.perf_counter() - before)
        submitting = time.perf_counter() - started
        assert submitting < 0.2 and slowest < 0.05, (submitting, slowest)
        assert worker.busy
        assert worker.wait_idle(10 * FRAME_SECONDS)
        elapsed = time.perf_counter() - started
        rendered = [r.request.seed_weights[0][0] for r in results.items]
        assert rendered == [0, SUBMITS]                # the one already running, then the newest
        assert worker.rendered == 2 and worker.dropped == SUBMITS - 1
        assert FRAME_SECONDS <= elapsed < 2 * FRAME_SECONDS + 2.5
        assert all(r.error is None for r in results.items)
        newest = worker.poll()
        assert newest.request.seed_weights == ((SUBMITS, 1.0),) and worker.poll() is None
    finally:
        assert worker.shutdown(timeout=10)


def test_results_match_a_direct_render_and_arrive_by_callback_and_poll(worker):
    G = tiny_stylegan2("sg2_skip_64")
    worker.set_network(G, key="g")
    request = req("g", 7, truncation_psi=0.5, view=LayerViewRequest(layer="b32.conv1"))
    worker.submit(request)
    assert worker.wait_idle(30)
    result = worker.poll()
    assert result is worker.results.items[-1] and result.error is None
    direct = render(G, request)
    assert np.array_equal(result.raw, direct.raw) and np.array_equal(result.layer_image, direct.layer_image)
    load = worker.poll_load()
    assert load.ok and load.network_key == "g" and load.facts.num_ws == G.num_ws
    assert worker.network_key == "g" and worker.facts.layer_names[-1] == "b64.torgb"


def test_errors_come_back_as_values_and_the_worker_keeps_going(worker):
    worker.submit(req("none"))
    assert worker.wait_idle(30)
    assert worker.poll().error == "no network is loaded"
    worker.set_network(tiny_stylegan2("sg2_orig_32"), key="a")
    worker.submit(req("a", view=LayerViewRequest(layer="b64.conv1")))     # the 32 px network has no b64
    assert worker.wait_idle(30)
    assert "no layer named 'b64.conv1'" in worker.poll().error
    worker.submit(req("b"))
    assert worker.wait_idle(30)
    assert worker.poll().error == "network 'b' is not loaded (the current one is 'a')"
    worker.submit(req("a", 3))
    assert worker.wait_idle(30)
    assert worker.poll().error is None


def test_a_failing_load_leaves_the_previous_network(worker, tmp_path):
    good = tmp_path / "good.safetensors"
    G = tiny_stylegan2("sg2_orig_32")
    save_network(G, good)
    worker.load(str(good))
    assert worker.wait_idle(60)
    loaded = worker.poll_load()
    assert loaded.ok and loaded.path == str(good) and loaded.network_key.startswith(str(good))
    key = loaded.network_key
    first = worker.network_key
    assert first == key

    broken = tmp_path / "broken.pkl"
    broken.write_bytes(b"\x80\x04 this is not a network")
    worker.load(str(broken))
    worker.load(str(tmp_path / "missing.pkl"))      # every load runs and reports, in order
    worker.submit(req(key, 2))                      # submitted after the loads: runs after them
    assert worker.wait_idle(60)
    errors = [load.error for load in worker.loads.items[1:]]
    # The broken file is refused, or, when the newer load was queued before it finished reading, given up for it.
    assert ("not a network format" in errors[0] or "cancelled" in errors[0]) and "no such file" in errors[1]
    assert all(load.network_key == key and load.facts.num_ws == G.num_ws for load in worker.loads.items[1:])
    assert worker.network_key == key
    result = worker.poll()
    assert result.error is None
    assert np.array_equal(result.raw, render(G, req(key, 2)).raw)
    # Loading the same file again gives a new key, so stale requests and caches cannot mix them up.
    worker.load(str(good))
    assert worker.wait_idle(60)
    assert worker.poll_load().network_key not in (None, key)


def test_a_failing_callback_does_not_stop_the_worker():
    calls = []

    def broken(result):
        calls.append(result)
        raise RuntimeError("GUI bug")

    worker = RenderWorker(on_result=broken)
    try:
        worker.set_network(tiny_stylegan2("sg2_orig_32"), key="a")
        worker.submit(req("a", 1))
        assert worker.wait_idle(30)
        worker.submit(req("a", 2))
        assert worker.wait_idle(30)
        assert len(calls) == 2 and worker.running
    finally:
        assert worker.shutdown(timeout=10)


def test_shutdown_waits_for_the_running_frame_and_drops_the_rest():
    results = Recorder()
    worker = RenderWorker(on_result=results, cache=RenderCache(state_bytes=0))
    worker.set_network(slow_generator(0.5), key="slow")
    worker.submit(req("slow", 1))
    time.sleep(0.2)                      # the first frame is running now
    worker.submit(req("slow", 2))
    started = time.perf_counter()
    assert worker.shutdown(timeout=10)
    assert time.perf_counter() - started < 2.0
    assert not worker.running and [r.request.seed_weights[0][0] for r in results.items] == [1]
    with pytest.raises(RuntimeError, match="shut down"):
        worker.submit(req("slow", 3))
    assert worker.shutdown(timeout=1)    # a second shutdown is harmless


def test_a_load_reports_what_info_says(tmp_path):
    from explorer.description import format_description
    from explorer.formats.native import save_network
    from explorer.worker import RenderWorker
    from tests.fixtures.networks import tiny_stylegan2
    path = tmp_path / "net.safetensors"
    save_network(tiny_stylegan2("sg2_orig_32"), path)
    with RenderWorker() as worker:
        worker.load(str(path))
        assert worker.wait_idle(60)
        load = worker.poll_load()
    assert load.ok and load.description.family == "stylegan2"
    text = format_description(load.description)
    assert "stylegan-explorer safetensors" in text and "b32.torgb" in text


def test_a_load_in_progress_gives_way_to_a_newer_one(tmp_path, monkeypatch):
    """load_network is asked whether to go on; once a newer load is queued the answer is no."""
    import threading

    import explorer.formats
    from explorer.formats.native import save_network
    from explorer.worker import RenderWorker
    from tests.fixtures.networks import tiny_stylegan2
    first, second = tmp_path / "first.safetensors", tmp_path / "second.safetensors"
    save_network(tiny_stylegan2("sg2_orig_32"), first)
    save_network(tiny_stylegan2("sg2_skip_64"), second)
    real = explorer.formats.load_network
    reading = threading.Event()
    answers = []

    def slow_load(path, device="cpu", cancelled=None):
        if str(path) == str(first):
            reading.set()
            while not cancelled():              # a long read, asking as the pickle machine does
                threading.Event().wait(0.01)
            answers.append(True)
            raise explorer.formats.NetworkLoadError("loading was cancelled")
        return real(path, device=device, cancelled=cancelled)

    monkeypatch.setattr(explorer.formats, "load_network", slow_load)
    with RenderWorker() as worker:
        worker.load(str(first))
        assert reading.wait(30)
        worker.load(str(second))
        assert worker.wait_idle(60)
        assert answers == [True]
        assert worker.facts.img_resolution == 64 and worker.network_key.startswith(str(second))
