"""A recording as a folder of numbered PNG frames, each named only when complete."""
from __future__ import annotations

from pathlib import Path

from .files import ExportError, ensure_folder, publish, write_temporary
from .recorder import Recorder
from .screenshot import png_bytes


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
