"""Seeds trained stacked (gon.training.ensemble) equal their separate eager runs: weights, Adam's state and losses.

Every Table 1 and Table 2 row, on tiny models (tests/helpers.py sizes), 2 or 3 members a few steps each, every
member with its own seed, data order and random draws. Tolerance: every tensor within ``RTOL`` of its largest
magnitude (the stacked convolutions sum in another order; measured worst 2e-6), losses within ``RTOL``.
"""

from __future__ import annotations

import pytest
import torch

from gon.experiments.reconstruction import TABLE1_ROWS
from gon.experiments.variational import TABLE2_ROWS
from gon.training.ensemble import EnsembleStep, MemberRandom, stack_refusal, stackable
from gon.training.graphs import GraphedStep, TrainingAdam
from gon.training.loop import loss_arguments, shuffled_batches
from tests.helpers import FASHION_MNIST, image_size_of, tiny_model

RTOL = 3e-5
IMAGES = 16  # = GLO's tiny code count
LR = 1e-3


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny steps: one thread is fastest, and far faster than two on a machine shared with other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def member(row, seed: int, device="cpu"):
    """A row's tiny model built from ``seed`` as the sweep builds it, its Adam and its generators after the build."""
    torch.manual_seed(seed)
    model = tiny_model(row.model, **row.options).to(device).train()
    return model, TrainingAdam(model.parameters(), lr=LR), MemberRandom.current(device)


def data_order(row, seed: int, device="cpu"):
    """The member's own shuffled batches of one fixed set of images (its separate run's data order)."""
    size = image_size_of(row.model)
    images = torch.rand(IMAGES, 1, size, size, generator=torch.Generator().manual_seed(7))
    labels = torch.arange(IMAGES) % 10
    return shuffled_batches(images, labels, 8, torch.Generator().manual_seed(seed), device)


def separate(row, seed: int, steps: int, device="cpu"):
    """The member's separate eager run: (model, optimizer, losses)."""
    model, opt, _ = member(row, seed, device)
    step = GraphedStep(model, opt, graphs=False)
    batches = data_order(row, seed, device)
    losses = []
    for _ in range(steps):
        batch = next(batches)
        losses.append(step(batch["x"], **loss_arguments(model, batch))["loss"].item())
    return model, opt, losses


def stacked(row, seeds, steps: int, device="cpu", graphs=False):
    """The same members trained as one EnsembleStep, written back: (models, optimizers, losses per member)."""
    members = [member(row, seed, device) for seed in seeds]
    ensemble = EnsembleStep(*[list(m) for m in zip(*members)], graphs=graphs)
    orders = [data_order(row, seed, device) for seed in seeds]
    losses = [[] for _ in seeds]
    for _ in range(steps):
        for own, terms in zip(losses, ensemble.step([next(order) for order in orders])):
            own.append(terms["loss"].item())
    ensemble.write_back()
    return [m for m, _, _ in members], [o for _, o, _ in members], losses


def assert_close(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    error = (a - b).abs().max().item()
    assert error <= RTOL * a.abs().max().item() + 1e-30, f"{what}: off by {error:.3g} (largest {a.abs().max():.3g})"


def assert_same_training(reference, model, opt, losses) -> None:
    ref_model, ref_opt, ref_losses = reference
    assert losses == pytest.approx(ref_losses, rel=RTOL)
    params = dict(model.named_parameters())
    for name, p in ref_model.named_parameters():
        assert_close(p.detach(), params[name].detach(), name)
        ref_state, state = ref_opt.state[p], opt.state[params[name]]
        assert float(ref_state["step"]) == float(state["step"])
        for key in ("exp_avg", "exp_avg_sq"):
            assert_close(ref_state[key], state[key], f"{name} {key}")


ROWS = [*TABLE1_ROWS, *TABLE2_ROWS]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.label)
def test_stacked_seeds_train_as_their_separate_runs(row):
    seeds = [0, 1, 2] if len(row.label) % 2 else [3, 5]  # M = 2 and 3 across the rows
    models, opts, losses = stacked(row, seeds, steps=3)
    for seed, model, opt, own in zip(seeds, models, opts, losses):
        assert_same_training(separate(row, seed, 3), model, opt, own)


def test_every_table_row_stacks():
    assert all(stackable(tiny_model(row.model, **row.options)) for row in ROWS)


def test_members_draw_their_own_noise():
    """Two variational members from one seed but different generators: their steps differ (the draws are theirs)."""
    row = TABLE2_ROWS[0]
    members = [member(row, 0) for _ in range(2)]
    with members[1][2]:
        torch.rand(1)  # member 1's generators moved on: its posterior draw is another
    ensemble = EnsembleStep([m for m, _, _ in members], [o for _, o, _ in members], [r for _, _, r in members])
    batch = next(data_order(row, 0))
    first, second = ensemble.step([batch, batch])
    assert first["loss"].item() != second["loss"].item()


def test_a_resumed_member_continues_from_its_own_adam_state():
    """Members that trained 2 steps alone, then 2 stacked, equal 4 separate steps."""
    row = TABLE1_ROWS[0]
    members, orders = [], []
    for seed in (0, 1):
        model, opt, random = member(row, seed)
        order, step = data_order(row, seed), GraphedStep(model, opt, graphs=False)
        for _ in range(2):
            batch = next(order)
            step(batch["x"])
        members.append((model, opt, MemberRandom.current()))
        orders.append(order)
    ensemble = EnsembleStep([m for m, _, _ in members], [o for _, o, _ in members], [r for _, _, r in members])
    losses = [[], []]
    for _ in range(2):
        for own, terms in zip(losses, ensemble.step([next(o) for o in orders])):
            own.append(terms["loss"].item())
    ensemble.write_back()
    for seed, (model, opt, _), own in zip((0, 1), members, losses):
        ref_model, ref_opt, ref_losses = separate(row, seed, 4)
        assert_same_training((ref_model, ref_opt, ref_losses[2:]), model, opt, own)


def test_members_at_different_steps_or_settings_are_refused():
    row = TABLE1_ROWS[0]
    (a, opt_a, _), (b, opt_b, _) = member(row, 0), member(row, 1)
    GraphedStep(a, opt_a, graphs=False)(next(data_order(row, 0))["x"])
    with pytest.raises(ValueError, match="optimizers hold a state"):
        EnsembleStep([a, b], [opt_a, opt_b])
    c, opt_c, _ = member(row, 2)
    opt_c.param_groups[0]["lr"] = 0.5
    with pytest.raises(ValueError, match="Adam settings differ.*lr"):
        EnsembleStep([b, c], [opt_b, opt_c])
    other = tiny_model("gon", latent_dim=4)
    with pytest.raises(ValueError, match="not the same model"):
        EnsembleStep([b, other], [opt_b, TrainingAdam(other.parameters(), lr=LR)])


@pytest.mark.parametrize(
    "name, options, reason",
    [
        ("gon", {"norm": "batch"}, "BatchNorm"),
        ("gon", {"z0_std": 0.1}, "z0 is drawn inside the step"),
        ("implicit", {"origin_pass": "shared"}, "shared-origin pass"),
    ],
)
def test_models_whose_step_cannot_be_stacked_say_why(name, options, reason):
    model = tiny_model(name, **options)
    assert reason in stack_refusal(model)
    with pytest.raises(ValueError, match=reason):
        EnsembleStep([model], [TrainingAdam(model.parameters(), lr=LR)])


CUDA_RTOL = 1e-4  # cuDNN picks other algorithms for the stacked (grouped) convolutions; TF32 off


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("graphs", [False, True], ids=["eager", "graphed"])
@pytest.mark.parametrize("label", ["GON", "10 Step", "GLO", "VGON"])
def test_stacked_seeds_train_as_their_separate_runs_on_cuda(label, graphs, monkeypatch):
    """On the GPU, eager and replayed as one CUDA graph: the members' draws happen outside the graph."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setitem(globals(), "RTOL", CUDA_RTOL)
    row = next(r for r in ROWS if r.label == label)
    models, opts, losses = stacked(row, [0, 1, 2], steps=6, device="cuda", graphs=graphs)
    for seed, model, opt, own in zip([0, 1, 2], models, opts, losses):
        assert_same_training(separate(row, seed, 6, device="cuda"), model, opt, own)


# -- gon reproduce --ensemble: units of a row's seeds trained together -----------------------------------------
SWEEP = [
    *["table1", "--preset", "cpu", "--rows", "GON,AE", "--latent-dim", "8", "--seeds", "2", "--limit-train", "96"],
    *["--test-size", "16", "--batch-size", "32", "--threads", "1", "--no-progress", "--checkpoint-every", "2"],
]


def sweep_tables(out) -> dict[str, list[dict]]:
    """The sweep's per-seed table and curves as numbers, without the clock times."""
    import csv

    found = {}
    for name in ("table1.csv", "table1_curves.csv"):
        with (out / name).open() as f:
            rows = [{k: v for k, v in r.items() if "seconds" not in k} for r in csv.DictReader(f)]
        found[name] = [{k: _number(v) for k, v in r.items()} for r in rows]
    return found


def _number(value: str):
    try:
        return float(value)
    except ValueError:
        return value


def assert_same_tables(a: dict, b: dict) -> None:
    for name in a:
        assert len(a[name]) == len(b[name]), name
        for row_a, row_b in zip(a[name], b[name]):
            assert row_a.keys() == row_b.keys()
            for key, value in row_a.items():
                if isinstance(value, float):
                    assert row_b[key] == pytest.approx(value, rel=10 * RTOL), f"{name} {row_a['row']} {key}"
                else:
                    assert row_b[key] == value, f"{name} {key}"


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_a_sweep_with_stacked_seeds_equals_the_separate_one_and_resumes_stacked(tmp_path, monkeypatch):
    """--ensemble on gives the tables of --ensemble off, and so does a sweep half trained separately and extended
    stacked: each unit keeps its own checkpoints, in one format."""
    from gon.cli import main
    from gon.experiments import common

    stacked_groups = []
    train_stacked = common._train_stacked
    monkeypatch.setattr(
        common,
        "_train_stacked",
        lambda members, bar: stacked_groups.append(len(members)) or train_stacked(members, bar),
    )
    outs = {name: tmp_path / name for name in ("off", "on", "off-on")}
    assert main(["reproduce", *SWEEP, "--epochs", "4", "--ensemble", "off", "--out", str(outs["off"])]) == 0
    assert main(["reproduce", *SWEEP, "--epochs", "4", "--ensemble", "on", "--out", str(outs["on"])]) == 0
    assert main(["reproduce", *SWEEP, "--epochs", "2", "--ensemble", "off", "--out", str(outs["off-on"])]) == 0
    assert (
        main(["reproduce", *SWEEP, "--epochs", "4", "--ensemble", "on", "--resume", "--out", str(outs["off-on"])]) == 0
    )
    assert stacked_groups == [2, 2, 2, 2]  # GON and AE, 2 seeds each, in both stacked sweeps
    through = sweep_tables(outs["off"])
    for name in ("on", "off-on"):
        assert_same_tables(through, sweep_tables(outs[name]))
    assert sorted(p.name for p in (outs["on"] / "units").iterdir()) == sorted(
        p.name for p in (outs["off"] / "units").iterdir()
    )


def test_the_step_time_benchmark_covers_every_model_and_renders_its_table():
    from gon.bench import markdown
    from gon.bench.ensemble import configurations
    from gon.bench.measure import machine
    from gon.models.registry import MODELS

    assert {name for _, name, _ in configurations()} == set(MODELS)
    assert [label for label, _, _ in configurations()[:9]] == [
        f"{row.label} ({table})" for table, rows in (("Table 1", TABLE1_ROWS), ("Table 2", TABLE2_ROWS)) for row in rows
    ]
    rows = [
        {
            "name": "GON (Table 1)",
            "members": 3,
            "mode": "eager",
            "params": 303697,
            "separate_ms": 9.0,
            "stacked_ms": 6.0,
        }
        | {"speedup": 1.5, "separate_cpu_ms": 8.0, "stacked_cpu_ms": 4.0, "cpu_speedup": 2.0, "note": ""},
        {"name": "implicit", "note": "does not stack: its exact shared-origin pass ..."},
    ]
    record = {"date": "now", "device": "cpu", "machine": machine(), "settings": {"repeats": 3, "batch": 64}}
    text = markdown({**record, "results": {"ensemble": rows}})
    assert "| GON (Table 1) | 3 | eager | 303,697 | 9.0 | 6.0 | 1.50x | 8.0 | 4.0 | 2.00x |  |" in text
    assert "| implicit |  |  | - | - | - | - | - | - | - | does not stack" in text
