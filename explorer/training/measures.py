"""What a training run records at each of its checkpoints: the quality numbers (explorer.training.quality:
precision, recall, KID on pixel features) and what the droplet detector finds (explorer.analysis.droplets: per
layer, the share of channels that spike at one spot, over a fixed seed set), beside the images seen.

The trainer appends one JSON line a checkpoint to OUTDIR/measures.jsonl (`--no-measure` turns it off);

    python -m explorer.training.measures runs/sg1/measures.jsonl [--layers b64.conv0 b64.conv1]

prints them as a Markdown table (a row a checkpoint: images seen, hours, quality, and per layer the droplet
seeds and the widest shared spot). Measuring reads only seeded random numbers of its own
(numpy.random.RandomState), never the training's generators, so a measured run takes the same steps as one that
is not measured.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..analysis.droplets import detect_droplets, detectable_layers
from .quality import EXIT_BAD_INPUT, Quality, evaluate

DROPLET_SEEDS = tuple(range(16))     # the seed set of the README's droplet numbers


@dataclass(frozen=True)
class LayerShare:
    """One layer's shared spot over the seed set: the median and the largest share of its channels spiking at one
    spot, and on how many seeds the share reaches SHARED_SPOT_SHARE (a droplet on that seed)."""
    layer: str
    median_share: float
    widest_share: float
    widest_seed: int
    droplet_seeds: int

    def as_json(self) -> dict:
        return {"layer": self.layer, "median_share": round(self.median_share, 4),
                "widest_share": round(self.widest_share, 4), "widest_seed": self.widest_seed,
                "droplet_seeds": self.droplet_seeds}


@dataclass(frozen=True)
class CheckpointMeasures:
    images_seen: int
    hours: float
    quality: Quality
    layers: tuple[LayerShare, ...]
    seed_count: int

    def as_json(self) -> dict:
        q = self.quality
        return {"images_seen": self.images_seen, "hours": round(self.hours, 3), "precision": round(q.precision, 4),
                "recall": round(q.recall, 4), "kid_x1000": round(q.kid * 1000, 3), "samples": q.samples,
                "seed_count": self.seed_count, "layers": [layer.as_json() for layer in self.layers]}

    @classmethod
    def from_json(cls, record: dict) -> "CheckpointMeasures":
        quality = Quality(float(record["precision"]), float(record["recall"]), float(record["kid_x1000"]) / 1000,
                          samples=int(record["samples"]), reals=int(record["samples"]))
        layers = tuple(LayerShare(str(layer["layer"]), float(layer["median_share"]), float(layer["widest_share"]),
                                  int(layer["widest_seed"]), int(layer["droplet_seeds"]))
                       for layer in record["layers"])
        return cls(int(record["images_seen"]), float(record["hours"]), quality, layers, int(record["seed_count"]))

    def line(self) -> str:
        """One line for the trainer's output: the quality, and the layer with the most droplet seeds (of those, the
        one with the widest shared spot)."""
        q = self.quality
        text = (f"measured at {self.images_seen:,} images: precision {q.precision:.3f}, recall {q.recall:.3f}, "
                f"KID x 1000 {q.kid * 1000:.2f}")
        if self.layers:
            widest = max(self.layers, key=lambda layer: (layer.droplet_seeds, layer.widest_share))
            text += (f"; droplets: {widest.layer} {widest.droplet_seeds}/{self.seed_count} seeds, widest spot "
                     f"{widest.widest_share:.0%} (seed {widest.widest_seed})")
        return text


def measure_checkpoint(G, real_images, images_seen: int, hours: float, seeds: Sequence[int] = DROPLET_SEEDS
                       ) -> CheckpointMeasures:
    """The measures of generator G (the run's EMA generator) against uint8 real images [N, H, W, 3]: as many
    samples as real images for the quality, `seeds` for the droplet detector (constant noise, psi 1). Networks
    without layers of at least the detector's minimum size get no droplet lines."""
    quality = evaluate(G, real_images)
    layers: tuple[LayerShare, ...] = ()
    if detectable_layers(G.synthesis.layers):     # none in networks smaller than the detector's minimum map size
        report = detect_droplets(G, list(seeds))
        layers = tuple(LayerShare(layer.layer, layer.shared_share, layer.widest_share, layer.best_seed, layer.seeds)
                       for layer in report.layers)
    return CheckpointMeasures(images_seen, hours, quality, layers, len(seeds))


def read_measures(path: str | Path) -> list[CheckpointMeasures]:
    """The records of a measures.jsonl file, in the order written; ValueError names the line that is broken."""
    records = []
    for number, text in enumerate(Path(path).read_text().splitlines(), start=1):
        if not text.strip():
            continue
        try:
            records.append(CheckpointMeasures.from_json(json.loads(text)))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}, line {number}: not a measures record ({error})") from None
    return records


def markdown_table(records: Sequence[CheckpointMeasures], layers: Sequence[str] | None = None) -> str:
    """A row a checkpoint: images seen, hours, precision, recall, KID x 1000, then per layer (default: every layer
    of any record, in the order they first appear) the droplet seeds and the widest shared spot ("-" where a
    record lacks the layer)."""
    if layers is None:
        layers = list(dict.fromkeys(layer.layer for record in records for layer in record.layers))
    head = ["images seen", "hours", "precision", "recall", "KID x 1000"] + [
        f"{name}: droplet seeds, widest spot" for name in layers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for record in records:
        q = record.quality
        by_name = {layer.layer: layer for layer in record.layers}
        cells = [f"{record.images_seen:,}", f"{record.hours:.2f}", f"{q.precision:.3f}", f"{q.recall:.3f}",
                 f"{q.kid * 1000:.2f}"]
        for name in layers:
            layer = by_name.get(name)
            cells.append("-" if layer is None else
                         f"{layer.droplet_seeds}/{record.seed_count}, {layer.widest_share:.0%}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.training.measures",
                                     description="Print a run's measures.jsonl as a Markdown table.")
    parser.add_argument("file", help="a run's measures.jsonl")
    parser.add_argument("--layers", nargs="+", help="layers to show (default: every measured layer)")
    args = parser.parse_args(argv)
    try:
        records = read_measures(args.file)
    except (OSError, ValueError) as error:
        print(f"measures: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not records:
        print(f"measures: {args.file} holds no records", file=sys.stderr)
        return EXIT_BAD_INPUT
    known = {layer.layer for record in records for layer in record.layers}
    unknown = [name for name in args.layers or () if name not in known]
    if unknown:
        print(f"measures: no layer {unknown[0]!r} in {args.file}; layers: {', '.join(sorted(known))}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    print(markdown_table(records, args.layers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
