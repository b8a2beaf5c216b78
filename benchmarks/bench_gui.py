"""The explorer window's speed, each figure against a baseline measured in the same run.

    xvfb-run -a -s "-screen 0 1920x1080x24" python benchmarks/bench_gui.py [--seconds 3] [--sizes 512,1024]

1. Frame transport to another process: the shared-memory ring the viewer reads (renderer.frames) against
   pickling the frame through a multiprocessing Queue, the obvious alternative. Latency from publishing a frame
   to a copy of it in the child, median and 95th percentile.
2. The viewer end to end: frames published, uploaded (glTexSubImage2D) and drawn; the viewer's own latency
   figure (publication to drawn) and frames shown per second.
3. The panel loop: Dear PyGui frames per second while a network that takes 1 s a frame keeps rendering, against
   the same loop with no render running. The render runs on the worker thread; the panels must stay usable.
   Two kinds of slow network: a small one made slow by a 1 s sleep (what the GUI test uses), and a real 256 px
   StyleGAN2 that computes for about a second a frame on one CPU thread, which also competes with the panels
   for the GIL and the cores. Also the worst single panel frame in each run.
4. Render time inside the app (a 64 px network, the panel loop paced as the app paces it): torch on every core
   against every core but one (what the app sets, widgets.app.render_threads).

Needs an X display (Xvfb is fine). Software GL figures depend on the machine's load: compare ratios.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from renderer.frames import CHANNELS, FrameMeta, FrameRing  # noqa: E402

NANOSECONDS = 1e9
POLL_S = 0.001            # how often the child looks for a new frame in shared memory (the viewer: 2 ms)
FRAME_INTERVAL_S = 1 / 30
SLOW_FRAME_S = 1.0


def percentiles(values_ms):
    ordered = sorted(values_ms)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


# -- 1. transport ------------------------------------------------------------------------------------------------

def _ring_reader(name, results, stop):
    ring = FrameRing.attach(name)
    last, latencies = 0, []
    while not stop.is_set():
        frame = ring.read_newer(last)
        if frame is not None:
            latencies.append((time.monotonic_ns() - frame.published_ns) / NANOSECONDS * 1000)
            last = frame.seq
        else:
            time.sleep(POLL_S)
    results.put(latencies)
    ring.close()


def _queue_reader(frames, results, stop):
    latencies = []
    while not stop.is_set():
        try:
            published_ns, pixels = frames.get(timeout=0.05)
        except queue.Empty:
            continue
        latencies.append((time.monotonic_ns() - published_ns) / NANOSECONDS * 1000)
        del pixels
    results.put(latencies)


def transport(size: int, seconds: float):
    context = multiprocessing.get_context("spawn")
    image = np.random.RandomState(0).randint(0, 256, (size, size, 3)).astype(np.uint8)
    rgba = np.concatenate([image, np.full((size, size, 1), 255, np.uint8)], axis=2)
    out = {}

    ring = FrameRing.create(size * size * CHANNELS)
    results, stop = context.Queue(), context.Event()
    child = context.Process(target=_ring_reader, args=(ring.name, results, stop), daemon=True)
    child.start()
    time.sleep(1.0)    # let it start
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        ring.write(image, FrameMeta(size, size))
        time.sleep(FRAME_INTERVAL_S)
    stop.set()
    out["shared memory"] = percentiles(results.get(timeout=30))
    child.join()
    ring.close()

    frames, results, stop = context.Queue(), context.Queue(), context.Event()
    child = context.Process(target=_queue_reader, args=(frames, results, stop), daemon=True)
    child.start()
    time.sleep(1.0)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        frames.put((time.monotonic_ns(), rgba))
        time.sleep(FRAME_INTERVAL_S)
    time.sleep(0.5)
    stop.set()
    out["pickled through a Queue"] = percentiles(results.get(timeout=30))
    child.join()
    return out


# -- 2. the viewer ------------------------------------------------------------------------------------------------

def viewer_end_to_end(size: int, seconds: float):
    from renderer import messages as msg
    from renderer.process import ViewerProcess
    viewer = ViewerProcess(size=(768, 768), title="bench-viewer")
    viewer.start()
    frames = [np.random.RandomState(s).randint(0, 256, (size, size, 3)).astype(np.uint8) for s in range(4)]
    stats = []
    start, n = time.monotonic(), 0
    try:
        while time.monotonic() - start < seconds:
            viewer.show(frames[n % len(frames)], FrameMeta(size, size))
            n += 1
            time.sleep(FRAME_INTERVAL_S)
            stats += [e for e in viewer.poll() if isinstance(e, msg.ViewerStats) and e.fps > 0]
    finally:
        viewer.stop()
    return stats[-1] if stats else None


# -- 3. the panel loop --------------------------------------------------------------------------------------------

# A StyleGAN2 that takes about 1 s a frame on one CPU thread (1.1 s measured on the 2-core machine, idle).
SLOW_NETWORK = dict(z_dim=64, c_dim=0, w_dim=64, img_resolution=256, img_channels=3,
                    mapping_kwargs=dict(num_layers=2), channel_base=16384, channel_max=256, num_fp16_res=0,
                    conv_clamp=256)


def slow_network():
    from explorer.networks.stylegan2 import Generator
    from tests.fixtures.networks import randomize_
    return randomize_(Generator(**SLOW_NETWORK), seed=0).eval().requires_grad_(False)


def real_network_panel_fps(seconds: float):
    """Panel frames per second with no render running, then while the real 1 s/frame network renders."""
    import torch

    from explorer.formats.native import save_network
    from widgets.app import App
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        network = Path(folder) / "slow.safetensors"
        save_network(slow_network(), network)
        os.environ.setdefault("XDG_CONFIG_HOME", str(Path(folder) / "config"))
        app = App(pkl=str(network), viewer_size=(320, 320))
        try:
            if not app.wait_for_frame(timeout=300):
                raise SystemExit(f"the app did not render: {app.controller.status.load_error}")
            idle = _loop_fps(app, seconds, change=False)
            before = app.controller.worker.rendered
            busy = _loop_fps(app, max(seconds, 3 * SLOW_FRAME_S), change=True)
            rendered = app.controller.worker.rendered - before
            render_ms = app.controller.status.timings.total_s * 1000
        finally:
            app.close()
    return idle, busy, rendered, render_ms


def panel_fps(seconds: float):
    import torch

    from explorer.formats.native import save_network
    from tests.fixtures.networks import tiny_stylegan2
    from widgets.app import App
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        network = Path(folder) / "net.safetensors"
        save_network(tiny_stylegan2("sg2_skip_64"), network)
        os.environ.setdefault("XDG_CONFIG_HOME", str(Path(folder) / "config"))
        app = App(pkl=str(network), viewer_size=(320, 320))
        try:
            if not app.wait_for_frame():
                raise SystemExit(f"the app did not render: {app.controller.status.load_error}")
            idle = _loop_fps(app, seconds, change=False)
            import explorer.worker
            fast_render = explorer.worker.render

            def slow_render(*args, **kwargs):     # every frame of the network takes a second more
                time.sleep(SLOW_FRAME_S)
                return fast_render(*args, **kwargs)

            explorer.worker.render = slow_render
            before = app.controller.worker.rendered
            busy = _loop_fps(app, seconds, change=True)
            rendered = app.controller.worker.rendered - before
            explorer.worker.render = fast_render
        finally:
            app.close()
    return idle, busy, rendered


def _loop_fps(app, seconds, change):
    """(panel frames per second, the longest frame in ms), unpaced (the app's own loop caps at 60 where no vsync
    paces it)."""
    start, frames, worst = time.monotonic(), 0, 0.0
    seed = 1000
    last = start
    while time.monotonic() - start < seconds:
        if change and frames % 10 == 0:
            seed += 1
            app.session.latent.set_seed(seed)    # a new request every few frames, as a dragged slider makes
        app.step()
        frames += 1
        now = time.monotonic()
        worst, last = max(worst, now - last), now
    return frames / (time.monotonic() - start), worst * 1000


def render_ms_in_app(threads: int, renders: int) -> float:
    """Median render time (ms) in the app with torch on `threads` threads. Torch's thread count is per thread
    for threads that already exist, so it is set before the app (and its worker thread) starts: one app per
    process, hence a child process for each count (see main)."""
    import torch

    from explorer.formats.native import save_network
    from tests.fixtures.networks import tiny_stylegan2
    os.environ["OMP_NUM_THREADS"] = str(threads)     # the app keeps an explicit setting
    torch.set_num_threads(threads)
    from widgets.app import PANEL_FPS_CAP, App
    with tempfile.TemporaryDirectory() as folder:
        network = Path(folder) / "net.safetensors"
        save_network(tiny_stylegan2("sg2_skip_64"), network)
        os.environ.setdefault("XDG_CONFIG_HOME", str(Path(folder) / "config"))
        app = App(pkl=str(network), viewer_size=(320, 320))
        try:
            if not app.wait_for_frame():
                raise SystemExit(f"the app did not render: {app.controller.status.load_error}")
            times, seed = [], 5000
            for _ in range(renders):
                seed += 1
                app.session.latent.set_seed(seed)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    app.step()
                    time.sleep(max(0.0, 1 / PANEL_FPS_CAP - (time.perf_counter() - app.last_frame_time)))
                    if app.controller.frame.result is not None and app.controller.frame.result.request.seed_weights == ((seed, 1.0),):
                        break
                times.append(app.controller.status.timings.total_s * 1000)
        finally:
            app.close()
    return statistics.median(times)


def render_ms_child(threads: int, renders: int) -> float:
    import subprocess
    out = subprocess.run([sys.executable, __file__, "--render-ms-child", str(threads), "--renders", str(renders)],
                         capture_output=True, text=True, timeout=600)
    lines = [l for l in out.stdout.splitlines() if l.startswith("render_ms ")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"the render-time child failed: {out.stderr[-500:]}")
    return float(lines[-1].split()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--renders", type=int, default=10, help="renders timed per thread count (section 4)")
    parser.add_argument("--render-ms-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render_ms_child:
        print(f"render_ms {render_ms_in_app(args.render_ms_child, args.renders):.3f}")
        return 0
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print("bench_gui: needs a display; run it under xvfb-run -a -s '-screen 0 1920x1080x24'", file=sys.stderr)
        return 2
    os.environ.setdefault("LP_NUM_THREADS", "1")
    sizes = [int(s) for s in args.sizes.split(",")]

    print("1. frame transport to a child process (latency, ms: median / p95)")
    for size in sizes:
        out = transport(size, args.seconds)
        ring, pickled = out["shared memory"], out["pickled through a Queue"]
        print(f"   {size}x{size}: shared memory {ring[0]:.2f} / {ring[1]:.2f}   pickled Queue {pickled[0]:.2f} / "
              f"{pickled[1]:.2f}   ratio (Queue / shared memory, median) {pickled[0] / ring[0]:.1f}x")

    print("2. the viewer: published -> uploaded -> drawn (its own figures over the last second)")
    for size in sizes:
        stats = viewer_end_to_end(size, args.seconds)
        if stats is None:
            print(f"   {size}x{size}: no frames shown")
            continue
        print(f"   {size}x{size}: latency median {stats.latency_ms:.1f} ms, upload {stats.upload_ms:.2f} ms, "
              f"{stats.fps:.0f} new frames/s of {1 / FRAME_INTERVAL_S:.0f} sent, {stats.draws_per_s:.0f} draws/s")

    print(f"3. panel loop while a {SLOW_FRAME_S:.0f} s/frame network renders (unpaced frames per second; worst frame)")
    idle, busy, rendered = panel_fps(args.seconds)
    print(f"   sleeping network: idle {idle[0]:.0f} fps ({idle[1]:.0f} ms)   rendering {busy[0]:.0f} fps "
          f"({busy[1]:.0f} ms; {rendered} renders done)   ratio rendering / idle {busy[0] / idle[0]:.2f}")
    idle, busy, rendered, render_ms = real_network_panel_fps(args.seconds)
    print(f"   computing 256 px network ({render_ms:.0f} ms a frame in the app): idle {idle[0]:.0f} fps "
          f"({idle[1]:.0f} ms)   rendering {busy[0]:.0f} fps ({busy[1]:.0f} ms; {rendered} renders done)   ratio "
          f"rendering / idle {busy[0] / idle[0]:.2f}")

    from widgets.app import render_threads
    every_core = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    print(f"4. render time in the app, 64 px network (median of {args.renders} renders)")
    if every_core == render_threads():
        print("   one core: nothing to compare")
    else:
        all_cores, app_threads = (render_ms_child(n, args.renders) for n in (every_core, render_threads()))
        print(f"   torch on all {every_core} cores {all_cores:.0f} ms   on {render_threads()} (a core left to the GUI) "
              f"{app_threads:.0f} ms   ratio {all_cores / app_threads:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
