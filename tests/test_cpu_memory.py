"""gon.training.cpu_memory: training steps keep their activations mapped instead of page-faulting them back in."""

import os
import subprocess
import sys

import pytest

from gon.training.cpu_memory import GLIBC_VARIABLES, LIBC, tune_for_training

STEPS = """
import resource, sys, torch
from gon.models import ImplicitGON
if sys.argv[1] == "tuned":
    from gon.training.cpu_memory import tune_for_training
    tune_for_training()
torch.manual_seed(0)
torch.set_num_threads(1)
model = ImplicitGON(hidden=64, depth=3, coord_fraction=0.5)
optimiser = torch.optim.Adam(model.parameters())
x = torch.rand(32, 1, 28, 28)
def step():
    optimiser.zero_grad()
    model.loss(x).backward()
    optimiser.step()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_per_step(mode: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in (*GLIBC_VARIABLES, "THP_MEM_ALLOC_ENABLE")}
    done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return float(done.stdout)


@pytest.mark.skipif(LIBC is None, reason="glibc's allocator only")
def test_tuned_training_steps_stop_page_faulting_their_activations():
    # fresh processes: the settings are process-wide and PyTorch reads its variable once
    plain, tuned = faults_per_step("plain"), faults_per_step("tuned")
    assert tuned < plain / 5, (plain, tuned)


def test_a_setting_the_user_made_is_left_alone(monkeypatch):
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "0")
    tune_for_training()
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "0"
