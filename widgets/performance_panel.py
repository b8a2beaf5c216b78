"""Performance: device, dtype, the frame-rate limit, and the measured render, upload and frame times."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.controls import DTYPES
from explorer.state import FPS_LIMIT_RANGE

from .panel import Panel

DEVICES = ("cpu", "cuda")


class PerformancePanel(Panel):
    title = "Performance"
    sections = ("performance",)
    status_fields = ("timings", "display", "render_error", "tier")

    def build_items(self):
        self.device_tag = dpg.add_radio_button(list(DEVICES), horizontal=True,
                                               callback=lambda _, v: self.set("performance", "device", v))
        self.dtype_tag = dpg.add_radio_button(list(DTYPES), horizontal=True,
                                              callback=lambda _, v: self.set("performance", "dtype", v))
        self.adaptive_tag = dpg.add_checkbox(label="adaptive: preview while moving, exact at rest",
                                             tag="performance.adaptive",
                                             callback=lambda _, v: self.set("performance", "adaptive", v))
        self.fps_tag = dpg.add_slider_int(label="fps limit (0: none)", min_value=FPS_LIMIT_RANGE[0],
                                          max_value=FPS_LIMIT_RANGE[1], width=self.layout.slider_width,
                                          callback=lambda _, v: self.set("performance", "fps_limit", v))
        self.timings_tag = dpg.add_text("", wrap=self.layout.text_wrap)
        self.render_error_tag = dpg.add_text("", wrap=self.layout.text_wrap, color=self.layout.error_color)

    def refresh(self):
        p, s = self.session.performance, self.controller.status
        self.put(self.device_tag, p.device)
        self.put(self.dtype_tag, p.dtype)
        self.put(self.fps_tag, p.fps_limit)
        self.put(self.adaptive_tag, p.adaptive)
        render_ms = s.timings.total_s * 1000 if s.timings else 0.0
        # Say so where the adaptive mode has nothing to preview with, rather than promise previews.
        no_preview = (f"\n(adaptive: {p.device} here has no preview precision; every frame is exact)"
                      if p.adaptive and self.controller.preview_precision is None else "")
        # On the CPU, whether the compiled kernels run (StyleGAN3 is 3x slower without them) or why not.
        kernels = f"\ncpu kernels: {self.controller.compiled_kernels}" if p.device == "cpu" else ""
        self.put(self.timings_tag, f"render {render_ms:.1f} ms   upload {s.display.upload_ms:.2f} ms\n"
                                   f"panels {s.display.panel_fps:.0f} fps   viewer {s.display.viewer_fps:.0f} fps\n"
                                   f"on screen: {s.tier}{no_preview}{kernels}")
        self.put(self.render_error_tag, f"render failed: {s.render_error}" if s.render_error else "")
