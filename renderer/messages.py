"""What crosses between the app and the viewer process: small frozen records, pickled through queues."""
from __future__ import annotations

from dataclasses import dataclass


# -- app -> viewer ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ViewSettings:
    fit: bool = True
    zoom: int = 1
    pan_x: float = 0.0
    pan_y: float = 0.0
    fullscreen: bool = False


@dataclass(frozen=True)
class HeadsUp:
    """The text line drawn over the image."""
    text: str


@dataclass(frozen=True)
class CaptureWindow:
    """Read the window's pixels back (glReadPixels) and save them as a PNG at `path`."""
    path: str


@dataclass(frozen=True)
class AttachFrames:
    """Frames now come through the shared-memory ring of this name (the app made a bigger one)."""
    name: str


@dataclass(frozen=True)
class FrameRateLimit:
    """Draw at most this many frames a second (0: as fast as frames come)."""
    fps: int


@dataclass(frozen=True)
class Quit:
    pass


# -- viewer -> app ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ready:
    width: int
    height: int
    gl_version: str


@dataclass(frozen=True)
class Drag:
    """The left button moved the image by (dx, dy) window pixels."""
    dx: float
    dy: float


@dataclass(frozen=True)
class Pan:
    """The right button moved the image by (dx, dy) frame pixels."""
    dx: float
    dy: float


@dataclass(frozen=True)
class Zoom:
    """Scroll: steps > 0 zooms in. scale: the window pixels per frame pixel shown when it happened (from fit,
    zooming starts at the nearest whole step)."""
    steps: int
    scale: float = 1.0


@dataclass(frozen=True)
class Key:
    """A shortcut key by name ('right', 'f', 'space', ...)."""
    name: str
    shift: bool = False
    ctrl: bool = False


@dataclass(frozen=True)
class Selected:
    """Shift + left drag: a rectangle of output pixels, rows top..bottom-1, columns left..right-1."""
    top: int
    left: int
    bottom: int
    right: int


@dataclass(frozen=True)
class Dropped:
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Cursor:
    """The frame pixel under the cursor (None outside the frame) and its RGB value; in_output: whether it is in
    the generator's output (the rest of a frame is the layer view beside it)."""
    x: int | None
    y: int | None
    rgb: tuple[int, int, int] | None
    in_output: bool = True


@dataclass(frozen=True)
class Captured:
    path: str
    error: str | None = None


@dataclass(frozen=True)
class Closed:
    """The window closed; reason: why, when it could not open or failed."""
    reason: str | None = None


@dataclass(frozen=True)
class ViewerStats:
    """Over the last second: new frames shown per second, the last texture upload, and the median time from a
    frame's publication in shared memory to the end of its draw (the viewer's share of the latency), and to the end
    of its texture upload (the share up to the GPU's copy; the draw after it is the OpenGL implementation's)."""
    fps: float
    upload_ms: float
    latency_ms: float = 0.0
    draws_per_s: float = 0.0
    upload_latency_ms: float = 0.0
