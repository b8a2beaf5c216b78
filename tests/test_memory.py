"""explorer.memory: a large block freed by one frame is reused by the next without the system's fresh pages."""
import platform
import subprocess
import sys

import pytest

PROBE = """
import resource, sys, threading
import numpy as np
sys.path.insert(0, {root!r})
from explorer.memory import keep_freed_memory
kept = keep_freed_memory() if {keep} else None
SIZE = 200 * 2 ** 20                 # over the 64 MB a thread's own arena holds, as a 1024 px activation is
faults = []

def frame():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.empty(SIZE, np.uint8)
    block.fill(1)                    # touch every page
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del block

for _ in range(2):                   # two frames in the render thread
    worker = threading.Thread(target=frame)
    worker.start()
    worker.join()
print(kept, faults[0], faults[1])
"""


def _frames(keep: bool) -> tuple[str, int, int]:
    from pathlib import Path
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=root, keep=keep)], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], int(out[1]), int(out[2])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc's malloc only; elsewhere keep_freed_memory changes nothing (tested below)")
def test_the_second_frame_reuses_the_first_frames_pages():
    """Counted in page faults (4 KB pages, or 2 MB ones where the kernel makes huge pages: so as ratios)."""
    kept, first, second = _frames(keep=True)
    assert kept == "True"
    assert first > 0 and second <= first // 10      # the second frame's pages are the first's, kept
    kept, first, second = _frames(keep=False)
    assert second > 0 and second >= first // 2      # glibc as it is: fresh pages again


def test_other_systems_are_left_alone(monkeypatch):
    import explorer.memory
    monkeypatch.setattr(explorer.memory.platform, "system", lambda: "Darwin")
    assert explorer.memory.keep_freed_memory() is False
