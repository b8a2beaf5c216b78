"""Blend: another network of the same family and shape, its layers from a resolution up swapped in or crossfaded
(layer swapping), the amount on a slider."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.blending import BLEND_MODES

from .panel import Panel

SPLITS = (4, 8, 16, 32, 64, 128, 256, 512, 1024)


class BlendPanel(Panel):
    title = "Blend models"
    sections = ("blend",)

    def open_by_default(self):
        return False

    def build_items(self):
        self.other_tag = dpg.add_input_text(label="other network", width=self.layout.slider_width, on_enter=True,
                                            tag="blend.other", hint="same family and shape; Enter blends",
                                            callback=lambda _, v: self.set("blend", "other", v or None))
        with dpg.group(horizontal=True):
            dpg.add_button(label="Choose...", callback=lambda: dpg.show_item(self.dialog_tag))
            dpg.add_button(label="No blend", tag="blend.off", callback=lambda: self.set("blend", "other", None))
        self.mode_tag = dpg.add_radio_button(list(BLEND_MODES), horizontal=True, tag="blend.mode",
                                             callback=lambda _, v: self.set("blend", "mode", v))
        self.split_tag = dpg.add_combo([str(s) for s in SPLITS], label="from resolution", tag="blend.split",
                                       width=self.layout.number_width,
                                       callback=lambda _, v: self.set("blend", "split_resolution", int(v)))
        self.amount_tag = dpg.add_slider_float(label="amount of the other", min_value=0.0, max_value=1.0,
                                               width=self.layout.slider_width, tag="blend.amount",
                                               callback=lambda _, v: self.set("blend", "amount", v))
        with dpg.file_dialog(show=False, callback=self.on_dialog, width=self.layout.dialog_width,
                             height=self.layout.dialog_height) as self.dialog_tag:
            for extension in (".pkl", ".pt", ".pth", ".safetensors", ".*"):
                dpg.add_file_extension(extension)

    def on_dialog(self, sender, app_data):
        path = app_data.get("file_path_name") if isinstance(app_data, dict) else None
        if path:
            self.set("blend", "other", path)

    def refresh(self):
        blend, facts = self.session.blend, self.session.facts
        self.put(self.other_tag, blend.other or "")
        self.put(self.mode_tag, blend.mode)
        if facts is not None:
            dpg.configure_item(self.split_tag, items=[str(s) for s in SPLITS if s <= facts.img_resolution])
        self.put(self.split_tag, str(blend.split_resolution))
        self.put(self.amount_tag, blend.amount)
