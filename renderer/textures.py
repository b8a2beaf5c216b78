"""An RGBA8 OpenGL texture that is updated in place and drawn as a quad (fixed-function GL, which every desktop
context offers: a 2.1 context on macOS as well as Mesa's compatibility profile)."""
from __future__ import annotations

import numpy as np
from OpenGL import GL as gl


class Texture:
    def __init__(self):
        self.id = gl.glGenTextures(1)
        self.width = self.height = 0

    def upload(self, rgba: np.ndarray) -> None:
        """uint8 [H, W, 4]. Same size as before: glTexSubImage2D into the existing storage, the fast path
        (GUI_NOTES: 32,000 uploads/s at 512x512); a new size reallocates once."""
        height, width = rgba.shape[:2]
        gl.glBindTexture(gl.GL_TEXTURE_2D, self.id)
        gl.glPixelStorei(gl.GL_UNPACK_ALIGNMENT, 4)   # RGBA rows are always 4-byte aligned
        if (width, height) != (self.width, self.height):
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_WRAP_S, gl.GL_CLAMP_TO_EDGE)
            gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_WRAP_T, gl.GL_CLAMP_TO_EDGE)
            gl.glTexImage2D(gl.GL_TEXTURE_2D, 0, gl.GL_RGBA8, width, height, 0, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE,
                            rgba)
            self.width, self.height = width, height
        else:
            gl.glTexSubImage2D(gl.GL_TEXTURE_2D, 0, 0, 0, width, height, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE, rgba)

    def draw(self, left: float, top: float, width: float, height: float, smooth: bool = False) -> None:
        """A quad in window pixels (y down, see the viewer's projection). smooth: linear filtering, for frames
        shown smaller than 1:1; magnified frames keep hard pixel edges, so that single pixels stay visible."""
        gl.glBindTexture(gl.GL_TEXTURE_2D, self.id)
        filtering = gl.GL_LINEAR if smooth else gl.GL_NEAREST
        gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MIN_FILTER, filtering)
        gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, filtering)
        gl.glBegin(gl.GL_QUADS)
        gl.glTexCoord2f(0, 0)
        gl.glVertex2f(left, top)
        gl.glTexCoord2f(1, 0)
        gl.glVertex2f(left + width, top)
        gl.glTexCoord2f(1, 1)
        gl.glVertex2f(left + width, top + height)
        gl.glTexCoord2f(0, 1)
        gl.glVertex2f(left, top + height)
        gl.glEnd()

    def delete(self) -> None:
        gl.glDeleteTextures([self.id])
