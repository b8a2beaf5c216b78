"""The app's handle on the viewer process: start it (spawn, never fork after X/GL exist), send frames and
commands, collect input events."""
from __future__ import annotations

import multiprocessing
import queue
import time

import numpy as np

from . import messages as msg
from .frames import SharedFrames
from .viewer import run_viewer

READY_TIMEOUT_S = 30.0


class ViewerProcess:
    def __init__(self, size=(768, 768), position=None, title="stylegan-explorer viewer"):
        context = multiprocessing.get_context("spawn")
        self.frames = SharedFrames()
        self.commands = context.Queue()
        self.events = context.Queue()
        self.process = context.Process(target=run_viewer, args=(self.frames.name, self.commands, self.events),
                                       kwargs=dict(title=title, size=size, position=position), daemon=True)
        self.ready: msg.Ready | None = None
        self.closed = False
        self._held: list = []

    def start(self) -> msg.Ready:
        self.process.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                if not self.process.is_alive():
                    break
                continue
            if isinstance(event, msg.Ready):
                self.ready = event
                return event
            if isinstance(event, msg.Closed):
                break
            self._held.append(event)
        raise RuntimeError("the viewer window could not open (no OpenGL context?)")

    def show(self, rgb: np.ndarray) -> None:
        """Publish an RGB or RGBA uint8 frame."""
        if rgb.shape[2] == 3:
            rgba = np.empty(rgb.shape[:2] + (4,), np.uint8)
            rgba[:, :, :3] = rgb
            rgba[:, :, 3] = 255
        else:
            rgba = rgb
        self.frames.write(rgba)

    def send(self, command) -> None:
        if not self.closed:
            self.commands.put(command)

    def poll(self) -> list:
        """Events since the last call."""
        out, self._held = self._held, []
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, msg.Closed):
                self.closed = True
            out.append(event)
        return out

    def stop(self, timeout: float = 5.0) -> None:
        self.send(msg.Quit())
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
        self.closed = True
        self.frames.close()
