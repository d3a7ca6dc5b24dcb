"""The report of a run: one self-contained HTML page (images inline as data URIs, no scripts, no fonts
or styles from elsewhere), readable offline and safe to mail around."""

from __future__ import annotations

import base64
import html
import json
import re
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from gon.core.errors import GonError, printable
from gon.report.plots import plot_loss_curves
from gon.storage.atomic import write_text
from gon.storage.lock import holder_of, run_lock
from gon.storage.runs import read_metric_rows, read_metrics, read_run_record

MAX_TABLE_ROWS = 20  # test evaluations listed (evenly spaced, the last always in)
MAX_PICTURE_STEPS = 8  # steps shown from pictures/ (evenly spaced, first and last always in)
FINAL_PICTURES = [
    ("loss_curves.png", "Loss curves", "training objective per step (raw and smoothed), test evaluations, test MSE"),
    ("recon.png", "Reconstructions", "test images (odd rows) and their reconstructions (even rows)"),
    ("samples.png", "Samples", "the variational prior, or a normal fitted to training latents (GON, implicit GON)"),
    (
        "interpolation.png",
        "Interpolations",
        "one pair of test images per row, spherical interpolation of their latents between them",
    ),
    (
        "audio.png",
        "Sounds",
        "test clips: waveforms over each other, and the spectrogram of the original, its reconstruction and "
        "(implicit GON) its render at 4x the sample rate; listen below",
    ),
    (
        "isosurfaces.png",
        "Isosurfaces",
        "test volumes: the 0.5 level set (marching cubes) of the original, its reconstruction and (implicit GON) "
        "its render on a 2x finer grid",
    ),
    ("slices.png", "Slices", "depth slices of two test volumes (rows 1-2) and their reconstructions (rows 3-4)"),
    (
        "latent_histogram.png",
        "Latent distribution",
        "every value of the training latents with the normal fitted to them (paper Fig. 13-14)",
    ),
]
PICTURE_KINDS = [
    ("recon", "reconstructions"),
    ("samples", "samples"),
    ("interpolation", "interpolations"),
    ("latents", "latent histogram"),
]

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.92rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: 0 1.5rem 1.5rem 0; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #ddd; }
img.grid { image-rendering: pixelated; }  /* image grids: crisp pixels; plots: smooth */
figcaption { color: #555; font-size: 0.88rem; max-width: 36rem; }
.summary td:first-child { font-weight: 600; }
td img { max-width: 260px; }
"""


def write_report(run: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a run directory (default RUN/report.html) and return its path.

    Redraws RUN/loss_curves.png first when metrics were logged after it was drawn, so a report
    of a run still in progress shows its curves so far.
    """
    run = Path(run)
    if not (run / "config.yaml").is_file():
        raise GonError(f"{run} is not a run directory (no config.yaml)")
    out = Path(out) if out else run / "report.html"
    if not out.parent.is_dir():
        raise GonError(f"output folder {out.parent} does not exist")
    inside = out.resolve().parent == run.resolve()
    with run_lock(run, "report") if inside else nullcontext():  # one writer per run; a report elsewhere only reads
        return _write_page(run, out, redraw=inside or holder_of(run) is None)


def _write_page(run: Path, out: Path, redraw: bool) -> Path:
    config = _read_yaml(run / "config.yaml")
    results = _read_json(run / "metrics.json")
    rows = _rows(run)
    curves = run / "loss_curves.png"
    logs = [p.stat().st_mtime for p in [run / "metrics.csv", *run.glob("logs/version_*/metrics.csv")] if p.is_file()]
    if redraw and rows and (not curves.is_file() or max(logs, default=0) > curves.stat().st_mtime):
        plot_loss_curves(
            rows, curves, title=run.name, validation_note=results.get("interval_evaluations_measured_on", "")
        )

    parts = [
        f"<h1>Run {_e(run.name)}</h1>",
        f'<p class="sub">{_e(config.get("model", "?"))} on {_e(config.get("dataset", "?"))}; '
        f"report written {time.strftime('%Y-%m-%d %H:%M')}</p>",
        _summary(config, results, run),
        "<h2>Test metrics</h2>",
        _metrics_table(results, rows),
        "<h2>Pictures of the final model</h2>",
        _final_pictures(run),
        _sounds(run),
        "<h2>Pictures during training</h2>",
        _pictures_by_step(run),
        "<h2>Configuration</h2>",
        _table([(k, _fmt(v)) for k, v in _flatten(_effective(config, run))], ["setting", "value"]),
        "<h2>Where this run came from</h2>",
        _provenance(run),
        "<h2>Files</h2>",
        _files(run),
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>gon run {_e(run.name)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
    write_text(out, page)
    return out


# -- sections -----------------------------------------------------------------------------------
def _effective(config: dict, run: Path) -> dict:
    """The settings with every model option the model was built with, those left at their defaults included."""
    built = _read_json(run / "model_options.json") or _read_json(run / "model" / "config.json").get("config", {})
    return {**config, "model_options": {**built, **(config.get("model_options") or {})}}


def _provenance(run: Path) -> str:
    """One row per session of ``gon fit`` (a --resume is a new one): when, the command, versions and commit."""
    sessions = _read_json(run / "provenance.json").get("sessions") or []
    if not isinstance(sessions, list) or not sessions:
        return "<p>Not recorded (a run written before gon recorded its sessions).</p>"
    rows = []
    for session in sessions:
        if isinstance(session, dict):
            versions = session.get("versions") if isinstance(session.get("versions"), dict) else {}
            rows.append(
                (
                    session.get("started", "?"),
                    session.get("command", "?"),
                    ", ".join(f"{k} {v}" for k, v in versions.items()),
                    session.get("git_commit") or "not a git checkout",
                )
            )
    return _table(rows, ["session started (UTC)", "command line", "versions", "git commit"])


def _summary(config: dict, results: dict, run: Path) -> str:
    saved = _read_json(run / "model" / "config.json")
    seconds = results.get("train_seconds")
    items = [
        ("model", f"{config.get('model', '?')} ({saved.get('class', '?')})"),
        ("parameters", f"{results['parameters']:,}" if "parameters" in results else "n/a"),
        ("training steps", results.get("steps", "n/a")),
        ("training time", _duration(seconds) if isinstance(seconds, (int, float)) else "n/a"),
        ("test images", results.get("test_images", "n/a")),
        ("saved model", "model/ (config.json + model.safetensors + latents.safetensors)" if saved else "none yet"),
    ]
    return (
        '<table class="summary">' + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in items) + "</table>"
    )


def _metrics_table(results: dict, rows: list[dict[str, float]]) -> str:
    final = [
        (k, _fmt(v)) for k, v in results.items() if k not in ("parameters", "steps", "train_seconds", "test_images")
    ]
    parts = [
        _table(final, ["final figure", "value"])
        if final
        else "<p>No final figures yet (metrics.json is written when training ends).</p>"
    ]
    evals = [r for r in rows if "test/mse" in r or "test/loss" in r]
    if evals:
        keys = sorted({k for r in evals for k in r if k.startswith("test/")})
        picked = _evenly(evals, MAX_TABLE_ROWS)
        parts.append(f"<p>Test evaluations during training ({len(picked)} of {len(evals)} shown):</p>")
        parts.append(_table([[int(r["step"])] + [_fmt(r.get(k, "")) for k in keys] for r in picked], ["step", *keys]))
    return "\n".join(parts)


def _final_pictures(run: Path) -> str:
    figures = [_figure(run / name, title, caption) for name, title, caption in FINAL_PICTURES if (run / name).is_file()]
    return "\n".join(figures) or "<p>No pictures yet.</p>"


def _sounds(run: Path) -> str:
    """RUN/audio/*.wav as players, one row per clip, one column per version (original, reconstruction, render)."""
    wavs = sorted((run / "audio").glob("*_*.wav"))
    if not wavs:
        return ""
    table: dict[str, dict[str, Path]] = {}
    for path in wavs:
        version, _, clip = path.stem.rpartition("_")
        table.setdefault(version, {})[clip] = path
    versions = list(table)
    clips = sorted({c for v in table.values() for c in v}, key=lambda c: int(c) if c.isdigit() else 0)
    head = "".join(f"<th>{_e(v)}</th>" for v in versions)
    body = "".join(
        f"<tr><td>clip {_e(c)}</td>"
        + "".join(f"<td>{_audio(table[v][c]) if c in table[v] else ''}</td>" for v in versions)
        + "</tr>"
        for c in clips
    )
    return f"<h3>Sounds (RUN/audio/)</h3><table><tr><th></th>{head}</tr>{body}</table>"


def _audio(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<audio controls preload="none" src="data:audio/wav;base64,{data}"></audio>'


def _pictures_by_step(run: Path) -> str:
    by_step: dict[int, dict[str, Path]] = {}
    for path in (run / "pictures").glob("*_step*.png"):
        match = re.fullmatch(r"(\w+?)_step(\d+)\.png", path.name)
        if match:
            by_step.setdefault(int(match.group(2)), {})[match.group(1)] = path
    if not by_step:
        return "<p>No pictures were written during training (see --picture-every).</p>"
    steps = _evenly(sorted(by_step), MAX_PICTURE_STEPS)
    kinds = [(k, label) for k, label in PICTURE_KINDS if any(k in by_step[s] for s in steps)]
    head = "".join(f"<th>{_e(label)}</th>" for _, label in kinds)
    body = "".join(
        f'<tr><td class="num">{s}</td>'
        + "".join(
            f"<td>{_img(by_step[s][k], f'{label} at step {s}') if k in by_step[s] else ''}</td>" for k, label in kinds
        )
        + "</tr>"
        for s in steps
    )
    note = f"<p>{len(steps)} of {len(by_step)} steps with pictures shown.</p>"
    return f"{note}<table><tr><th>step</th>{head}</tr>{body}</table>"


def _files(run: Path) -> str:
    files = sorted(p for p in run.rglob("*") if p.is_file() and "logs" not in p.relative_to(run).parts[:1])
    return _table([(str(p.relative_to(run)), f"{p.stat().st_size:,} B") for p in files], ["file", "size"])


# -- helpers ------------------------------------------------------------------------------------
def _figure(path: Path, title: str, caption: str) -> str:
    caption = f"<b>{_e(title)}</b> ({_e(path.name)}): {_e(caption)}"
    return f"<figure>{_img(path, title)}<figcaption>{caption}</figcaption></figure>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    kind = "plot" if re.search(r"curves|histogram|latents", path.name) else "grid"
    return f'<img class="{kind}" src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _table(rows: list, header: list[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_e(c)}</td>' if isinstance(c, (int, float)) or _numeric(c) else f"<td>{_e(c)}</td>"
            for c in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _numeric(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"-?[\d,.]+(e[-+]?\d+)?", value) is not None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def _flatten(config: dict, prefix: str = "") -> list[tuple[str, Any]]:
    items = []
    for k, v in config.items():
        if isinstance(v, dict) and v:
            items += _flatten(v, f"{prefix}{k}.")
        else:
            items.append((f"{prefix}{k}", v))
    return items


def _evenly(items: list, most: int) -> list:
    if len(items) <= most:
        return list(items)
    return [items[round(i * (len(items) - 1) / (most - 1))] for i in range(most)]


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{seconds:.1f} s"


def _rows(run: Path) -> list[dict[str, float]]:
    rows = read_metrics(run)
    if rows or not (run / "metrics.csv").is_file():
        return rows
    return read_metric_rows(run / "metrics.csv")


def _read_yaml(path: Path) -> dict:
    return read_run_record(path, "run file")


def _read_json(path: Path) -> dict:
    return read_run_record(path, "run file")


def _e(value: Any) -> str:
    return html.escape(printable(str(value)), quote=True)  # a non-UTF-8 file name shown as \xNN
