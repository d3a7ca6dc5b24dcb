"""gon.training.graphs: the training step on static buffers gives exactly the plain loop's losses and weights (CPU,
eagerly, here), and replayed as a CUDA graph the eager step's (on a GPU; skipped without one)."""

from __future__ import annotations

import pytest
import torch

from gon.cli import main
from gon.models.registry import MODELS
from gon.training.graphs import GraphedStep, TrainingAdam, TrainingState
from tests.helpers import TINY as TINY_FIT
from tests.helpers import TINY_MODELS, blob_folder, tiny_model

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
STEPS = 20
#: every model, and the implicit GON with every origin pass and Monte Carlo option, z0 noise included
CONFIGURATIONS = [(name, {}) for name in MODELS] + [
    ("implicit", {"origin_pass": "naive", "coord_fraction": 1.0}),
    ("implicit", {"origin_pass": "shared", "coord_fraction": 1.0}),
    ("implicit", {"coord_fraction": 0.25, "coord_sampling": "independent"}),
    ("implicit", {"origin_pass": "naive", "z0_std": 0.1}),
    ("gon", {"z0_std": 0.1, "steps": 2}),
    ("implicit", {"image_size": [6, 4, 4]}),  # a volume: Monte Carlo voxel subsets
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in options.items()) or 'default'}" for name, options in CONFIGURATIONS]


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: tiny steps, and a CPU shared with other jobs (2 threads: 10-50x slower there)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def batches(name: str, device, n: int = STEPS, shape=None):
    """Seeded batches (and GLO's indices) for ``n`` steps."""
    shape = shape or (TINY_MODELS[name]["image_size"],) * 2
    g = torch.Generator().manual_seed(1)
    for _ in range(n):
        x = torch.rand(4, 1, *shape, generator=g).to(device)
        fields = {"index": torch.randperm(TINY_MODELS["glo"]["num_images"], generator=g)[:4].to(device)}
        yield x, {k: fields[k] for k in getattr(MODELS[name], "batch_fields", ())}


def build(name: str, options: dict, device, capturable: bool = False):
    torch.manual_seed(0)
    model = tiny_model(name, **options).to(device).train()
    return model, TrainingAdam(model.parameters(), lr=1e-2, capturable=capturable)


def plain_loop(name: str, options: dict, device) -> tuple[list[torch.Tensor], torch.nn.Module]:
    model, optimizer = build(name, options, device)
    torch.manual_seed(5)
    losses = []
    for x, fields in batches(name, device, shape=options.get("image_size")):
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss_terms(x, **fields)["loss"]
        loss.backward()
        optimizer.step()
        losses.append(loss.detach().clone())
    return losses, model


def graphed_step_loop(name: str, options: dict, device, graphs: bool) -> tuple[list[torch.Tensor], GraphedStep]:
    model, optimizer = build(name, options, device, capturable=graphs)
    step = GraphedStep(model, optimizer, graphs=graphs, log=None)
    torch.manual_seed(5)
    losses = [step(x, **fields)["loss"].clone() for x, fields in batches(name, device, shape=options.get("image_size"))]
    return losses, step


@pytest.mark.parametrize("name, options", CONFIGURATIONS, ids=IDS)
def test_static_buffer_step_matches_the_plain_loop_exactly_on_cpu(name, options):
    expected, reference = plain_loop(name, options, "cpu")
    losses, step = graphed_step_loop(name, options, "cpu", graphs=False)
    assert torch.stack(losses).equal(torch.stack(expected))
    assert all(a.equal(b) for a, b in zip(step.model.parameters(), reference.parameters(), strict=True))
    assert not step.graphed and not step.nonfinite_seen()


@CUDA
@pytest.mark.parametrize("name, options", CONFIGURATIONS, ids=IDS)
def test_graphed_step_matches_the_eager_step_on_cuda(name, options):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    expected, reference = plain_loop(name, options, "cuda")
    losses, step = graphed_step_loop(name, options, "cuda", graphs=True)
    assert step.graphed, step.fallback_reason
    torch.testing.assert_close(torch.stack(losses), torch.stack(expected), rtol=1e-4, atol=1e-5)
    for a, b in zip(step.model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_without_cuda_the_step_falls_back_to_eager_with_one_line_saying_why():
    lines = []
    model, optimizer = build("gon", {}, "cpu")
    step = GraphedStep(model, optimizer, graphs=True, log=lines.append)
    for x, fields in batches("gon", "cpu", 3):
        step(x, **fields)
    assert lines == ["cuda graphs: off, training eagerly (the batch is not on a CUDA device)"]
    assert not step.graphed and optimizer.state  # trained eagerly


def test_a_graphed_step_refuses_other_shapes_an_eager_one_takes_them():
    """A graph reads its static buffers; an eager step (a CPU) trains on the batch as it comes, no copy."""
    model, optimizer = build("gon", {}, "cpu")
    step = GraphedStep(model, optimizer, graphs=True, log=None)  # on a CPU: eager after the fall-back, buffers kept
    step(torch.rand(4, 1, 16, 16))
    with pytest.raises(ValueError, match="same inputs every step"):
        step(torch.rand(3, 1, 16, 16))
    eager = GraphedStep(model, optimizer, graphs=False, log=None)
    eager(torch.rand(4, 1, 16, 16))
    eager(torch.rand(3, 1, 16, 16))
    assert eager.static is None


def test_a_nonfinite_loss_sets_the_device_flag():
    model, optimizer = build("gon", {}, "cpu")
    step = GraphedStep(model, optimizer, graphs=False, log=None)
    step(torch.rand(4, 1, 16, 16))
    assert not step.nonfinite_seen()
    step(torch.full((4, 1, 16, 16), float("nan")))
    assert step.nonfinite_seen()


def test_training_state_restores_weights_adam_and_random_generators_in_place():
    model, optimizer = build("vgon", {}, "cpu")
    x = torch.rand(4, 1, 16, 16)
    first = GraphedStep(model, optimizer, graphs=False, log=None)
    first(x)  # Adam has a state now
    saved = TrainingState(model, optimizer)
    storages = [p.data_ptr() for p in model.parameters()]
    weights = [p.detach().clone() for p in model.parameters()]
    moments = [s["exp_avg"].clone() for s in optimizer.state.values()]
    noise = torch.randn(3)
    first(x)
    first(x)
    saved.restore()
    assert [p.data_ptr() for p in model.parameters()] == storages
    assert all(p.equal(w) for p, w in zip(model.parameters(), weights, strict=True))
    assert all(s["exp_avg"].equal(m) for s, m in zip(optimizer.state.values(), moments, strict=True))
    assert torch.randn(3).equal(noise)
    # state created after the copy (a first step) goes back to a fresh Adam's: zeros, step 0
    model, optimizer = build("gon", {}, "cpu")
    saved = TrainingState(model, optimizer)
    GraphedStep(model, optimizer, graphs=False, log=None)(x)
    saved.restore()
    assert all(not v.any() for s in optimizer.state.values() for v in s.values())


def test_training_adam_runs_only_the_closure_when_the_update_is_inside_it_and_keeps_its_capturable():
    model, _ = build("gon", {}, "cpu")
    optimizer = TrainingAdam(model.parameters(), lr=1e-2, update_in_closure=True)
    before = [p.detach().clone() for p in model.parameters()]
    model.loss(torch.rand(4, 1, 16, 16)).backward()
    assert optimizer.step(closure=lambda: "the step") == "the step"
    assert all(p.equal(b) for p, b in zip(model.parameters(), before, strict=True))  # no second update
    optimizer.step()  # without a closure: Adam's update
    assert not all(p.equal(b) for p, b in zip(model.parameters(), before, strict=True))
    saved = optimizer.state_dict()
    saved["param_groups"][0]["capturable"] = True  # as a graphed GPU run saves it
    optimizer.load_state_dict(saved)
    assert optimizer.param_groups[0]["capturable"] is False


def test_cuda_graphs_flag(tmp_path, capsys):
    from gon.cli import build_parser
    from gon.cli.fit import config_from_args

    parse = build_parser().parse_args
    assert config_from_args(parse(["fit", "--no-cuda-graphs"])).cuda_graphs is False
    assert config_from_args(parse(["fit", "--cuda-graphs"])).cuda_graphs is True
    assert config_from_args(parse(["fit"])).cuda_graphs is True


@CUDA
def test_gon_fit_with_cuda_graphs_logs_checkpoints_and_resumes(tmp_path, capsys):
    dataset = blob_folder(tmp_path / "blobs", n=64)
    run = tmp_path / "run"
    args = ["fit", "--dataset", dataset, "--out", str(run), "--accelerator", "gpu", "--devices", "1", *TINY_FIT]
    assert main([*args, "--max-steps", "12", "--log-every", "4", "--checkpoint-every", "6"]) == 0
    assert "cuda graphs: off" not in capsys.readouterr().err
    rows = (run / "metrics.csv").read_text().splitlines()
    assert sum(1 for r in rows[1:] if r.split(",")[rows[0].split(",").index("train/loss")]) == 3  # steps 4, 8, 12
    assert main([*args, "--max-steps", "16", "--resume", "--log-every", "4"]) == 0
    from gon.storage.checkpoints import read_checkpoint

    assert read_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 16
