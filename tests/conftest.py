"""A real X server for the GUI tests: each test session starts its own Xvfb.

When CI=true and no X server can start, the GUI tests fail (they must run in CI); elsewhere they are skipped
with the reason.
"""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

XVFB_SCREEN = "1920x1080x24"
XVFB_START_TIMEOUT_S = 20


def _free_display() -> int:
    for number in range(90, 200):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return number
    raise RuntimeError("no free X display number")


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"GUI tests need an X server and none could start: {reason}")
    pytest.skip(f"no X server: {reason}")


@pytest.fixture(scope="session")
def xvfb():
    if shutil.which("Xvfb") is None:
        _unavailable("Xvfb is not installed (apt-get install xvfb)")
    number = _free_display()
    process = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", XVFB_SCREEN, "-nolisten", "tcp"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    socket = Path(f"/tmp/.X11-unix/X{number}")
    deadline = time.monotonic() + XVFB_START_TIMEOUT_S
    while not socket.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not socket.exists():
        process.kill()
        _unavailable(f"Xvfb :{number} did not start ({process.stderr.read().decode(errors='replace')[-300:]})")
    saved = {k: os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "LP_NUM_THREADS", "XDG_CONFIG_HOME")}
    os.environ["DISPLAY"] = f":{number}"
    os.environ.pop("WAYLAND_DISPLAY", None)
    os.environ["LP_NUM_THREADS"] = "1"   # software GL: leave the cores to the render worker
    yield f":{number}"
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    process.terminate()
    process.wait(timeout=10)
