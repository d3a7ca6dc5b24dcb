"""The ``gon`` command: one subcommand per module in this package, each with ``add_parser``.

Every user-fixable problem is a :class:`gon.GonError`: printed on one line, exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import re
import signal
import sys
import threading

from gon.core.errors import GonError, Stopped, printable
from gon.training.cpu_memory import tune_for_training

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


#: one typical use per command, printed at the end of its --help unless its description has its own examples
#: (tests run each through the parser)
EXAMPLES = {
    "fit": "gon fit --model implicit --dataset mnist --max-steps 2000 --out runs/implicit-mnist",
    "export": "gon export runs/implicit-mnist my-model",
    "encode": "gon encode runs/implicit-mnist --out latents.npz",
    "reconstruct": "gon reconstruct runs/implicit-mnist -n 32 --seed 1 --out recon.png",
    "sample": "gon sample runs/vgon-fashion-mnist -n 64 --temperature 0.8 --out samples.png",
    "interpolate": "gon interpolate runs/implicit-mnist --pairs 4 --steps 10 --seed 1 --out slerp.png",
    "render": "gon render runs/implicit-mnist --resolution 256 -n 8 --out sr.png",
    "report": "gon report runs/implicit-mnist",
    "bench": "gon bench --quick",
    "evaluate": "gon evaluate runs/implicit-mnist --limit 1000 --seed 0",
    "reproduce": "gon reproduce --list",
}
_MARKUP = re.compile(r"(?::\w+:)?``?([^`]+)``?")  # ``literal``, `text`, :class:`name` (reStructuredText)


def plain(text: str | None) -> str | None:
    """Help text without the reStructuredText markup of the docstrings it comes from."""
    return _MARKUP.sub(r"\1", text) if text else text


class PlainHelp(argparse.RawDescriptionHelpFormatter):
    """Help in plain text: the markup removed, the description's line breaks kept (mixed into each command's
    formatter; ``_fill_text`` and ``_get_help_string`` are the hooks argparse's own formatters override)."""

    def _fill_text(self, text, width, indent):
        return super()._fill_text(plain(text), width, indent)

    def _get_help_string(self, action):
        return plain(super()._get_help_string(action))


class OneLineErrors(argparse.ArgumentParser):
    """A bad, unknown or missing argument is one line naming it, like gon's own errors (argparse prints its usage
    first: 24 lines for gon fit)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {shorten(message)} (see '{self.prog} --help')\n")


class CommandParser(OneLineErrors):
    """A subcommand's parser: plain-text help and an example at the end."""

    def __init__(self, *args, epilog=None, formatter_class=argparse.HelpFormatter, **kwargs):
        command = (kwargs.get("prog") or "").split()[-1:]
        example = EXAMPLES.get(command[0]) if command else None
        if example and epilog is None and "example:" not in (kwargs.get("description") or ""):
            epilog = f"example:\n  {example}"
        if not issubclass(formatter_class, PlainHelp):
            formatter_class = type(f"Plain{formatter_class.__name__}", (PlainHelp, formatter_class), {})
        super().__init__(*args, epilog=epilog, formatter_class=formatter_class, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from gon.training.provenance import version_line

    parser = OneLineErrors(
        prog="gon",
        description="Gradient Origin Networks: train, use and reproduce.",
        epilog="quick start:\n  gon fit --model implicit --dataset mnist --max-steps 2000\n"
        "  gon report runs/implicit-mnist\n'gon COMMAND --help' describes each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_line())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=CommandParser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(commands)
    return parser


def seed(text: str) -> int:
    """The argparse type of every ``--seed``: a whole number that numpy's and torch's generators take."""
    from gon.training.config import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {MAX_SEED}, got {shorten(text, 60)!r}")
    return value


def _terminate(signum, frame) -> None:
    raise Stopped(signum)


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():  # first: a signal at any moment gets a message
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _terminate)
    for stream in (sys.stdout, sys.stderr):  # a non-UTF-8 file name in a note prints, whatever the locale
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = None
    try:
        tune_for_training()  # a step's activations stay mapped between steps (gon.training.cpu_memory)
        args = build_parser().parse_args(argv)
        return args.run(args) or 0
    except GonError as e:
        print(f"gon: error: {shorten(str(e))}", file=sys.stderr)
        return 2
    except Stopped as e:
        message = e.message if args else f"stopped by {e.name} while starting; nothing was written"
        print(f"gon: {shorten(message)}", file=sys.stderr)
        return e.exit_code()
    except KeyboardInterrupt:  # Ctrl-C where our handler is not installed (a thread other than the main one)
        print("gon: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except RecursionError:
        print("gon: error: an input is nested too deeply to read", file=sys.stderr)
        return 2
    except MemoryError:
        print("gon: error: out of memory: the request is too large for this machine; ask for less", file=sys.stderr)
        return 2


def shorten(message: str, limit: int = 2000) -> str:
    """One line, and long values cut short: an error names its culprit without flooding the terminal."""
    line = printable(" ".join(message.split()))  # non-UTF-8 file names
    return (
        line
        if len(line) <= limit
        else f"{line[: limit // 2]} ...[{len(line) - limit} characters]... {line[-limit // 2 :]}"
    )


if __name__ == "__main__":
    sys.exit(main())
