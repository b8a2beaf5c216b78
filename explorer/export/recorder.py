"""What every recorder shares: the frame check, the fixed frame rate, errors kept as state, the status record.

A format's writer (mp4.py, gif.py, frames.py) subclasses `Recorder` and provides `_write` (and `_close`); the
table of formats (recording_formats.py) lists them, and recording.py opens them. This module imports none of
them, so the writers and the table depend on it and never on each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import ExportError, describe_os_error

RECORDING_STATES = ("recording", "finishing", "done", "failed")   # finishing: closed, the file being completed


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
