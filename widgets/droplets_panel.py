"""Droplets: the detector's score across layers (for the image on screen and for a seed set), a line per layer with
the share of its channels that spike at one spot (the layer-wide droplet), the ranked list of (layer, channel,
location, score), a click that shows a finding in the layer view with its spike marked, and two ablations to see
whether the artifacts go: the top channels, or the channels that spike at a droplet's spot."""
from __future__ import annotations

import dearpygui.dearpygui as dpg

from explorer.analysis.droplets import SHARED_SPOT_SHARE

from .panel import Panel

SEED_SET = 16            # seeds in "detect over seeds", from the current one
LISTED = 12              # findings listed, best first
ABLATED = 3              # channels "ablate top" zeroes
CHART_HEIGHT_EM = 9


class DropletsPanel(Panel):
    title = "Droplets"
    sections = ("bending", "layers")
    status_fields = ("droplets", "analysis", "analysis_error")

    def open_by_default(self):
        return False

    def build_items(self):
        c = self.controller
        with dpg.group(horizontal=True):
            dpg.add_button(label="This image", tag="droplets.current",
                           callback=lambda: c.detect_droplets([self.session.latent.seed]))
            dpg.add_button(label=f"{SEED_SET} seeds", tag="droplets.seeds", callback=lambda: c.detect_droplets())
            dpg.add_button(label="Cancel", callback=c.cancel_analysis)
        self.progress_tag = dpg.add_text("", color=self.layout.note_color, wrap=self.layout.text_wrap)
        with dpg.plot(height=self.layout.em(CHART_HEIGHT_EM), width=-1, no_menus=True, no_mouse_pos=True) as plot:
            self.plot_tag = plot
            self.x_axis = dpg.add_plot_axis(dpg.mvXAxis, label="layer", no_gridlines=True)
            self.y_axis = dpg.add_plot_axis(dpg.mvYAxis, label="best score")
            self.bars_tag = dpg.add_bar_series([], [], parent=self.y_axis, weight=0.7)
        self.layers_group = dpg.add_group()
        self.note_tag = dpg.add_text("", wrap=self.layout.text_wrap, color=self.layout.note_color)
        self.list_group = dpg.add_group()
        dpg.add_checkbox(label="mark spikes", tag="droplets.mark",
                         callback=lambda _, v: self.set("layers", "mark_spikes", v))
        with dpg.group(horizontal=True):
            dpg.add_button(label=f"Ablate top {ABLATED}", tag="droplets.ablate",
                           callback=lambda: c.ablate_top_droplets(ABLATED))
            dpg.add_button(label="Ablate droplet", tag="droplets.ablate_spot", callback=c.ablate_droplet_spots)
            dpg.add_button(label="Undo ablation", callback=self.clear_ablation)

    def clear_ablation(self):
        bending = self.session.bending
        kept = tuple(op for op in bending.operations if op.operation != "ablate")
        self.set("bending", "operations", kept)

    def show(self, finding):
        """The finding's channel alone in the layer view, on the seed where its spike is strongest, marked."""
        c = self.controller
        with c.history.step(("droplets.show", finding.layer, finding.channel), merge=False):
            if self.session.latent.seed != finding.best_seed or self.session.latent.w_plus is not None:
                self.session.latent.set_seed(finding.best_seed)
            c.set("layers", "layer", finding.layer)
            c.set("layers", "mode", "single")
            c.set("layers", "first_channel", finding.channel)
            c.set("layers", "mark_spikes", True)

    def refresh(self):
        status = self.controller.status
        progress = status.analysis
        text = f"{progress.name}: {progress.done} of {progress.total}" if progress else ""
        self.put(self.progress_tag, f"analysis failed: {status.analysis_error}" if status.analysis_error else text)
        self.put("droplets.mark", self.session.layers.mark_spikes)
        report = status.droplets
        dpg.delete_item(self.list_group, children_only=True)
        dpg.delete_item(self.layers_group, children_only=True)
        if report is None:
            dpg.set_value(self.bars_tag, [[], []])
            self.put(self.note_tag, "Find droplets: local spikes that dominate a channel, and one spot where a "
                                    "whole layer spikes (StyleGAN's AdaIN artifact, from 64x64 up).")
            return
        layers = report.layers
        dpg.set_value(self.bars_tag, [list(range(len(layers))), [l.best_score for l in layers]])
        dpg.set_axis_ticks(self.x_axis, tuple((l.layer.split(".")[0] if i % 2 == 0 else "", i)
                                              for i, l in enumerate(layers)))
        dpg.fit_axis_data(self.x_axis)
        dpg.fit_axis_data(self.y_axis)
        self.put(self.note_tag, f"seeds {report.seeds[0]}..{report.seeds[-1]}: {report.note}")
        dpg.add_text(f"channels spiking at one spot (a droplet: {SHARED_SPOT_SHARE:.0%} on most seeds)",
                     parent=self.layers_group)
        for i, layer in enumerate(layers):
            marked = {"color": self.layout.note_color} if layer.droplet else {}
            widest = f", widest {layer.widest_share:.0%} (seed {layer.best_seed})" if len(layer.shares) > 1 else ""
            dpg.add_text(f"{layer.layer:<10} {layer.shared_share:4.0%} median{widest}, "
                         f"{layer.seeds}/{layer.seed_count} seeds{'  droplet' if layer.droplet else ''}",
                         parent=self.layers_group,
                         tag=f"droplets.layer.{i}", **marked)
        for rank, finding in enumerate(report.findings[:LISTED]):
            label = (f"{finding.layer:<10} ch {finding.channel:<4} y {finding.y:<3} x {finding.x:<3} "
                     f"score {finding.score:6.1f}  {finding.seeds}/{finding.seed_count}")
            dpg.add_button(label=label, parent=self.list_group, tag=f"droplets.finding.{rank}",
                           callback=lambda _, __, f: self.show(f), user_data=finding)
