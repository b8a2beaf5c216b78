"""Sizes of the panel window, all derived from the font size, so that the panels scale with it."""
from __future__ import annotations

from dataclasses import dataclass

# In units of the font size ("em").
PANEL_WIDTH_EM = 34          # wide enough for a slider with its label
PANEL_HEIGHT_EM = 62
SLIDER_WIDTH_EM = 16
NUMBER_WIDTH_EM = 8
TEXT_WRAP_EM = 32
VIEWER_GAP_EM = 1            # between the panel window and the viewer window
DIALOG_WIDTH_EM = 40         # file dialogs: room for a long file name and its size and date
DIALOG_HEIGHT_EM = 28


@dataclass(frozen=True)
class Layout:
    font_size: int = 13
    error_color: tuple[int, int, int] = (255, 110, 90)
    note_color: tuple[int, int, int] = (170, 200, 255)

    def em(self, count: float) -> int:
        return int(round(count * self.font_size))

    @property
    def panel_width(self) -> int:
        return self.em(PANEL_WIDTH_EM)

    @property
    def panel_height(self) -> int:
        return self.em(PANEL_HEIGHT_EM)

    @property
    def slider_width(self) -> int:
        return self.em(SLIDER_WIDTH_EM)

    @property
    def number_width(self) -> int:
        return self.em(NUMBER_WIDTH_EM)

    @property
    def text_wrap(self) -> int:
        return self.em(TEXT_WRAP_EM)

    @property
    def dialog_width(self) -> int:
        return self.em(DIALOG_WIDTH_EM)

    @property
    def dialog_height(self) -> int:
        return self.em(DIALOG_HEIGHT_EM)

    @property
    def viewer_x(self) -> int:
        return self.panel_width + self.em(VIEWER_GAP_EM)
