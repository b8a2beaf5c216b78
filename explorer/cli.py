"""The `stylegan-explorer` command, the program's entry point.

    stylegan-explorer [--pkl FILE] [--state FILE] [--screenshot OUT.png --quit]   opens the explorer window
    stylegan-explorer render|info|convert|video ...                               headless (explorer.commands)

The window opens the model shipped in assets/ when no --pkl (and no session file naming a network) is given. This
is the one module of explorer/ that may start the GUI (widgets/); nothing imports it.
"""
from __future__ import annotations

import sys

from .assets import DEFAULT_MODEL
from .commands import add_commands, run_command
from .commands.common import EXIT_USAGE, UserError


def _state_names_a_network(state_file: str | None) -> bool:
    """Whether a session file (JSON or screenshot PNG) says which network to open; then no default is loaded."""
    if not state_file:
        return False
    from .export import ExportError, read_state_file
    from .state import network_named_in
    try:
        return network_named_in(read_state_file(state_file)) is not None
    except ExportError:
        return False   # the window reports the broken file itself


def open_window(args) -> int:
    from . import display
    problem = display.missing_display_reason()
    if problem:
        print(f"stylegan-explorer: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        from widgets.app import run_app
    except ImportError as error:
        raise UserError(f"the explorer window cannot start: {error}")
    pkl = args.pkl
    if pkl is None and DEFAULT_MODEL.exists() and not _state_names_a_network(args.state):
        pkl = str(DEFAULT_MODEL)
    if args.osc is not None and not 0 <= args.osc < 2 ** 16:
        raise UserError(f"--osc: a port is 0 to 65535, not {args.osc}")
    return run_app(pkl=pkl, state_file=args.state, screenshot=args.screenshot, quit_after=args.quit,
                   osc_port=args.osc, osc_host=args.osc_host)


def build_parser():
    import argparse
    parser = argparse.ArgumentParser(prog="stylegan-explorer", description="Explore StyleGAN generators live.")
    parser.add_argument("--pkl", help="network file to open (default: the model shipped in assets/)")
    parser.add_argument("--state", help="session file to open (JSON, or a screenshot PNG that carries one)")
    parser.add_argument("--screenshot", help="render, save a screenshot of both windows to this PNG")
    parser.add_argument("--quit", action="store_true", help="exit after --screenshot")
    parser.add_argument("--osc", type=int, default=None, metavar="PORT",
                        help="listen for OSC messages on this UDP port (off by default; 0 picks a free port)")
    parser.add_argument("--osc-host", default="127.0.0.1",
                        help="the address OSC listens on (default 127.0.0.1: this machine only)")
    add_commands(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        # A process of its own (the console script, `python -m explorer`): frames reuse the memory the last one
        # freed. A caller that passes argv (a test, a script) keeps its process's allocator as it is.
        from .memory import keep_freed_memory
        keep_freed_memory()
    args = build_parser().parse_args(argv)
    if args.command is None:
        args.handler = open_window
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
