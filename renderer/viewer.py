"""The viewer: a GLFW window that shows the newest frame as an RGBA8 texture, in a process of its own.

It runs in a child process started with `spawn` (renderer.process): Dear PyGui, in the app's process, keeps
its GL context current and breaks when a second GL context appears beside it (measured: GUI_NOTES). Frames
arrive through shared memory (renderer.frames), commands and input events through two queues; the window
redraws only when something changed (a frame, the view, the heads-up text, a resize), at most `fps_limit`
times a second, so an idle viewer costs next to nothing.
"""
from __future__ import annotations

import math
import queue
import statistics
import time
from collections import deque

import numpy as np

from . import messages as msg
from .frames import Frame, FrameRing
from .placement import Placement, place
from .shortcuts import KEY_NAMES, help_text

# Between two looks at the queues and the frame ring: bounds the latency a frame waits before its upload.
POLL_S = 0.002
STATS_EVERY_S = 0.5
STATS_WINDOW_S = 1.0
PARENT_CHECK_S = 0.5              # how often to check that the app is still there
BACKGROUND = (0.12, 0.12, 0.12, 1.0)
NANOSECONDS = 1e9


class Viewer:
    def __init__(self, frames_name: str, commands, events, title: str, size: tuple[int, int],
                 position: tuple[int, int] | None):
        import glfw
        from OpenGL import GL as gl
        self.glfw, self.gl = glfw, gl
        self.commands, self.events = commands, events
        self.ring: FrameRing | None = None
        self._attach(frames_name)
        if not glfw.init():
            raise RuntimeError("GLFW could not initialise (no display?)")
        glfw.window_hint(glfw.FOCUSED, glfw.TRUE)
        self.window = glfw.create_window(size[0], size[1], title, None, None)
        if not self.window:
            glfw.terminate()
            raise RuntimeError("GLFW could not open a window with an OpenGL context")
        if position is not None:
            glfw.set_window_pos(self.window, *position)
        glfw.make_context_current(self.window)
        glfw.swap_interval(0)         # pacing is ours (fps_limit); a blocking swap would delay fresh frames
        from .hud import make_hud
        from .textures import Texture
        self.texture = Texture()
        self.hud = make_hud(self.window, max(glfw.get_window_content_scale(self.window)))
        self.view = msg.ViewSettings()
        self.fps_limit = 0
        self.frame: Frame | None = None
        self.last_seq = 0
        self.app_text = ""
        self.cursor_text = ""
        self.show_help = False
        self.dirty = True
        self.running = True
        self.windowed = (tuple(size), position)
        self.drag_button = None
        self.drag_last = None
        self.select_from = None
        self.cursor = None            # last cursor position in framebuffer pixels
        self.upload_ms = 0.0
        self.shown: deque[tuple[float, float]] = deque()     # (time shown, latency ms) of new frames
        self.uploaded: deque[tuple[float, float]] = deque()  # (time uploaded, latency ms) of new frames
        self.draws: deque[float] = deque()
        self.last_draw = 0.0
        for name, handler in (("mouse_button", self.on_button), ("cursor_pos", self.on_cursor),
                              ("cursor_enter", self.on_cursor_enter),
                              ("scroll", self.on_scroll), ("key", self.on_key), ("drop", self.on_drop),
                              ("framebuffer_size", self.on_resize), ("window_refresh", self.on_refresh)):
            getattr(glfw, f"set_{name}_callback")(self.window, handler)

    # -- frames ---------------------------------------------------------------------------------------------------

    def _attach(self, name: str) -> None:
        try:
            ring = FrameRing.attach(name)
        except (FileNotFoundError, ValueError):
            return    # already replaced by a newer ring; its AttachFrames is on the way
        if self.ring is not None:
            self.ring.close()
        self.ring, self.last_seq = ring, 0

    def take_frame(self) -> None:
        if self.ring is None:
            return
        frame = self.ring.read_newer(self.last_seq)
        if frame is None:
            return
        started = time.perf_counter()
        self.texture.upload(frame.pixels)
        uploaded = time.perf_counter()
        self.upload_ms = (uploaded - started) * 1000
        self.uploaded.append((uploaded, (time.monotonic_ns() - frame.published_ns) / NANOSECONDS * 1000))
        self.frame, self.last_seq = frame, frame.seq
        self.dirty = True
        self._update_cursor_text()

    # -- input ------------------------------------------------------------------------------------------------------

    def placement(self) -> Placement:
        width, height = self.glfw.get_framebuffer_size(self.window)
        if self.frame is None:
            return place(width, height, 0, 0, self.view)
        return place(width, height, self.frame.pixels.shape[1], self.frame.pixels.shape[0], self.view)

    def _framebuffer_point(self, x: float, y: float) -> tuple[float, float]:
        """Cursor coordinates (screen units) to framebuffer pixels (they differ on high-DPI screens)."""
        fb_w, fb_h = self.glfw.get_framebuffer_size(self.window)
        win_w, win_h = self.glfw.get_window_size(self.window)
        return x * fb_w / max(win_w, 1), y * fb_h / max(win_h, 1)

    def _output_pixel(self, point) -> tuple[int, int] | None:
        """The output pixel (column, row) under a framebuffer point, clamped to the output image."""
        if self.frame is None:
            return None
        placement = self.placement()
        if placement.scale <= 0:
            return None
        width = self.frame.meta.output_width or self.frame.pixels.shape[1]
        height = self.frame.meta.output_height or self.frame.pixels.shape[0]
        column = math.floor((point[0] - placement.left) / placement.scale)
        row = math.floor((point[1] - placement.top) / placement.scale)
        return min(max(column, 0), width - 1), min(max(row, 0), height - 1)

    def on_button(self, _, button, action, mods):
        point = self._framebuffer_point(*self.glfw.get_cursor_pos(self.window))
        if action == self.glfw.PRESS:
            self.drag_button = button
            self.drag_last = point
            # Shift + left drag selects a rectangle of the image (the region whose style channels to find).
            shifted = button == self.glfw.MOUSE_BUTTON_LEFT and bool(mods & self.glfw.MOD_SHIFT)
            self.select_from = self._output_pixel(point) if shifted else None
        elif action == self.glfw.RELEASE:
            self.drag_button = None
            if self.select_from is not None:
                end = self._output_pixel(point)
                if end is not None:
                    (c0, r0), (c1, r1) = self.select_from, end
                    self.events.put(msg.Selected(min(r0, r1), min(c0, c1), max(r0, r1) + 1, max(c0, c1) + 1))
                self.select_from = None

    def on_cursor(self, _, x, y):
        point = self._framebuffer_point(x, y)
        if self.drag_button is not None and self.drag_last is not None:
            dx, dy = point[0] - self.drag_last[0], point[1] - self.drag_last[1]
            self.drag_last = point
            if self.select_from is not None:
                pass   # selecting a rectangle: the latent stays where it is
            elif self.drag_button == self.glfw.MOUSE_BUTTON_LEFT:
                self.events.put(msg.Drag(dx, dy))
            else:
                scale = self.placement().scale or 1.0
                self.events.put(msg.Pan(dx / scale, dy / scale))
        self.cursor = point
        self._update_cursor_text(report=True)

    def on_cursor_enter(self, _, entered):
        if not entered and self.drag_button is None:
            # The pointer left the window: no pixel is under it any more (GLFW sends no positions outside).
            self.cursor = None
            self._update_cursor_text(report=True)

    def _update_cursor_text(self, report: bool = False) -> None:
        text, event = "", msg.Cursor(None, None, None, False)
        if self.frame is not None and self.cursor is not None:
            hit = self.placement().frame_pixel(*self.cursor)
            if hit is not None:
                column, row = hit
                rgb = tuple(int(v) for v in self.frame.pixels[row, column, :3])
                output_w, output_h = self.frame.meta.output_width, self.frame.meta.output_height
                in_output = output_w == 0 or (column < output_w and row < output_h)
                event = msg.Cursor(column, row, rgb, in_output)
                where = f"({column}, {row})" if in_output else f"layer view ({column - output_w}, {row})"
                text = f"{where} = {rgb}"
        if text != self.cursor_text:
            self.cursor_text = text
            self.dirty = True
            if report:
                self.events.put(event)

    def on_scroll(self, _, dx, dy):
        if dy:
            self.events.put(msg.Zoom(int(math.copysign(1, dy)), self.placement().scale))

    def on_key(self, _, key, scancode, action, mods):
        if action not in (self.glfw.PRESS, self.glfw.REPEAT):
            return
        for glfw_name, name in KEY_NAMES.items():
            if key == getattr(self.glfw, f"KEY_{glfw_name}", None):
                if name == "h" and action == self.glfw.PRESS:
                    self.show_help = not self.show_help
                    self.dirty = True
                self.events.put(msg.Key(name, bool(mods & self.glfw.MOD_SHIFT), bool(mods & self.glfw.MOD_CONTROL)))
                return

    def on_drop(self, _, paths):
        self.events.put(msg.Dropped(tuple(paths)))

    def on_resize(self, *_):
        self.dirty = True

    def on_refresh(self, *_):
        self.dirty = True

    # -- commands -------------------------------------------------------------------------------------------------

    def handle_commands(self) -> msg.CaptureWindow | None:
        capture = None
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return capture
            except (EOFError, OSError):     # the app is gone
                self.running = False
                return None
            if isinstance(command, msg.Quit):
                self.running = False
            elif isinstance(command, msg.ViewSettings):
                if command.fullscreen != self.view.fullscreen:
                    self.set_fullscreen(command.fullscreen)
                self.view = command
                self.dirty = True
                self._update_cursor_text()
            elif isinstance(command, msg.HeadsUp):
                if command.text != self.app_text:
                    self.app_text, self.dirty = command.text, True
            elif isinstance(command, msg.FrameRateLimit):
                self.fps_limit = max(0, int(command.fps))
            elif isinstance(command, msg.AttachFrames):
                self._attach(command.name)
            elif isinstance(command, msg.CaptureWindow):
                capture = command

    def set_fullscreen(self, on: bool) -> None:
        glfw = self.glfw
        if on:
            monitor = glfw.get_primary_monitor()
            mode = glfw.get_video_mode(monitor)
            self.windowed = (glfw.get_window_size(self.window), glfw.get_window_pos(self.window))
            glfw.set_window_monitor(self.window, monitor, 0, 0, mode.size.width, mode.size.height,
                                    mode.refresh_rate)
        else:
            (width, height), position = self.windowed
            x, y = position if position is not None else (0, 0)
            glfw.set_window_monitor(self.window, None, x, y, width, height, 0)
        self.dirty = True

    # -- drawing ----------------------------------------------------------------------------------------------------

    def heads_up_text(self) -> str:
        parts = [p for p in (self.app_text, self.cursor_text) if p]
        text = "   ".join(parts)
        if self.show_help:
            text = (text + "\n\n" if text else "") + help_text()
        return text

    def draw(self) -> bool:
        """Draws the frame and the heads-up text; returns whether another draw is needed to settle."""
        gl = self.gl
        width, height = self.glfw.get_framebuffer_size(self.window)
        gl.glViewport(0, 0, width, height)
        gl.glClearColor(*BACKGROUND)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT)
        gl.glMatrixMode(gl.GL_PROJECTION)
        gl.glLoadIdentity()
        gl.glOrtho(0, width, height, 0, -1, 1)    # window pixels, y down
        gl.glMatrixMode(gl.GL_MODELVIEW)
        gl.glLoadIdentity()
        gl.glColor4f(1, 1, 1, 1)
        if self.frame is not None:
            p = self.placement()
            gl.glEnable(gl.GL_TEXTURE_2D)
            self.texture.draw(p.left, p.top, p.width * p.scale, p.height * p.scale, smooth=p.scale < 1)
            gl.glDisable(gl.GL_TEXTURE_2D)
        return self.hud.draw(self.heads_up_text(), width, height)

    def capture(self, command: msg.CaptureWindow) -> msg.Captured:
        """The back buffer as just drawn (before the swap); glReadPixels gives rows bottom-up."""
        from PIL import Image
        gl = self.gl
        try:
            width, height = self.glfw.get_framebuffer_size(self.window)
            gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
            data = gl.glReadPixels(0, 0, width, height, gl.GL_RGB, gl.GL_UNSIGNED_BYTE)
            pixels = np.frombuffer(data, np.uint8).reshape(height, width, 3)[::-1]
            Image.fromarray(pixels).save(command.path)
            return msg.Captured(command.path)
        except Exception as error:   # noqa: BLE001 - reported to the app; the viewer goes on
            return msg.Captured(command.path, f"{type(error).__name__}: {error}")

    # -- the loop ---------------------------------------------------------------------------------------------------

    def run(self) -> None:
        import multiprocessing
        glfw, gl = self.glfw, self.gl
        parent = multiprocessing.parent_process()
        width, height = glfw.get_framebuffer_size(self.window)
        self.events.put(msg.Ready(width, height, f"{gl.glGetString(gl.GL_VERSION).decode()}; heads-up: "
                                                 f"{self.hud.kind}"))
        last_stats = last_parent_check = time.perf_counter()
        while self.running and not glfw.window_should_close(self.window):
            glfw.wait_events_timeout(POLL_S)
            capture = self.handle_commands()
            seq_before = self.last_seq
            self.take_frame()
            now = time.perf_counter()
            interval = 1 / self.fps_limit if self.fps_limit else 0.0
            if capture is not None or (self.dirty and now - self.last_draw >= interval):
                settling = self.draw()
                while settling and capture is not None:    # a capture shows the settled picture
                    settling = self.draw()
                if capture is not None:
                    self.events.put(self.capture(capture))
                glfw.swap_buffers(self.window)
                gl.glFinish()
                self.dirty = settling
                self.last_draw = time.perf_counter()
                self.draws.append(self.last_draw)
                if self.last_seq != seq_before and self.frame is not None:
                    latency_ms = (time.monotonic_ns() - self.frame.published_ns) / NANOSECONDS * 1000
                    self.shown.append((self.last_draw, latency_ms))
            if now - last_stats >= STATS_EVERY_S:
                self.report_stats(now)
                last_stats = now
            if parent is not None and now - last_parent_check >= PARENT_CHECK_S:
                last_parent_check = now
                if not parent.is_alive():
                    break
        self.events.put(msg.Closed())
        self.close()

    def report_stats(self, now: float) -> None:
        while self.shown and self.shown[0][0] < now - STATS_WINDOW_S:
            self.shown.popleft()
        while self.uploaded and self.uploaded[0][0] < now - STATS_WINDOW_S:
            self.uploaded.popleft()
        while self.draws and self.draws[0] < now - STATS_WINDOW_S:
            self.draws.popleft()
        latency = statistics.median(l for _, l in self.shown) if self.shown else 0.0
        upload_latency = statistics.median(l for _, l in self.uploaded) if self.uploaded else 0.0
        self.events.put(msg.ViewerStats(len(self.shown) / STATS_WINDOW_S, self.upload_ms, latency,
                                        len(self.draws) / STATS_WINDOW_S, upload_latency))

    def close(self) -> None:
        try:
            self.hud.close()
        except Exception:   # noqa: BLE001 - closing down anyway
            pass
        self.glfw.destroy_window(self.window)
        self.glfw.terminate()
        if self.ring is not None:
            self.ring.close()


def run_viewer(frames_name: str, commands, events, title: str = "stylegan-explorer viewer",
               size: tuple[int, int] = (768, 768), position: tuple[int, int] | None = None) -> None:
    """The child process's main: runs until the window closes, a Quit arrives or the app goes away."""
    try:
        viewer = Viewer(frames_name, commands, events, title, size, position)
    except Exception as error:   # noqa: BLE001 - the app shows why the window could not open
        events.put(msg.Closed(f"{type(error).__name__}: {error}"))
        return
    viewer.run()
