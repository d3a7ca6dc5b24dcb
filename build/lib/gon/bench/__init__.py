"""gon's benchmark suite (``gon bench``): throughput, memory, data loading, Lightning overhead and
quality at equal wall-clock, as markdown tables and one JSON record.

Each section is a function returning rows (dicts); :func:`run_suite` runs the chosen sections with
one set of :class:`Settings` and :func:`markdown` renders what came back.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from gon.bench.measure import machine
from gon.core.validate import torch_device
from gon.training.threads import choose_threads

SECTIONS = ("throughput", "data", "overhead", "time-to-quality", "cuda-graphs", "contention", "ensemble")
#: what runs without --sections: all but the contention section, which starts a busy process (--contention), and
#: the ensemble section (stacked vs separate steps of every model at M = 1, 3, 5: many minutes on a CPU)
DEFAULT_SECTIONS = SECTIONS[:-2]


@dataclass
class Settings:
    """How much of everything to measure; :meth:`quick` is the 1-2 minute smoke version."""

    sections: tuple[str, ...] = DEFAULT_SECTIONS
    batch: int = 64
    repeats: int = 5
    peer: bool = True
    data_batches: int = 200
    overhead_models: tuple[str, ...] = ("gon", "vgon")
    overhead_warm: int = 5
    overhead_steps: int = 40
    conv_seconds: float = 60.0
    implicit_seconds: float = 300.0
    test_images: int = 10000
    lr: float = 1e-4
    quality: bool = False  # the Monte Carlo sweep instead of the sections
    quality_seconds: float = 300.0
    fractions: tuple[float, ...] = (1.0, 0.5, 0.25, 0.1)
    samplings: tuple[str, ...] = ("same", "independent")
    quality_naive: bool = True
    seed: int = 0  # --quality: initial weights, batches and pixel subsets
    device: str = "auto"
    threads: int | None = None  # torch CPU threads; None: measured on a conv GON step (gon.training.threads)
    contention_repeats: int = 15  # interleaved rounds per condition of the contention section
    graph_batches: tuple[int, ...] = (64, 512)  # batches of the eager vs CUDA-graphed rows
    ensemble_members: tuple[int, ...] = (1, 3, 5)  # members M of the stacked vs separate rows

    @classmethod
    def quick(cls, **overrides) -> Settings:
        values = dict(
            batch=16,
            repeats=2,
            data_batches=50,
            overhead_models=("gon",),
            overhead_warm=3,
            overhead_steps=15,
            conv_seconds=5.0,
            implicit_seconds=10.0,
            test_images=500,
            quality_seconds=10.0,
            contention_repeats=5,
        )
        return cls(**{**values, **overrides})


def run_suite(settings: Settings, log: Callable[[str], None] = print) -> dict:
    """Run the chosen sections; returns the JSON-able record (machine, settings, rows per section)."""
    from gon.bench import contention, ensemble, graphs, overhead, quality, throughput

    device = torch_device(settings.device)
    record = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "device": str(device),
        "machine": machine(),
        "settings": asdict(settings),
        "results": {},
    }
    results = record["results"]
    if device.type == "cpu" and (settings.quality or set(settings.sections) - {"contention", "cuda-graphs"}):
        record["threads"] = set_threads(settings, log)
    if settings.quality:
        log("# Monte Carlo sweep: implicit GON, equal wall-clock")
        results["monte-carlo"] = quality.run_monte_carlo_sweep(
            settings.quality_seconds,
            settings.batch,
            settings.lr,
            settings.test_images,
            device,
            settings.fractions,
            settings.samplings,
            settings.quality_naive,
            settings.seed,
            log=log,
        )
        return record
    if "throughput" in settings.sections:
        log("# training throughput and peak memory")
        results["throughput"] = throughput.run_throughput(settings.batch, settings.repeats, device, settings.peer, log)
    if "data" in settings.sections:
        log("# data loading")
        results["data"] = throughput.run_data_loading(settings.batch, settings.data_batches, log)
    if "overhead" in settings.sections:
        log("# gon fit against a bare loop")
        results["overhead"] = overhead.run_overhead(
            list(settings.overhead_models),
            settings.batch,
            settings.overhead_warm,
            settings.overhead_steps,
            device,
            log=log,
        )
    if "time-to-quality" in settings.sections:
        log("# time to quality")
        results["time-to-quality"] = quality.run_time_to_quality(
            settings.conv_seconds,
            settings.implicit_seconds,
            settings.batch,
            settings.lr,
            settings.test_images,
            device,
            log,
        )
    if "cuda-graphs" in settings.sections:
        log("# eager vs CUDA-graphed training steps")
        results["cuda-graphs"] = graphs.run_graphs(settings.graph_batches, settings.repeats, device, log)
    if "ensemble" in settings.sections:
        log("# stacked vs separate training steps of M seeds")
        results["ensemble"] = ensemble.run_ensemble(
            settings.ensemble_members, settings.batch, settings.repeats, device, log
        )
    if "contention" in settings.sections:
        log("# beside a busy neighbour: thread choices")
        cpu = torch.device("cpu")  # threads and neighbours are a CPU matter, whatever --device says
        results["contention"] = contention.run_contention(settings.batch, settings.contention_repeats, cpu, log)
    return record


def set_threads(settings: Settings, log: Callable[[str], None]) -> dict:
    """torch's CPU thread count for the sections: --threads, or the fastest for a conv GON step, measured now."""
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
        return {"threads": settings.threads, "chosen_by": "--threads"}
    from gon.bench.measure import optimiser_step
    from gon.models import GON

    torch.manual_seed(0)
    x = torch.rand(settings.batch, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    tuner = choose_threads(optimiser_step(GON(), x), log=lambda line: log(f"{line}; conv GON step, kept for the suite"))
    return {**tuner.summary(), "chosen_by": "measured"}


# -- markdown ------------------------------------------------------------------------------------


def _f(value, spec: str = ".1f", empty: str = "-") -> str:
    return empty if value is None else format(value, spec)


def _x(ratio) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def markdown(record: dict) -> str:
    m = record["machine"]
    lines = [
        f"Measured {record['date']} on {record['device']}: {m.get('gpu') or m['cpu']}, {m['cpu_cores']} cores, "
        f"torch {m['torch']} ({m['torch_threads']} threads).",
        "",
    ]
    r = record["results"]
    if "throughput" in r:
        lines += [
            "### Training throughput and peak memory (median of "
            f"{record['settings']['repeats']} steps, batch {record['settings']['batch']})",
            "",
            "| group | configuration | params | ms/step | images/s | peak MB | vs naive | memory vs naive | vs peer |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in r["throughput"]:
            if "step_ms" not in row:
                lines.append(f"| {row['group']} | {row['name']} | | | | | | | {row['note']} |")
                continue
            lines.append(
                f"| {row['group']} | {row['name']} | {row['params']:,} | {row['step_ms']:.0f} | "
                f"{row['images_per_s']:.1f} | {_f(row['peak_mb'], '.0f')} | {_x(row.get('vs_naive'))} | "
                f"{_x(row.get('memory_vs_naive'))} | {_x(row.get('vs_peer'))} |"
            )
        lines.append("")
    if "data" in r:
        lines += ["### Data loading", "", "| what | images | seconds | images/s |", "|---|---:|---:|---:|"]
        lines += [
            f"| {row['name']} | {row['images']:,} | {row['seconds']:.2f} | {row['images_per_s']:,.0f} |"
            for row in r["data"]
        ]
        lines.append("")
    if "overhead" in r:
        lines += [
            "### gon fit (Lightning) against a bare PyTorch loop",
            "",
            "| model | batch | steps timed | bare loop ms/step | gon fit ms/step | overhead |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {row['name']} | {row['batch']} | {row['timed_steps']} | {row['bare_step_ms']:.1f} | "
            f"{row['fit_step_ms']:.1f} | {100 * row['overhead']:+.1f}% |"
            for row in r["overhead"]
        ]
        lines.append("")
    if "cuda-graphs" in r:
        lines += [
            f"### Eager vs CUDA-graphed training steps (median of {record['settings']['repeats']} interleaved steps)",
            "",
            "| model | batch | eager ms/step | graphed ms/step | speed-up | note |",
            "|---|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {row['name']} | {row['batch']} | {_f(row.get('eager_step_ms'), '.2f')} | "
            f"{_f(row.get('graphed_step_ms'), '.2f')} | {_x(row.get('speedup'))} | {row.get('note', '')} |"
            for row in r["cuda-graphs"]
        ]
        lines.append("")
    if "ensemble" in r:
        lines += [
            f"### Stacked vs separate training steps of M seeds (median of {record['settings']['repeats']} "
            f"interleaved rounds, batch {record['settings']['batch']} per member)",
            "",
            "| model | M | mode | params / member | separate ms | stacked ms | speed-up | separate CPU ms "
            "| stacked CPU ms | CPU speed-up | note |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {row['name']} | {row.get('members', '')} | {row.get('mode', '')} | {_f(row.get('params'), ',')} | "
            f"{_f(row.get('separate_ms'), '.1f')} | {_f(row.get('stacked_ms'), '.1f')} | {_x(row.get('speedup'))} | "
            f"{_f(row.get('separate_cpu_ms'), '.1f')} | {_f(row.get('stacked_cpu_ms'), '.1f')} | "
            f"{_x(row.get('cpu_speedup'))} | {row.get('note', '')} |"
            for row in r["ensemble"]
        ]
        lines.append("")
    if "contention" in r:
        settings = record["settings"]
        lines += [
            "### Conv GON beside a busy neighbour, by thread choice "
            f"(median of {settings['contention_repeats']} interleaved steps, batch {settings['batch']})",
            "",
            "| condition | threads | ms/step | mean ms/step | steps/s | vs 1 thread | vs best fixed |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for row in r["contention"]:
            name = row["name"] + (f" (chose {row['chosen_threads']})" if "chosen_threads" in row else "")
            lines.append(
                f"| {row['condition']} | {name} | {row['step_ms']:.0f} | {row['mean_step_ms']:.0f} | "
                f"{row['steps_per_s']:.2f} | {_x(row['vs_1_thread'])} | {_x(row['vs_best_fixed'])} |"
            )
        lines.append("")
    for key, title in (
        ("time-to-quality", "Time to quality (Fashion-MNIST)"),
        ("monte-carlo", "Monte Carlo coordinates at equal wall-clock (implicit GON, Fashion-MNIST)"),
    ):
        if key in r:
            lines += [
                f"### {title}",
                "",
                "| configuration | seconds | steps | images/s | test MSE | PSNR dB | test images |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
            lines += [
                f"| {row['name']} | {row['train_seconds']:.0f} | {row['steps']} | {row['images_per_s']:.1f} | "
                f"{row['test_mse']:.5f} | {row['test_psnr']:.2f} | {row['test_images']} |"
                for row in r[key]
            ]
            lines.append("")
    return "\n".join(lines)
