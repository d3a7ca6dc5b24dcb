#!/usr/bin/env python3
"""Implicit GONs on 1-D and 3-D signals (issue 14), measured: prints markdown tables and writes a JSON record.

    python scripts/make_spoken_digits.py DIGITS --per-digit 60
    python scripts/make_shapes.py SHAPES16 --size 16 && python scripts/make_shapes.py SHAPES32 --size 32
    python benchmarks/signals.py --digits DIGITS --shapes SHAPES16 --shapes-fine SHAPES32 --seconds 300

- audio: reconstruction SNR (dB) of held-out spoken digits, implicit GON against an MLP autoencoder of about the
  same parameter count, each trained for ``--seconds`` of wall-clock; and the implicit render at 4x the sample
  rate against the true clip at that rate, beside band-limited (FFT) upsampling of the reconstruction.
- volume: IoU of the reconstructed occupancy (> 0.5) of held-out shapes at the training grid and, rendered on a
  2x finer grid, against the same shapes generated at 2x (same seed), beside trilinear upsampling.
- timing: seconds per training step of a 3-D implicit GON with and without Monte Carlo coordinates, interleaved.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import gon
from gon.data import load_dataset
from gon.data.audio import waveform
from gon.experiments.common import Budget, train
from gon.models.registry import MODELS
from gon.report.images import upscale
from gon.report.pictures import reconstruction_grid, save_grid
from gon.report.signals import signal_pictures
from gon.sampling import eval_mode


def fit_for(model, data, seconds: float, lr: float, batch: int, seed: int = 0) -> dict:
    """Adam on shuffled batches (gon's plain training loop) until ``seconds`` of training time."""
    torch.manual_seed(seed)
    budget = Budget(batch_size=batch, lr=lr, threads=torch.get_num_threads(), progress=False)
    steps = {"n": 0}

    def stop(step: int, took: float) -> bool:
        steps["n"] = step
        return took >= seconds

    took = train(model, data, budget, seed, 10**9, stop)
    return {"steps": steps["n"], "train_seconds": round(took, 1), "lr": lr, "batch": batch}


def reconstruct(model, x: torch.Tensor, size=None, batch: int = 32) -> torch.Tensor:
    with eval_mode(model):
        return torch.cat(
            [model.reconstruct(c, size=size) if size else model.reconstruct(c) for c in x.split(batch)]
        ).clamp(0, 1)


def snr_db(clean: torch.Tensor, estimate: torch.Tensor) -> tuple[float, float]:
    """(mean over clips of each clip's SNR in dB, pooled SNR in dB) of waveforms (clips in [0, 1] mapped back)."""
    w = np.stack([waveform(c) for c in clean]).astype(np.float64)
    e = np.stack([waveform(c) for c in estimate]).astype(np.float64)
    signal, noise = (w**2).sum(1), ((w - e) ** 2).sum(1)
    return float(np.mean(10 * np.log10(signal / noise))), float(10 * np.log10(signal.sum() / noise.sum()))


def pictures(model, test: torch.Tensor, args, name: str, rate: int | None = None) -> None:
    """The pictures (and sounds) gon fit draws at the end of a run, into PICTURES/NAME/, when --pictures is given."""
    if args.pictures:
        folder = Path(args.pictures) / name
        folder.mkdir(parents=True, exist_ok=True)
        signal_pictures(model, folder, test, rate)
        save_grid(reconstruction_grid(model, test[:16]), folder / "recon.png")


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def audio(args) -> dict:
    rate, seconds = args.rate, args.audio_seconds
    train_data = load_dataset(f"audio:{args.digits}", "train", sample_rate=rate, audio_seconds=seconds)
    test = load_dataset(f"audio:{args.digits}", "test", sample_rate=rate, audio_seconds=seconds).images
    fine = load_dataset(f"audio:{args.digits}", "test", sample_rate=4 * rate, audio_seconds=seconds).images
    length = train_data.images.shape[-1]
    rows = []
    siren = {"hidden": args.audio_hidden, "depth": args.audio_depth, "coord_scale": args.coord_scale}
    configs = [("implicit", siren, 1e-4)] + [("mlp-ae", {"hidden": args.ae_hidden}, lr) for lr in args.ae_lrs]
    for name, options, lr in configs:
        torch.manual_seed(0)
        model = MODELS[name](latent_dim=32, image_size=[length], **options)
        print(f"audio: training {name} {options} lr {lr} for {args.seconds} s", flush=True)
        row = {"model": name, "options": options, "parameters": params(model)}
        row.update(fit_for(model, train_data, args.seconds, lr, args.batch))
        recon = reconstruct(model, test)
        row["snr_db_mean"], row["snr_db_pooled"] = snr_db(test, recon)
        row["mse"] = float((recon - test).pow(2).mean())
        up = upscale(recon, 4 * length)  # band-limited upsampling of the reconstruction
        row["x4_resampled_snr_db_mean"], _ = snr_db(fine, up)
        if name == "implicit":
            row["x4_render_snr_db_mean"], _ = snr_db(fine, reconstruct(model, test, size=(4 * length,)))
            pictures(model, test, args, "audio", rate)
        rows.append(row)
        print(row, flush=True)
    reference, _ = snr_db(fine, upscale(test, 4 * length))  # the input itself upsampled: the ceiling at 4x
    return {
        "rate": rate,
        "samples": length,
        "train_clips": len(train_data),
        "test_clips": len(test),
        "rows": rows,
        "x4_input_resampled_snr_db_mean": reference,
    }


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over volumes of |a & b| / |a | b| of occupancies (> 0.5)."""
    a, b = (a > 0.5).flatten(1), (b > 0.5).flatten(1)
    return float(((a & b).sum(1) / (a | b).sum(1).clamp(min=1)).mean())


def volume(args) -> dict:
    train_data = load_dataset(f"volume:{args.shapes}", "train")
    test = load_dataset(f"volume:{args.shapes}", "test").images
    fine = load_dataset(f"volume:{args.shapes_fine}", "test").images
    grid = list(train_data.images.shape[2:])
    torch.manual_seed(0)
    model = gon.ImplicitGON(latent_dim=32, hidden=args.volume_hidden, depth=args.volume_depth, image_size=grid)
    print(f"volume: training the implicit GON ({params(model):,} parameters) for {args.seconds} s", flush=True)
    row = {"parameters": params(model), "hidden": args.volume_hidden, "depth": args.volume_depth}
    row.update(fit_for(model, train_data, args.seconds, 1e-4, args.batch))
    pictures(model, test, args, "volume")
    recon = reconstruct(model, test)
    render = reconstruct(model, test, size=tuple(fine.shape[2:]))
    row.update(
        iou_train_grid=iou(recon, test),
        iou_2x_render=iou(render, fine),
        iou_2x_trilinear_reconstruction=iou(upscale(recon, tuple(fine.shape[2:])), fine),
        iou_2x_trilinear_input=iou(upscale(test, tuple(fine.shape[2:])), fine),
        train_shapes=len(train_data),
        test_shapes=len(test),
        grid=grid,
        fine_grid=list(fine.shape[2:]),
    )
    print(row, flush=True)
    return row


def timing(args) -> list[dict]:
    """Seconds per step at each coordinate fraction, the configurations interleaved (one step each, in turn)."""
    size, batch = args.timing_grid, args.timing_batch
    x = torch.rand(batch, 1, size, size, size)
    setups = {}
    for p in (1.0, 0.5, 0.25, 0.1):
        torch.manual_seed(0)
        model = gon.ImplicitGON(
            latent_dim=32, hidden=args.volume_hidden, depth=args.volume_depth, image_size=[size] * 3, coord_fraction=p
        ).train()
        setups[p] = (model, torch.optim.Adam(model.parameters(), 1e-4), [])
    for repeat in range(args.timing_repeats + 1):
        for model, opt, times in setups.values():
            started = time.perf_counter()
            loss = model.loss(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if repeat:  # the first round warms up
                times.append(time.perf_counter() - started)
    full = statistics.median(setups[1.0][2])
    rows = [
        {
            "coord_fraction": p,
            "coordinates_per_sample": round(p * size**3),
            "median_s": round(statistics.median(t), 3),
            "min_s": round(min(t), 3),
            "speedup": round(full / statistics.median(t), 2),
        }
        for p, (_, _, t) in setups.items()
    ]
    for r in rows:
        print(r, flush=True)
    return [{"grid": size, "batch": batch, "repeats": args.timing_repeats, **r} for r in rows]


def markdown(record: dict) -> str:
    lines = []
    if "audio" in record:
        a = record["audio"]
        lines += [
            f"Audio: {a['train_clips']} training / {a['test_clips']} test spoken digits, {a['rate']} Hz, "
            f"{a['samples']} samples; 4x = {4 * a['rate']} Hz (input band-limited upsampled: "
            f"{a['x4_input_resampled_snr_db_mean']:.2f} dB)",
            "",
            "| model | parameters | lr | steps in budget | test SNR dB (mean / pooled) | 4x: render | 4x: resampled |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in a["rows"]:
            render = f"{r['x4_render_snr_db_mean']:.2f}" if "x4_render_snr_db_mean" in r else "n/a"
            lines.append(
                f"| {r['model']} {r['options']} | {r['parameters']:,} | {r['lr']:g} | {r['steps']} | "
                f"{r['snr_db_mean']:.2f} / {r['snr_db_pooled']:.2f} | {render} | {r['x4_resampled_snr_db_mean']:.2f} |"
            )
        lines.append("")
    if "volume" in record:
        v = record["volume"]
        lines += [
            f"Volumes: {v['train_shapes']} training / {v['test_shapes']} test shapes, grid {v['grid']}, 2x "
            f"{v['fine_grid']}; implicit GON {v['depth']}x{v['hidden']} ({v['parameters']:,} parameters), "
            f"{v['steps']} steps",
            "",
            "| IoU | training grid | 2x: render | 2x: trilinear recon | 2x: trilinear input |",
            "|---|---|---|---|---|",
            f"| implicit GON | {v['iou_train_grid']:.3f} | {v['iou_2x_render']:.3f} | "
            f"{v['iou_2x_trilinear_reconstruction']:.3f} | {v['iou_2x_trilinear_input']:.3f} |",
            "",
        ]
    if "timing" in record:
        t = record["timing"]
        lines += [
            f"3-D step time: grid {t[0]['grid']}^3, batch {t[0]['batch']}, {t[0]['repeats']} interleaved steps each",
            "",
            "| coord_fraction | coordinates per sample | median s/step | min s/step | speed-up vs p=1 |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['coord_fraction']} | {r['coordinates_per_sample']:,} | {r['median_s']} | {r['min_s']} | "
            f"{r['speedup']} |"
            for r in t
        ]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--digits", help="spoken digits folder (scripts/make_spoken_digits.py)")
    p.add_argument("--shapes", help="shape folder at the training grid (scripts/make_shapes.py)")
    p.add_argument("--shapes-fine", help="the same shapes (same seed and count) at 2x the grid")
    p.add_argument("--sections", default="audio,volume,timing")
    p.add_argument("--seconds", type=float, default=300, help="training seconds per model (default 300)")
    p.add_argument("--rate", type=int, default=4000)
    p.add_argument("--audio-seconds", type=float, default=0.6)
    p.add_argument("--audio-hidden", type=int, default=256, help="SIREN width for audio (default 256)")
    p.add_argument("--audio-depth", type=int, default=4, help="SIREN sine layers for audio (default 4)")
    p.add_argument("--coord-scale", type=float, default=1.0, help="the implicit GON's coord_scale for audio")
    p.add_argument("--ae-hidden", type=int, default=42, help="MLP AE width (42: 206,804 parameters at 2,400 samples)")
    p.add_argument("--ae-lrs", type=lambda s: [float(v) for v in s.split(",")], default=[1e-3, 1e-4])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--volume-hidden", type=int, default=128)
    p.add_argument("--volume-depth", type=int, default=3)
    p.add_argument("--timing-grid", type=int, default=32)
    p.add_argument("--timing-batch", type=int, default=8)
    p.add_argument("--timing-repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="signals.json")
    p.add_argument("--pictures", help="folder for the trained implicit GONs' pictures and sounds (default: none)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    record = {"seconds": args.seconds, "threads": args.threads}
    sections = args.sections.split(",")
    path = Path(args.json)
    for name, section in (("timing", timing), ("volume", volume), ("audio", audio)):
        if name in sections:
            record[name] = section(args)
            path.write_text(json.dumps(record, indent=2) + "\n")  # partial records survive an interruption
    print(markdown(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
