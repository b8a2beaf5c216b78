"""Capture: screenshots (the output at native size, or the viewer as shown, with the session inside the PNG),
recordings (MP4, GIF or PNG frames at a fixed frame rate), and saving and opening session files (JSON, or a
screenshot that carries one)."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.state import CAPTURE_FPS_RANGE, CAPTURE_SOURCES, RECORDING_FORMATS

from .panel import Panel

FPS_SLIDER_MAX = 60.0    # what video players show smoothly; ctrl+click types up to the state's range


class CapturePanel(Panel):
    title = "Capture"
    sections = ("capture",)
    status_fields = ("capture_message", "recording", "load_error")

    def build_items(self):
        self.folder_tag = dpg.add_input_text(label="folder", width=self.layout.slider_width, on_enter=True,
                                             callback=lambda _, v: self.set("capture", "folder", v))
        self.source_tag = dpg.add_radio_button(list(CAPTURE_SOURCES), horizontal=True,
                                               callback=lambda _, v: self.set("capture", "source", v))
        self.format_tag = dpg.add_radio_button(list(RECORDING_FORMATS), horizontal=True,
                                               callback=lambda _, v: self.set("capture", "format", v))
        self.fps_tag = dpg.add_slider_float(label="fps", min_value=CAPTURE_FPS_RANGE[0], max_value=FPS_SLIDER_MAX,
                                            width=self.layout.number_width * 2,
                                            callback=lambda _, v: self.set("capture", "fps", v))
        with dpg.group(horizontal=True):
            dpg.add_button(label="Screenshot", callback=self.screenshot, tag="capture.screenshot")
            self.record_tag = dpg.add_button(label="Record", callback=self.toggle_recording, tag="capture.record")
        with dpg.group(horizontal=True):
            dpg.add_button(label="Save session", callback=self.save_state, tag="capture.save_state")
            dpg.add_button(label="Save W+", callback=self.save_latents, tag="capture.save_latents")
            dpg.add_button(label="Open session...", callback=lambda: dpg.show_item(self.dialog_tag),
                           tag="capture.open_state")
        self.status_tag = dpg.add_text("", wrap=self.layout.text_wrap, color=self.layout.note_color)
        with dpg.file_dialog(show=False, callback=self.on_dialog, width=self.layout.dialog_width,
                             height=self.layout.dialog_height, tag="capture.state_dialog") as self.dialog_tag:
            for extension in (".json", ".png", ".*"):
                dpg.add_file_extension(extension)

    def screenshot(self, *_):
        self.controller.screenshot()

    def save_latents(self, *_):
        self.controller.save_latents()

    def save_state(self, *_):
        self.controller.save_session()

    def on_dialog(self, sender, app_data):
        path = app_data.get("file_path_name") if isinstance(app_data, dict) else None
        if path:
            self.open_state(path)

    def open_state(self, path) -> bool:
        """Takes every setting of a session file (one undo step); a file that is unreadable or does not fit this
        network changes nothing and says why."""
        opened = self.controller.open_session(path)
        self.show_error("" if opened else self.controller.status.load_error or "")
        return opened

    def toggle_recording(self, *_):
        self.controller.toggle_recording()

    def refresh(self):
        capture, status = self.session.capture, self.controller.status
        self.put(self.folder_tag, capture.folder)
        self.put(self.source_tag, capture.source)
        self.put(self.format_tag, capture.format)
        self.put(self.fps_tag, capture.fps)
        dpg.configure_item(self.record_tag, label="Stop" if self.controller.recording else "Record")
        recording = status.recording
        progress = f"\nrecording: {recording.frames_written} frames, {recording.seconds:.1f} s" if recording else ""
        self.put(self.status_tag, status.capture_message + progress)
