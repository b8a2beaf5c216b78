"""The app's handle on the viewer process: start it (spawn, never fork once X or GL exist in the app), publish
frames, send commands, collect input events.

    viewer = ViewerProcess(size=(768, 768))
    viewer.start()                       # returns once the window is open; RuntimeError says why it is not
    viewer.show(rgb, FrameMeta(...))     # never blocks
    for event in viewer.poll(): ...      # messages.Drag, Key, Dropped, Cursor, ViewerStats, Captured, Closed
    viewer.stop()

A program that starts the viewer must guard its entry point with `if __name__ == "__main__":` (spawn imports
the main module again in the child).
"""
from __future__ import annotations

import multiprocessing
import queue
import time

import numpy as np

from . import messages as msg
from .frames import CHANNELS, FrameMeta, FrameRing
from .viewer import run_viewer

READY_TIMEOUT_S = 60.0             # spawn + imports + a GL context: seconds on a loaded 2-core machine
READY_POLL_S = 0.05
INITIAL_FRAME_BYTES = 1024 * 2048 * CHANNELS    # a 1024 px output with a layer view as wide beside it
GROWTH = 2                         # a ring that is too small is replaced by one this many times the need


class ViewerUnavailable(RuntimeError):
    """The viewer window could not open (no usable GL, a display GLFW cannot reach, a crash at start)."""


class ViewerProcess:
    def __init__(self, size=(768, 768), position=None, title="stylegan-explorer viewer"):
        self.context = multiprocessing.get_context("spawn")
        self.ring = FrameRing.create(INITIAL_FRAME_BYTES)
        self.commands = self.context.Queue()
        self.events = self.context.Queue()
        self.process = self.context.Process(target=run_viewer, args=(self.ring.name, self.commands, self.events),
                                            kwargs=dict(title=title, size=size, position=position), daemon=True,
                                            name="stylegan-explorer-viewer")
        self.ready: msg.Ready | None = None
        self.closed = False
        self.closed_reason: str | None = None
        self._held: list = []
        self._stopped = False

    def start(self) -> msg.Ready:
        """Starts the viewer and waits for its window. ViewerUnavailable says why it did not open; the process,
        the queues and the shared memory are released by then."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> msg.Ready:
        self.process.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=READY_POLL_S)
            except queue.Empty:
                if not self.process.is_alive():
                    self.closed = True
                    raise ViewerUnavailable(f"the viewer process ended before its window opened (exit code "
                                            f"{self.process.exitcode})")
                continue
            if isinstance(event, msg.Ready):
                self.ready = event
                return event
            if isinstance(event, msg.Closed):
                self.closed, self.closed_reason = True, event.reason
                raise ViewerUnavailable(f"the viewer window could not open: {event.reason or 'no reason given'}")
            self._held.append(event)
        raise ViewerUnavailable(f"the viewer window did not open within {READY_TIMEOUT_S:.0f} s")

    def show(self, image: np.ndarray, meta: FrameMeta = FrameMeta()) -> int:
        """Publishes a uint8 [H, W, 3 or 4] frame; a frame larger than the ring moves to a bigger ring."""
        height, width = image.shape[:2]
        if not self.ring.fits(height, width):
            old = self.ring
            self.ring = FrameRing.create(height * width * CHANNELS * GROWTH)
            self.send(msg.AttachFrames(self.ring.name))
            old.close()      # the viewer keeps its mapping until it attaches the new ring
        return self.ring.write(image, meta)

    def send(self, command) -> None:
        if not self.closed:
            self.commands.put(command)

    def _drain(self) -> None:
        try:
            while True:
                self._held.append(self.events.get_nowait())
        except (queue.Empty, EOFError, OSError, ValueError):
            pass

    def poll(self) -> list:
        """Events since the last call."""
        out, self._held = self._held, []
        while not self._stopped:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            except (EOFError, OSError):
                self.closed = True
                break
            if isinstance(event, msg.Closed):
                self.closed, self.closed_reason = True, event.reason
            out.append(event)
        if not self.closed and self.process.exitcode is not None:
            self.closed = True
        return out

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.is_alive():
            self.commands.put(msg.Quit())
            # Keep reading its events meanwhile: a child exits only once its queue has gone down the pipe, and a
            # full pipe nobody reads would hold it until the timeout.
            deadline = time.monotonic() + timeout
            while self.process.is_alive() and time.monotonic() < deadline:
                self._drain()
                self.process.join(READY_POLL_S)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
        self.closed = self._stopped = True
        self.ring.close()
        for q in (self.commands, self.events):
            q.cancel_join_thread()   # pending commands to a gone viewer must not hold up exit
            q.close()
