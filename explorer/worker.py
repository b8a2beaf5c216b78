"""The background render worker: one thread that renders the newest request and loads networks.

    worker = RenderWorker(on_result=..., on_load=...)   # callbacks run on the worker thread
    worker.load("ffhq.pkl")                               # returns at once; on_load / poll_load tell the outcome
    worker.submit(session.render_request(worker.network_key))   # returns at once
    result = worker.poll()                                # the newest finished RenderResult, or None
    worker.shutdown()

Only the newest pending request is rendered: a request submitted while another waits replaces it, so a
dragging slider never builds a queue. Jobs (loads and renders) run in the order they were submitted, the older
pending renders dropped (every load runs). Errors come back as values: a RenderResult with `error`, a LoadResult with
`error`; a network that fails to load leaves the previous one in place.
"""
from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass
from typing import Callable

import torch

from .render import RenderCache, RenderRequest, RenderResult, render
from .description import NetworkDescription, NetworkFacts, describe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadResult:
    """The outcome of a load: on success `network_key` names the network for render requests and `facts`
    describe it; on error `error` says why and the previous network (`network_key`, `facts`) stays."""
    path: str | None
    network_key: str | None
    facts: NetworkFacts | None
    error: str | None = None
    notes: tuple[str, ...] = ()
    description: NetworkDescription | None = None   # what `info` says of a loaded file (None: set in memory)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _Load:
    seq: int
    path: str | None
    make: Callable[[], tuple]     # -> (generator, notes, description or None, discriminator or None)
    key: str | None


@dataclass
class _Render:
    seq: int
    request: RenderRequest


class RenderWorker:
    """A thread that renders requests and loads networks without ever blocking the caller.

    on_result(RenderResult) and on_load(LoadResult) are called on the worker thread; a GUI should hand them to
    its own thread (or use poll() / poll_load() from its frame loop instead).
    """

    def __init__(self, on_result: Callable[[RenderResult], None] | None = None,
                 on_load: Callable[[LoadResult], None] | None = None, cache: RenderCache | None = None,
                 name: str = "render-worker"):
        self._on_result = on_result
        self._on_load = on_load
        self._cache = cache if cache is not None else RenderCache()
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._keys = itertools.count(1)
        self._pending_render: _Render | None = None
        self._pending_loads: list[_Load] = []
        self._busy = False
        self._current: RenderRequest | None = None
        self._stopping = False
        self._result: RenderResult | None = None
        self._load_result: LoadResult | None = None
        self._generator: torch.nn.Module | None = None
        self._others: dict[str, torch.nn.Module] = {}     # networks blended in, by file (loaded on demand)
        self._discriminator: torch.nn.Module | None = None   # the current file's D (projection features), if any
        self._blended: tuple | None = None                # (key, ModelBlend, generator) of the last blend
        self._network_key: str | None = None
        self._facts: NetworkFacts | None = None
        self.rendered = 0          # requests rendered so far
        self.dropped = 0           # requests replaced by a newer one before they were rendered
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # -- the caller's side: every method returns at once ------------------------------------------------------

    def submit(self, request: RenderRequest) -> None:
        """Queues a render; a request still waiting is replaced (and counted in `dropped`)."""
        with self._cond:
            self._check_running()
            if self._pending_render is not None:
                self.dropped += 1
            self._pending_render = _Render(next(self._seq), request)
            self._cond.notify()

    def load(self, path: str, device: str = "cpu") -> None:
        """Loads a network file in the background (explorer.formats.load_network) and makes it current. A load
        still reading when a newer one is asked for (or the worker shuts down) is given up: the newest wins."""
        def make():
            from .formats import load_network
            loaded = load_network(path, device=device, cancelled=self._load_superseded)
            return loaded.generator, tuple(loaded.notes), describe(loaded), loaded.discriminator
        self._queue_load(str(path), make, None)

    def _load_superseded(self) -> bool:
        with self._cond:
            return self._stopping or bool(self._pending_loads)

    def set_network(self, generator: torch.nn.Module, key: str | None = None, path: str | None = None) -> None:
        """Makes an in-memory generator current (in the background, like load)."""
        self._queue_load(path, lambda: (generator, (), None, None), key)

    def poll(self) -> RenderResult | None:
        """The newest result not polled yet (older unpolled ones are gone), or None."""
        with self._cond:
            result, self._result = self._result, None
            return result

    def poll_load(self) -> LoadResult | None:
        with self._cond:
            result, self._load_result = self._load_result, None
            return result

    @property
    def network_key(self) -> str | None:
        """The key of the current network (for RenderRequest.network_key); None before the first load."""
        with self._cond:
            return self._network_key

    @property
    def generator(self) -> torch.nn.Module | None:
        """The current network, for analyses that run beside the renders (read-only: never change it)."""
        with self._cond:
            return self._generator

    @property
    def discriminator(self) -> torch.nn.Module | None:
        """The current network file's discriminator (read-only), or None when the file has none."""
        with self._cond:
            return self._discriminator

    @property
    def facts(self) -> NetworkFacts | None:
        with self._cond:
            return self._facts

    @property
    def current(self) -> RenderRequest | None:
        """The request being rendered right now, if any."""
        with self._cond:
            return self._current

    @property
    def busy(self) -> bool:
        """True while a job runs or waits."""
        with self._cond:
            return self._busy or self._pending_render is not None or bool(self._pending_loads)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Blocks until no job runs or waits (for scripts and tests, not for a GUI thread); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._stopping or not (
                self._busy or self._pending_render or self._pending_loads), timeout)

    def shutdown(self, timeout: float | None = 10.0) -> bool:
        """Drops waiting jobs, lets the running one finish, stops the thread. True when it stopped in time."""
        with self._cond:
            self._stopping = True
            if self._pending_render is not None:
                self.dropped += 1
            self._pending_render = None
            self._pending_loads.clear()
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def __enter__(self) -> RenderWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def _check_running(self) -> None:
        if self._stopping:
            raise RuntimeError("the render worker has been shut down")

    def _queue_load(self, path, make, key) -> None:
        with self._cond:
            self._check_running()
            self._pending_loads.append(_Load(next(self._seq), path, make, key))
            self._cond.notify()

    # -- the worker thread --------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._busy = False
                self._current = None
                self._cond.notify_all()      # wake wait_idle
                self._cond.wait_for(lambda: self._stopping or self._pending_render or self._pending_loads)
                if self._stopping:
                    return
                job = self._next_job()
                self._busy = True
                self._current = job.request if isinstance(job, _Render) else None
            try:
                if isinstance(job, _Load):
                    self._run_load(job)
                else:
                    self._run_render(job)
            except Exception:   # noqa: BLE001 - a failing callback must not kill the worker
                log.exception("render worker job failed")

    def _next_job(self):
        """The older of the first pending load and the pending render (submission order)."""
        request = self._pending_render
        if self._pending_loads and (request is None or self._pending_loads[0].seq < request.seq):
            return self._pending_loads.pop(0)
        self._pending_render = None
        return request

    def _run_load(self, job: _Load) -> None:
        try:
            generator, notes, description, discriminator = job.make()
            generator.eval().requires_grad_(False)
            facts = NetworkFacts.from_generator(generator)
        except Exception as error:   # noqa: BLE001 - the previous network stays; the error is reported
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            with self._cond:
                result = LoadResult(job.path, self._network_key, self._facts, error=message)
        else:
            key = job.key or f"{job.path or 'network'}#{next(self._keys)}"
            with self._cond:
                self._generator, self._network_key, self._facts = generator, key, facts
                self._discriminator = discriminator
            self._cache.clear()
            self._blended = None
            result = LoadResult(job.path, key, facts, notes=notes, description=description)
        with self._cond:
            self._load_result = result
        if self._on_load is not None:
            self._on_load(result)

    def _run_render(self, job: _Render) -> None:
        request = job.request
        generator, key = self._generator, self._network_key
        if generator is None:
            result = RenderResult(request, error="no network is loaded")
        elif request.network_key != key:
            result = RenderResult(request, error=f"network {request.network_key!r} is not loaded (the current one "
                                                 f"is {key!r})")
        else:
            error = self._move(generator, request.device)
            if not error and request.blend is not None:
                generator, error = self._blend(generator, key, request.blend)
            result = RenderResult(request, error=error) if error else render(generator, request, self._cache)
        with self._cond:
            self._result = result
            self.rendered += 1
        if self._on_result is not None:
            self._on_result(result)

    def _blend(self, generator, key: str, blend) -> tuple[torch.nn.Module | None, str | None]:
        """The current network blended with blend.other (loaded once, then kept); an error line instead when the
        other file cannot be read or does not fit."""
        from .blending import BlendError, blend_generators
        from .formats import NetworkLoadError, load_network
        if self._blended is not None and self._blended[:2] == (key, blend):
            return self._blended[2], None
        other = self._others.get(blend.other)
        if other is None:
            try:
                other = load_network(blend.other, device=next(iter(generator.parameters())).device).generator
            except NetworkLoadError as error:
                return None, f"blend: {blend.other}: {error}"
            self._others = {blend.other: other.eval().requires_grad_(False)}   # one other network at a time
        try:
            blended = blend_generators(generator, other, blend)
        except BlendError as error:
            return None, f"blend: {error}"
        self._blended = (key, blend, blended)
        return blended, None

    def _move(self, generator: torch.nn.Module, device_name: str) -> str | None:
        """Puts the generator on the request's device; an error line when that is impossible."""
        try:
            device = torch.device(device_name)
            if device.type == "cuda" and not torch.cuda.is_available():
                return f"device {device_name}: CUDA is not available on this machine"
            held = next(iter(generator.parameters())).device
            if held.type == device.type and (device.index is None or held.index == device.index):
                return None
            self._cache.clear()
            try:
                generator.to(device)
            except Exception:
                generator.to(held)   # do not leave the network split over two devices
                raise
            return None
        except Exception as error:   # noqa: BLE001 - out of memory, unknown device: reported as a value
            return f"cannot move the network to {device_name}: {str(error).strip().splitlines()[0]}"
