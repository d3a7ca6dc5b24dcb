"""``gon report RUN [--out report.html]``: one self-contained HTML page of a run.

The page has the run's config, parameter count, training time, a metrics table, the loss curves
and every picture, all embedded: it works offline and loads nothing from elsewhere.
"""

from __future__ import annotations

import argparse

from gon.cli import COMMANDS
from gon.cli.infer import note, output_path


def add_parser(commands) -> None:
    p = commands.add_parser("report", help=COMMANDS["report"], description=__doc__)
    p.add_argument("run_dir", metavar="RUN", help="a run directory written by gon fit")
    p.add_argument("--out", help="the HTML file to write (default RUN/report.html)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gon.report import write_report

    out = output_path(args.out, suffixes=(".html", ".htm"), kind="report") if args.out else None
    note(f"wrote {write_report(args.run_dir, out)}")
    return 0
