"""Taking screenshots of the running window (`--screenshot OUT.png`, tests): the panels through Dear PyGui's frame
buffer, the viewer through its own glReadPixels, side by side in one PNG."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from renderer import messages as msg

SCREENSHOT_SETTLE_FRAMES = 4     # Dear PyGui's frame buffer lags ~2 frames behind a change
STATS_WAIT_S = 2.0               # the viewer reports its figures twice a second
STATS_POLL_S = 0.01
CAPTURE_TIMEOUT_S = 10.0


def capture_viewer(app, path: str, timeout: float = CAPTURE_TIMEOUT_S) -> bool:
    for _ in range(SCREENSHOT_SETTLE_FRAMES):
        app.step()
        time.sleep(0.02)
    app.viewer.send(msg.CaptureWindow(path))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in app.viewer.poll():
            if isinstance(event, msg.Captured):
                return event.error is None
            app.on_viewer_event(event)
        app.dpg.render_dearpygui_frame()
        time.sleep(0.01)
    return False


def capture_panels(app, path: str) -> bool:
    for _ in range(SCREENSHOT_SETTLE_FRAMES):
        app.step()
    app.dpg.output_frame_buffer(file=path)
    for _ in range(SCREENSHOT_SETTLE_FRAMES):
        app.step()
    return Path(path).exists()


def capture_both(app, out: str) -> bool:
    """Panels and viewer side by side, once the viewer has reported its frame rate (so that the heads-up line
    shows one)."""
    from PIL import Image
    deadline = time.monotonic() + STATS_WAIT_S
    while app.controller.status.display.viewer_fps == 0 and time.monotonic() < deadline and app.step():
        time.sleep(STATS_POLL_S)
    with tempfile.TemporaryDirectory() as folder:
        panels, viewer = os.path.join(folder, "panels.png"), os.path.join(folder, "viewer.png")
        if not (capture_panels(app, panels) and capture_viewer(app, viewer)):
            return False
        a, b = Image.open(panels).convert("RGB"), Image.open(viewer).convert("RGB")
        gap = app.layout.em(1)
        sheet = Image.new("RGB", (a.width + gap + b.width, max(a.height, b.height)), (20, 20, 20))
        sheet.paste(a, (0, 0))
        sheet.paste(b, (a.width + gap, 0))
        sheet.save(out)
    return True
