"""The ``gon`` command: one subcommand per module in this package, each with ``add_parser``.

Every user-fixable problem is a :class:`gon.GonError`: printed on one line, exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

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


class Terminated(KeyboardInterrupt):
    """SIGTERM outside training (which stops at a step boundary itself): unwind, undoing what was begun."""


def _terminate(signum, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    tune_for_training()  # a step's activations stay mapped between steps (gon.cpu_memory)
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args) or 0
    except GonError as e:
        print(f"gon: error: {shorten(str(e))}", file=sys.stderr)
        return 2
    except Terminated:
        print(
            "gon: stopped by SIGTERM; files already written are complete, nothing half-written was kept",
            file=sys.stderr,
        )
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("gon: interrupted", file=sys.stderr)
        return 130
    except RecursionError:
        print("gon: error: an input is nested too deeply to read", file=sys.stderr)
        return 2
    except MemoryError:
        print("gon: error: out of memory: the request is too large for this machine; ask for less", file=sys.stderr)
        return 2


def shorten(message: str, limit: int = 2000) -> str:
    """One line, and long values cut short: an error names its culprit without flooding the terminal."""
    line = " ".join(message.split()).encode("utf-8", "backslashreplace").decode("utf-8")  # non-UTF-8 file names
    return (
        line
        if len(line) <= limit
        else f"{line[: limit // 2]} ...[{len(line) - limit} characters]... {line[-limit // 2 :]}"
    )


if __name__ == "__main__":
    sys.exit(main())
