"""Layers: pick any intermediate activation (with its shape), how its channels are shown (grid, RGB from 3
channels, single), normalisation, dB scale, FFT, and statistics that expose droplet artifacts (a peak far
above the mean)."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.render import VIEW_MODES, VIEW_NORMALISATIONS
from explorer.state import SCALE_DB_RANGE

from .panel import Panel

OUTPUT = "output image"
CHANNEL_COUNTS = (1, 4, 9, 16, 25, 36, 64, 100, 144, 256)


class LayersPanel(Panel):
    title = "Layers"
    sections = ("layers", "status")

    def build_items(self):
        self.layer_tag = dpg.add_combo([OUTPUT], label="layer", width=self.layout.slider_width,
                                       callback=self.on_layer, tag="layers.layer")
        self.mode_tag = dpg.add_radio_button(list(VIEW_MODES), horizontal=True,
                                             callback=lambda _, v: self.set("layers", "mode", v))
        self.first_tag = dpg.add_input_int(label="first channel", width=self.layout.number_width, step=1,
                                           callback=lambda _, v: self.set("layers", "first_channel", v))
        self.count_tag = dpg.add_combo([str(c) for c in CHANNEL_COUNTS], label="channels",
                                       width=self.layout.number_width,
                                       callback=lambda _, v: self.set("layers", "channel_count", int(v)))
        self.normalise_tag = dpg.add_radio_button(list(VIEW_NORMALISATIONS), horizontal=True,
                                                  callback=lambda _, v: self.set("layers", "normalise", v))
        self.db_tag = dpg.add_slider_float(label="scale dB", min_value=SCALE_DB_RANGE[0], max_value=SCALE_DB_RANGE[1],
                                           width=self.layout.slider_width,
                                           callback=lambda _, v: self.set("layers", "scale_db", v))
        self.fft_tag = dpg.add_checkbox(label="FFT (power spectrum, dB)",
                                        callback=lambda _, v: self.set("layers", "fft", v))
        self.stats_tag = dpg.add_text("", wrap=self.layout.text_wrap, color=self.layout.note_color)

    def labels(self):
        facts = self.session.facts
        if facts is None:
            return {OUTPUT: None}
        out = {OUTPUT: None}
        for layer in facts.layers:
            out[f"{layer.name}  {layer.channels}x{layer.height}x{layer.width}"] = layer.name
        return out

    def on_layer(self, sender, label):
        self.set("layers", "layer", self.labels().get(label))

    def refresh(self):
        layers = self.session.layers
        labels = self.labels()
        dpg.configure_item(self.layer_tag, items=list(labels))
        current = next((label for label, name in labels.items() if name == layers.layer), OUTPUT)
        self.put(self.layer_tag, current)
        self.put(self.mode_tag, layers.mode)
        self.put(self.first_tag, layers.first_channel)
        self.put(self.count_tag, str(layers.channel_count))
        self.put(self.normalise_tag, layers.normalise)
        self.put(self.db_tag, layers.scale_db)
        self.put(self.fft_tag, layers.fft)
        self.put(self.stats_tag, self.session.status.layer_stats)
