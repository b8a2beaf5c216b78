"""Recorders: rendered frames in, a video file (or a folder of PNG frames) out, at a fixed frame rate.

The caller pushes each rendered frame with `write(frame)`; frame k is shown at k / fps seconds whatever time it
took to render, so a video is smooth however slow the network is. No recorder ever raises out of `write` or
`close`: a failure (full disk, folder gone, encoder missing or crashed) stops the recorder and is kept in
`error` / `status()`, and everything written before it stays in the file, which stays playable. Every format
keeps its file playable at each frame boundary, so closing the app or a crash mid-recording loses at most the
frame being written:

  mp4     fragmented MP4, one fragment a frame (see mp4.py)
  gif     the trailer after every frame, the next frame linked in by one byte (see gif.py)
  frames  numbered PNGs, each named only when complete
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

import numpy as np

from .files import (ExportError, describe_os_error, ensure_folder, publish, reserve_exact, reserve_path,
                    write_temporary)
from .screenshot import png_bytes

RECORDING_FORMATS = ("mp4", "gif", "frames")
RECORDING_STATES = ("recording", "finishing", "done", "failed")   # finishing: closed, the file being completed
# Frames a BackgroundRecorder holds before write() waits: bounded memory (a 1024 px frame is 3 MiB), and a slow
# encoder slows the caller down rather than dropping frames.
MAX_PENDING_FRAMES = 8


@dataclass(frozen=True)
class RecordingStatus:
    """Where a recording stands; what a Capture panel shows."""
    path: Path
    kind: str                  # 'mp4', 'gif' or 'frames'
    fps: float                 # the frame rate the file plays at
    frames_written: int        # frames accepted from the caller
    frames_saved: int          # frames complete in the file: what a crash now would keep
    size: tuple[int, int] | None   # (width, height) in the file (MP4 pads odd sizes); None before the first frame
    state: str                 # one of RECORDING_STATES
    error: str | None

    @property
    def seconds(self) -> float:
        return self.frames_written / self.fps

    def describe(self) -> str:
        size = f" {self.size[0]}x{self.size[1]}" if self.size else ""
        line = f"{self.frames_written} frames ({self.seconds:.1f} s at {self.fps:g} fps){size} to {self.path}"
        if self.state == "failed":
            return f"{line}: failed: {self.error}"
        return f"{line}: {self.state}"


def as_rgb_frame(frame) -> np.ndarray:
    """A uint8 H x W x 3 array from grey, RGB or RGBA uint8 pixels (alpha dropped); ValueError otherwise."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 pixels, not {frame.dtype}")
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4) or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frames must be H x W grey, RGB or RGBA, not shape {frame.shape}")
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    return np.ascontiguousarray(frame[:, :, :3])


class Recorder:
    """A file (or folder) written frame by frame at a fixed frame rate.

    write(frame) -> bool: False once the recorder has failed or was closed (`error` says why).
    close(): finishes the file; safe to call twice. status() -> RecordingStatus.
    """
    kind = ""

    def __init__(self, path, fps: float):
        if not (isinstance(fps, (int, float)) and fps > 0 and np.isfinite(fps)):
            raise ExportError(f"the frame rate must be a positive number, not {fps!r}")
        self.path = Path(path)
        self.fps = float(fps)
        self.frames_written = 0
        self.error: str | None = None
        self.closed = False
        self.frame_size: tuple[int, int] | None = None   # (width, height) of the frames given
        self.created_path = False   # open_recorder made `path` for this recorder: removed again if left empty

    # -- what subclasses provide ----------------------------------------------------------------------------------

    def _write(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    @property
    def frames_saved(self) -> int:
        """Frames complete in the file (the encoder of an MP4 may hold the newest one or two)."""
        return self.frames_written

    @property
    def file_size(self) -> tuple[int, int] | None:
        return self.frame_size

    @property
    def playback_fps(self) -> float:
        return self.fps

    # -- the shared part ------------------------------------------------------------------------------------------

    def write(self, frame) -> bool:
        if self.error is not None or self.closed:
            return False
        try:
            frame = as_rgb_frame(frame)
            size = (frame.shape[1], frame.shape[0])
            if self.frame_size is None:
                self.frame_size = size
            elif size != self.frame_size:
                raise ExportError(f"the frame size changed from {self.frame_size[0]}x{self.frame_size[1]} to "
                                  f"{size[0]}x{size[1]}; a recording keeps one size (start a new one)")
            self._write(frame)
        except OSError as error:
            self._fail(describe_os_error(error, self.path))
            return False
        except (ExportError, ValueError) as error:
            self._fail(str(error))
            return False
        self.frames_written += 1
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._close()
        except OSError as error:
            self.error = self.error or describe_os_error(error, self.path)
        except ExportError as error:
            self.error = self.error or str(error)
        if self.frames_written == 0 and self.created_path:
            self._remove_empty()

    def _remove_empty(self) -> None:
        """Remove the file or folder open_recorder created when no frame ever went into it."""
        try:
            if self.path.is_dir():
                self.path.rmdir()   # only when empty
            else:
                self.path.unlink()
        except OSError:
            pass

    def _fail(self, message: str) -> None:
        """Stop recording; what is in the file stays."""
        self.error = message
        try:
            self._close()
        except (OSError, ExportError):
            pass

    @property
    def failed(self) -> bool:
        return self.error is not None

    def status(self) -> RecordingStatus:
        state = "failed" if self.error is not None else ("done" if self.closed else "recording")
        return RecordingStatus(self.path, self.kind, self.playback_fps, self.frames_written, self.frames_saved,
                               self.file_size, state, self.error)

    @property
    def progress(self) -> str:
        """status() in one line, for a status text."""
        return self.status().describe()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FramesRecorder(Recorder):
    """A folder of numbered PNG frames (frame000001.png ...), each given its name only when complete; a name
    that exists is never replaced."""
    kind = "frames"
    FRAME_DIGITS = 6

    def __init__(self, path, fps: float, durable: bool = False):
        super().__init__(path, fps)
        self.durable = durable   # fsync every frame: survives power loss too, at a few ms a frame

    def frame_path(self, index: int) -> Path:
        return self.path / f"frame{index + 1:0{self.FRAME_DIGITS}d}.png"

    def _write(self, frame):
        folder = ensure_folder(self.path)
        target = self.frame_path(self.frames_written)
        temporary = write_temporary(folder, "frame", png_bytes(frame), self.durable)
        try:
            if not publish(temporary, target):
                raise ExportError(f"{target} exists; not overwriting it")
        finally:
            temporary.unlink(missing_ok=True)


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


def recorder_class(kind: str):
    from .gif import GifRecorder
    from .mp4 import Mp4Recorder
    classes = {"mp4": Mp4Recorder, "gif": GifRecorder, "frames": FramesRecorder}
    if kind not in classes:
        raise ExportError(f"the recording format must be one of {', '.join(RECORDING_FORMATS)}, not {kind!r}")
    return classes[kind]


def open_recorder(kind: str, folder=None, fps: float = 30, path=None, stem: str = "recording",
                  background: bool = False, **options) -> Recorder | BackgroundRecorder:
    """A recorder of `kind` ('mp4', 'gif', 'frames') writing to exactly `path` (refused when it exists), or to
    the next free `folder/stem-NNNN.mp4|.gif|.frames`. The name is taken before this returns, so two recorders
    never share a file. `background`: run it on its own thread (BackgroundRecorder). Raises ExportError (bad
    format or fps, unwritable folder, existing path); after that, errors are values (write() -> False)."""
    cls = recorder_class(kind)
    if path is None and folder is None:
        raise ExportError("a recording needs a folder or a path")
    suffix = {"mp4": ".mp4", "gif": ".gif", "frames": ".frames"}[kind]
    directory = kind == "frames"
    if not (isinstance(fps, (int, float)) and fps > 0 and np.isfinite(fps)):
        raise ExportError(f"the frame rate must be a positive number, not {fps!r}")
    reserved = reserve_exact(path, directory) if path is not None else reserve_path(folder, stem, suffix, directory)
    recorder = cls(reserved, fps, **options)
    recorder.created_path = True
    return BackgroundRecorder(recorder) if background else recorder


def record(frames: Iterable[np.ndarray], recorder: Recorder) -> Recorder:
    """Write every frame (stopping at the first failure) and close; returns the recorder to read status from."""
    with recorder:
        for frame in frames:
            if not recorder.write(frame):
                break
    return recorder
