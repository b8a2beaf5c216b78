"""Layers: pick any intermediate activation (with its shape), how its channels are shown (grid, RGB from 3
channels, single), normalisation, dB scale, FFT, and statistics that expose droplet artifacts (a peak far
above the mean)."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.controls import VIEW_MODES, VIEW_NORMALISATIONS
from explorer.controls import SCALE_DB_RANGE

from .panel import Panel

OUTPUT = "output image"
CHANNEL_COUNTS = (1, 4, 9, 16, 25, 36, 64, 100, 144, 256)


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


class LayersPanel(Panel):
    title = "Layers"
    sections = ("layers",)
    status_fields = ("layer_stats",)

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
        stats = self.controller.status.layer_stats
        self.put(self.stats_tag, format_stats(stats) if stats is not None else "")
