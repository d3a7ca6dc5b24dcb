"""The ``gon`` command: one subcommand per module in this package, each with ``add_parser``, imported when used.

Every user-fixable problem is a :class:`gon.GonError`: printed on one line, exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import io
import re
import shutil
import signal
import sys
import threading
from pathlib import Path

from gon.core.errors import GonError, Stopped, printable

#: subcommand -> its line in ``gon --help``, in that order; gon.cli.NAME adds its parser (imported only when used)
COMMANDS = {
    "fit": "train a GON",
    "export": "save a model as config.json + model.safetensors",
    "encode": "latents of a dataset's images",
    "reconstruct": "originals beside reconstructions",
    "sample": "draw samples",
    "interpolate": "slerp between latents of pairs of images",
    "render": "render images at any resolution (implicit GON)",
    "report": "write the HTML report of a run",
    "bench": "measure speed, memory and quality at equal wall-clock",
    "evaluate": "test-split metrics of a trained model (JSON)",
    "reproduce": "run one of the paper's experiments (tables and figures)",
    "explore": "a local web page to explore a trained model",
}


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


def build_parser(names: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``gon`` parser with the full parsers of the commands in ``names`` (None: every command); the others get
    their line in ``gon --help`` only, so ``gon --help`` and ``gon COMMAND ...`` import only what they use."""
    parser = OneLineErrors(
        prog="gon",
        description="Gradient Origin Networks: train, use and reproduce.",
        epilog="quick start:\n  gon fit --model implicit --dataset mnist --max-steps 2000\n"
        "  gon report runs/implicit-mnist\n'gon COMMAND --help' describes each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action=Version,
        nargs=0,
        default=argparse.SUPPRESS,
        help="show gon's version and the libraries it runs on",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=CommandParser)
    for name, line in COMMANDS.items():
        if names is None or name in names:
            importlib.import_module(f"gon.cli.{name}").add_parser(commands)
        else:
            commands.add_parser(name, help=line, add_help=False)
    return parser


class Version(argparse.Action):
    """``gon --version``: the versions are read from package metadata only when asked for."""

    def __call__(self, parser, namespace, values, option_string=None):
        from gon.training.provenance import version_line

        print(version_line())
        parser.exit()


def command_of(argv: list[str]) -> list[str]:
    """The subcommand ``argv`` names (its first word that is not an option), as a list for :func:`build_parser`:
    empty when it names none (``gon --help``) or an unknown one (argparse then lists the commands)."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return [first] if first in COMMANDS else []


def is_help(argv: list[str]) -> bool:
    """Whether ``argv`` is ``COMMAND --help`` (or ``-h``) and nothing else."""
    return len(argv) == 2 and argv[0] in COMMANDS and argv[1] in ("-h", "--help")


def command_help(name: str) -> str:
    """The text of ``gon NAME --help``, built once per version of gon's code and terminal width, then read from
    gon's cache folder: gon fit's and gon bench's parsers take every model's options from its constructor, and so
    import torch (seconds), gon reproduce's its experiments. Where the folder is not writable, built each time."""
    from gon.storage.cache import cache_dir

    package = Path(__file__).resolve().parents[1]
    code = sorted((str(f.relative_to(package)), f.stat().st_mtime_ns, f.stat().st_size) for f in package.rglob("*.py"))
    key = hashlib.sha256(repr((code, sys.version, shutil.get_terminal_size().columns)).encode()).hexdigest()[:16]
    cached = cache_dir("help", f"{name}-{key}.txt")
    try:
        return cached.read_text()
    except (OSError, UnicodeDecodeError):
        pass
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.suppress(SystemExit):
        build_parser([name]).parse_args([name, "--help"])
    try:
        from gon.storage.atomic import write_text

        cached.parent.mkdir(parents=True, exist_ok=True)
        for older in cached.parent.glob(f"{name}-*.txt"):  # texts of earlier versions of the code
            older.unlink(missing_ok=True)
        write_text(cached, printed.getvalue())
    except (OSError, GonError):
        pass
    return printed.getvalue()


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
        argv = sys.argv[1:] if argv is None else argv
        if is_help(argv):  # gon COMMAND --help without importing what the command runs on, once it was built
            print(command_help(argv[0]), end="")
            raise SystemExit(0)  # as argparse's --help does
        args = build_parser(command_of(argv)).parse_args(argv)
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
