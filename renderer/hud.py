"""The heads-up line over the image: resolution, render time, frame rate, the pixel under the cursor.

Drawn with pyimgui when it imports and its renderer starts (it ships wheels only up to CPython 3.11, and its
renderer needs GL 3.3 shaders); otherwise the text is drawn with Pillow into a small RGBA texture. Both draw
the same text at the top left; STYLEGAN_EXPLORER_HUD=text picks the Pillow one.
"""
from __future__ import annotations

import logging
import os

import numpy as np
from OpenGL import GL as gl

from .textures import Texture

log = logging.getLogger(__name__)

HUD_FONT_PX = 13           # text height at a content scale of 1
HUD_PADDING_PX = 4
HUD_BACKGROUND = (0, 0, 0, 200)      # dark enough to read over a busy image
HUD_TEXT = (235, 235, 235, 255)
HUD_BACKGROUND_ALPHA = HUD_BACKGROUND[3] / 255
IMGUI_FONT_PX = 13         # the height of Dear ImGui's built-in font (ProggyClean)


def text_image(text: str, font_px: int) -> np.ndarray:
    """The text as an RGBA image: light glyphs on a translucent dark band."""
    from PIL import Image, ImageDraw, ImageFont
    try:
        font = ImageFont.load_default(size=font_px)
    except TypeError:   # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).multiline_textbbox((0, 0), text, font=font)
    image = Image.new("RGBA", (right - left + 2 * HUD_PADDING_PX, bottom - top + 2 * HUD_PADDING_PX), HUD_BACKGROUND)
    ImageDraw.Draw(image).multiline_text((HUD_PADDING_PX - left, HUD_PADDING_PX - top), text, font=font,
                                         fill=HUD_TEXT)
    return np.ascontiguousarray(np.asarray(image))


class TextHud:
    """Pillow text in a texture, re-made only when the text changes."""
    kind = "text"

    def __init__(self, content_scale: float = 1.0):
        self.font_px = max(1, round(HUD_FONT_PX * content_scale))
        self.texture = Texture()
        self.text = None
        self.size = (0, 0)

    def draw(self, text: str, window_width: int, window_height: int) -> bool:
        """Draws the text; returns whether it needs another frame to settle (never, here)."""
        if not text:
            return False
        if text != self.text:
            pixels = text_image(text, self.font_px)
            self.texture.upload(pixels)
            self.text, self.size = text, (pixels.shape[1], pixels.shape[0])
        gl.glEnable(gl.GL_TEXTURE_2D)
        gl.glEnable(gl.GL_BLEND)
        gl.glBlendFunc(gl.GL_SRC_ALPHA, gl.GL_ONE_MINUS_SRC_ALPHA)
        self.texture.draw(0, 0, *self.size)
        gl.glDisable(gl.GL_BLEND)
        gl.glDisable(gl.GL_TEXTURE_2D)
        return False

    def close(self) -> None:
        self.texture.delete()


class ImguiHud:
    """The same line as a pyimgui window without decorations or inputs. Our own GLFW callbacks stay installed:
    the HUD takes no input, so pyimgui's are never attached."""
    kind = "imgui"

    def __init__(self, window, content_scale: float = 1.0):
        import imgui
        from imgui.integrations.glfw import GlfwRenderer
        self.imgui = imgui
        self.context = imgui.create_context()
        imgui.get_io().ini_file_name = None          # nothing to remember between runs
        imgui.get_io().font_global_scale = HUD_FONT_PX * content_scale / IMGUI_FONT_PX
        self.renderer = GlfwRenderer(window, attach_callbacks=False)
        self.text = None
        style = imgui.get_style()
        style.window_padding = (HUD_PADDING_PX, HUD_PADDING_PX)
        style.window_rounding = 0
        style.window_border_size = 0
        self.flags = (imgui.WINDOW_NO_DECORATION | imgui.WINDOW_NO_INPUTS | imgui.WINDOW_ALWAYS_AUTO_RESIZE
                      | imgui.WINDOW_NO_SAVED_SETTINGS | imgui.WINDOW_NO_FOCUS_ON_APPEARING | imgui.WINDOW_NO_NAV
                      | imgui.WINDOW_NO_MOVE)

    def draw(self, text: str, window_width: int, window_height: int) -> bool:
        """Draws the text; returns whether it needs another frame: an auto-resizing window measures its text
        in one frame and shows it at that size in the next."""
        imgui = self.imgui
        settling = text != self.text
        self.text = text
        self.renderer.process_inputs()
        imgui.new_frame()
        if text:
            imgui.set_next_window_position(0, 0)
            imgui.set_next_window_bg_alpha(HUD_BACKGROUND_ALPHA)
            imgui.begin("heads-up", flags=self.flags)
            imgui.text(text)
            imgui.end()
        imgui.render()
        self.renderer.render(imgui.get_draw_data())
        return settling

    def close(self) -> None:
        self.renderer.shutdown()
        self.imgui.destroy_context(self.context)


def make_hud(window, content_scale: float = 1.0):
    """pyimgui's HUD when available and working here, else the Pillow one."""
    if os.environ.get("STYLEGAN_EXPLORER_HUD", "").lower() != "text":
        try:
            return ImguiHud(window, content_scale)
        except ImportError:
            pass
        except Exception as error:   # noqa: BLE001 - e.g. no GL 3.3 shaders (macOS legacy contexts)
            log.info("pyimgui heads-up unavailable (%s); drawing it with Pillow", error)
    return TextHud(content_scale)
