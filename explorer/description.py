"""What a loaded network is: `NetworkFacts` (what the session state is checked against) and
`NetworkDescription` (the facts plus where the file came from: what `info` prints and the Network panel shows).

Both are typed records: nobody parses the printed text back apart.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .networks.common import LayerInfo

# Style-mixing presets by resolution (StyleGAN paper, section 3.1): coarse 4-8 px, middle 16-32 px, fine 64 px up.
MIX_PRESETS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1 << 30)}


@dataclass(frozen=True)
class NetworkFacts:
    """The facts of a loaded network that the state is validated against."""
    family: str
    z_dim: int
    w_dim: int
    c_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int
    layers: tuple[LayerInfo, ...]
    default_truncation_cutoff: int | None = None   # StyleGAN (2019) truncates only its first 8 ws by default
    img_shape: tuple[int, int] | None = None        # (height, width); None: square, img_resolution each way

    @classmethod
    def from_generator(cls, G) -> NetworkFacts:
        return cls(getattr(G, "family", "unknown"), int(G.z_dim), int(G.w_dim), int(G.c_dim), int(G.num_ws),
                   int(G.img_resolution), int(G.img_channels), tuple(G.synthesis.layers),
                   getattr(G, "default_truncation_cutoff", None), tuple(G.img_shape))

    @property
    def height(self) -> int:
        return self.img_shape[0] if self.img_shape else self.img_resolution

    @property
    def width(self) -> int:
        return self.img_shape[1] if self.img_shape else self.img_resolution

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(l.name for l in self.layers)

    @property
    def noise_layers(self) -> tuple[str, ...]:
        return tuple(l.name for l in self.layers if l.has_noise)

    def layer(self, name: str) -> LayerInfo:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def w_resolution(self, w_index: int) -> int:
        """The resolution a w index styles: the smallest feature map among the layers it styles."""
        sizes = [l.height for l in self.layers if l.w_index == w_index]
        return min(sizes) if sizes else 4 * 2 ** (w_index // 2)

    def preset_range(self, preset: str) -> tuple[int, int]:
        """The w indices [start, stop) of a mixing preset ('coarse', 'middle', 'fine')."""
        low, high = MIX_PRESETS[preset]
        inside = [i for i in range(self.num_ws) if low <= self.w_resolution(i) <= high]
        return (inside[0], inside[-1] + 1) if inside else (0, 0)


@dataclass(frozen=True)
class NetworkDescription:
    """A loaded network file: its facts and where it came from."""
    path: str
    format: str
    detail: str
    architecture: str
    parameters: int
    w_avg_estimated: bool
    notes: tuple[str, ...]
    facts: NetworkFacts

    @property
    def layers(self) -> tuple[LayerInfo, ...]:
        return self.facts.layers

    @property
    def family(self) -> str:
        return self.facts.family

    def to_json_dict(self) -> dict:
        """The record as JSON (`info --json`): the facts' fields at the top level, each layer with its shape."""
        data = {key: value for key, value in asdict(self).items() if key != "facts"}
        facts = asdict(self.facts)
        facts["layers"] = [{**asdict(l), "shape": [l.channels, l.height, l.width]} for l in self.facts.layers]
        # `resolution` as `info` has always printed it (the facts call it img_resolution).
        return {**data, **facts, "resolution": self.facts.img_resolution}


def describe(loaded) -> NetworkDescription:
    """The description of an explorer.formats.LoadedNetwork."""
    G = loaded.generator
    return NetworkDescription(
        path=loaded.path, format=loaded.format_label, detail=loaded.detail,
        architecture=getattr(G, "architecture", G.family), parameters=sum(p.numel() for p in G.parameters()),
        w_avg_estimated=loaded.w_avg_estimated, notes=tuple(loaded.notes), facts=NetworkFacts.from_generator(G))


def summary_lines(d: NetworkDescription) -> list[str]:
    f = d.facts
    lines = [
        f"file          {d.path}",
        f"format        {d.format}" + (f" ({d.detail})" if d.detail else ""),
        f"network       {f.family}, architecture {d.architecture}",
        f"resolution    {f.width}x{f.height}, {f.img_channels} channels",
        f"latents       z_dim {f.z_dim}, w_dim {f.w_dim}, num_ws {f.num_ws}",
        f"classes       {f.c_dim if f.c_dim else 'none (unconditional)'}",
        f"parameters    {d.parameters:,}",
        f"w_avg         {'estimated from 10,000 random z (the file has none)' if d.w_avg_estimated else 'stored'}",
    ]
    return lines + [f"note          {note}" for note in d.notes]


def layer_lines(layers) -> list[str]:
    width = max((len(l.name) for l in layers), default=0)
    lines = []
    for l in layers:
        w = f"w[{l.w_index}]" if l.w_index is not None else ""
        lines.append(f"  {l.name:<{width}}  {l.kind:<6} {l.channels:>5} x {l.height:>4} x {l.width:<4} {w}")
    return lines


def format_description(d: NetworkDescription) -> str:
    """What `stylegan-explorer info` prints."""
    return "\n".join(summary_lines(d) + ["layers"] + layer_lines(d.layers))
