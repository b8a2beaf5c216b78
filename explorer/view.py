"""What the viewer shows for a render result: the output, with the selected layer's grid (and its spectrum)
beside it at the same height. Pure numpy, so screenshots of the view are made the same way headless."""
from __future__ import annotations

import numpy as np

from .render import GRID_GAP, RenderResult

LAYER_VIEW_GAP_PX = 4            # between the output and the layer grid
MARK_COLOUR = (255, 40, 40)      # a droplet's spike, marked on the layer view
MARK_RADIUS = 2                  # the mark: a square outline this many map pixels from the spike


def mark_spikes(layer_image: np.ndarray, result: RenderResult, spikes) -> np.ndarray:
    """The layer view with a square drawn around each (channel, y, x) of `spikes` that it shows (channels in the
    grid, or the one channel of a single view)."""
    if result.stats is None or not spikes:
        return layer_image
    marked = layer_image.copy()
    _, height, width = result.stats.shape
    first, stop = result.stats.channels
    view = result.request.view
    count = stop - first
    columns = int(np.ceil(np.sqrt(count))) if view.mode == "grid" and count > 1 else 1
    for channel, y, x in spikes:
        if not first <= channel < stop or (view.mode == "rgb" and count == 3):
            continue
        index = channel - first if columns > 1 else 0
        top = (index // columns) * (height + GRID_GAP) + y
        left = (index % columns) * (width + GRID_GAP) + x
        y0, y1 = max(top - MARK_RADIUS, 0), min(top + MARK_RADIUS, marked.shape[0] - 1)
        x0, x1 = max(left - MARK_RADIUS, 0), min(left + MARK_RADIUS, marked.shape[1] - 1)
        marked[y0, x0:x1 + 1] = marked[y1, x0:x1 + 1] = MARK_COLOUR
        marked[y0:y1 + 1, x0] = marked[y0:y1 + 1, x1] = MARK_COLOUR
    return marked


def compose_view(result: RenderResult, spikes=()) -> np.ndarray:
    """The output with the layer view (its spikes marked) and the spectrum beside it."""
    parts = [result.image]
    view = result.request.view
    layer_image = mark_spikes(result.layer_image, result, spikes) if result.layer_image is not None else None
    extras = ([layer_image] if view.layer is not None else []) + ([result.fft_image] if view.fft else [])
    for extra in extras:
        if extra is None:
            continue
        height = result.image.shape[0]
        factor = height / extra.shape[0]
        rows = np.minimum((np.arange(height) / factor).astype(int), extra.shape[0] - 1)
        width = max(int(round(extra.shape[1] * factor)), 1)
        cols = np.minimum((np.arange(width) / factor).astype(int), extra.shape[1] - 1)
        parts.append(np.zeros([height, LAYER_VIEW_GAP_PX, 3], np.uint8))
        parts.append(extra[rows][:, cols])
    return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
