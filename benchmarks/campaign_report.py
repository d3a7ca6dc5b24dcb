"""The curves of a sweep so far, finished or not: each row's test error and its ratio to the reference row
(mean ± sample std over seeds) at every curve point that all of a row's seeds have reached.

    python benchmarks/campaign_report.py OUT [--reference GON] [--png curves.png] [--csv points.csv]

Reads OUT/units/*/result.json (finished units) or state.pt (units still training: their curve so far), so it
can be run at any moment beside the sweep, without disturbing it. Prints a markdown table per row.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from gon.core.validate import read_json_capped
from gon.experiments.common import relative_to
from gon.experiments.figures import plot_learning_curves
from gon.experiments.tables import write_csv
from gon.experiments.units import RESULT, STATE, UNITS


def unit_points(out: Path) -> tuple[list[dict], dict[str, int]]:
    """Every unit's curve points, and the steps each unit has reached."""
    points, reached = [], {}
    for unit in sorted((out / UNITS).iterdir()):
        if (unit / RESULT).exists():
            record = read_json_capped(unit / RESULT, "unit result")
            points += record["points"]
            reached[unit.name] = record["result"]["steps"]
        elif (unit / STATE).exists():
            state = torch.load(unit / STATE, map_location="cpu", weights_only=True)
            points += state["points"]
            reached[unit.name] = state["step"]
    return points, reached


def cell(values: list[float], digits: int) -> str:
    text = f"{statistics.fmean(values):.{digits}f}"
    return text + (f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")


def summary(points: list[dict], reference: str) -> str:
    """A markdown table: per row and epoch, test SSE and ratio to ``reference`` over the seeds present at both."""
    points = relative_to(points, reference)
    seeds = {}
    for p in points:
        seeds.setdefault((p["row"], p["epoch"]), []).append(p)
    lines = ["| row | epoch | seeds | test SSE / image | ÷ " + reference + " |", "|---|---|---|---|---|"]
    for (row, epoch), group in sorted(seeds.items(), key=lambda kv: (kv[0][0] != reference, kv[0][0], kv[0][1])):
        sse = [p["test_sse"] for p in group]
        ratio = [p["sse_vs_gon"] for p in group if p.get("sse_vs_gon") is not None]
        lines.append(f"| {row} | {epoch:g} | {len(group)} | {cell(sse, 3)} | {cell(ratio, 3) if ratio else '–'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--reference", default="GON")
    parser.add_argument("--png", type=Path)
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()
    points, reached = unit_points(args.out)
    print("steps reached: " + ", ".join(f"{name} {steps}" for name, steps in reached.items()) + "\n")
    print(summary(points, args.reference))
    if args.csv:
        write_csv(relative_to(points, args.reference), args.csv)
    if args.png:
        plot_learning_curves(relative_to(points, args.reference), args.png, f"{args.out.name}: curves so far")


if __name__ == "__main__":
    main()
