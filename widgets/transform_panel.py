"""Transform (StyleGAN3): translate and rotate the image through the input's Fourier features."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.controls import ROTATE_RANGE

from .panel import Panel

TRANSLATE_SLIDER = 1.0    # image widths either way on the slider; typed values may go to the state's full range


class TransformPanel(Panel):
    title = "Transform (StyleGAN3)"
    sections = ("transform",)

    def open_by_default(self):
        return False

    def build_items(self):
        self.tx_tag = dpg.add_slider_float(label="translate x", min_value=-TRANSLATE_SLIDER,
                                           max_value=TRANSLATE_SLIDER, width=self.layout.slider_width,
                                           callback=lambda _, v: self.set("transform", "tx", v))
        self.ty_tag = dpg.add_slider_float(label="translate y", min_value=-TRANSLATE_SLIDER,
                                           max_value=TRANSLATE_SLIDER, width=self.layout.slider_width,
                                           callback=lambda _, v: self.set("transform", "ty", v))
        self.angle_tag = dpg.add_slider_float(label="rotate (degrees)", min_value=ROTATE_RANGE[0] / 2,
                                              max_value=ROTATE_RANGE[1] / 2, width=self.layout.slider_width,
                                              callback=lambda _, v: self.set("transform", "angle", v))
        self.note_tag = dpg.add_text("", wrap=self.layout.text_wrap, color=self.layout.note_color)

    def refresh(self):
        t, facts = self.session.transform, self.session.facts
        self.put(self.tx_tag, t.tx)
        self.put(self.ty_tag, t.ty)
        self.put(self.angle_tag, t.angle)
        applies = facts is not None and facts.family == "stylegan3"
        self.put(self.note_tag, "" if applies else "applies to StyleGAN3 networks only")
