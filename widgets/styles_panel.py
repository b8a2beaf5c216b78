"""Per-layer styles (W+): an offset of one w along a direction with a strength, a copy of a w from another
seed, resets, and the style-channel editor (a delta on one channel of a layer's affine output s)."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.controls import OFFSET_DIRECTIONS

from .panel import Panel

STRENGTH_SLIDER = 10.0    # the slider spans +-this; typed values may go to the state's full range
DELTA_SLIDER = 10.0


class StylesPanel(Panel):
    title = "Per-layer styles (W+)"
    sections = ("styles",)

    def open_by_default(self):
        return False

    def build_items(self):
        styles = self.session.styles
        self.w_tag = dpg.add_slider_int(label="w index", min_value=0, max_value=1, width=self.layout.slider_width,
                                        callback=self.show_offset)
        self.direction_tag = dpg.add_radio_button(list(OFFSET_DIRECTIONS), horizontal=True, default_value="random")
        self.seed_tag = dpg.add_input_int(label="direction seed", width=self.layout.number_width, step=1)
        self.strength_tag = dpg.add_slider_float(label="strength", min_value=-STRENGTH_SLIDER,
                                                 max_value=STRENGTH_SLIDER, width=self.layout.slider_width,
                                                 callback=self.apply_offset)
        with dpg.group(horizontal=True):
            self.apply_tag = dpg.add_button(label="apply offset", callback=self.apply_offset)
            self.copy_tag = dpg.add_button(label="copy w from seed", callback=self.copy_layer)
            self.reset_layer_tag = dpg.add_button(label="reset layer", callback=lambda: self.call(
                styles.reset_layer, dpg.get_value(self.w_tag)))
            self.reset_all_tag = dpg.add_button(label="reset all", callback=lambda: self.call(styles.reset))
        dpg.add_separator()
        dpg.add_text("style channel")
        self.layer_tag = dpg.add_combo([], label="layer", width=self.layout.slider_width, callback=self.show_delta)
        self.channel_tag = dpg.add_input_int(label="channel", width=self.layout.number_width, step=1,
                                             callback=self.show_delta)
        self.delta_tag = dpg.add_slider_float(label="delta on s", min_value=-DELTA_SLIDER, max_value=DELTA_SLIDER,
                                              width=self.layout.slider_width, callback=self.apply_delta)
        self.summary_tag = dpg.add_text("", wrap=self.layout.text_wrap, color=self.layout.note_color)

    def show_offset(self, *_):
        """The controls show the offset the chosen w index already has (or none)."""
        w_index = dpg.get_value(self.w_tag)
        offset = next((o for o in self.session.styles.offsets if o.w_index == w_index), None)
        if offset is not None:
            self.put(self.direction_tag, offset.direction)
            self.put(self.seed_tag, offset.seed)
        self.put(self.strength_tag, offset.strength if offset else 0.0)

    def show_delta(self, *_):
        """The delta slider shows what the chosen channel of the chosen layer already has."""
        key = (dpg.get_value(self.layer_tag), dpg.get_value(self.channel_tag))
        delta = next((d.delta for d in self.session.styles.style_deltas if (d.layer, d.channel) == key), 0.0)
        self.put(self.delta_tag, delta)

    def apply_offset(self, *_):
        w_index = dpg.get_value(self.w_tag)
        self.call(self.session.styles.set_offset, w_index, dpg.get_value(self.direction_tag),
                  dpg.get_value(self.seed_tag), dpg.get_value(self.strength_tag), key=("styles.offset", w_index))

    def copy_layer(self, *_):
        self.call(self.session.styles.copy_layer, dpg.get_value(self.w_tag), dpg.get_value(self.seed_tag))

    def apply_delta(self, *_):
        layer = dpg.get_value(self.layer_tag)
        if layer:
            channel = dpg.get_value(self.channel_tag)
            self.call(self.session.styles.set_style_delta, layer, channel, dpg.get_value(self.delta_tag),
                      key=("styles.delta", layer, channel))

    def refresh(self):
        styles, facts = self.session.styles, self.session.facts
        if facts is not None:
            dpg.configure_item(self.w_tag, max_value=facts.num_ws - 1)
            dpg.configure_item(self.layer_tag, items=[l.name for l in facts.layers if l.style_channels])
        lines = [f"w[{o.w_index}] += {o.strength:g} x {o.direction} (seed {o.seed})" for o in styles.offsets]
        lines += [f"w[{c.w_index}] = seed {c.seed} w[{c.from_w_index}]" for c in styles.copies]
        lines += [f"{d.layer} s[{d.channel}] += {d.delta:g}" for d in styles.style_deltas]
        self.put(self.summary_tag, "\n".join(lines) or "no edits")
        self.show_offset()
        self.show_delta()
