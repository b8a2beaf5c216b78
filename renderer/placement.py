"""Where a frame sits in the viewer window, and which frame pixel is under a window point: pure arithmetic,
shared by drawing, the cursor read-out and drags, and testable without a window.

Window coordinates are framebuffer pixels with y down (the origin at the top left, as the cursor reports it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .messages import ViewSettings


@dataclass(frozen=True)
class Placement:
    """The frame's top-left corner in the window and its scale (window pixels per frame pixel)."""
    left: float
    top: float
    scale: float
    width: int      # frame size in frame pixels
    height: int

    @property
    def right(self) -> float:
        return self.left + self.width * self.scale

    @property
    def bottom(self) -> float:
        return self.top + self.height * self.scale

    def frame_pixel(self, x: float, y: float) -> tuple[int, int] | None:
        """The frame pixel (column, row) under window point (x, y), or None outside the frame."""
        if self.scale <= 0:
            return None
        column = math.floor((x - self.left) / self.scale)
        row = math.floor((y - self.top) / self.scale)
        if 0 <= column < self.width and 0 <= row < self.height:
            return column, row
        return None


def place(window_width: int, window_height: int, frame_width: int, frame_height: int,
          view: ViewSettings) -> Placement:
    """Fit: the largest scale that shows the whole frame, centred (pan ignored). Otherwise the integer zoom,
    centred, moved by the pan (in frame pixels, so a pan keeps its place on the image across zoom steps).
    Corners are rounded to whole window pixels so that 1:1 and integer zooms map pixels exactly."""
    if frame_width <= 0 or frame_height <= 0:
        return Placement(0.0, 0.0, 0.0, 0, 0)
    if view.fit:
        scale = min(window_width / frame_width, window_height / frame_height)
        pan_x = pan_y = 0.0
    else:
        scale = float(view.zoom)
        pan_x, pan_y = view.pan_x, view.pan_y
    left = math.floor((window_width - frame_width * scale) / 2 + pan_x * scale)
    top = math.floor((window_height - frame_height * scale) / 2 + pan_y * scale)
    return Placement(float(left), float(top), scale, frame_width, frame_height)
