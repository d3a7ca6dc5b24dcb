"""The ``gon`` command: one subcommand per module in this package, each with ``add_parser``.

Every user-fixable problem is a :class:`gon.GonError`: printed on one line, exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gon.cpu_memory import tune_for_training
from gon.errors import GonError

#: subcommand modules, in the order ``gon --help`` lists them
COMMAND_MODULES = [
    "gon.cli.fit",
    "gon.cli.export",
    "gon.cli.encode",
    "gon.cli.reconstruct",
    "gon.cli.sample",
    "gon.cli.interpolate",
    "gon.cli.render",
    "gon.cli.report",
    "gon.cli.bench",
    "gon.cli.evaluate",
    "gon.cli.reproduce",
    "gon.cli.explore",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gon", description="Gradient Origin Networks: train, use and reproduce.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    tune_for_training()  # a step's activations stay mapped between steps (gon.cpu_memory)
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except GonError as e:
        print(f"gon: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gon: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
