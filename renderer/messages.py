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
    """The right button moved the image by (dx, dy) window pixels."""
    dx: float
    dy: float


@dataclass(frozen=True)
class Zoom:
    """Scroll: steps > 0 zooms in."""
    steps: int


@dataclass(frozen=True)
class Key:
    """A shortcut key by name ('right', 'f', 'space', ...)."""
    name: str
    shift: bool = False


@dataclass(frozen=True)
class Dropped:
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Cursor:
    """The image pixel under the cursor (None outside the image) and its RGB value."""
    x: int | None
    y: int | None
    rgb: tuple[int, int, int] | None


@dataclass(frozen=True)
class Captured:
    path: str
    error: str | None = None


@dataclass(frozen=True)
class Closed:
    pass


@dataclass(frozen=True)
class ViewerStats:
    fps: float
    upload_ms: float
