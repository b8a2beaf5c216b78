"""The explorer app: the session state, the render worker, the viewer process and the panels, wired.

Data flow, one way each:
  panels / viewer input  ->  Session (validated, emits StateChange)
  Session changes        ->  a new RenderRequest for the worker (the newest wins) / a load for the worker
  worker results         ->  the viewer (shared memory) and the status section the panels show
Nothing heavy runs on the panel loop: rendering is on the worker thread, drawing in the viewer process.
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from explorer import export
from explorer.render import RenderResult
from explorer.state import NetworkFacts, Session, StateChange, StateError, ZOOM_RANGE
from explorer.worker import RenderWorker

from renderer import messages as msg
from renderer.frames import FrameMeta

from .layout import Layout

EXIT_FAILED = 1
EXIT_NO_DISPLAY = 2               # as the command's own display check
RECENT_FILES_KEPT = 10
# A drag across a 512-px window moves ~5 seeds: slow enough to watch one face turn into the next. Right and down
# go to higher x and y, as in NVlabs' visualizer.
DRAG_SEEDS_PER_PIXEL = 0.01
PSI_KEY_STEP = 0.1
LAYER_VIEW_GAP_PX = 4            # between the output and the layer grid in the viewer
SCREENSHOT_SETTLE_FRAMES = 4     # Dear PyGui's frame buffer lags ~2 frames behind a change
NOISE_MODE_CYCLE = ("const", "random", "none")
PANEL_FPS_CAP = 60               # the panel loop's frame rate where no vsync paces it
STATS_WAIT_S = 2.0               # the viewer reports its figures twice a second
STATS_POLL_S = 0.01
# Which panels go in which column: what every session needs on the left, the per-layer work on the right.
# A panel not named here goes at the end of the last column.
PANEL_COLUMNS = (("NetworkPanel", "LatentPanel", "TruncationPanel", "NoisePanel", "PerformancePanel", "HelpPanel"),
                 ("MixingPanel", "StylesPanel", "TransformPanel", "LayersPanel", "CapturePanel"))


def render_threads() -> int:
    """Torch threads for the render worker: every core but one, which the panel loop, the viewer process and the
    X server need: on 2 shared cores, torch on both made a 64 px render in the app 2-5x slower (26-56 ms
    against 11-13 ms; benchmarks/bench_gui.py), under heavier load 11x. OMP_NUM_THREADS, when set, decides.
    Set before the worker thread starts: torch's thread count is per thread once a thread exists."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "stylegan-explorer"


def read_recent_files() -> tuple[str, ...]:
    try:
        data = json.loads((config_dir() / "recent.json").read_text())
        return tuple(str(p) for p in data if isinstance(p, str))[:RECENT_FILES_KEPT]
    except (OSError, ValueError):
        return ()


def write_recent_files(paths) -> None:
    try:
        config_dir().mkdir(parents=True, exist_ok=True)
        temporary = config_dir() / "recent.json.partial"
        temporary.write_text(json.dumps(list(paths)))
        os.replace(temporary, config_dir() / "recent.json")
    except OSError:
        pass  # a read-only home only costs the recent list


def compose_view(result: RenderResult) -> np.ndarray:
    """The output, with the selected layer's grid (and spectrum) beside it at the same height."""
    parts = [result.image]
    view = result.request.view
    extras = ([result.layer_image] if view.layer is not None else []) + ([result.fft_image] if view.fft else [])
    for extra in extras:
        if extra is None:
            continue
        height = result.image.shape[0]
        factor = height / extra.shape[0]
        rows = np.minimum((np.arange(height) / factor).astype(int), extra.shape[0] - 1)
        width = max(int(round(extra.shape[1] * factor)), 1)
        cols = np.minimum((np.arange(width) / factor).astype(int), extra.shape[1] - 1)
        parts.append(np.zeros([height, LAYER_VIEW_GAP_PX, 3], np.uint8))
        parts.append(extra[rows][:, cols])
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]


def network_info(load) -> str:
    """What `stylegan-explorer info` says about a loaded network (explorer.cli.format_description) when the
    load result carries its description; otherwise a summary of its facts and the loader's notes."""
    description = getattr(load, "description", None)
    if description is not None:
        from explorer.cli import format_description
        return format_description(description)
    facts = load.facts
    classes = f"{facts.c_dim} classes" if facts.c_dim else "unconditional"
    lines = [f"{facts.family}, {facts.img_resolution}x{facts.img_resolution}, z {facts.z_dim}, w {facts.w_dim}, "
             f"{facts.num_ws} ws, {classes}"]
    return "\n".join(lines + [f"note: {note}" for note in load.notes])


def format_stats(stats) -> str:
    """A small table of the viewed layer's statistics (the panel font is monospaced). A droplet shows as a
    peak/mean far above that of the layer's neighbours."""
    first, stop = stats.channels
    lines = [f"{stats.layer or 'output'} {stats.shape}, showing channels {first}-{stop - 1}",
             f"{'':<6}{'mean':>8}{'std':>8}{'max|x|':>8}{'peak/mean':>11}"]
    for name, s in (("all", stats.all), ("shown", stats.selected)):
        lines.append(f"{name:<6}{s.mean:>+8.3f}{s.std:>8.3f}{s.max_abs:>8.3f}{s.peak_to_mean:>11.1f}")
    lines.append(f"peak at channel {stats.peak_channel}, y {stats.peak_y}, x {stats.peak_x}")
    return "\n".join(lines)


class App:
    def __init__(self, pkl: str | None = None, state_file: str | None = None, layout: Layout | None = None,
                 viewer_size=(768, 768)):
        import dearpygui.dearpygui as dpg

        from renderer.process import ViewerProcess, ViewerUnavailable

        from .capture_panel import CapturePanel
        from .help_panel import HelpPanel
        from .latent_panel import LatentPanel
        from .layers_panel import LayersPanel
        from .mixing_panel import MixingPanel
        from .network_panel import NetworkPanel
        from .noise_panel import NoisePanel
        from .performance_panel import PerformancePanel
        from .styles_panel import StylesPanel
        from .transform_panel import TransformPanel
        from .truncation_panel import TruncationPanel

        self.dpg = dpg
        self.layout = layout or Layout()
        self.session = Session()
        self.session.status.recent_files = read_recent_files()
        if not os.environ.get("OMP_NUM_THREADS"):
            import torch
            torch.set_num_threads(render_threads())
        self.worker = RenderWorker()
        self.viewer = ViewerProcess(size=viewer_size, position=(self.layout.viewer_x, 0))
        self.panels = [cls(self.session, self.layout) for cls in (
            NetworkPanel, LatentPanel, TruncationPanel, MixingPanel, StylesPanel, NoisePanel, TransformPanel,
            LayersPanel, CapturePanel, PerformancePanel, HelpPanel)]
        self.dirty = True                 # the state changed since the last request
        self.result: RenderResult | None = None
        self.view_frame: np.ndarray | None = None
        self.frames_shown = 0             # results sent to the viewer
        self.loaded_path: str | None = None
        self.loading_path: str | None = None
        self.recorder = None
        self.seen_requests = {"screenshot_requests": 0, "reload_requests": 0, "save_state_requests": 0,
                              "save_latents_requests": 0}
        self.cursor = None                # the viewer's last Cursor event (it draws the value itself)
        self.viewer_stats = None          # the viewer's last ViewerStats
        self.last_finished = None         # the request of the newest result, rendered or failed
        self.heads_up_text = ""
        self.last_frame_time = time.perf_counter()
        self.frame_times: list[float] = []
        self.state_file = state_file
        self.pending_state = None
        if state_file:
            self.pending_state = self._read_state_file(state_file)
            if pkl is None:
                pkl = self._state_network(self.pending_state)   # a network given by name wins

        dpg.create_context()
        dpg.configure_app(manual_callback_management=False)
        dpg.create_viewport(title="stylegan-explorer", width=self.layout.panel_width,
                            height=self.layout.panel_height, x_pos=0, y_pos=0)
        with dpg.window(tag="panels", label="stylegan-explorer", no_close=True, no_collapse=True,
                        width=self.layout.panel_width, height=self.layout.panel_height):
            with dpg.group(horizontal=True):
                for column in self.columns():
                    with dpg.child_window(width=self.layout.column_width, height=-1, border=False):
                        for panel in column:
                            panel.build()
        dpg.set_primary_window("panels", True)
        dpg.setup_dearpygui()
        dpg.show_viewport()
        try:
            self.viewer.start()
        except ViewerUnavailable:
            # Leave nothing running behind the error: run_app reports it in one line.
            self.worker.shutdown()
            dpg.destroy_context()
            raise
        self.viewer.send(msg.FrameRateLimit(self.session.performance.fps_limit))
        self.session.events.connect(self.on_change)
        if pkl:
            self.session.network.path = str(pkl)
        else:
            self.panel("NetworkPanel").ask_for_file()
            self.update_heads_up()

    def panel(self, name: str):
        return next(p for p in self.panels if type(p).__name__ == name)

    @staticmethod
    def _state_network(text: str | None) -> str | None:
        try:
            network = json.loads(text).get("network") if text else None
            return network.get("path") if isinstance(network, dict) else None
        except (ValueError, AttributeError):
            return None   # the state is checked properly when it is applied

    def columns(self) -> list[list]:
        by_name = {type(panel).__name__: panel for panel in self.panels}
        columns = [[by_name.pop(name) for name in names if name in by_name] for names in PANEL_COLUMNS]
        columns[-1] += [panel for panel in self.panels if type(panel).__name__ in by_name]
        return columns

    # -- state changes --------------------------------------------------------------------------------------------

    def on_change(self, change: StateChange) -> None:
        for panel in self.panels:
            panel.on_change(change)
        if change.section == "status":
            return
        if change.section == "network" and change.field == "path" and change.new and change.new != self.loaded_path:
            self.load(change.new)
        if change.section == "viewer":
            self.send_view()
        if change.section == "performance" and change.field == "fps_limit":
            self.viewer.send(msg.FrameRateLimit(change.new))
        self.dirty = True

    def load(self, path: str) -> None:
        self.loading_path = path
        self.session.status.network_info = f"loading {path} ..."
        self.worker.load(path, self.session.performance.device)

    def send_view(self) -> None:
        v = self.session.viewer
        self.viewer.send(msg.ViewSettings(fit=v.fit, zoom=v.zoom, pan_x=v.pan_x, pan_y=v.pan_y,
                                          fullscreen=v.fullscreen))

    # -- one frame of the panel loop ------------------------------------------------------------------------------

    def step(self) -> bool:
        """One frame: apply worker and viewer news, submit the newest request, draw the panels."""
        dpg = self.dpg
        now = time.perf_counter()
        dt, self.last_frame_time = now - self.last_frame_time, now
        self.frame_times = [t for t in self.frame_times if t > now - 1] + [now]
        self.handle_loads()
        self.handle_requests()
        self.handle_viewer_events()
        self.session.advance(dt)
        if self.dirty and self.worker.network_key is not None:
            self.dirty = False
            self.worker.submit(self.session.render_request(self.worker.network_key))
        self.handle_results()
        status = self.session.status
        status.panel_fps = float(len(self.frame_times))
        dpg.render_dearpygui_frame()
        return dpg.is_dearpygui_running() and not self.viewer.closed

    def handle_loads(self) -> None:
        from explorer.cli import describe, format_description
        load = self.worker.poll_load()
        while load is not None:
            status = self.session.status
            if load.error:
                # The previous network stays on screen; the path shown goes back to it.
                status.load_error = f"{load.path}: {load.error}"
                self.loading_path = None
                if self.loaded_path:
                    self.session.network.path = self.loaded_path
                status.network_info = "" if self.loaded_path is None else status.network_info
            else:
                self.loaded_path = load.path
                status.load_error = None
                self.session.set_facts(load.facts)
                if self.pending_state is not None:
                    self.apply_state(self.pending_state)
                    self.pending_state = None
                status.network_info = network_info(load)
                recent = [load.path] + [p for p in status.recent_files if p != load.path]
                status.recent_files = tuple(recent[:RECENT_FILES_KEPT])
                write_recent_files(status.recent_files)
                for panel in self.panels:
                    panel.on_network()
                self.dirty = True
            load = self.worker.poll_load()

    def apply_state(self, text: str) -> None:
        try:
            data = json.loads(text)
            if isinstance(data, dict) and not (data.get("network") or {}).get("path"):
                # A session file without a network keeps the one just loaded.
                data["network"] = {"path": self.loaded_path}
                text = json.dumps(data)
            self.session.load_json(text)
        except (StateError, ValueError) as error:
            self.session.status.load_error = f"session file: {error}"

    def handle_results(self) -> None:
        result = self.worker.poll()
        if result is None:
            return
        status = self.session.status
        self.last_finished = result.request
        if not result.ok:
            # The last good frame stays on screen; the heads-up line and the Performance panel say why.
            status.render_error = result.error
            self.update_heads_up()
            return
        status.render_error = None
        self.result = result
        self.view_frame = compose_view(result)
        height, width = result.image.shape[:2]
        self.viewer.show(self.view_frame, FrameMeta(width, height, result.timings.total_s * 1000))
        self.frames_shown += 1
        status.render_ms = result.timings.total_s * 1000
        if result.stats is not None:
            status.layer_stats = format_stats(result.stats)
        if self.recorder is not None:
            frame = result.image if self.session.capture.source == "output" else self.view_frame
            if not self.recorder.write(frame):
                status.recording = False
            status.capture_status = self.recorder.progress
        self.update_heads_up()

    def update_heads_up(self) -> None:
        """The viewer's heads-up line: resolution, render time, frames shown per second, where in seed space;
        a render error in place of it while one stands (the viewer adds the pixel under the cursor)."""
        s = self.session.status
        if s.render_error:
            text = f"render failed: {s.render_error}"
        elif self.result is None and self.session.network.path is None:
            text = "no network: drop a network file here, or open one in the Network panel"
        elif self.result is None:
            return
        else:
            h, w = self.result.image.shape[:2]
            latent = self.session.latent
            where = f"seed {latent.seed}" if latent.x == round(latent.x) and latent.y == round(latent.y) \
                else f"position ({latent.x:.2f}, {latent.y:.2f})"
            fps = f"{s.viewer_fps:.0f} fps" if s.viewer_fps else "- fps"
            text = f"{w}x{h}   render {s.render_ms:.0f} ms   {fps}   {where}"
        if text != self.heads_up_text:
            self.heads_up_text = text
            self.viewer.send(msg.HeadsUp(text))

    def handle_requests(self) -> None:
        status = self.session.status
        if status.reload_requests != self.seen_requests["reload_requests"]:
            self.seen_requests["reload_requests"] = status.reload_requests
            if self.loaded_path:
                self.load(self.loaded_path)
        if status.screenshot_requests != self.seen_requests["screenshot_requests"]:
            self.seen_requests["screenshot_requests"] = status.screenshot_requests
            self.screenshot()
        if status.save_state_requests != self.seen_requests["save_state_requests"]:
            self.seen_requests["save_state_requests"] = status.save_state_requests
            self.save_state()
        if status.save_latents_requests != self.seen_requests["save_latents_requests"]:
            self.seen_requests["save_latents_requests"] = status.save_latents_requests
            self.save_latents()
        if status.recording and self.recorder is None:
            self.start_recording()
        elif not status.recording and self.recorder is not None:
            self.stop_recording()

    def screenshot(self) -> Path | None:
        status = self.session.status
        if self.result is None:
            status.capture_status = "nothing rendered yet"
            return None
        image = self.result.image if self.session.capture.source == "output" else self.view_frame
        try:
            path = export.save_screenshot(image, self.session.capture.folder, state_json=self.session.to_json())
        except export.ExportError as error:
            status.capture_status = f"screenshot failed: {error}"
            return None
        request = self.session.render_request(self.worker.network_key or "")
        line = export.reproduce_command(request, self.loaded_path or "NETWORK", state_file=str(path))
        status.capture_status = f"saved {path}\nreproduce: {line.command}"
        return path

    def save_latents(self) -> None:
        """The W+ of the image on screen ([num_ws, w_dim]) as the next free latents-NNNN.npy."""
        status = self.session.status
        if self.result is None or self.result.ws is None:
            status.capture_status = "nothing rendered yet"
            return
        try:
            path = export.save_latents(self.result.ws, self.session.capture.folder)
            status.capture_status = f"saved W+ {path}"
        except export.ExportError as error:
            status.capture_status = f"saving W+ failed: {error}"

    def save_state(self) -> None:
        status = self.session.status
        try:
            path = export.reserve_path(self.session.capture.folder, "session", ".json")
            path.write_text(self.session.to_json())
            status.capture_status = f"saved session {path}"
        except (export.ExportError, OSError) as error:
            status.capture_status = f"saving the session failed: {error}"

    def start_recording(self) -> None:
        capture, status = self.session.capture, self.session.status
        try:
            self.recorder = export.open_recorder(capture.format, folder=capture.folder, fps=capture.fps)
            status.capture_status = f"recording to {self.recorder.path}"
        except export.ExportError as error:
            status.capture_status = f"recording failed: {error}"
            status.recording = False

    def stop_recording(self) -> None:
        self.recorder.close()
        self.session.status.capture_status = self.recorder.progress
        self.recorder = None

    def handle_viewer_events(self) -> None:
        s = self.session
        for event in self.viewer.poll():
            try:
                if isinstance(event, msg.Drag):
                    s.latent.drag(event.dx * DRAG_SEEDS_PER_PIXEL, event.dy * DRAG_SEEDS_PER_PIXEL)
                elif isinstance(event, msg.Pan):
                    s.viewer.pan_x = s.viewer.pan_x + event.dx
                    s.viewer.pan_y = s.viewer.pan_y + event.dy
                elif isinstance(event, msg.Zoom):
                    self.zoom(event.steps, event.scale)
                elif isinstance(event, msg.Key):
                    self.key(event)
                elif isinstance(event, msg.Dropped) and event.paths:
                    s.network.path = event.paths[0]
                elif isinstance(event, msg.Cursor):
                    self.cursor = event
                elif isinstance(event, msg.ViewerStats):
                    self.viewer_stats = event
                    s.status.viewer_fps = event.fps
                    s.status.upload_ms = event.upload_ms
                    self.update_heads_up()
            except (StateError, ValueError) as error:
                s.status.capture_status = str(error)

    def zoom(self, steps: int, shown_scale: float = 1.0) -> None:
        """Whole zoom steps; from fit, the first step goes to the whole zoom nearest the scale shown."""
        v = self.session.viewer
        start = v.zoom if not v.fit else (math.floor(shown_scale) if steps > 0 else math.ceil(shown_scale))
        zoom = min(max(start + steps, ZOOM_RANGE[0]), ZOOM_RANGE[1])
        v.zoom = zoom
        v.fit = False

    def set_zoom(self, zoom: int) -> None:
        v = self.session.viewer
        v.zoom = zoom
        v.pan_x = v.pan_y = 0.0
        v.fit = False

    def fit(self) -> None:
        v = self.session.viewer
        v.pan_x = v.pan_y = 0.0
        v.fit = True

    def escape(self) -> None:
        """Escape leaves fullscreen; it never quits (q does), so a stray key press cannot lose the session."""
        self.session.viewer.fullscreen = False

    def key(self, event) -> None:
        s = self.session
        actions = {
            "right": lambda: s.latent.set_seed(s.latent.seed + 1),
            "left": lambda: s.latent.set_seed(max(s.latent.seed - 1, 0)),
            "up": lambda: setattr(s.truncation, "psi", min(s.truncation.psi + PSI_KEY_STEP, 2.0)),
            "down": lambda: setattr(s.truncation, "psi", max(s.truncation.psi - PSI_KEY_STEP, -1.0)),
            "space": lambda: setattr(s.latent, "animate", not s.latent.animate),
            "f": lambda: setattr(s.viewer, "fullscreen", not s.viewer.fullscreen),
            "0": self.fit,
            "1": lambda: self.set_zoom(1),
            "2": lambda: self.set_zoom(2),
            "3": lambda: self.set_zoom(3),
            "4": lambda: self.set_zoom(4),
            "plus": lambda: self.zoom(+1),
            "minus": lambda: self.zoom(-1),
            "s": lambda: setattr(s.status, "screenshot_requests", s.status.screenshot_requests + 1),
            "r": lambda: setattr(s.status, "recording", not s.status.recording),
            "n": lambda: setattr(s.noise, "mode", NOISE_MODE_CYCLE[(NOISE_MODE_CYCLE.index(s.noise.mode) + 1) % 3]),
            "l": self.toggle_layer_view,
            "escape": self.escape,
            "q": self.dpg.stop_dearpygui,
        }
        action = actions.get(event.name)
        if action is not None:
            action()

    def toggle_layer_view(self) -> None:
        s = self.session
        if s.layers.layer is not None:
            self._last_layer = s.layers.layer
            s.layers.layer = None
        else:
            facts = s.facts
            fallback = next((l.name for l in reversed(facts.layers) if l.kind == "conv"), None) if facts else None
            s.layers.layer = getattr(self, "_last_layer", None) or fallback

    # -- automation ----------------------------------------------------------------------------------------------

    def _read_state_file(self, path) -> str | None:
        try:
            return export.read_state_file(path)
        except export.ExportError as error:
            self.session.status.load_error = f"session file: {error}"
            return None

    def wait_for_frame(self, timeout: float = 120.0) -> bool:
        """Run frames until a render is on screen and nothing is pending."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.step():
                return False
            if not self.dirty and not self.worker.busy and self.worker.network_key is not None:
                current = self.session.render_request(self.worker.network_key)
                if self.last_finished == current:
                    # Rendered: True when it is on screen, False when it failed (the error is in the status).
                    return self.result is not None and self.result.request == current
            if self.session.status.load_error and self.loaded_path is None:
                return False
        return False

    def capture_viewer(self, path: str, timeout: float = 10.0) -> bool:
        for _ in range(SCREENSHOT_SETTLE_FRAMES):
            self.step()
            time.sleep(0.02)
        self.viewer.send(msg.CaptureWindow(path))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.viewer.poll():
                if isinstance(event, msg.Captured):
                    return event.error is None
            self.dpg.render_dearpygui_frame()
            time.sleep(0.01)
        return False

    def capture_panels(self, path: str) -> bool:
        dpg = self.dpg
        for _ in range(SCREENSHOT_SETTLE_FRAMES):
            self.step()
        dpg.output_frame_buffer(file=path)
        for _ in range(SCREENSHOT_SETTLE_FRAMES):
            self.step()
        return Path(path).exists()

    def capture_both(self, out: str) -> bool:
        """Panels and viewer side by side in one PNG, once the viewer has reported its frame rate (so that the
        heads-up line shows one)."""
        from PIL import Image
        deadline = time.monotonic() + STATS_WAIT_S
        while self.viewer_stats is None and time.monotonic() < deadline and self.step():
            time.sleep(STATS_POLL_S)
        with tempfile.TemporaryDirectory() as folder:
            panels, viewer = os.path.join(folder, "panels.png"), os.path.join(folder, "viewer.png")
            if not (self.capture_panels(panels) and self.capture_viewer(viewer)):
                return False
            a, b = Image.open(panels).convert("RGB"), Image.open(viewer).convert("RGB")
            gap = self.layout.em(1)
            sheet = Image.new("RGB", (a.width + gap + b.width, max(a.height, b.height)), (20, 20, 20))
            sheet.paste(a, (0, 0))
            sheet.paste(b, (a.width + gap, 0))
            sheet.save(out)
        return True

    def close(self) -> None:
        if self.recorder is not None:
            self.stop_recording()
        self.worker.shutdown()
        self.viewer.stop()
        self.dpg.destroy_context()


def run_app(pkl: str | None = None, state_file: str | None = None, screenshot: str | None = None,
            quit_after: bool = False) -> int:
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
        if screenshot:
            # With a network: wait until the requested image is on screen. Without one there is nothing to wait
            # for; the screenshot shows the panels asking for a file. Either way the screenshot is written.
            rendered = app.wait_for_frame() if app.session.network.path else None
            if rendered is False:
                print(f"stylegan-explorer: nothing rendered: {app.session.status.load_error or 'timed out'}",
                      file=sys.stderr)
            elif rendered is None:
                print("stylegan-explorer: no network file given", file=sys.stderr)
            if not app.capture_both(screenshot):
                print("stylegan-explorer: the screenshot could not be taken", file=sys.stderr)
                rendered = False
            else:
                print(f"wrote {screenshot}")
            if quit_after:
                return 1 if rendered is False else 0
        while app.step():
            # Dear PyGui waits for vsync on a real screen; where there is none (Xvfb, some remote desktops) this
            # keeps the panel loop from spinning a core. The viewer has its own limit (performance.fps_limit).
            time.sleep(max(0.0, 1 / PANEL_FPS_CAP - (time.perf_counter() - app.last_frame_time)))
        return 0
    finally:
        app.close()
