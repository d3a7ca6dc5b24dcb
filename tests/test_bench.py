"""The benchmark harness (not its figures): interleaved timing, peak memory, tables, CLI checks."""

import json
import os

import pytest
import torch

from gon.bench import Settings, markdown
from gon.bench.measure import Case, machine, measure_memory, time_cases
from gon.cli import main
from tests.helpers import FASHION_MNIST


def test_time_cases_interleaves_rounds_and_reports_medians():
    order = []
    cases = [Case("g", name, batch=4, step=lambda name=name: order.append(name)) for name in ("a", "b")]
    rows = time_cases(cases, repeats=3, device=torch.device("cpu"), warmup=1)
    assert order[:8] == ["a", "b"] * 4  # warm-up round, then 3 timed rounds, one step of each per round
    assert [r["repeats"] for r in rows] == [3, 3]
    assert all(r["images_per_s"] == pytest.approx(4 / (r["step_ms"] / 1000)) for r in rows)


def test_peak_memory_sees_a_temporary_allocation():
    def allocate():
        x = torch.ones(64, 2**20)  # 256 MiB, freed at return
        x.add_(1)

    peak = measure_memory(allocate, torch.device("cpu"))
    if peak is None:
        pytest.skip("peak memory is not measurable here (needs Linux and glibc)")
    assert 200 < peak < 1000


def test_markdown_renders_every_section():
    row = {
        "group": "implicit 28x28x1",
        "name": "shared origin",
        "batch": 64,
        "params": 10,
        "step_ms": 100.0,
        "images_per_s": 640.0,
        "peak_mb": 5.0,
        "vs_naive": 4.0,
        "memory_vs_naive": 0.5,
    }
    quality = {
        "name": "p=1",
        "train_seconds": 1.0,
        "steps": 3,
        "images_per_s": 2.0,
        "test_mse": 0.01,
        "test_psnr": 20.0,
        "test_images": 8,
    }
    record = {
        "date": "now",
        "device": "cpu",
        "machine": machine(),
        "settings": {"repeats": 5, "batch": 64},
        "results": {
            "throughput": [row, {"group": "models", "name": "glo", "note": "skipped: why"}],
            "data": [{"name": "loader", "images": 10, "seconds": 1.0, "images_per_s": 10.0}],
            "overhead": [
                {
                    "name": "gon",
                    "batch": 64,
                    "timed_steps": 40,
                    "bare_step_ms": 50.0,
                    "fit_step_ms": 52.0,
                    "overhead": 0.04,
                }
            ],
            "time-to-quality": [quality],
            "monte-carlo": [quality],
        },
    }
    text = markdown(json.loads(json.dumps(record)))
    assert "| implicit 28x28x1 | shared origin | 10 | 100 | 640.0 | 5 | 4.00x | 0.50x | - |" in text
    assert "skipped: why" in text and "+4.0%" in text and text.count("| p=1 |") == 2


def test_quick_settings_are_smaller():
    quick, full = Settings.quick(), Settings()
    assert quick.batch < full.batch and quick.repeats < full.repeats and quick.implicit_seconds < full.implicit_seconds


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--sections", "speed"], "unknown section speed"),
        (["--fractions", "0.5,2"], "every fraction must be in (0, 1]"),
        (["--fractions", "half"], "comma-separated numbers"),
        (["--samplings", "same,twice"], "--samplings must list some of same, independent"),
        (["--repeats", "0"], "(--repeats) must be > 0"),
        (["--threads", "0"], "(--threads) must be >= 1"),
        (["--device", "tpu"], "--device 'tpu' is not a device"),
        (["--device", "mps"], "--device mps: not usable on this machine"),
        (["--seed", "-1"], "(--seed) must be >= 0"),
        (["--overhead-steps", "0"], "(--overhead-steps) must be > 0"),
    ],
)
def test_bench_cli_rejects_bad_options(argv, message, capsys, tmp_path):
    assert main(["bench", "--json", str(tmp_path / "b.json"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_every_registered_model_gets_a_throughput_row():
    from gon.bench.throughput import model_cases
    from gon.models.registry import MODELS

    cases, skipped = model_cases(2, torch.device("cpu"))
    assert skipped == []
    assert [c.name.split(" ")[0] for c in cases] == list(MODELS)
    glo = next(c for c in cases if c.name.startswith("glo "))
    glo.step()  # a real Adam step over its code table
    assert glo.params > 60_000 * 32


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_the_sweep_records_its_seed(tmp_path):
    out = tmp_path / "sweep.json"
    assert (
        main(
            [
                "bench",
                "--quality",
                "--quick",
                "--no-naive",
                "--fractions",
                "0.25",
                "--samplings",
                "same",
                "--seed",
                "3",
                "--seconds",
                "0.5",
                "--test-images",
                "16",
                "--device",
                "cpu",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    (row,) = json.loads(out.read_text())["results"]["monte-carlo"]
    assert (
        row["seed"] == 3 and row["options"] == {"coord_fraction": 0.25, "coord_sampling": "same"} and row["steps"] >= 1
    )


def test_the_busy_neighbour_runs_during_the_block_and_never_outlives_it(tmp_path):
    import subprocess
    import sys
    import time

    from gon.bench.contention import BusyNeighbour

    with BusyNeighbour(1) as neighbour:
        process = neighbour.process
        assert process.poll() is None  # started, torch imported, multiplying
    assert process.poll() is not None  # killed at the end of the block
    # a benchmark killed outright (no clean-up at all): the neighbour notices its parent is gone and exits
    script = tmp_path / "parent.py"
    script.write_text(
        "import os\nfrom gon.bench.contention import BusyNeighbour\n"
        "n = BusyNeighbour(1).__enter__()\nprint(n.process.pid, flush=True)\nos._exit(0)\n"
    )
    pid = int(subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300).stdout)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        raise AssertionError("the neighbour outlived its parent")


def test_contention_flag_adds_the_section_and_its_table_renders():
    from gon.cli import build_parser
    from gon.cli.bench import settings_from_args

    parse = build_parser().parse_args
    assert settings_from_args(parse(["bench", "--contention"])).sections == ("contention",)
    assert settings_from_args(parse(["bench", "--sections", "data", "--contention"])).sections == ("data", "contention")
    assert "contention" not in Settings().sections
    rows = [
        {"condition": c, "name": n, "step_ms": ms, "mean_step_ms": ms, "steps_per_s": 1000 / ms, **extra}
        for c in ("no added neighbour", "busy neighbour")
        for n, ms, extra in (
            ("1 thread", 50.0, {}),
            ("2 threads", 2760.0, {}),
            ("measured", 52.0, {"chosen_threads": 1}),
        )
    ]
    for row in rows:
        row.update(vs_1_thread=row["step_ms"] / 50, vs_best_fixed=row["step_ms"] / 50)
    record = {"date": "now", "device": "cpu", "machine": machine(), "settings": {"contention_repeats": 15, "batch": 64}}
    text = markdown({**record, "results": {"contention": rows}})
    assert "| busy neighbour | measured (chose 1) | 52 | 52 | 19.23 | 1.04x | 1.04x |" in text


def test_cuda_graph_rows_say_skipped_without_cuda_and_render():
    from gon.bench.graphs import configurations, run_graphs

    rows = run_graphs((64, 512), 3, torch.device("cpu"), log=lambda line: None)
    assert len(rows) == 2 * len(configurations()) and all(r["note"] == "skipped: no CUDA device" for r in rows)
    assert "cuda-graphs" in Settings().sections
    record = {"date": "now", "device": "cpu", "machine": machine(), "settings": {"repeats": 5}}
    text = markdown({**record, "results": {"cuda-graphs": rows}})
    assert "| gon | 64 | - | - | - | skipped: no CUDA device |" in text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_every_model_is_captured_on_cuda():
    from gon.bench.graphs import configurations, run_graphs

    rows = run_graphs((8,), 2, torch.device("cuda"), log=lambda line: None)
    assert len(rows) == len(configurations())
    assert [r["name"] for r in rows if not r["graphed"]] == [], [r["note"] for r in rows if not r["graphed"]]
