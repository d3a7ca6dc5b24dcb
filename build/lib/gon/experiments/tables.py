"""The shared table writer: per-seed results -> CSV, and mean ± std over seeds -> markdown.

OUT/NAME.csv   one line per (row, seed): every measured column
OUT/NAME.md    one line per row: mean ± std (sample std over seeds) of the chosen metrics
"""

from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path
from typing import Any

from gon.storage.atomic import write_text


def write_csv(records: list[dict[str, Any]], path: Path) -> Path:
    """Records (dicts, possibly with different keys) as one CSV, columns in first-seen order."""
    columns: list[str] = []
    for record in records:
        columns += [k for k in record if k not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(records)
    write_text(path, text.getvalue())
    return path


def summarise(results: list[dict[str, Any]], keys: list[str], metrics: list[str]) -> list[dict[str, Any]]:
    """Group ``results`` by the ``keys`` columns (first-seen order); per metric: mean, std and n."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    summary = []
    for key, members in groups.items():
        row: dict[str, Any] = dict(zip(keys, key))
        for m in metrics:
            values = [float(r[m]) for r in members if r.get(m) is not None]
            row[m] = statistics.fmean(values) if values else None
            row[f"{m}_std"] = statistics.stdev(values) if len(values) > 1 else None
            row[f"{m}_n"] = len(values)
        summary.append(row)
    return summary


def mean_std(mean: float | None, std: float | None, digits: int) -> str:
    if mean is None:
        return "–"
    text = f"{mean:.{digits}f}"
    return text if not std else f"{text} ± {std:.{digits}f}"  # n = 1, or equal values: no ± 0


def markdown_table(summary: list[dict[str, Any]], keys: list[str], metrics: dict[str, tuple[str, int]]) -> str:
    """A markdown table: the key columns, then each metric as ``mean ± std`` (header, digits) per ``metrics``."""
    header = keys + [title for title, _ in metrics.values()]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in summary:
        cells = [str(row[k]) for k in keys]
        cells += [mean_std(row[m], row[f"{m}_std"], digits) for m, (_, digits) in metrics.items()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(
    results: list[dict[str, Any]],
    out: Path,
    name: str,
    keys: list[str],
    metrics: dict[str, tuple[str, int]],
    note: str = "",
) -> str:
    """Write OUT/NAME.csv (per seed) and OUT/NAME.md (mean ± std over seeds); returns the markdown."""
    write_csv(results, out / f"{name}.csv")
    seeds = len({r.get("seed") for r in results})
    table = markdown_table(summarise(results, keys, list(metrics)), keys, metrics)
    text = f"{table}\nMean ± sample std over {seeds} seed{'s' if seeds != 1 else ''}.{(' ' + note) if note else ''}\n"
    write_text(out / f"{name}.md", text)
    return text
