"""Opening recorders, running one on its own thread, recording an iterable of frames.

Recorders: rendered frames in, a video file (or a folder of PNG frames) out, at a fixed frame rate.

The caller pushes each rendered frame with `write(frame)`; frame k is shown at k / fps seconds whatever time it
took to render, so a video is smooth however slow the network is. No recorder ever raises out of `write` or
`close`: a failure (full disk, folder gone, encoder missing or crashed) stops the recorder and is kept in
`error` / `status()`, and everything written before it stays in the file, which stays playable. Every format
keeps its file playable at each frame boundary, so closing the app or a crash mid-recording loses at most the
frame being written:

  mp4     fragmented MP4, one fragment a frame (see mp4.py)
  gif     the trailer after every frame, the next frame linked in by one byte (see gif.py)
  frames  numbered PNGs, each named only when complete (see frames.py)

The writers share recorder.py's `Recorder`; recording_formats.py lists them (kind, suffix, writer) once.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import replace
from pathlib import Path
from typing import Iterable

import numpy as np

from .files import ExportError, reserve_exact, reserve_path
from .frames import FramesRecorder
from .recorder import RECORDING_STATES, Recorder, RecordingStatus, as_rgb_frame
from .recording_formats import RECORDING_FORMATS, recording_format

__all__ = ["RECORDING_FORMATS", "RECORDING_STATES", "MAX_PENDING_FRAMES", "BackgroundRecorder", "FramesRecorder",
           "Recorder", "RecordingStatus", "as_rgb_frame", "recorder_class", "open_recorder", "record"]

# Frames a BackgroundRecorder holds before write() waits: bounded memory (a 1024 px frame is 3 MiB), and a slow
# encoder slows the caller down rather than dropping frames.
MAX_PENDING_FRAMES = 8


class BackgroundRecorder:
    """Runs a recorder on its own thread, for callers that must not wait for the encoder (a GUI frame loop: an
    MP4 write of a 1024 px frame blocks 120 ms, closing it 2 s).

    write(frame) copies the frame, queues it and returns at once; it waits only while MAX_PENDING_FRAMES frames
    are queued. Errors of the recorder show up in `error` / status() and make later writes return False.
    close(wait=False) returns at once; status().state is 'finishing' until the file is complete.
    """

    _END = object()

    def __init__(self, recorder: Recorder, max_pending: int = MAX_PENDING_FRAMES):
        self.recorder = recorder
        self.frames_written = 0          # frames accepted from the caller
        self._own_error: str | None = None
        self._closing = False
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        # Not a daemon: an app that exits while frames are queued finishes the file first.
        self._thread = threading.Thread(target=self._run, name=f"recorder {recorder.path.name}")
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                frame = self._queue.get()
                if frame is self._END:
                    break
                if self.failed:
                    continue   # keep taking frames, so a caller never waits on a full queue
                try:
                    self.recorder.write(frame)
                except Exception as error:   # recorders raise nothing; if one did, the caller still hears of it
                    self._own_error = f"the recorder stopped: {type(error).__name__}: {error}"
        finally:
            try:
                self.recorder.close()
            except Exception as error:
                self._own_error = self._own_error or f"the recorder stopped: {type(error).__name__}: {error}"

    @property
    def path(self) -> Path:
        return self.recorder.path

    @property
    def kind(self) -> str:
        return self.recorder.kind

    @property
    def error(self) -> str | None:
        return self._own_error or self.recorder.error

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def closed(self) -> bool:
        return self._closing

    @property
    def frames_saved(self) -> int:
        return self.recorder.frames_saved

    def write(self, frame) -> bool:
        if self._closing or self.failed:
            return False
        try:
            frame = np.array(as_rgb_frame(frame), copy=True)   # the caller may reuse its buffer right away
        except ValueError as error:
            self._own_error = str(error)
            return False
        self._queue.put(frame)
        self.frames_written += 1
        return True

    def close(self, wait: bool = True) -> None:
        if not self._closing:
            self._closing = True
            self._queue.put(self._END)
        if wait:
            self._thread.join()

    @property
    def finished(self) -> bool:
        """True once the file is complete (or the recorder gave up)."""
        return not self._thread.is_alive()

    def status(self) -> RecordingStatus:
        inner = self.recorder.status()
        if self.error is not None:
            state = "failed"
        elif self._closing:
            state = "done" if self.finished else "finishing"
        else:
            state = "recording"
        return replace(inner, frames_written=self.frames_written, state=state, error=self.error)

    @property
    def progress(self) -> str:
        return self.status().describe()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def recorder_class(kind: str) -> type[Recorder]:
    """The writer of the recording format `kind` (recording_formats.py); ExportError for an unknown one."""
    return recording_format(kind).writer


def open_recorder(kind: str, folder=None, fps: float = 30, path=None, stem: str = "recording",
                  background: bool = False, **options) -> Recorder | BackgroundRecorder:
    """A recorder of `kind` ('mp4', 'gif', 'frames') writing to exactly `path` (refused when it exists), or to
    the next free `folder/stem-NNNN.mp4|.gif|.frames`. The name is taken before this returns, so two recorders
    never share a file. `background`: run it on its own thread (BackgroundRecorder). Raises ExportError (bad
    format or fps, unwritable folder, existing path); after that, errors are values (write() -> False)."""
    entry = recording_format(kind)
    if path is None and folder is None:
        raise ExportError("a recording needs a folder or a path")
    if not (isinstance(fps, (int, float)) and fps > 0 and np.isfinite(fps)):
        raise ExportError(f"the frame rate must be a positive number, not {fps!r}")
    reserved = (reserve_exact(path, entry.is_folder) if path is not None
                else reserve_path(folder, stem, entry.suffix, entry.is_folder))
    recorder = entry.writer(reserved, fps, **options)
    recorder.created_path = True
    return BackgroundRecorder(recorder) if background else recorder


def record(frames: Iterable[np.ndarray], recorder: Recorder) -> Recorder:
    """Write every frame (stopping at the first failure) and close; returns the recorder to read status from."""
    with recorder:
        for frame in frames:
            if not recorder.write(frame):
                break
    return recorder
