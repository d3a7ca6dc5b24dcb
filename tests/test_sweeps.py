"""Resumable sweeps (gon.experiments.units): a killed sweep resumes to the same tables, shards merge into the
whole, a sweep extends to more steps, and a unit is trained by one process at a time."""

import csv
import json
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from gon.cli import main
from tests.helpers import FASHION_MNIST, GON
from tests.test_lock import HOLD

needs_data = pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
# three kinds of unit state: a GON, a detached GON and GLO (its per-image codes are trained weights too)
SWEEP = [
    *["table1", "--preset", "cpu", "--rows", "GON,1 Step Detach,GLO", "--latent-dim", "8", "--seeds", "2"],
    *["--limit-train", "96", "--test-size", "16", "--batch-size", "32", "--threads", "1", "--no-progress"],
    *["--checkpoint-every", "2"],
]
TIMES = {"train_seconds", "eval_seconds", "seconds"}


def tables(out) -> dict[str, list[dict]]:
    """The sweep's per-seed table and curves, without the columns that are clock times."""
    found = {}
    for name in ("table1.csv", "table1_curves.csv"):
        with (out / name).open() as f:
            found[name] = [{k: v for k, v in r.items() if k not in TIMES} for r in csv.DictReader(f)]
    return found


@pytest.fixture(scope="module")
def through(tmp_path_factory):
    """The sweep run once, without a stop."""
    out = tmp_path_factory.mktemp("through") / "out"
    assert main(["reproduce", *SWEEP, "--epochs", "6", "--out", str(out)]) == 0
    return tables(out)


def interrupt(args: list[str], out, how: signal.Signals, rng: random.Random) -> int:
    """Start ``gon reproduce args``, wait until a unit has checkpointed, then send ``how`` at a random moment;
    returns the exit code (0 if it finished first)."""
    proc = subprocess.Popen([str(GON), "reproduce", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    seen = {p: p.stat().st_mtime_ns for p in out.glob("units/*/state.pt")} if out.exists() else {}
    while proc.poll() is None and time.monotonic() < deadline:
        now = {p: p.stat().st_mtime_ns for p in out.glob("units/*/state.pt")}
        if now != seen:
            break
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 0.6))
    if proc.poll() is None:
        proc.send_signal(how)
    _, err = proc.communicate(timeout=120)
    if how == signal.SIGTERM and proc.returncode == 128 + signal.SIGTERM:
        assert "every unit in training was checkpointed" in err.decode()
    return proc.returncode


@needs_data
def test_a_sweep_killed_at_random_moments_resumes_to_the_tables_of_one_that_ran_through(tmp_path, through):
    out = tmp_path / "out"
    rng = random.Random(0)
    args = [*SWEEP, "--epochs", "6", "--out", str(out)]
    assert interrupt(args, out, signal.SIGTERM, rng) == 128 + signal.SIGTERM  # polite: a checkpoint, then 143
    assert list(out.glob("units/*/state.pt")) and not (out / "table1.csv").exists()
    codes = [interrupt([*args, "--resume"], out, signal.SIGKILL, rng) for _ in range(2)]
    assert -signal.SIGKILL in codes
    assert main(["reproduce", *args, "--resume"]) == 0
    assert tables(out) == through
    sessions = json.loads((out / "settings.json").read_text())["sessions"]
    assert sessions[-1]["command"].endswith("--resume")


@needs_data
def test_shards_merge_into_the_whole_and_a_resumed_sweep_extends(tmp_path, through, capsys):
    """Two shards at half the steps into one folder; --resume --steps extends both halves to the full length,
    the last to finish writing the tables; --merge writes them again, and refuses a unit of other settings."""
    out = tmp_path / "out"
    half = [*SWEEP, "--epochs", "3", "--out", str(out)]  # (curves of runs in epochs continue where they were)
    assert main(["reproduce", *half, "--shard", "1/2"]) == 0
    assert "3 of the 6 units are not finished" in capsys.readouterr().out
    assert not (out / "table1.csv").exists()
    assert main(["reproduce", *half, "--merge"]) == 2
    assert "--merge: 3 of the 6 units are not finished" in capsys.readouterr().err
    assert main(["reproduce", *half, "--shard", "2/2"]) == 0  # the last shard writes the tables
    assert (out / "table1.csv").exists()
    full = [*SWEEP, "--epochs", "6", "--out", str(out), "--resume"]
    assert main(["reproduce", *full, "--shard", "2/2"]) == 0
    assert main(["reproduce", *full, "--shard", "1/2"]) == 0
    assert tables(out) == through  # curves continued: 18 steps in two parts equal 18 steps in one
    (out / "table1.csv").unlink()
    assert main(["reproduce", *SWEEP, "--epochs", "6", "--out", str(out), "--merge"]) == 0
    assert tables(out) == through
    capsys.readouterr()

    other = tmp_path / "other"  # the same sweep at another learning rate: its units may not be mixed in
    assert (
        main(
            ["reproduce", *SWEEP, "--epochs", "1", "--rows", "GON", "--seeds", "1", "--lr", "0.01", "--out", str(other)]
        )
        == 0
    )
    shutil.rmtree(out / "units" / "gon-seed0")
    shutil.copytree(other / "units" / "gon-seed0", out / "units" / "gon-seed0")
    assert main(["reproduce", *SWEEP, "--epochs", "6", "--out", str(out), "--merge"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "gon-seed0/unit.json: this unit was run with other settings (sweep.lr 0.01 there, " in err[0]
    assert main(["reproduce", *SWEEP, "--epochs", "6", "--out", str(out), "--resume", "--lr", "0.01"]) == 2
    assert "was run with other settings (lr 0.001 there, 0.01 here)" in capsys.readouterr().err


@needs_data
def test_a_unit_in_use_is_left_to_its_process(tmp_path, capsys):
    """... and a resumed sweep may add seeds."""
    out = tmp_path / "out"
    args = [*SWEEP, "--rows", "GON", "--steps", "2", "--out", str(out)]
    assert main(["reproduce", *args, "--seeds", "1"]) == 0
    (out / "units" / "gon-seed1").mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out / "units" / "gon-seed1")], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        assert main(["reproduce", *args, "--resume"]) == 0
        said = capsys.readouterr()
        assert f"skipping GON (seed 1): {out}/units/gon-seed1 is in use by gon process {holder.pid}" in said.err
        assert "1 of the 2 units are not finished" in said.out
        assert len(tables(out)["table1.csv"]) == 1  # (the 1-seed tables)
    finally:
        holder.kill()
        holder.wait()
    assert main(["reproduce", *args, "--resume"]) == 0
    assert [r["seed"] for r in tables(out)["table1.csv"]] == ["0", "1"]


@needs_data
@pytest.mark.parametrize(
    "extra,message",
    [
        (["--shard", "3/2"], "--shard '3/2': give K/N"),
        (["--shard", "x"], "--shard 'x': give K/N"),
        (["--rows", "GON,Nope"], "--rows: no row 'Nope' in this experiment; its rows are 'GON', 'AE'"),
        (["--resume"], "--resume: {out} holds no sweep of gon reproduce"),
        (["--merge", "--shard", "1/2"], "--merge writes the tables of every shard"),
        (["--resume", "--overwrite"], "--overwrite replaces a sweep"),
        (["--checkpoint-every", "0"], "checkpoint_every"),
    ],
)
def test_sweep_flags_are_checked(tmp_path, capsys, extra, message):
    out = tmp_path / "none"
    assert main(["reproduce", *SWEEP, "--steps", "2", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message.format(out=out) in err[0]


@needs_data
def test_a_damaged_checkpoint_is_one_line_naming_it(tmp_path, capsys):
    out = tmp_path / "out"
    args = [*SWEEP, "--rows", "GON", "--seeds", "1", "--steps", "2", "--out", str(out)]
    assert main(["reproduce", *args]) == 0
    (out / "units" / "gon-seed0" / "state.pt").write_bytes(b"\x80\x04not a checkpoint")
    assert main(["reproduce", *args[:-4], "--steps", "4", "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gon-seed0/state.pt: not a readable unit checkpoint" in err[0]


@needs_data
def test_a_stop_reaches_every_worker_of_a_jobs_sweep(tmp_path):
    """SIGTERM to gon reproduce --jobs 2: the two units in training checkpoint, none of the others starts, exit 143;
    --resume then finishes all four."""
    out = tmp_path / "out"
    args = [*SWEEP, "--rows", "GON,GLO", "--steps", "400", "--jobs", "2", "--checkpoint-every", "100000"]
    proc = subprocess.Popen(
        [str(GON), "reproduce", *args, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 180
    while len(list(out.glob("units/*/gon.lock"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()[-2000:]
    assert err.decode().strip().splitlines()[-1].startswith("gon: stopped by SIGTERM: every unit in training")
    states = sorted(p.parent.name for p in out.glob("units/*/state.pt"))
    assert len(states) == 2 and not list(out.glob("units/*/result.json")) and not list(out.glob("units/*/gon.lock"))
    assert main(["reproduce", *args, "--out", str(out), "--resume"]) == 0
    assert len(list(out.glob("units/*/result.json"))) == 4


@needs_data
def test_damaged_or_foreign_unit_files_are_one_line_naming_them(tmp_path, capsys):
    import torch

    out = tmp_path / "out"
    args = [*SWEEP, "--rows", "GON", "--steps", "2", "--out", str(out)]
    assert main(["reproduce", *args]) == 0
    units = out / "units"
    (units / "gon-seed1" / "state.pt").rename(tmp_path / "seed1.pt")
    assert main(["reproduce", *args, "--merge"]) == 2
    assert "--merge: 1 of the 2 units are not finished: GON (seed 1)" in capsys.readouterr().err
    shutil.copy(units / "gon-seed0" / "state.pt", units / "gon-seed1" / "state.pt")  # another seed's checkpoint
    assert main(["reproduce", *args, "--resume"]) == 2
    assert (
        "gon-seed1/state.pt: this checkpoint belongs to another unit (seed 0 there, 1 here)" in capsys.readouterr().err
    )
    torch.save({"step": 2, "model": {}}, units / "gon-seed1" / "state.pt")
    assert main(["reproduce", *args, "--resume"]) == 2
    assert (
        "gon-seed1/state.pt: not a unit checkpoint of gon reproduce (no valid 'optimizer')" in capsys.readouterr().err
    )
    (tmp_path / "seed1.pt").rename(units / "gon-seed1" / "state.pt")
    (units / "gon-seed0" / "result.json").write_text('{"result": {"steps": 2}}')
    assert main(["reproduce", *args, "--merge"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gon-seed0/result.json: not a unit result of gon reproduce" in err[0]
