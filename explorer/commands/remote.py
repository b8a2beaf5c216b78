"""`stylegan-explorer osc-addresses`: the Markdown table of every remote-control address (OSC and MIDI share it),
generated from the session state and the controller's commands, for the README."""
from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "osc-addresses", help="print the Markdown table of every OSC address",
        description="Print the table of remote-control addresses (/explorer/<section>/<field> and the commands), "
                    "generated from the session state.")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..remote.addresses import markdown_table
    print(markdown_table(), end="")
    return 0
