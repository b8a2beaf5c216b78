"""The viewer: a GLFW window that draws the newest frame as an RGBA8 texture, in its own process.

It runs in a child process started with `spawn` (see renderer.process): Dear PyGui in the app's process keeps
its GL context current and breaks when a second GL context appears beside it (measured: ../shared/GUI_NOTES.md).
Frames arrive through shared memory (renderer.frames), commands and input events through two queues.
"""
from __future__ import annotations

import queue
import time
from dataclasses import dataclass

import numpy as np

from . import messages as msg
from .frames import SharedFrames

HUD_FONT_PX = 13               # the heads-up line's text height in window pixels
HUD_PADDING_PX = 4
IDLE_WAIT_S = 1 / 240          # how long to wait for input between frames: well under a frame at 60 fps
STATS_EVERY_S = 0.5
ZOOM_STEP = 1                  # integer zoom per scroll step

KEY_NAMES = {
    "LEFT": "left", "RIGHT": "right", "UP": "up", "DOWN": "down", "SPACE": "space", "F": "f", "H": "h",
    "L": "l", "S": "s", "R": "r", "A": "a", "N": "n", "ESCAPE": "escape", "Q": "q", "EQUAL": "plus",
    "KP_ADD": "plus", "MINUS": "minus", "KP_SUBTRACT": "minus", "0": "0", "1": "1", "F11": "f",
}


@dataclass
class Placement:
    """Where the image sits in the window: its lower-left corner and scale, in framebuffer pixels."""
    x0: float
    y0: float
    scale: float


def place(window_w, window_h, image_w, image_h, view: msg.ViewSettings) -> Placement:
    if view.fit or image_w == 0:
        scale = min(window_w / max(image_w, 1), window_h / max(image_h, 1))
    else:
        scale = float(view.zoom)
    x0 = (window_w - image_w * scale) / 2 + view.pan_x
    y0 = (window_h - image_h * scale) / 2 - view.pan_y
    return Placement(x0, y0, scale)


def hud_image(text: str) -> np.ndarray:
    """The heads-up line as an RGBA image: light text on a translucent dark band."""
    from PIL import Image, ImageDraw, ImageFont
    try:
        font = ImageFont.load_default(size=HUD_FONT_PX)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        font = ImageFont.load_default()
    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    image = Image.new("RGBA", (right + 2 * HUD_PADDING_PX, bottom + 2 * HUD_PADDING_PX), (0, 0, 0, 160))
    ImageDraw.Draw(image).text((HUD_PADDING_PX, HUD_PADDING_PX - top), text, font=font, fill=(235, 235, 235, 255))
    return np.asarray(image)


class Texture:
    def __init__(self, gl):
        self.gl = gl
        self.id = gl.glGenTextures(1)
        self.width = self.height = 0

    def upload(self, rgba: np.ndarray):
        gl = self.gl
        height, width = rgba.shape[:2]
        gl.glBindTexture(gl.GL_TEXTURE_2D, self.id)
        if (width, height) != (self.width, self.height):
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, gl.GL_NEAREST)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, gl.GL_NEAREST)
            gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGBA8, width, height, 0, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE, rgba)
            self.width, self.height = width, height
        else:
            # Same size: update in place, the fast path (RGBA8, no reallocation).
            gl.glTexSubImage2D(gl.GL_TEXTURE_2D, 0, 0, 0, width, height, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE, rgba)

    def draw(self, x0, y0, width, height):
        gl = self.gl
        gl.glBindTexture(gl.GL_TEXTURE_2D, self.id)
        gl.glBegin(gl.GL_QUADS)
        # Texture row 0 is the image's top row: draw it at the top of the quad.
        gl.glTexCoord2f(0, 1), gl.glVertex2f(x0, y0)
        gl.glTexCoord2f(1, 1), gl.glVertex2f(x0 + width, y0)
        gl.glTexCoord2f(1, 0), gl.glVertex2f(x0 + width, y0 + height)
        gl.glTexCoord2f(0, 0), gl.glVertex2f(x0, y0 + height)
        gl.glEnd()


def run_viewer(frames_name: str, commands, events, title: str = "stylegan-explorer viewer",
               size: tuple[int, int] = (768, 768), position: tuple[int, int] | None = None) -> None:
    """The child process's main: runs until the window closes or a Quit arrives."""
    import glfw
    from OpenGL import GL as gl

    frames = SharedFrames(name=frames_name)
    if not glfw.init():
        events.put(msg.Closed())
        return
    window = glfw.create_window(size[0], size[1], title, None, None)
    if position is not None:
        glfw.set_window_pos(window, *position)
    glfw.make_context_current(window)
    glfw.swap_interval(1)
    image_texture, hud_texture = Texture(gl), Texture(gl)
    view = msg.ViewSettings()
    image: np.ndarray | None = None
    hud_text, hud_pixels = "", None
    state = {"dragging": None, "last": None, "windowed": (size, position)}

    def framebuffer_scale():
        fb_w, fb_h = glfw.get_framebuffer_size(window)
        win_w, win_h = glfw.get_window_size(window)
        return fb_w / max(win_w, 1), fb_h / max(win_h, 1)

    def on_button(_, button, action, mods):
        if action == glfw.PRESS:
            state["dragging"] = button
            state["last"] = glfw.get_cursor_pos(window)
        elif action == glfw.RELEASE:
            state["dragging"] = None

    def on_cursor(_, x, y):
        if state["dragging"] is not None and state["last"] is not None:
            dx, dy = x - state["last"][0], y - state["last"][1]
            state["last"] = (x, y)
            events.put(msg.Drag(dx, dy) if state["dragging"] == glfw.MOUSE_BUTTON_LEFT else msg.Pan(dx, dy))
        if image is not None:
            sx, sy = framebuffer_scale()
            fb_w, fb_h = glfw.get_framebuffer_size(window)
            p = place(fb_w, fb_h, image.shape[1], image.shape[0], view)
            ix = int((x * sx - p.x0) / p.scale)
            iy = int((y * sy - (fb_h - p.y0 - image.shape[0] * p.scale)) / p.scale)
            if 0 <= ix < image.shape[1] and 0 <= iy < image.shape[0]:
                events.put(msg.Cursor(ix, iy, tuple(int(v) for v in image[iy, ix, :3])))
            else:
                events.put(msg.Cursor(None, None, None))

    def on_scroll(_, dx, dy):
        if dy:
            events.put(msg.Zoom(int(np.sign(dy)) * ZOOM_STEP))

    def on_key(_, key, scancode, action, mods):
        if action not in (glfw.PRESS, glfw.REPEAT):
            return
        for name, label in KEY_NAMES.items():
            if key == getattr(glfw, f"KEY_{name}", None):
                events.put(msg.Key(label, bool(mods & glfw.MOD_SHIFT)))
                return

    def on_drop(_, paths):
        events.put(msg.Dropped(tuple(paths)))

    glfw.set_mouse_button_callback(window, on_button)
    glfw.set_cursor_pos_callback(window, on_cursor)
    glfw.set_scroll_callback(window, on_scroll)
    glfw.set_key_callback(window, on_key)
    glfw.set_drop_callback(window, on_drop)
    events.put(msg.Ready(*glfw.get_framebuffer_size(window), gl.glGetString(gl.GL_VERSION).decode()))

    frame_times, last_stats, upload_ms = [], time.perf_counter(), 0.0
    running = True
    while running and not glfw.window_should_close(window):
        glfw.wait_events_timeout(IDLE_WAIT_S)
        pending_capture = None
        while True:
            try:
                command = commands.get_nowait()
            except queue.Empty:
                break
            if isinstance(command, msg.Quit):
                running = False
            elif isinstance(command, msg.ViewSettings):
                if command.fullscreen != view.fullscreen:
                    _set_fullscreen(glfw, window, command.fullscreen, state)
                view = command
            elif isinstance(command, msg.HeadsUp):
                if command.text != hud_text:
                    hud_text, hud_pixels = command.text, hud_image(command.text) if command.text else None
            elif isinstance(command, msg.CaptureWindow):
                pending_capture = command
        frame = frames.read_newest()
        if frame is not None:
            started = time.perf_counter()
            image = frame.pixels
            image_texture.upload(image)
            upload_ms = (time.perf_counter() - started) * 1000
        if hud_pixels is not None:
            hud_texture.upload(hud_pixels)

        fb_w, fb_h = glfw.get_framebuffer_size(window)
        gl.glViewport(0, 0, fb_w, fb_h)
        gl.glClearColor(0.12, 0.12, 0.12, 1)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT)
        gl.glMatrixMode(gl.GL_PROJECTION)
        gl.glLoadIdentity()
        gl.glOrtho(0, fb_w, 0, fb_h, -1, 1)
        gl.glMatrixMode(gl.GL_MODELVIEW)
        gl.glLoadIdentity()
        gl.glEnable(gl.GL_TEXTURE_2D)
        gl.glColor4f(1, 1, 1, 1)
        if image is not None:
            p = place(fb_w, fb_h, image.shape[1], image.shape[0], view)
            image_texture.draw(p.x0, p.y0, image.shape[1] * p.scale, image.shape[0] * p.scale)
        if hud_pixels is not None:
            gl.glEnable(gl.GL_BLEND)
            gl.glBlendFunc(gl.GL_SRC_ALPHA, gl.GL_ONE_MINUS_SRC_ALPHA)
            h, w = hud_pixels.shape[:2]
            hud_texture.draw(0, fb_h - h, w, h)
            gl.glDisable(gl.GL_BLEND)
        gl.glDisable(gl.GL_TEXTURE_2D)
        if pending_capture is not None:
            events.put(_capture(gl, fb_w, fb_h, pending_capture.path))
        glfw.swap_buffers(window)

        now = time.perf_counter()
        frame_times.append(now)
        if now - last_stats > STATS_EVERY_S:
            frame_times = [t for t in frame_times if t > now - 1]
            events.put(msg.ViewerStats(float(len(frame_times)), upload_ms))
            last_stats = now
    events.put(msg.Closed())
    glfw.destroy_window(window)
    glfw.terminate()
    frames.close()


def _capture(gl, width, height, path) -> msg.Captured:
    """The back buffer as drawn, before the swap; glReadPixels gives rows bottom-up."""
    from PIL import Image
    try:
        gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
        data = gl.glReadPixels(0, 0, width, height, gl.GL_RGB, gl.GL_UNSIGNED_BYTE)
        pixels = np.frombuffer(data, np.uint8).reshape(height, width, 3)[::-1]
        Image.fromarray(pixels).save(path)
        return msg.Captured(path)
    except Exception as error:  # noqa: BLE001 - reported to the app, the viewer goes on
        return msg.Captured(path, f"{type(error).__name__}: {error}")


def _set_fullscreen(glfw, window, on: bool, state) -> None:
    if on:
        monitor = glfw.get_primary_monitor()
        mode = glfw.get_video_mode(monitor)
        state["windowed"] = (glfw.get_window_size(window), glfw.get_window_pos(window))
        glfw.set_window_monitor(window, monitor, 0, 0, mode.size.width, mode.size.height, mode.refresh_rate)
    else:
        (w, h), position = state["windowed"]
        x, y = position if position is not None else (0, 0)
        glfw.set_window_monitor(window, None, x, y, w, h, 0)
