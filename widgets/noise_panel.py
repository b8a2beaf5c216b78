"""Noise: mode none / const / random, the noise seed, a global strength and a strength per layer (each a
multiplier of that layer's learned noise strength)."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.controls import NOISE_MODES

from .panel import Panel

STRENGTH_SLIDER_MAX = 4.0


class NoisePanel(Panel):
    title = "Noise"
    sections = ("noise",)

    def build_items(self):
        self.mode_tag = dpg.add_radio_button(list(NOISE_MODES), horizontal=True,
                                             callback=lambda _, v: self.set("noise", "mode", v))
        self.seed_tag = dpg.add_input_int(label="noise seed", width=self.layout.number_width, step=1,
                                          callback=lambda _, v: self.set("noise", "seed", v))
        self.strength_tag = dpg.add_slider_float(label="strength (all)", min_value=0.0,
                                                 max_value=STRENGTH_SLIDER_MAX, width=self.layout.slider_width,
                                                 callback=lambda _, v: self.set("noise", "strength", v))
        self.layers_group = dpg.add_group()
        self.layer_tags = {}

    def on_network(self):
        dpg.delete_item(self.layers_group, children_only=True)
        self.layer_tags = {}
        facts = self.session.facts
        for name in (facts.noise_layers if facts else ()):
            self.layer_tags[name] = dpg.add_slider_float(
                label=name, min_value=0.0, max_value=STRENGTH_SLIDER_MAX, width=self.layout.slider_width,
                parent=self.layers_group, tag=f"noise.layer.{name}", user_data=name,
                callback=lambda _, v, layer: self.call(self.session.noise.set_layer_strength, layer, v,
                                                        key=("noise.layer_strength", layer)))
        self.refresh()

    def refresh(self):
        noise = self.session.noise
        self.put(self.mode_tag, noise.mode)
        self.put(self.seed_tag, noise.seed)
        self.put(self.strength_tag, noise.strength)
        for name, tag in self.layer_tags.items():
            self.put(tag, noise.layer_multiplier(name))
