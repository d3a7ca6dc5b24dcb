"""Plots, the files `gon fit` writes, and the HTML report, checked in a headless browser as a person would see it."""

import json
import re
import subprocess

import pytest
import torch
from PIL import Image

import gon
from gon.cli import main
from gon.core.errors import GonError
from gon.report import plot_latent_histogram, plot_loss_curves, write_report
from gon.sampling import ks_distance, latent_normality
from tests.browser import CHROMIUM_FLAGS, chromium
from tests.helpers import FASHION_MNIST


def test_normality_statistics_tell_normal_from_not():
    g = torch.Generator().manual_seed(0)
    normal = latent_normality(torch.randn(4000, 8, generator=g) * torch.linspace(0.5, 3, 8) + 2)
    assert normal["ks_per_dim"] < 0.03 and abs(normal["skew"]) < 0.1
    assert normal["ks"] > normal["ks_per_dim"]  # pooled dimensions of different scales are a heavier-tailed mixture
    uniform = ks_distance(torch.rand(20000, generator=g))
    assert 0.04 < uniform < 0.08  # the KS distance of a uniform to its fitted normal is about 0.058
    skewed = latent_normality(torch.empty(4000, 4).exponential_(generator=g))
    assert skewed["ks"] > 0.1 and skewed["skew"] > 1.5 and skewed["excess_kurtosis"] > 3


def test_plots_are_written(tmp_path):
    stats = plot_latent_histogram(torch.randn(500, 4), tmp_path / "h.png")
    assert set(stats) >= {"ks", "ks_per_dim", "skew", "excess_kurtosis"}
    rows = [{"step": s, "train/loss": 100 / (s + 1), "train/kl": 1.0} for s in range(50)]
    rows += [{"step": s, "test/loss": 90 / (s + 1), "test/mse": 0.1 / (s + 1)} for s in (9, 49)]
    assert plot_loss_curves(rows, tmp_path / "c.png") == tmp_path / "c.png"
    for name in ("h.png", "c.png"):
        with Image.open(tmp_path / name) as im:
            assert im.format == "PNG" and im.width > 300
    assert plot_loss_curves([], tmp_path / "none.png") is None


def test_report_of_something_that_is_not_a_run(tmp_path):
    with pytest.raises(GonError, match="not a run directory"):
        write_report(tmp_path)
    (tmp_path / "config.yaml").write_text("model: gon\n")
    with pytest.raises(GonError, match="folder .*missing does not exist"):
        write_report(tmp_path, tmp_path / "missing" / "r.html")
    assert main(["report", str(tmp_path / "nope")]) == 2


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny conv GON trained for 4 steps by `gon fit`, with pictures every 2 steps."""
    if not FASHION_MNIST.is_dir():
        pytest.skip("needs apt-get install dataset-fashion-mnist")
    out = tmp_path_factory.mktemp("report") / "run"
    assert (
        main(
            [
                "fit",
                "--model",
                "gon",
                "--max-steps",
                "4",
                "--out",
                str(out),
                "--limit-train",
                "64",
                "--batch-size",
                "16",
                "--val-size",
                "32",
                "--val-every",
                "2",
                "--image-size",
                "16",
                "--latent-dim",
                "8",
                "--width",
                "4",
                "--picture-every",
                "2",
                "--checkpoint-every",
                "2",
            ]
        )
        == 0
    )
    return out


RUN_FILES = [
    "config.yaml",
    "metrics.csv",
    "metrics.json",
    "checkpoints/last.ckpt",
    "recon.png",
    "samples.png",
    "interpolation.png",
    "loss_curves.png",
    "latent_histogram.png",
    "report.html",
    "model/config.json",
    "model/model.safetensors",
    "model/latents.safetensors",
]


def test_fit_writes_every_picture_the_saved_model_and_the_report(run):
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    for step in (2, 4):
        for kind in ("recon", "samples", "interpolation", "latents"):
            assert (run / "pictures" / f"{kind}_step{step:07d}.png").is_file(), (kind, step)
    results = json.loads((run / "metrics.json").read_text())
    assert 0 <= results["latent_ks"] <= 1 and "latent_excess_kurtosis" in results
    model = gon.load(run)
    assert isinstance(model, gon.GON) and model.latent_gaussian is not None
    assert model.training_data["dataset"] == "fashion-mnist" and model.training_data["limit_train"] == 64
    with Image.open(run / "interpolation.png") as im:  # 8 pairs x (2 images + 8 steps), enlarged for viewing
        assert im.width * 8 // im.height in (9, 10)


def test_report_is_self_contained(run, tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    page = out.read_text()
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) >= 5 + 2 * 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in page and "https://" not in page
    for text in (
        "parameters",
        "training time",
        "test_mse",
        "latent_ks",
        "model_options.latent_dim",
        "Loss curves",
        "Samples",
        "Interpolations",
        "Latent distribution",
        "model/model.safetensors",
    ):
        assert text in page, text


CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  document.body.dataset.images = images.length;
  document.body.dataset.broken = images.filter(i => !i.complete || i.naturalWidth === 0).length;
  document.body.dataset.tables = document.querySelectorAll("table").length;
  document.body.dataset.rows = document.querySelectorAll("tr").length;
});
</script>"""


def _browse(exe, page, tmp_path, *flags):
    result = subprocess.run(
        [
            exe,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            *flags,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout


def test_report_renders_in_a_browser_with_every_image_and_table(run, tmp_path):
    """The report as a person sees it: headless Chromium loads it offline; no image is broken."""
    exe = chromium()
    page = tmp_path / "page.html"
    page.write_text((run / "report.html").read_text().replace("</body>", CHECK + "</body>"))
    dom = _browse(exe, page, tmp_path, "--dump-dom")
    body = dict(re.findall(r'data-(\w+)="(\d+)"', re.search(r"<body[^>]*>", dom).group(0)))
    assert int(body["images"]) >= 13 and body["broken"] == "0", body
    assert int(body["tables"]) >= 5 and int(body["rows"]) > 30, body

    # the check can fail: a corrupt image is counted as broken
    page.write_text(
        page.read_text().replace("</body>", '<img src="data:image/png;base64,iVBORw0KGgo=" alt="x"></body>')
    )
    body = dict(
        re.findall(
            r'data-(\w+)="(\d+)"', re.search(r"<body[^>]*>", _browse(exe, page, tmp_path, "--dump-dom")).group(0)
        )
    )
    assert body["broken"] == "1"

    shot = tmp_path / "report.png"
    _browse(exe, run / "report.html", tmp_path, f"--screenshot={shot}", "--window-size=1200,2400", "--hide-scrollbars")
    with Image.open(shot) as im:
        assert im.size == (1200, 2400)
        colours = im.convert("L").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 50  # text, plots and pictures, not a blank page


@pytest.mark.parametrize("evaluations", [1, 3])
def test_quality_panel_is_a_curve_or_a_value_never_a_lone_dot(tmp_path, monkeypatch, evaluations):
    import gon.report.plots as plots

    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    rows = [{"step": s, "train/loss": 100 / s} for s in range(1, 31)]
    rows += [{"step": 10 * e, "test/loss": 9.0, "test/mse": 0.01 * e} for e in range(1, evaluations + 1)]
    plot_loss_curves(rows, tmp_path / "c.png", validation_note="all 500 test images")
    panel = figures[0].axes[1]
    if evaluations == 1:  # a value in words, with the images it was measured on; no axis
        words = " ".join(t.get_text() for t in panel.texts)
        assert not panel.axison and "MSE 0.01" in words and "20.00 dB at step 10" in words and "500 test" in words
    else:
        assert panel.axison and len(panel.lines[0].get_xdata()) == evaluations
