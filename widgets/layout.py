"""Sizes of the panel window, all derived from the font size, so that the panels scale with it."""
from __future__ import annotations

from dataclasses import dataclass

# In units of the font size ("em").
COLUMN_WIDTH_EM = 34         # one column of panels: wide enough for a slider with its label
COLUMNS = 2                  # side by side, so that the usual panels show without scrolling
COLUMN_GAP_EM = 0.6          # Dear PyGui's default item spacing and window padding, about half a font size
PANEL_HEIGHT_EM = 62
LABEL_ROOM_EM = 6            # what a full-width input leaves on its right for its label
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
    def column_width(self) -> int:
        return self.em(COLUMN_WIDTH_EM)

    @property
    def panel_width(self) -> int:
        return self.em(COLUMNS * COLUMN_WIDTH_EM + (COLUMNS + 1) * COLUMN_GAP_EM)

    @property
    def full_width(self) -> int:
        """For an input that takes the column's width but room for its label (Dear PyGui: negative = what is
        left minus this)."""
        return -self.em(LABEL_ROOM_EM)

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
