"""`stylegan-explorer info [--pkl FILE] [--json]`: what a network file holds."""
from __future__ import annotations

import json

from ..description import describe, format_description
from .common import add_network_argument, open_network


def register(subparsers) -> None:
    parser = subparsers.add_parser("info", help="describe a network file")
    add_network_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the description as JSON")
    parser.set_defaults(handler=run)


def run(args) -> int:
    description = describe(open_network(args.pkl))
    print(json.dumps(description.to_json_dict(), indent=2) if args.json else format_description(description))
    return 0
