"""Two `gon fit` runs with the same seed on CPU give identical metrics CSVs and identical weights."""

import json

from safetensors.torch import load_file

from gon.cli import main
from gon.storage.checkpoints import read_checkpoint
from tests.helpers import TINY, blob_folder

# a fixed thread count: float sums depend on it, and the measured choice (gon.training.threads) may differ between runs
RUN = [
    "--max-steps",
    "8",
    "--lr",
    "2e-3",
    "--limit-train",
    "64",
    "--val-every",
    "4",
    "--accelerator",
    "cpu",
    "--threads",
    "1",
]


def fit(tmp_path, name: str, dataset: str, seed: int):
    run = tmp_path / name
    assert main(["fit", "--dataset", dataset, "--out", str(run), "--seed", str(seed), *RUN, *TINY]) == 0
    return run


def test_same_seed_same_metrics_and_weights_other_seed_differs(tmp_path):
    dataset = blob_folder(tmp_path / "blobs")
    a, b, c = (fit(tmp_path, name, dataset, seed) for name, seed in [("a", 7), ("b", 7), ("c", 8)])

    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
    assert len((a / "metrics.csv").read_text().splitlines()) > 8  # a loss per step and test losses
    wa, wb = (read_checkpoint(r / "checkpoints" / "last.ckpt")["state_dict"] for r in (a, b))
    assert wa.keys() == wb.keys() and all(wa[k].equal(wb[k]) for k in wa)
    exported = sorted(p.name for p in (a / "model").glob("*.safetensors"))
    assert "model.safetensors" in exported
    for name in exported:  # the saved model too, latent statistics included
        ta, tb = load_file(a / "model" / name), load_file(b / "model" / name)
        assert ta.keys() == tb.keys() and all(ta[k].equal(tb[k]) for k in ta)
    figures = [
        {k: v for k, v in json.loads((r / "metrics.json").read_text()).items() if k != "train_seconds"} for r in (a, b)
    ]
    assert figures[0] == figures[1]

    # the test can fail: another seed gives other numbers
    assert (c / "metrics.csv").read_bytes() != (a / "metrics.csv").read_bytes()
