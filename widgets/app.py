"""The explorer app: the controller, the viewer process and the panels, wired. Nothing else lives here.

  panels / viewer input  ->  controller commands and session edits (validated, undoable)
  controller.tick()      ->  a new Frame for the viewer (shared memory); Status for the panels
The controller renders on its worker thread; the viewer draws in its own process (docs/ARCHITECTURE.md).
"""
from __future__ import annotations

import os
import sys
import time

from explorer.controller import Controller, DisplayFigures, Frame
from explorer.state import StateChange

from renderer import messages as msg
from renderer.frames import FrameMeta

from .automation import capture_both
from .keymap import Keymap
from .layout import Layout
from .panels import PANEL_COLUMNS, build_panels

EXIT_FAILED = 1
EXIT_NO_DISPLAY = 2               # as the command's own display check
PANEL_FPS_CAP = 60                # the panel loop's frame rate where no vsync paces it
FPS_WINDOW_S = 1.0                # the panel frame rate is counted over this long
# A render expected to take at most this long is waited for before the panels are drawn, so that its frame goes to
# the viewer in this panel frame and not after the next draw (which takes 15-30 ms under software OpenGL): a fast
# network's latency is then its render, not a panel frame more. The price is that panel frame, later by the render:
# while a control of the default model (about 40 ms a frame here) is dragged, the panels draw about 15 times a
# second instead of 40, and the image comes a frame sooner. Slower renders are not waited for: the panels keep their
# frame rate while they run. The wait is only in the step that submitted the request, so that a render slower than
# expected costs the panels one wait, not one a frame.
FAST_RENDER_WAIT_S = 0.05


def render_threads() -> int:
    """Torch threads for the render worker: every core but one, which the panel loop, the viewer process and the
    X server need: on 2 shared cores, torch on both made a 64 px render in the app 2-5x slower (26-56 ms
    against 11-13 ms; benchmarks/bench_gui.py). OMP_NUM_THREADS, when set, decides. Set before the worker thread
    starts: torch's thread count is per thread once a thread exists."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)


def heads_up_text(controller: Controller) -> str:
    """The viewer's heads-up line: resolution, render time, frame rate, where in seed space; the render error in
    its place while one stands (the viewer adds the pixel under the cursor)."""
    status, session = controller.status, controller.session
    if status.render_error:
        return f"render failed: {status.render_error}"
    if controller.frame is None:
        return "no network: drop a network file here, or open one in the Network panel" \
            if session.network.path is None else f"loading {status.loading or session.network.path} ..."
    h, w = controller.frame.result.image.shape[:2]
    latent = session.latent
    where = f"seed {latent.seed}" if latent.x == round(latent.x) and latent.y == round(latent.y) \
        else f"position ({latent.x:.2f}, {latent.y:.2f})"
    fps = f"{status.display.viewer_fps:.0f} fps" if status.display.viewer_fps else "- fps"
    render_ms = status.timings.total_s * 1000 if status.timings else 0.0
    tier = "" if status.tier == "exact" else f"   {status.tier}"
    return f"{w}x{h}   render {render_ms:.0f} ms   {fps}   {where}{tier}"


class App:
    def __init__(self, pkl: str | None = None, state_file: str | None = None, layout: Layout | None = None,
                 viewer_size=(768, 768)):
        import dearpygui.dearpygui as dpg

        from renderer.process import ViewerProcess, ViewerUnavailable

        self.dpg = dpg
        self.layout = layout or Layout()
        if not os.environ.get("OMP_NUM_THREADS"):
            import torch
            torch.set_num_threads(render_threads())
        self.controller = Controller()
        self.session = self.controller.session
        self.viewer = ViewerProcess(size=viewer_size, position=(self.layout.viewer_x, 0))
        self.keymap = Keymap(self.controller, dpg.stop_dearpygui)
        self.panels = build_panels(self.controller, self.layout)
        self.heads_up = ""
        self.last_frame_time = time.perf_counter()
        self.frame_times: list[float] = []

        dpg.create_context()
        dpg.create_viewport(title="stylegan-explorer", width=self.layout.panel_width,
                            height=self.layout.panel_height, x_pos=0, y_pos=0)
        with dpg.window(tag="panels", label="stylegan-explorer", no_close=True, no_collapse=True,
                        width=self.layout.panel_width, height=self.layout.panel_height):
            with dpg.group(horizontal=True):
                for column in self.columns():
                    with dpg.child_window(width=self.layout.column_width, height=-1, border=False):
                        for panel in column:
                            panel.build()
        with dpg.handler_registry():
            dpg.add_key_press_handler(dpg.mvKey_Z, callback=self.on_panel_undo_key)
            dpg.add_key_press_handler(dpg.mvKey_Y, callback=self.on_panel_undo_key)
        dpg.set_primary_window("panels", True)
        dpg.setup_dearpygui()
        dpg.show_viewport()
        try:
            self.viewer.start()
        except ViewerUnavailable:
            # Leave nothing running behind the error: run_app reports it in one line.
            self.controller.close()
            dpg.destroy_context()
            raise
        self.viewer.send(msg.FrameRateLimit(self.session.performance.fps_limit))
        self.session.events.connect(self.on_change)
        self.controller.connect(self.on_status)
        # A network the user named wins over the one a session file names.
        opened = self.controller.open_session(state_file, network=pkl) if state_file else False
        if pkl and not opened:
            self.controller.open_network(str(pkl))
        elif not pkl and not self.controller.status.loading:
            self.panel("NetworkPanel").ask_for_file()

    def panel(self, name: str):
        return next(p for p in self.panels if type(p).__name__ == name)

    def columns(self) -> list[list]:
        by_name = {type(panel).__name__: panel for panel in self.panels}
        columns = [[by_name.pop(name) for name in names if name in by_name] for names in PANEL_COLUMNS]
        columns[-1] += [panel for panel in self.panels if type(panel).__name__ in by_name]
        return columns

    def on_change(self, change: StateChange) -> None:
        for panel in self.panels:
            panel.on_change(change)
        if change.section == "viewer":
            v = self.session.viewer
            self.viewer.send(msg.ViewSettings(fit=v.fit, zoom=v.zoom, pan_x=v.pan_x, pan_y=v.pan_y,
                                              fullscreen=v.fullscreen))
        elif change.section == "performance" and change.field == "fps_limit":
            self.viewer.send(msg.FrameRateLimit(change.new))

    def on_status(self, old, new) -> None:
        for panel in self.panels:
            panel.on_status(old, new)

    def on_panel_undo_key(self, sender, key) -> None:
        dpg = self.dpg
        if not (dpg.is_key_down(dpg.mvKey_LControl) or dpg.is_key_down(dpg.mvKey_RControl)):
            return
        shift = dpg.is_key_down(dpg.mvKey_LShift) or dpg.is_key_down(dpg.mvKey_RShift)
        name = "z" if key == dpg.mvKey_Z else "y"
        self.keymap.key(msg.Key(name, shift=shift, ctrl=True))

    def on_viewer_event(self, event) -> None:
        if isinstance(event, msg.ViewerStats):
            self.controller.report_display(DisplayFigures(self.panel_fps, event.fps, event.upload_ms,
                                                          event.draws_per_s))
        else:
            self.keymap.on_event(event)

    @property
    def panel_fps(self) -> float:
        return float(len(self.frame_times)) / FPS_WINDOW_S

    def step(self) -> bool:
        """One frame: controller news, viewer input, the panels drawn."""
        now = time.perf_counter()
        dt, self.last_frame_time = now - self.last_frame_time, now
        self.frame_times = [t for t in self.frame_times if t > now - FPS_WINDOW_S] + [now]
        for event in self.viewer.poll():
            self.on_viewer_event(event)
        frame = self.controller.tick(dt)
        if frame is None and self.controller.submitted_in_tick and self.controller.worker.busy:
            expected = self.controller.exact_render_s
            if expected is not None and expected <= FAST_RENDER_WAIT_S and self.controller.wakeup.wait(
                    2 * FAST_RENDER_WAIT_S):
                frame = self.controller.tick()
        if frame is not None:
            self.show(frame)
        text = heads_up_text(self.controller)
        if text != self.heads_up:
            self.heads_up = text
            self.viewer.send(msg.HeadsUp(text))
        self.dpg.render_dearpygui_frame()
        # A render that finished while the panels were drawn goes to the viewer now, not a panel frame later.
        late = self.controller.tick()
        if late is not None:
            self.show(late)
        return self.dpg.is_dearpygui_running() and not self.viewer.closed

    def show(self, frame: Frame) -> None:
        height, width = frame.result.image.shape[:2]
        self.viewer.show(frame.view, FrameMeta(width, height, frame.result.timings.total_s * 1000))

    def wait_for_frame(self, timeout: float = 120.0) -> bool:
        """Runs frames until the current state is on screen (True), or failed or timed out (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.step():
            if self.controller.settled():
                frame = self.controller.frame
                return frame is not None and frame.result.request == self.controller.last_finished
            status = self.controller.status
            if status.load_error and self.controller.loaded_path is None and not status.loading:
                return False
        return False

    def close(self) -> None:
        from explorer.remote.live import remote_for
        remote_for(self.controller).close()       # OSC server, MIDI input, live sound, a morph: all stopped
        self.controller.close()
        self.viewer.stop()
        self.dpg.destroy_context()


def run_app(pkl: str | None = None, state_file: str | None = None, screenshot: str | None = None,
            quit_after: bool = False, osc_port: int | None = None, osc_host: str = "127.0.0.1") -> int:
    """The explorer window until it is closed; the exit code: 0, 1 when it could not work (no viewer, or with
    --screenshot --quit a requested network that did not render), 2 when there is no display at all."""
    from explorer.display import missing_display_reason

    from renderer.process import ViewerUnavailable
    problem = missing_display_reason()
    if problem:
        # Checked here too, not only by the command: without a display Dear PyGui aborts the interpreter.
        print(f"stylegan-explorer: {problem}", file=sys.stderr)
        return EXIT_NO_DISPLAY
    try:
        app = App(pkl=pkl, state_file=state_file)
    except ViewerUnavailable as error:
        print(f"stylegan-explorer: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        if osc_port is not None:
            from explorer.remote.live import start_osc_server
            from explorer.remote.osc import OscError
            try:
                server = start_osc_server(app.controller, osc_port, osc_host)
                print(f"OSC: listening on {osc_host}:{server.port}")
            except OscError as error:
                print(f"stylegan-explorer: --osc: {error} (the explorer runs without OSC)", file=sys.stderr)
        if screenshot:
            rendered = app.wait_for_frame() if app.session.network.path else None
            if rendered is False:
                print(f"stylegan-explorer: nothing rendered: {app.controller.status.load_error or 'timed out'}",
                      file=sys.stderr)
            elif rendered is None:
                print("stylegan-explorer: no network file given", file=sys.stderr)
            if not capture_both(app, screenshot):
                print("stylegan-explorer: the screenshot could not be taken", file=sys.stderr)
                rendered = False
            else:
                print(f"wrote {screenshot}")
            if quit_after:
                return 1 if rendered is False else 0
        while app.step():
            # Dear PyGui waits for vsync on a real screen; where there is none (Xvfb, some remote desktops) this
            # keeps the panel loop from spinning a core. The viewer has its own limit (performance.fps_limit).
            # A command posted from another thread (OSC, MIDI) wakes the loop at once.
            app.controller.wakeup.wait(max(0.0, 1 / PANEL_FPS_CAP - (time.perf_counter() - app.last_frame_time)))
        return 0
    finally:
        app.close()
