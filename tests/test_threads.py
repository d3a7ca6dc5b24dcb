"""gon.training.threads: the thread count is chosen by timing steps, re-measured when step times jump, and logged."""

from __future__ import annotations

import pytest
import torch

from gon.cli import main
from gon.training.threads import ThreadTuner, candidate_counts, choose_threads
from tests.helpers import TINY, blob_folder


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def drive(tuner: ThreadTuner, step_ms: dict[int, float], steps: int) -> list[int]:
    """Run ``steps`` steps whose time depends only on the thread count torch is set to; returns those counts."""
    used = []
    for _ in range(steps):
        tuner.before_step()
        used.append(torch.get_num_threads())
        tuner.after_step(step_ms[torch.get_num_threads()] / 1000)
    return used


def test_candidate_counts_are_powers_of_two_and_the_core_count():
    assert candidate_counts(1) == [1]
    assert candidate_counts(2) == [1, 2]
    assert candidate_counts(6) == [1, 2, 4, 6]
    assert candidate_counts(8) == [1, 2, 4, 8]


def test_the_fastest_count_is_kept_and_logged():
    lines = []
    tuner = ThreadTuner([1, 2, 4], log=lines.append)
    used = drive(tuner, {1: 90, 2: 50, 4: 60}, 40)
    assert tuner.chosen == 2 and used[-20:] == [2] * 20
    assert lines == ["threads: 2 (measured 50 ms vs 90 ms at 1, 60 ms at 4)"]
    assert len(used) - used[::-1].index(4) <= 10  # measuring took the first few steps only


def test_a_much_slower_count_is_timed_once_only():
    tuner = ThreadTuner([1, 2], log=None)
    used = drive(tuner, {1: 50, 2: 2760}, 30)
    assert used.count(2) == 1 and tuner.chosen == 1


def test_a_jump_in_step_times_measures_again():
    lines = []
    tuner = ThreadTuner([1, 2], log=lines.append)
    drive(tuner, {1: 80, 2: 40}, 20)  # idle machine: 2 threads
    assert tuner.chosen == 2
    drive(tuner, {1: 50, 2: 2760}, 20)  # a busy neighbour arrives
    assert tuner.chosen == 1 and tuner.measurements == 2
    assert lines[-1].startswith("threads: 1 (measured 50 ms vs 2760 ms at 2; step times had risen")
    drive(tuner, {1: 52, 2: 2760}, 50)  # no jump, no new measurement
    assert tuner.measurements == 2


def test_a_periodic_check_notices_that_the_neighbour_left():
    tuner = ThreadTuner([1, 2], recheck_seconds=5.0, log=None)
    drive(tuner, {1: 50, 2: 2760}, 10)
    assert tuner.chosen == 1
    drive(tuner, {1: 80, 2: 40}, 120)  # 6 s at 1 thread, then a measurement
    assert tuner.chosen == 2 and tuner.measurements == 2


def test_one_count_means_no_measuring():
    tuner = ThreadTuner([1], log=None)
    assert drive(tuner, {1: 10}, 5) == [1] * 5 and tuner.chosen == 1


def test_choose_threads_runs_real_steps_and_leaves_torch_at_the_choice():
    x = torch.randn(64, 64)
    steps = []
    tuner = choose_threads(lambda: steps.append((x @ x).sum()), log=None)
    assert tuner.chosen in candidate_counts() and torch.get_num_threads() == tuner.chosen
    assert tuner.measurements == 1 and 1 <= len(steps) <= 1 + tuner.rounds * len(candidate_counts())


def test_gon_fit_logs_its_measured_choice_and_threads_validates(tmp_path, capsys):
    dataset = blob_folder(tmp_path / "blobs", n=32)
    args = ["fit", "--dataset", dataset, "--max-steps", "12", "--limit-train", "32", "--accelerator", "cpu", *TINY]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    assert "threads: " in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "bad"), "--threads", "0"]) == 2
    assert "--threads) must be > 0, got 0" in capsys.readouterr().err
