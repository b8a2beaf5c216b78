"""What every loader returns."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LoadedNetwork:
    generator: torch.nn.Module
    format: str                       # the key of the file's format (explorer.formats.FORMATS)
    path: str
    detail: str = ""                  # e.g. which code base wrote it, which entry of the file was used
    notes: tuple[str, ...] = ()       # warnings the user should see
    w_avg_estimated: bool = False     # the file had no w_avg: it was estimated from random z
    # The file's discriminator (NVlabs' D, rosinality's d, the trainer's D), eval mode and frozen; None when the
    # file has none or it could not be read (a note says why). The projection uses it as a feature extractor.
    discriminator: torch.nn.Module | None = None

    @property
    def format_label(self) -> str:
        from . import FORMAT_LABELS
        return FORMAT_LABELS[self.format]
