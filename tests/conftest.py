"""A real X server for the GUI tests, and the one explorer app they share.

Each test session starts its own Xvfb (the server picks a free display number itself, so parallel sessions
never collide). When CI=true and no X server can start, the GUI tests fail (they must run in CI); elsewhere
they are skipped with the reason. Dear PyGui gets ONE context and viewport for the whole session: making and
destroying one per test crashed on the third test (GUI_NOTES).
"""
import os
import select
import shutil
import subprocess
import time

import pytest

XVFB_SCREEN = "1920x1080x24"
XVFB_START_TIMEOUT_S = 20
APP_VIEWER_SIZE = (320, 320)


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"GUI tests need an X server and none could start: {reason}")
    pytest.skip(f"no X server: {reason}")


def _start_xvfb():
    """(process, display number) of a new Xvfb; it writes the display it chose to a pipe (-displayfd)."""
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", XVFB_SCREEN,
                                    "-nolisten", "tcp"], pass_fds=(write_end,), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    # Read up to the newline: Xvfb writes the number and the newline separately, and dies (SIGPIPE) if the pipe
    # is gone in between.
    data, deadline = b"", time.monotonic() + XVFB_START_TIMEOUT_S
    try:
        while b"\n" not in data and time.monotonic() < deadline:
            ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(read_end, 64) if ready else b""
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_end)
    number = data.decode().strip()
    if not number.isdigit():
        process.kill()
        error = process.stderr.read().decode(errors="replace")[-300:] if process.poll() is not None else "timed out"
        return None, error
    return process, int(number)


@pytest.fixture(scope="session")
def xvfb():
    if shutil.which("Xvfb") is None:
        _unavailable("Xvfb is not installed (apt-get install xvfb)")
    process, number = _start_xvfb()
    if process is None:
        _unavailable(f"Xvfb did not start ({number})")
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
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def app(xvfb, tmp_path_factory):
    """The explorer (panels, worker, viewer process) on a tiny 64 px network, shared by the GUI tests; each
    test leaves the state as it found it (tests.gui_driver.reset puts back the defaults)."""
    from explorer.formats.native import save_network
    from tests.fixtures.networks import tiny_stylegan2
    folder = tmp_path_factory.mktemp("app")
    os.environ["XDG_CONFIG_HOME"] = str(folder / "config")
    network = folder / "net.safetensors"
    save_network(tiny_stylegan2("sg2_skip_64"), network)
    from widgets.app import App
    started = time.monotonic()
    application = App(pkl=str(network), viewer_size=APP_VIEWER_SIZE)
    application.session.capture.folder = str(folder / "captures")
    assert application.wait_for_frame(), application.controller.status.load_error
    application.startup_s = time.monotonic() - started
    application.network_file = network
    application.folder = folder
    yield application
    application.close()
