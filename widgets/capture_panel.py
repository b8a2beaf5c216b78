"""Capture: screenshots (the output at native size, or the viewer as shown, with the session inside the PNG),
recordings (MP4, GIF or PNG frames at a fixed frame rate), and saving and opening session files (JSON, or a
screenshot that carries one)."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.export import ExportError, read_state_file
from explorer.state import CAPTURE_FPS_RANGE, CAPTURE_SOURCES, RECORDING_FORMATS

from .panel import Panel

FPS_SLIDER_MAX = 60.0    # what video players show smoothly; ctrl+click types up to the state's range


class CapturePanel(Panel):
    title = "Capture"
    sections = ("capture", "status")

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
        status = self.session.status
        status.screenshot_requests = status.screenshot_requests + 1

    def save_latents(self, *_):
        status = self.session.status
        status.save_latents_requests = status.save_latents_requests + 1

    def save_state(self, *_):
        status = self.session.status
        status.save_state_requests = status.save_state_requests + 1

    def on_dialog(self, sender, app_data):
        path = app_data.get("file_path_name") if isinstance(app_data, dict) else None
        if path:
            self.open_state(path)

    def open_state(self, path) -> bool:
        """Takes every setting of a session file; a file that is unreadable or does not fit this network changes
        nothing and says why."""
        try:
            text = read_state_file(path)
        except ExportError as error:
            self.show_error(str(error))
            return False
        return self.call(self.session.load_json, text)

    def toggle_recording(self, *_):
        self.set("status", "recording", not self.session.status.recording)

    def refresh(self):
        capture, status = self.session.capture, self.session.status
        self.put(self.folder_tag, capture.folder)
        self.put(self.source_tag, capture.source)
        self.put(self.format_tag, capture.format)
        self.put(self.fps_tag, capture.fps)
        dpg.configure_item(self.record_tag, label="Stop" if status.recording else "Record")
        self.put(self.status_tag, status.capture_status)
