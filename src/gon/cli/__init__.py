"""The ``gon`` command: one subcommand per module in this package, each with ``add_parser``.

Every user-fixable problem is a :class:`gon.GonError`: printed on one line, exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from gon.errors import GonError

#: subcommand modules, in the order ``gon --help`` lists them
COMMAND_MODULES = ["gon.cli.fit", "gon.cli.export", "gon.cli.encode", "gon.cli.reconstruct", "gon.cli.sample", "gon.cli.interpolate", "gon.cli.render", "gon.cli.report", "gon.cli.bench", "gon.cli.evaluate", "gon.cli.reproduce"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gon", description="Gradient Origin Networks: train, use and reproduce.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Big CPU tensors on transparent huge pages (PyTorch reads this at its first large allocation):
    # an implicit GON step allocates hundreds of MB afresh, and 4 KiB pages cost it ~250k page faults
    # (shared pass 1.48 -> 1.29 s per step, naive 5.49 -> 4.37 s; docs/performance.md). 0 turns it off.
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
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
