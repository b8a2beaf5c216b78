"""Latency a user feels: from a control's change in the session state to its frame drawn in the viewer process.

    xvfb-run -a -s "-screen 0 1920x1080x24" python benchmarks/bench_latency.py [--changes 40] [--config-f]

For each change (truncation psi, alternating values, as a slider drag makes them) the time from the change to the
frame of that state handed to the viewer's shared memory (App.show) is measured in the app, and the viewer reports its own
share (publication to the end of the texture upload, and to the end of the draw: medians over the last second);
their sums are the latencies to the frame uploaded (issue 11's measure) and to the frame drawn (which adds the
OpenGL implementation's draw: under Xvfb, software rendering on the same cores as the panels). Medians and
95th percentiles for the default model and, with --config-f, a 256 px config-F StyleGAN2 (random weights), each
against the frame budget of 33 ms (30 fps) measured in the same run. A third part measures the panel loop's frame
rate while a 1024 px config-F network renders, against the same loop with nothing rendering.

Needs an X display (Xvfb is fine); figures depend on the machine's load.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer.assets import DEFAULT_MODEL  # noqa: E402

FRAME_BUDGET_MS = 1000 / 30
PSI_VALUES = (0.55, 0.75)         # alternated, so every change is a new state
TIMEOUT_S = 120


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def config_f(resolution: int, folder: Path) -> Path:
    """A config-F StyleGAN2 (channel_base 32768, 512 channels at most) with random weights, saved."""
    import torch

    from explorer.formats.native import save_network
    from explorer.networks.stylegan2 import Generator
    torch.manual_seed(0)
    G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3,
                  mapping_kwargs=dict(num_layers=8), channel_base=32768, channel_max=512, num_fp16_res=4,
                  conv_clamp=256).eval()
    path = folder / f"config-f-{resolution}.safetensors"
    save_network(G, path)
    return path


def change_to_frame(app, changes: int) -> tuple[list[float], list[float]]:
    """Milliseconds from each change to its frame uploaded and drawn in the viewer: the app's share of each, the
    viewer's median shares added."""
    c = app.controller
    latencies = []
    viewer_share, upload_share, renders = [], [], []
    for n in range(changes):
        psi = PSI_VALUES[n % 2]
        started = time.perf_counter()
        c.set("truncation", "psi", psi)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            app.step()
            frame = c.frame
            if frame is not None and frame.result.request == c.request() and c.last_finished == c.request():
                break
            if time.monotonic() > deadline:
                raise SystemExit("timed out waiting for a frame")
        # The frame went to the viewer when the app handed it over (App.show), which may be before the panels of that
        # step were drawn: the viewer draws in its own process meanwhile.
        latencies.append((app.shown_at - started) * 1000)
        renders.append(frame.result.timings.total_s * 1000)
        time.sleep(0.05)                      # the viewer uploads and draws; its figures come twice a second
        for _ in range(3):
            app.step()
        viewer_share.append(app.viewer_latency_ms)
        upload_share.append(app.viewer_upload_latency_ms)
    share = statistics.median(v for v in viewer_share if v) if any(viewer_share) else 0.0
    to_upload = statistics.median(v for v in upload_share if v) if any(upload_share) else 0.0
    print(f"  app side: median {statistics.median(latencies):.1f} ms, 95th percentile {percentile(latencies, 0.95):.1f}"
          f" ms (the render itself: median {statistics.median(renders):.1f} ms, 95th percentile "
          f"{percentile(renders, 0.95):.1f} ms); the viewer's share (its medians): publication to uploaded "
          f"{to_upload:.1f} ms, to drawn {share:.1f} ms")
    return [value + to_upload for value in latencies], [value + share for value in latencies]


def panel_fps(app, seconds: float, render: bool) -> float:
    c = app.controller
    frames, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        if render and not c.worker.busy:
            c.set("truncation", "psi", PSI_VALUES[frames % 2])
        app.step()
        frames += 1
        time.sleep(max(0.0, 1 / 60 - (time.perf_counter() - app.last_frame_time)))
    return frames / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--config-f", action="store_true", help="also config F at 256 px and the 1024 px panels")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    from explorer.memory import keep_freed_memory
    from renderer import messages as msg
    from widgets.app import App
    keep_freed_memory()          # as the stylegan-explorer command does at its start

    class MeasuredApp(App):
        viewer_latency_ms = 0.0
        viewer_upload_latency_ms = 0.0
        shown_at = 0.0

        def show(self, frame):
            self.shown_at = time.perf_counter()
            super().show(frame)

        def on_viewer_event(self, event):
            if isinstance(event, msg.ViewerStats):
                self.viewer_latency_ms = event.latency_ms
                self.viewer_upload_latency_ms = event.upload_latency_ms
            super().on_viewer_event(event)

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        networks = [("default model (64 px)", DEFAULT_MODEL)]
        if args.config_f:
            networks.append(("config F, 256 px", config_f(256, Path(folder))))
        for label, path in networks:
            app = MeasuredApp(pkl=str(path))
            try:
                app.session.performance.adaptive = False       # exact frames: the latency of the exact tier
                assert app.wait_for_frame(TIMEOUT_S), app.controller.status.load_error
                for kind, values in zip(("uploaded", "drawn"), change_to_frame(app, args.changes)):
                    rows.append((label, kind, statistics.median(values), percentile(values, 0.95)))
            finally:
                app.close()
        print(f"latency from a change to its frame uploaded and drawn in the viewer ({args.changes} changes; budget "
              f"{FRAME_BUDGET_MS:.0f} ms = 30 fps)")
        print(f"{'network':<24}{'to':<10}{'median ms':>12}{'p95 ms':>10}{'p95 / budget':>14}")
        for label, kind, median, p95 in rows:
            print(f"{label:<24}{kind:<10}{median:>12.1f}{p95:>10.1f}{p95 / FRAME_BUDGET_MS:>14.2f}")
        print("(each change's app part plus the viewer's median share: the viewer's own spread is not in the p95)")
        if args.config_f:
            app = MeasuredApp(pkl=str(config_f(1024, Path(folder))))
            try:
                app.session.performance.adaptive = False
                assert app.wait_for_frame(TIMEOUT_S * 5), app.controller.status.load_error
                idle = panel_fps(app, args.seconds, render=False)
                busy = panel_fps(app, args.seconds, render=True)
            finally:
                app.close()
            print(f"panel loop: {busy:.1f} fps while config F 1024 renders, {idle:.1f} fps idle "
                  f"(ratio {busy / idle:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
