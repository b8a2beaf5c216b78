"""Training speed of the default model's configuration: images per second of full trainer steps (G and D
passes, path length and R1 regularisation at their intervals, augmentation, EMA) in float32 and in bfloat16
mixed precision, measured in the same run, with the ratio between them.

    python benchmarks/bench_training.py [--data data/emoji64.npz] [--steps 16] [--threads N]
        [--channel-base 2048] [--channel-max 64]

Without --data the real images are random noise of the same shape (the step costs the same). Each
configuration takes warm-up steps first (oneDNN picks its kernels on the first calls), then --steps timed
ones, interleaved in rounds so that a machine whose load changes treats both alike. Wall time and this
process's CPU time (all threads) are both printed: the CPU time is steadier on a shared machine.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from explorer.training.trainer import Trainer, TrainingOptions, load_images, r1_gamma_heuristic  # noqa: E402

WARMUP_STEPS = 3
ROUNDS = 2


@dataclass
class Rate:
    images: int = 0
    wall: float = 0.0
    cpu: float = 0.0

    def per_wall_second(self) -> float:
        return self.images / self.wall

    def per_cpu_second(self) -> float:
        return self.images / self.cpu


def make_trainer(images, precision, channel_base, channel_max) -> Trainer:
    options = TrainingOptions(resolution=images.shape[2], channel_base=channel_base, channel_max=channel_max,
                              precision=precision, conv_clamp=None,
                              r1_gamma=r1_gamma_heuristic(images.shape[2], TrainingOptions.batch))
    trainer = Trainer(options, images)
    trainer.progress.augment_p = 0.3    # a typical mid-run value: the augmentation's cost is counted
    for _ in range(WARMUP_STEPS):
        trainer.step()
    return trainer


def time_steps(trainer: Trainer, steps: int, rate: Rate):
    wall, cpu, nimg = time.perf_counter(), time.process_time(), trainer.progress.nimg
    for _ in range(steps):
        trainer.step()
    rate.wall += time.perf_counter() - wall
    rate.cpu += time.process_time() - cpu
    rate.images += trainer.progress.nimg - nimg


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="dataset .npz; random images of 64 px when missing")
    parser.add_argument("--steps", type=int, default=16, help="timed steps per configuration and round")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--channel-base", type=int, default=2048)
    parser.add_argument("--channel-max", type=int, default=64)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.data:
        images = load_images(args.data)
    else:
        images = torch.randint(0, 256, [256, 3, 64, 64], dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

    precisions = ["float32", "bfloat16"]
    trainers = {p: make_trainer(images, p, args.channel_base, args.channel_max) for p in precisions}
    rates = {p: Rate() for p in precisions}
    for _ in range(ROUNDS):
        for p in precisions:
            time_steps(trainers[p], args.steps, rates[p])

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {images.shape[2]} px, channel_base {args.channel_base}, "
          f"channel_max {args.channel_max}, batch {TrainingOptions.batch}")
    for p in precisions:
        r = rates[p]
        print(f"{p:9s} {r.per_wall_second():6.1f} images/s wall  {r.per_cpu_second():6.1f} images per CPU-second")
    base, mixed = rates["float32"], rates["bfloat16"]
    print(f"bfloat16 / float32: {mixed.per_wall_second() / base.per_wall_second():.2f}x wall, "
          f"{mixed.per_cpu_second() / base.per_cpu_second():.2f}x CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
