"""Which panels the window has, and in which column: what every session needs on the left, the per-layer work
on the right. A panel not named in PANEL_COLUMNS goes at the end of the last column."""
from __future__ import annotations

from .bending_panel import BendingPanel
from .blend_panel import BlendPanel
from .capture_panel import CapturePanel
from .directions_panel import DirectionsPanel
from .droplets_panel import DropletsPanel
from .help_panel import HelpPanel
from .history_panel import HistoryPanel
from .latent_panel import LatentPanel
from .layers_panel import LayersPanel
from .mixing_panel import MixingPanel
from .network_panel import NetworkPanel
from .noise_panel import NoisePanel
from .performance_panel import PerformancePanel
from .presets_panel import PresetsPanel
from .project_panel import ProjectPanel
from .regions_panel import RegionsPanel
from .remote_panel import RemotePanel
from .styles_panel import StylesPanel
from .transform_panel import TransformPanel
from .truncation_panel import TruncationPanel

PANELS = (NetworkPanel, LatentPanel, TruncationPanel, MixingPanel, StylesPanel, NoisePanel, TransformPanel,
          LayersPanel, DropletsPanel, DirectionsPanel, RegionsPanel, BendingPanel, BlendPanel, ProjectPanel,
          CapturePanel, PresetsPanel, RemotePanel, HistoryPanel, PerformancePanel, HelpPanel)
PANEL_COLUMNS = (("NetworkPanel", "LatentPanel", "TruncationPanel", "NoisePanel", "DirectionsPanel", "PresetsPanel",
                  "RemotePanel", "HistoryPanel", "PerformancePanel", "HelpPanel"),
                 ("MixingPanel", "StylesPanel", "TransformPanel", "LayersPanel", "DropletsPanel", "RegionsPanel",
                  "BendingPanel", "BlendPanel", "ProjectPanel", "CapturePanel"))


def build_panels(controller, layout) -> list:
    return [cls(controller, layout) for cls in PANELS]
