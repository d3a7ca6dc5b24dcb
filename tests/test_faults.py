"""Faults during training: SIGKILL at random moments, Ctrl-C / SIGTERM, a NaN loss, a read-only or full disk.

The kill test kills `gon fit` KILLS_PER_RUN = 5 times per run of the suite (so 20 kills take
four CI runs), each at a random moment of a random kind: during start-up, during training (a
checkpoint is written every step) or the moment a checkpoint's temporary file appears. The seed is
random per run and printed; set GON_FAULT_SEED to replay.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from gon.cli import main
from gon.core.errors import GonError
from gon.storage.checkpoints import TEMP_SUFFIX, check_output_dir, checkpoint_step, read_checkpoint
from tests.helpers import GON, TINY, blob_folder, gon_fit, run_gon_fit

KILLS_PER_RUN = 5
EVERY_STEP = ["--checkpoint-every", "1", "--limit-train", "64"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return blob_folder(tmp_path_factory.mktemp("blobs"))


def last(run: Path) -> Path:
    return run / "checkpoints" / "last.ckpt"


def mtime(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


def wait_for_new_checkpoint(proc: subprocess.Popen, run: Path, old_mtime: int | None, timeout: float = 180) -> int:
    """Poll until this process replaces last.ckpt (it is training); returns the step of the new one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gon fit exited early ({proc.returncode}):\n{proc.stdout.read()[-3000:]}")
        if mtime(last(run)) != old_mtime:
            step = checkpoint_step(last(run))
            assert step is not None, "last.ckpt was unreadable while training"
            return step
        time.sleep(0.02)
    raise AssertionError(f"no new checkpoint within {timeout} s")


def wait_for_temp_file(run: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any((run / "checkpoints").glob(f".*{TEMP_SUFFIX}")):
        time.sleep(0.0005)


def session_first_steps(run: Path) -> list[int]:
    """The first logged step of each training session (logs/version_K) that flushed a log."""
    firsts = []
    for path in sorted((run / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1])):
        rows = path.read_text().splitlines()[1:]
        if rows:
            firsts.append(int(rows[0].split(",")[1]))
    return firsts


def test_sigkill_at_random_moments_then_resume(tmp_path, dataset):
    seed = int(os.environ.get("GON_FAULT_SEED", random.randrange(2**31)))
    rng = random.Random(seed)
    run, where = tmp_path / "run", f"(GON_FAULT_SEED={seed})"
    args = ["--dataset", dataset, "--out", str(run), "--max-steps", "100000", *EVERY_STEP, *TINY]
    step, mid_write, resumed_at = 0, 0, [0]
    for kill in range(KILLS_PER_RUN):
        proc = gon_fit(*(args if kill == 0 else ["--resume", "--out", str(run)]))
        moment = rng.choice(["start-up", "writing", "training"] if kill else ["writing", "training"])
        try:
            if moment == "start-up":
                time.sleep(rng.uniform(0, 3))  # imports, data loading, restoring, the first steps
            else:
                first = wait_for_new_checkpoint(proc, run, mtime(last(run)))
                # a session that restarted from scratch would write step 1, 2, ... again
                assert step < first <= step + 10, f"kill {kill + 1}: resumed from {step}, wrote {first} {where}"
                if moment == "writing":  # the moment a checkpoint's temporary file appears
                    wait_for_temp_file(run, timeout=rng.uniform(0.2, 2))
                else:
                    time.sleep(rng.uniform(0, 0.5))
        finally:
            proc.kill()  # SIGKILL: no handler runs
            proc.communicate()
        mid_write += any((run / "checkpoints").glob(f".*{TEMP_SUFFIX}"))
        now = checkpoint_step(last(run))
        assert now is not None and now >= step, f"kill {kill + 1}: last.ckpt unreadable or older {where}"
        for periodic in (run / "checkpoints").glob("step*.ckpt"):
            read_checkpoint(periodic)  # every checkpoint on disk is whole
        step = now
        resumed_at.append(step)
    code, out = run_gon_fit("--resume", "--out", str(run), "--max-steps", str(step + 5))
    assert code == 0, f"{where}\n{out[-3000:]}"
    assert read_checkpoint(last(run))["global_step"] == step + 5
    assert json.loads((run / "metrics.json").read_text())["steps"] == step + 5
    firsts = session_first_steps(run)  # of the sessions that lived long enough to log
    assert firsts == sorted(firsts) and firsts[-1] == step and set(firsts) <= set(resumed_at), (
        f"sessions started at {firsts}, checkpoints after kills at {resumed_at} {where}"
    )
    logged = [int(line.split(",")[0]) for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    # sessions merged in order; rows count optimiser steps (the row after step N's update says N)
    assert logged == sorted(logged) and logged[0] == 1 and logged[-1] == step + 5
    assert not list((run / "checkpoints").glob(f".*{TEMP_SUFFIX}")), "stale temporary files were not cleaned"
    print(
        f"{KILLS_PER_RUN} kills survived ({mid_write} left a half-written temporary file), "
        f"resumed at step {step} {where}"
    )


def test_ctrl_c_and_sigterm_stop_cleanly_with_a_checkpoint_and_resume_hint(tmp_path, dataset):
    """Ctrl-C stops a run cleanly; the printed hint resumes it where it stopped; SIGTERM stops that one."""
    run = tmp_path / "run"
    command = ["--dataset", dataset, "--out", str(run), "--max-steps", "100000", *EVERY_STEP, *TINY]
    step = 0
    for sig in [signal.SIGINT, signal.SIGTERM]:
        proc = gon_fit(*command)
        first = wait_for_new_checkpoint(proc, run, mtime(last(run)))
        assert step < first <= step + 10  # a resumed session continues from the saved step
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 128 + sig, out[-3000:]
        stopped = re.search(
            r"training stopped by SIG(?:INT|TERM) at step (\d+); checkpoint saved to (\S+); "
            r"resume with: gon fit (--resume --out \S+)",
            out,
        )
        assert stopped and "Traceback" not in out, out[-3000:]
        assert Path(stopped.group(2)) == last(run)
        assert int(stopped.group(1)) == read_checkpoint(last(run))["global_step"] > step
        # (Lightning logs one step later after a checkpoint taken exactly at the end of an epoch)
        assert session_first_steps(run)[-1] in (step, step + 1)
        step, command = int(stopped.group(1)), stopped.group(3).split()  # next: exactly the printed hint


def test_a_nan_loss_stops_at_that_step_and_keeps_the_last_good_checkpoint(tmp_path, dataset, capsys):
    run = tmp_path / "run"
    # An absurd learning rate sends the weights to ~1e30 after one step; the next loss is NaN.
    code = main(
        ["fit", "--dataset", dataset, "--out", str(run), "--max-steps", "50", "--lr", "1e30", *EVERY_STEP, *TINY]
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    found = re.search(r"loss became (nan|inf|-inf) at step (\d+).*last good checkpoint: (\S+) \(step (\d+)\)", err)
    assert found and err.startswith("gon: error:"), err
    bad_step, kept, kept_step = int(found.group(2)), Path(found.group(3)), int(found.group(4))
    assert kept == last(run) and kept_step == bad_step  # the weights that produced the NaN were never saved
    ckpt = read_checkpoint(kept)
    assert ckpt["global_step"] == bad_step
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert not (run / "metrics.json").exists()  # no final figures from a broken model


@pytest.fixture
def read_only_dir(tmp_path):
    """An existing directory nobody can write into (chattr +i for root, for whom chmod means nothing)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
            pytest.skip("running as root without chattr +i: cannot make a read-only directory")
        yield folder
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


def test_a_read_only_output_directory_is_reported_before_training(read_only_dir, dataset, capsys):
    code = main(["fit", "--dataset", dataset, "--out", str(read_only_dir), "--max-steps", "2", *TINY])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"output directory {read_only_dir} is not writable" in err


def test_a_full_disk_is_reported_before_training(tmp_path, dataset):
    """A real 1 MiB file system (tmpfs in a user namespace): too small for a run, refused up front."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -rm (user namespaces) not available to mount a small tmpfs")
    mount_then_fit = f'mount -t tmpfs -o size=1m none "{mount}" && exec "$0" "$@"'
    proc = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            mount_then_fit,
            str(GON),
            "fit",
            "--dataset",
            dataset,
            "--out",
            str(mount / "run"),
            "--max-steps",
            "2",
            *TINY,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert re.search(
        rf"gon: error: not enough free space for the run in {re.escape(str(mount / 'run'))}: "
        r"[\d.]+ MiB free, about [\d.]+ MiB needed",
        out,
    ), out[-3000:]


def test_a_failing_checkpoint_write_names_the_file_and_keeps_the_previous_one(tmp_path, dataset):
    run = tmp_path / "run"
    assert main(["fit", "--dataset", dataset, "--out", str(run), "--max-steps", "2", *EVERY_STEP, *TINY]) == 0
    before = last(run).read_bytes()

    def small_file_limit():  # every write past 16 KiB fails with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 10, 16 << 10))

    assert len(before) > 16 << 10
    code, out = run_gon_fit("--resume", "--out", str(run), "--max-steps", "4", preexec_fn=small_file_limit)
    error = [line for line in out.splitlines() if "gon: error:" in line]
    assert code == 2 and error, out[-3000:]
    assert re.search(
        rf"cannot write {re.escape(str(run / 'checkpoints'))}/\S+\.ckpt: File too large; "
        "the previous version \\(if any\\) is intact",
        error[0],
    ), error[0]
    assert "Traceback" not in out
    assert last(run).read_bytes() == before  # untouched
    assert not list((run / "checkpoints").glob(f".*{TEMP_SUFFIX}"))


def test_check_output_dir_refuses_when_space_is_short(tmp_path):
    check_output_dir(tmp_path / "run", need_bytes=1)
    with pytest.raises(GonError, match=r"not enough free space .* MiB needed"):
        check_output_dir(tmp_path / "run", need_bytes=shutil.disk_usage(tmp_path).free + (1 << 40))
