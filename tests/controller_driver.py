"""Driving a headless controller in tests as the window's frame loop does: wait for posted work, tick."""
import time

WAIT_S = 30.0                 # generous: the machine running the tests may be busy


def pump(controller, until, timeout=WAIT_S) -> bool:
    """Ticks until `until()` holds (True) or the time is up (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        controller.wakeup.wait(0.02)
        controller.tick()
        if until():
            return True
    return False
