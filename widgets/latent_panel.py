"""Latent: the seed, stepping, a random seed, the 2-D seed-space position, animation, Z/W blending, class."""
from __future__ import annotations

import random

import dearpygui.dearpygui as dpg

from explorer.latents import SEED_LIMIT

from .panel import Panel

POSITION_DRAG_SPEED = 0.01   # seeds per pixel of mouse drag on the position field
SPEED_SLIDER = 2.0           # seeds per second either way on the slider; ctrl+click types up to the state's range


class LatentPanel(Panel):
    title = "Latent"
    sections = ("latent",)

    def build_items(self):
        latent = self.session.latent
        with dpg.group(horizontal=True):
            self.seed_tag = dpg.add_input_int(label="seed", width=self.layout.number_width, step=0,
                                              callback=lambda _, v: self.call(latent.set_seed, v))
            self.minus_tag = dpg.add_button(label="-1", callback=lambda: self.step(-1))
            self.plus_tag = dpg.add_button(label="+1", callback=lambda: self.step(+1))
            self.random_tag = dpg.add_button(label="random", callback=lambda: self.call(
                latent.set_seed, random.randrange(SEED_LIMIT)))
        self.position_tag = dpg.add_drag_floatx(label="position x, y", size=2, width=self.layout.slider_width,
                                                speed=POSITION_DRAG_SPEED, callback=self.on_position)
        with dpg.group(horizontal=True):
            self.animate_tag = dpg.add_checkbox(label="animate", callback=lambda _, v: self.set("latent", "animate", v))
            self.speed_tag = dpg.add_slider_float(label="speed", min_value=-SPEED_SLIDER, max_value=SPEED_SLIDER,
                                                  width=self.layout.number_width * 2,
                                                  callback=lambda _, v: self.set("latent", "speed", v))
        self.space_tag = dpg.add_radio_button(["w", "z"], horizontal=True, label="blend in",
                                              callback=lambda _, v: self.set("latent", "space", v))
        with dpg.group(horizontal=True):
            self.w_plus_tag = dpg.add_text("", color=self.layout.note_color)
            self.seeds_tag = dpg.add_button(label="use seeds", tag="latent.use_seeds",
                                            callback=lambda: self.set("latent", "w_plus", None))
            dpg.add_button(label="Open W+ (.npy)...", callback=lambda: dpg.show_item(self.dialog_tag))
        with dpg.file_dialog(show=False, width=self.layout.dialog_width, height=self.layout.dialog_height,
                             callback=self.on_dialog) as self.dialog_tag:
            for extension in (".npy", ".*"):
                dpg.add_file_extension(extension)
        self.class_tag = dpg.add_input_int(label="class (-1: from seed)", width=self.layout.number_width, step=1,
                                           callback=lambda _, v: self.set("latent", "class_index",
                                                                          None if v < 0 else v))

    def step(self, delta):
        latent = self.session.latent
        self.call(latent.set_seed, (latent.seed + delta) % SEED_LIMIT)

    def on_position(self, sender, value):
        latent = self.session.latent
        try:
            self.controller.edit(lambda: (setattr(latent, "x", float(value[0])), setattr(latent, "y", float(value[1]))),
                                 key="latent.position")       # a drag on the field: one undo step
            self.show_error("")
        except (ValueError, KeyError) as error:
            self.show_error(str(error))
            self.refresh()

    def on_dialog(self, sender, app_data):
        path = app_data.get("file_path_name") if isinstance(app_data, dict) else None
        if path and not self.controller.open_latents(path):
            self.show_error(self.controller.status.load_error or "")

    def refresh(self):
        latent = self.session.latent
        in_use = latent.w_plus is not None
        self.put(self.w_plus_tag, "main latent: a W+ (projected or opened)" if in_use else "main latent: seeds")
        dpg.configure_item(self.seeds_tag, show=in_use)
        self.put(self.seed_tag, latent.seed)
        self.put(self.position_tag, [latent.x, latent.y, 0.0, 0.0])
        self.put(self.animate_tag, latent.animate)
        self.put(self.speed_tag, latent.speed)
        self.put(self.space_tag, latent.space)
        facts = self.session.facts
        conditional = facts is not None and facts.c_dim > 0
        dpg.configure_item(self.class_tag, show=conditional)
        self.put(self.class_tag, -1 if latent.class_index is None else latent.class_index)
