"""`gon reproduce` and `gon evaluate`: the budget, the table writer, and every experiment at a tiny budget."""

import csv
import json
import subprocess
import sys

import pytest
import torch

import gon
from gon.cli import main
from gon.core.errors import GonError
from gon.experiments import EXPERIMENTS, Budget
from gon.experiments.tables import markdown_table, summarise, write_tables
from tests.helpers import FASHION_MNIST
from tests.test_lock import HOLD

needs_data = pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
TINY = ["--limit-train", "64", "--test-size", "16", "--batch-size", "32", "--steps", "2", "--no-progress"]


def test_budget_defaults_fill_only_what_was_not_given():
    b = Budget(steps=5).with_defaults(epochs=3, seeds=2, test_size=100)
    assert (b.steps, b.epochs, b.seeds, b.test_size) == (5, None, 2, 100)
    b = Budget().with_defaults(epochs=3, limit_train=640)
    assert b.train_steps(640) == 3 * 10  # epochs x (images // batch 64)
    with pytest.raises(GonError, match="either --steps or --epochs"):
        Budget(steps=1, epochs=1)
    with pytest.raises(GonError, match="--seeds"):
        Budget(seeds=0)
    with pytest.raises(GonError, match="fewer than one batch"):
        Budget(steps=1).train_steps(10)


def test_tables_are_mean_and_sample_std_over_seeds(tmp_path):
    results = [
        {"row": "a", "seed": 0, "sse": 1.0},
        {"row": "a", "seed": 1, "sse": 2.0},
        {"row": "b", "seed": 0, "sse": 4.0},
        {"row": "b", "seed": 1, "sse": 4.0},
    ]
    summary = summarise(results, ["row"], ["sse"])
    assert summary[0]["sse"] == 1.5 and summary[0]["sse_std"] == pytest.approx(0.5**0.5)
    table = markdown_table(summary, ["row"], {"sse": ("SSE", 2)})
    assert "| a | 1.50 ± 0.71 |" in table and "| b | 4.00 |" in table  # equal values: no ± 0.00
    write_tables(results, tmp_path, "t", ["row"], {"sse": ("SSE", 2)})
    with (tmp_path / "t.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 4
    assert "2 seeds" in (tmp_path / "t.md").read_text()


def test_every_experiment_is_listed_with_its_budget(capsys):
    assert main(["reproduce", "--list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in EXPERIMENTS)
    assert set(EXPERIMENTS) == {
        "table1",
        "table2",
        "steps",
        "generalisation",
        "activations",
        "origin",
        "capacity",
        "convergence",
        "classifier",
        "conversion",
        "fig4",
        "superres",
        "slerp",
        "fig9a",
        "fig9b",
        "gradient-family",
    }


def test_list_states_both_presets_with_their_sources(capsys):
    assert main(["reproduce", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "paper: model latent-dim 256" in listing and "Table 1 caption (500 epochs" in listing
    assert "paper: model latent-dim 48, width 32, activation relu" in listing and "Variational-GON.py" in listing
    assert (
        listing.count("cpu: model gon's defaults") == len(EXPERIMENTS) - 4
    )  # fig4, superres, slerp, gradient-family: SIRENs
    assert listing.count("cpu: model hidden 32, depth 4, latent-dim 32;") == 1  # Fig. 4a's tiny SIREN
    assert listing.count("cpu: model hidden 256, depth 4, latent-dim 32;") == 2


@needs_data
def test_presets_set_the_configuration_and_flags_override_it(tmp_path):
    for preset, lr, options in (("paper", 1e-4, {"latent_dim": 256}), ("cpu", 1e-3, {})):
        out = tmp_path / preset
        assert main(["reproduce", "table1", *TINY, "--preset", preset, "--out", str(out)]) == 0
        settings = json.loads((out / "settings.json").read_text())
        assert settings["budget"]["lr"] == lr and settings["budget"]["options"] == options
        assert settings["configuration"].startswith("model ") and f"--preset {preset}" in settings["command"]
        assert f"; batch {settings['budget']['batch_size']}." in settings["configuration"]  # the batch it ran at
    out = tmp_path / "latent32"
    assert main(["reproduce", "table1", *TINY, "--latent-dim", "32", "--lr", "0.01", "--out", str(out)]) == 0
    settings = json.loads((out / "settings.json").read_text())
    assert settings["budget"]["options"] == {"latent_dim": 32} and settings["budget"]["lr"] == 0.01
    params = {
        p: {r["row"]: r["parameters"] for r in csv.DictReader((tmp_path / p / "table1.csv").open())}
        for p in ("paper", "latent32")
    }
    assert int(params["paper"]["GON"]) > int(params["latent32"]["GON"])  # 256 latents: a bigger first layer


@needs_data
def test_jobs_run_rows_and_seeds_in_processes_with_the_same_results(tmp_path):
    tables = {}
    for jobs in ("1", "2"):
        out = tmp_path / jobs
        args = ["reproduce", "steps", *TINY, "--seeds", "2", "--threads", "1", "--jobs", jobs, "--out", str(out)]
        assert main(args) == 0
        with (out / "steps.csv").open() as f:
            tables[jobs] = [(r["row"], r["seed"], r["sse"]) for r in csv.DictReader(f)]
    assert tables["1"] == tables["2"] and len(tables["1"]) == 10


@pytest.mark.parametrize("args,message", [(["nope"], "invalid choice"), ([], "name an EXPERIMENT")])
def test_reproduce_rejects_bad_input(args, message, capsys):
    try:
        code = main(["reproduce", *args])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2 and message in capsys.readouterr().err


@needs_data
def test_reproduce_rejects_a_budget_smaller_than_a_batch(tmp_path, capsys):
    assert (
        main(["reproduce", "steps", "--limit-train", "8", "--steps", "1", "--out", str(tmp_path), "--no-progress"]) == 2
    )
    assert "fewer than one batch" in capsys.readouterr().err


@needs_data
def test_reproduce_never_replaces_earlier_results_by_accident(tmp_path, capsys):
    """gon fit's rules: a folder with files needs --overwrite, which removes only gon reproduce's results, keeps them
    until the new run has finished (a failed run puts them back) and waits for no one: a folder in use is refused."""
    out, notes = tmp_path / "results", tmp_path / "notes"
    out.mkdir()
    (out / "settings.json").write_text('{"experiment": "steps"}')
    (out / "steps.md").write_text("111 minutes of Table 1")
    notes.mkdir()
    (notes / "thesis.tex").write_text("keep")
    before = {p.name: p.read_text() for p in out.iterdir()}
    cases = [
        ([*TINY, "--out", str(out)], "--overwrite"),
        ([*TINY, "--out", str(notes), "--overwrite"], "refusing to remove it"),
        (["--limit-train", "8", "--steps", "1", "--no-progress", "--out", str(out), "--overwrite"], "fewer than one"),
    ]
    for args, message in cases:
        assert main(["reproduce", "steps", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1] and len([line for line in err if line.startswith("gon")]) == 1
    assert {p.name: p.read_text() for p in out.iterdir()} == before and (notes / "thesis.tex").read_text() == "keep"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["reproduce", "steps", *TINY, "--out", str(out), "--overwrite"]) == 2
        assert f"in use by gon process {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    (tmp_path / ".results.0123456789ab.replaced").mkdir()  # what a run killed outright (SIGKILL) set aside
    assert main(["reproduce", "steps", *TINY, "--seeds", "1", "--out", str(out), "--overwrite"]) == 0
    said = capsys.readouterr().out
    assert f"earlier results of {out} are kept in {tmp_path}/.results." in said
    assert f"note: {tmp_path}/.results.0123456789ab.replaced holds earlier results that a killed run" in said
    assert not (out / "gon.lock").exists() and "111 minutes" not in (out / "steps.md").read_text()
    assert json.loads((out / "settings.json").read_text())["wall_clock_seconds"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [".results.0123456789ab.replaced", "notes", "results"]


# files each experiment writes besides NAME.csv, NAME.md and settings.json; and its rows per seed
OUTPUTS = {
    "table1": (["table1_reconstructions.png", "table1_curves.csv", "table1_curves.png"], 7),
    "table2": (["table2_samples.png", "table2_curves.csv", "table2_curves.png"], 2),
    "steps": (["steps.png", "steps_curves.csv"], 5),
    "generalisation": (["generalisation.png", "generalisation_curves.csv"], 2),
    "activations": (["activations.png"], 15),
    "origin": (["origin.png"], 7),
    "capacity": (["capacity.png"], 18),
    "convergence": (["convergence.png"], 2),
    "classifier": (["classifier_latents_ce.png", "classifier_latents_joint.png"], 4),
    "conversion": (["conversion_mask.png", "conversion_downsample.png"], 6),
    "fig4": (["fig4.png"], 1),
    "superres": (["superres.png"], 1),
    "slerp": (["slerp.png"], 1),
    "fig9a": (["fig9a.png"], 1),
    "fig9b": (["fig9b.png"], 1),
    "gradient-family": (["gradient-family.png"], 7),
}
# the figures' own datasets (MNIST, LSUN, CelebA) are not installed here; any dataset works
ELSEWHERE = {"fig4": [], "superres": ["--image-size", "8"], "slerp": [], "fig9a": [], "fig9b": []}
SMALLER = {"gradient-family": ["--preset", "cpu", "--latent-dim", "8"]}  # one latent size: 7 rows, not 28


@needs_data
@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_experiment_runs_at_a_tiny_budget(name, tmp_path):
    out = tmp_path / name
    seeds = 2 if name == "table2" else 1
    extra = ["--dataset", "fashion-mnist", *ELSEWHERE[name]] if name in ELSEWHERE else []
    extra += SMALLER.get(name, [])
    assert main(["reproduce", name, *TINY, *extra, "--seeds", str(seeds), "--out", str(out)]) == 0
    pictures, rows = OUTPUTS[name]
    for file in [f"{name}.csv", f"{name}.md", "settings.json", *pictures]:
        assert (out / file).is_file(), file
    with (out / f"{name}.csv").open() as f:
        results = list(csv.DictReader(f))
    assert len({r["row"] for r in results}) == rows and len({r["seed"] for r in results}) == seeds
    settings = json.loads((out / "settings.json").read_text())
    assert settings["budget"]["steps"] == 2 and settings["command"].startswith(f"gon reproduce {name}")
    if name == "table2":
        assert all(float(r["elbo_bpd"]) > 0 for r in results)
        assert all(float(r["elbo256_bpd"]) > float(r["elbo_bpd"]) for r in results)  # the paper's scale
        assert "±" in (out / "table2.md").read_text()


@needs_data
def test_evaluate_prints_and_writes_the_metrics_of_a_saved_model(tmp_path, capsys):
    torch.manual_seed(0)
    model = gon.VariationalGON(latent_dim=8, width=4, image_size=32)
    model.save_pretrained(tmp_path / "vgon", training_data={"dataset": "fashion-mnist", "resize": "resize"})
    assert main(["evaluate", str(tmp_path / "vgon"), "--limit", "20"]) == 0
    assert "elbo_bpd" in capsys.readouterr().out
    results = json.loads((tmp_path / "vgon-evaluation-fashion-mnist-test.json").read_text())
    assert results["images"] == 20 and results["class"] == "VariationalGON"
    assert {"sse", "mse", "psnr", "elbo_bpd", "bce_bpd", "kl_bpd"} <= set(results)
    assert results["elbo_bpd"] == pytest.approx(results["bce_bpd"] + results["kl_bpd"])


@needs_data
def test_evaluate_needs_a_dataset_when_the_model_does_not_record_one(tmp_path, capsys):
    gon.GON(latent_dim=8, width=4).save_pretrained(tmp_path / "gon")
    assert main(["evaluate", str(tmp_path / "gon")]) == 2
    assert "pass --dataset" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "gon"),
                "--dataset",
                "fashion-mnist",
                "--limit",
                "8",
                "--out",
                str(tmp_path / "e.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "e.json").read_text())["images"] == 8


def test_reproduce_pictures_show_every_class_of_a_folder_sorted_by_class(tmp_path):
    """A folder's images come class by class; the reconstruction grid's test images must not all be the first class.

    Class a holds black and dark grey images, class b white and light grey ones: the grid's top row
    (title and test images) must show both dark and light grey squares.
    """
    import numpy as np
    from PIL import Image

    for name, value in (("a", 0), ("b", 255)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(100):
            shade = value if i % 2 else value ^ 40
            Image.new("L", (32, 32), shade).save(tmp_path / "data" / name / f"{i:03d}.png")
    out = tmp_path / "out"
    args = ["reproduce", "table1", "--preset", "cpu", "--dataset", f"folder:{tmp_path / 'data'}", "--steps", "1"]
    main([*args, "--seeds", "1", "--threads", "1", "--no-progress", "--out", str(out)])
    picture = np.asarray(Image.open(out / "table1_reconstructions.png").convert("L"))
    top = picture[: picture.shape[0] // 8]
    assert (top < 50).sum() > 3000, "no dark test image in the grid"
    assert ((top > 200) & (top < 230)).sum() > 3000, "no light test image in the grid: only the first class was shown"


@needs_data
def test_figure_tables_state_the_model_size_budget_data_and_fig9b_elbo(tmp_path):
    """fig4 trains the paper's 4,321-weight SIREN (the preset's model, not gon's default 206,593-weight one); every
    figure's table names its steps, PSNR and the data the figure was drawn from; fig9b's adds the test ELBO."""
    for name in ("fig4", "fig9b"):
        out = tmp_path / name
        assert main(["reproduce", name, *TINY, "--dataset", "fashion-mnist", "--seeds", "1", "--out", str(out)]) == 0
        with (out / f"{name}.csv").open() as f:
            (result,) = list(csv.DictReader(f))
        table = (out / f"{name}.md").read_text()
        assert (
            "| steps |" in table
            and "test PSNR (dB)" in table
            and "Data: fashion-mnist, 64 training and 16 test" in table
        )
        assert result["steps"] == "2" and float(result["psnr"]) > 0
    assert result["parameters"] != "4321" and float(result["elbo256_bpd"]) > float(result["elbo_bpd"]) > 0
    assert "test ELBO, 256 levels (bits/dim)" in table
    with (tmp_path / "fig4" / "fig4.csv").open() as f:
        assert next(csv.DictReader(f))["parameters"] == "4321"
    assert "at 28x28" in (tmp_path / "fig4" / "fig4.md").read_text() and "at 64x64" in table
