"""Whether a window can open at all: Dear PyGui aborts the whole interpreter (a C assert) without a display."""
from __future__ import annotations

import os
import sys


def missing_display_reason() -> str | None:
    """None when a display is reachable; otherwise one line saying why the window cannot open."""
    if sys.platform.startswith("linux"):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return ("no display: DISPLAY and WAYLAND_DISPLAY are unset. Run it on a desktop, or under a virtual "
                    "X server (xvfb-run -a stylegan-explorer ...); the headless commands render, info, convert "
                    "and video need no display")
    return None
