"""The headless commands of `stylegan-explorer`, one module each with `register(subparsers)` and `run(args)`.

    render      images for seeds or a session file        info          what a network file holds
    convert     any network file to safetensors            video         walks, loops and sweeps to MP4, GIF, frames
    droplets    channels with droplet-like spikes           directions    PCA / SeFa directions in W
    export-onnx the synthesis and mapping as ONNX          project       find the latent of a photo
    osc-addresses  the OSC address of every control and command

Errors the user can act on print one line and exit with code 1. The window itself is started by the entry point
(explorer/cli.py), the one module of explorer/ that may reach the GUI.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .common import EXIT_ERROR, UserError

# The command modules, in the order `--help` lists them.
COMMAND_MODULES = ("render", "info", "convert", "video", "droplets", "directions", "export_onnx", "project", "remote")


def add_commands(parser: argparse.ArgumentParser):
    sub = parser.add_subparsers(dest="command")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return sub


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylegan-explorer", description="Explore StyleGAN generators.")
    add_commands(parser)
    return parser


def run_command(args) -> int:
    """Runs a parsed command; a UserError becomes one line on stderr and exit code 1."""
    try:
        return args.handler(args)
    except UserError as error:
        print(f"stylegan-explorer: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("stylegan-explorer: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:   # output piped into head and the like: not an error of ours
        return 0


def main(argv: list[str] | None = None) -> int:
    """The headless commands alone (scripts and tests): `main(["render", "--seeds", "0", "--outdir", "out"])`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_usage(sys.stderr)
        return 2
    return run_command(args)
