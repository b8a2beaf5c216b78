"""Project: find the latent of a photo (the StyleGAN2 paper's projection), watching every step, stoppable with the
best result kept; the result becomes the main latent, so every other control applies to it."""
from __future__ import annotations

import dearpygui.dearpygui as dpg
import numpy as np

from .panel import Panel

DEFAULT_STEPS = 300
PREVIEW_PX = 128             # the live image in the panel, whatever the network's size


class ProjectPanel(Panel):
    title = "Project a photo"
    status_fields = ("projection", "analysis", "analysis_error", "capture_message")

    def open_by_default(self):
        return False

    def build_items(self):
        self.target_tag = dpg.add_input_text(label="photo", width=self.layout.slider_width, tag="project.target",
                                             hint="a .png or .jpg file")
        dpg.add_button(label="Choose...", callback=lambda: dpg.show_item(self.dialog_tag))
        with dpg.group(horizontal=True):
            self.steps_tag = dpg.add_input_int(label="steps", default_value=DEFAULT_STEPS, step=0,
                                               width=self.layout.number_width, tag="project.steps")
            self.w_plus_tag = dpg.add_checkbox(label="W+", tag="project.w_plus")
            self.noise_tag = dpg.add_checkbox(label="noise maps", tag="project.noise")
            self.d_tag = dpg.add_checkbox(label="D features", default_value=True, tag="project.discriminator")
        self.vgg_tag = dpg.add_input_text(label="VGG16 weights (optional)", width=self.layout.slider_width,
                                          tag="project.vgg16", hint="torchvision vgg16 state dict (.pth)")
        with dpg.group(horizontal=True):
            dpg.add_button(label="Project", tag="project.start", callback=self.start)
            dpg.add_button(label="Stop (keep best)", tag="project.stop", callback=self.controller.cancel_analysis)
        with dpg.texture_registry():
            self.texture_tag = dpg.add_dynamic_texture(PREVIEW_PX, PREVIEW_PX, [0.0] * (PREVIEW_PX * PREVIEW_PX * 4))
        dpg.add_image(self.texture_tag)
        self.info_tag = dpg.add_text("", wrap=self.layout.text_wrap, color=self.layout.note_color)
        with dpg.file_dialog(show=False, callback=self.on_dialog, width=self.layout.dialog_width,
                             height=self.layout.dialog_height) as self.dialog_tag:
            for extension in (".png", ".jpg", ".jpeg", ".*"):
                dpg.add_file_extension(extension)

    def on_dialog(self, sender, app_data):
        path = app_data.get("file_path_name") if isinstance(app_data, dict) else None
        if path:
            dpg.set_value(self.target_tag, path)

    def start(self, *_):
        started = self.controller.project(dpg.get_value(self.target_tag), dpg.get_value(self.steps_tag),
                                          dpg.get_value(self.w_plus_tag), dpg.get_value(self.noise_tag),
                                          dpg.get_value(self.vgg_tag) or None, dpg.get_value(self.d_tag))
        self.show_error("" if started else self.controller.status.analysis_error or "")

    def show_image(self, image: np.ndarray) -> None:
        """The step's image, nearest-neighbour to the preview size, as RGBA floats."""
        rows = np.minimum(np.arange(PREVIEW_PX) * image.shape[0] // PREVIEW_PX, image.shape[0] - 1)
        cols = np.minimum(np.arange(PREVIEW_PX) * image.shape[1] // PREVIEW_PX, image.shape[1] - 1)
        rgb = image[rows][:, cols]
        rgb = np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb[:, :, :3]
        rgba = np.concatenate([rgb.astype(np.float32) / 255, np.ones(rgb.shape[:2] + (1,), np.float32)], axis=2)
        dpg.set_value(self.texture_tag, rgba.reshape(-1))

    def refresh(self):
        status = self.controller.status
        step = status.projection
        lines = []
        if step is not None:
            self.show_image(step.image)
            lines.append(f"step {step.step.step} of {step.steps}: PSNR {step.step.psnr:.1f} dB "
                         f"(best {step.best_psnr:.1f} dB at step {step.best_step})")
        if status.analysis_error and status.analysis_error.startswith("project"):
            lines.append(status.analysis_error)
        if status.capture_message.startswith("projection"):
            lines.append(status.capture_message)
        self.put(self.info_tag, "\n".join(lines))
