"""`gon explore`: the page's behaviour through its API (gradio_client), the model side, uploads, and the CLI's errors.

Servers run on 127.0.0.1 in this process on tiny models trained here on generated blobs, and are
closed when the module ends; the browser test is tests/test_explore_browser.py.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from PIL import Image

import gon
from gon.cli import build_parser, main
from gon.core.errors import GonError
from gon.models.registry import MODELS
from gon.sampling import LatentGaussian, decode, encode_images, sample
from tests.browser import CHROMIUM_FLAGS, chromium
from tests.helpers import GON, blob_folder, tiny_model

gr = pytest.importorskip("gradio", reason="gon explore needs the explore extra: pip install -e '.[explore]'")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from gon.cli.explore import explorer_for  # noqa: E402
from gon.explore import Examples, Explorer, build_app, serve  # noqa: E402
from gon.explore.media import Images, Medium, medium_for  # noqa: E402

pytestmark = pytest.mark.timeout(180)


# -- tiny models trained and saved here ---------------------------------------------------------
def train_and_save(name: str, folder: str, out, steps: int = 20, **options):
    """A tiny model of ``name`` trained for ``steps`` Adam steps on the folder's images, saved like `gon fit` does."""
    from gon.data import load_dataset

    model = tiny_model(name, **options)
    size = model.config["image_size"]
    images = load_dataset(folder, "train", image_size=size).images
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = model.loss(images[torch.randint(len(images), (16,))])
        opt.zero_grad()
        loss.backward()
        opt.step()
    gaussian = None if name == "vgon" else LatentGaussian.fit(encode_images(model, images))
    return model.save_pretrained(out, latent_gaussian=gaussian, training_data={"dataset": folder, "seed": 0})


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    return blob_folder(tmp_path_factory.mktemp("blobs") / "images", n=96)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, blobs):
    root = tmp_path_factory.mktemp("explore-models")
    return {name: train_and_save(name, blobs, root / name) for name in ("gon", "implicit")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def explorer_of(path, *flags) -> Explorer:
    return explorer_for(build_parser().parse_args(["explore", str(path), *map(str, flags)]))


@pytest.fixture(scope="module")
def pages(saved, tmp_path_factory):
    """A served page per saved model: (explorer, client), on 127.0.0.1, closed at the end of the module."""
    served, demos = {}, []
    downloads = tmp_path_factory.mktemp("downloads")
    try:
        for name, path in saved.items():
            explorer = explorer_of(path, "--examples", 8)
            demo = serve(explorer, "127.0.0.1", free_port())
            demos.append(demo)
            assert demo.local_url.startswith("http://127.0.0.1:")
            served[name] = explorer, Client(demo.local_url, verbose=False, download_files=str(downloads))
        yield served
    finally:
        for demo in demos:
            demo.close()


def picture(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


# -- the page through its API -------------------------------------------------------------------
def test_reconstruct_shows_the_latent_and_reconstruction_of_a_test_image(pages):
    explorer, client = pages["gon"]
    seen, recon, bars, note = client.predict(3, None, api_name="/reconstruct")
    medium = medium_for(explorer.model)
    x = explorer.examples.images[3:4]
    z = encode_images(explorer.model, x)
    values = [row[1] for row in bars["data"]]
    np.testing.assert_allclose(values, z[0].numpy(), rtol=1e-5, atol=1e-6)
    assert [row[0] for row in bars["data"]] == [f"{i:02d}" for i in range(8)]
    np.testing.assert_array_equal(picture(seen), np.asarray(medium.picture(x)))
    np.testing.assert_array_equal(picture(recon), np.asarray(medium.picture(decode(explorer.model, z).clamp(0, 1))))
    assert picture(recon).shape == (256, 256)  # 16x16 enlarged 16 times, nearest neighbour
    assert f"latent norm {z[0].norm():.3g}" in note


def test_an_upload_of_another_size_and_colour_is_converted_with_a_visible_note(pages, tmp_path):
    explorer, client = pages["gon"]
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[5:15, 15:25] = (255, 255, 255)
    Image.fromarray(rgb).save(tmp_path / "wide.png")
    seen, _, bars, note = client.predict(0, handle_file(tmp_path / "wide.png"), api_name="/reconstruct")
    for change in ("colour converted to greyscale", "cropped 40x20 to the centre 20x20", "resized 20x20 to 16x16"):
        assert change in note
    expected, _ = medium_for(explorer.model).from_upload(Image.open(tmp_path / "wide.png"))
    np.testing.assert_array_equal(picture(seen), np.asarray(medium_for(explorer.model).picture(expected)))
    z = encode_images(explorer.model, expected)
    np.testing.assert_allclose([row[1] for row in bars["data"]], z[0].numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "inputs,message",
    [
        ((None, "not-an-image"), "notes.png is not an image gon can read"),
        ((None, None), "no image chosen: pick a test image or upload one"),
        ((99, None), "99"),
    ],
)
def test_bad_input_is_an_error_message_not_a_stack_trace(pages, tmp_path, capfd, inputs, message):
    _, client = pages["gon"]
    capfd.readouterr()
    index, upload = inputs
    if upload:
        (tmp_path / "notes.png").write_text("these are not pixels")
        upload = handle_file(tmp_path / "notes.png")
    with pytest.raises(AppError, match=message) as caught:
        client.predict(index, upload, api_name="/reconstruct")
    assert "Traceback" not in str(caught.value)
    err = capfd.readouterr().err
    if index != 99:  # gon's refusals print nothing in the terminal (Gradio's own check of its dropdown, 99, does)
        assert "Traceback" not in err, err[-1500:]


def test_a_bad_api_call_is_answered_with_what_was_wrong(pages):
    _, client = pages["gon"]
    with pytest.raises(AppError, match="Expected a `float`"):  # was: no message ({"error": null})
        client.predict(4, "warm", 5, api_name="/sample")


def test_samples_follow_the_seed_and_temperature(pages):
    explorer, client = pages["gon"]
    a, b, c = (picture(client.predict(4, 1.0, seed, api_name="/sample")[0]) for seed in (5, 5, 6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    expected = medium_for(explorer.model).picture(sample(explorer.model, 4, 1.0, 5).clamp(0, 1))
    np.testing.assert_array_equal(a, np.asarray(expected))
    cold = picture(client.predict(4, 0.0, 5, api_name="/sample")[0])  # temperature 0: every sample is the mean
    mean = decode(explorer.model, explorer.model.latent_gaussian.mean[None]).clamp(0, 1)
    np.testing.assert_array_equal(cold, np.asarray(medium_for(explorer.model).picture(mean.expand(4, -1, -1, -1))))
    with pytest.raises(AppError, match="-1.0 is less than minimum value 0"):  # the slider's own check
        client.predict(4, -1.0, 5, api_name="/sample")


def test_interpolation_slerps_between_two_inputs(pages):
    explorer, client = pages["gon"]
    medium = medium_for(explorer.model)
    start, strip, _ = client.predict(0, None, 1, None, 0.0, 5, api_name="/interpolate")
    end, _, _ = client.predict(0, None, 1, None, 1.0, 5, api_name="/interpolate")
    z = encode_images(explorer.model, explorer.examples.images[:2])
    for shown_, latent in ((start, z[:1]), (end, z[1:])):
        np.testing.assert_array_equal(
            picture(shown_), np.asarray(medium.picture(decode(explorer.model, latent).clamp(0, 1)))
        )
    assert picture(strip).shape[1] == medium.picture(torch.zeros(7, 1, 16, 16), nrow=7).width  # A, 5 steps, B
    with pytest.raises(AppError, match="1.5 is greater than maximum value 1"):
        client.predict(0, None, 1, None, 1.5, 5, api_name="/interpolate")


def test_an_implicit_model_renders_at_the_chosen_resolution(pages):
    explorer, client = pages["implicit"]
    bicubic, rendered = client.predict(2, None, 40, api_name="/render")
    x = explorer.examples.images[2:3]
    expected = decode(explorer.model, encode_images(explorer.model, x), (40, 40)).clamp(0, 1)
    np.testing.assert_array_equal(picture(rendered), np.asarray(medium_for(explorer.model).picture(expected)))
    assert picture(bicubic).shape == picture(rendered).shape == (240, 240)  # 40x40, each pixel 6x6
    with pytest.raises(AppError, match="5000.* is greater than maximum value 1024"):
        client.predict(2, None, 5000, api_name="/render")
    _, gon_client = pages["gon"]
    assert "/render" not in gon_client.view_api(print_info=False, return_format="dict")["named_endpoints"]


# -- every model class, without a server ---------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_class_can_be_explored(name, tmp_path):
    model = tiny_model(name)
    gaussian = LatentGaussian.fit(torch.randn(32, model.latent_dim))
    loaded = gon.load(model.save_pretrained(tmp_path / name, latent_gaussian=gaussian))
    medium = medium_for(loaded)
    images = torch.rand(3, medium.channels, *medium.size)
    explorer = Explorer(loaded, Examples(images, ["a", "b", "c"], "random"))
    z = explorer.latents(explorer.example(1))
    assert z.shape == (1, model.latent_dim) and torch.isfinite(z).all()
    assert explorer.decode(z).shape == (1, medium.channels, *medium.size)
    assert explorer.samples(2, 0.5, 0).shape == (2, medium.channels, *medium.size)
    at_t, strip = explorer.interpolate(images[:1], images[1:2], 0.25, 3)
    assert at_t.shape == (1, medium.channels, *medium.size) and len(strip) == 5
    if explorer.zooms:
        assert explorer.render(z, (20, 20)).shape == (1, medium.channels, 20, 20)
    else:
        with pytest.raises(GonError, match="zoom needs an implicit GON"):
            explorer.render(z, (20, 20))
    assert isinstance(build_app(explorer), gr.Blocks)


def test_a_classifier_gon_says_which_class_it_sees():
    from gon.models import ClassifierGON

    model = ClassifierGON(latent_dim=8, num_classes=3, width=4, image_size=16)
    images = torch.rand(2, 1, 16, 16)
    explorer = Explorer(model, Examples(images, ["a", "b"], "random", classes=["cat", "dog", "fish"]))
    label = int(model.classify(images[:1]))
    assert explorer.classify(images[:1]) == ["cat", "dog", "fish"][label]
    assert Explorer(tiny_model("gon")).classify(images[:1]) is None


@pytest.mark.parametrize(
    "value,message",
    [(None, "no image chosen"), (2.5, "whole number"), (True, "whole number"), (3, "from 0 to 2"), ("1", "whole")],
)
def test_a_bad_test_image_number_is_refused(value, message):
    explorer = Explorer(tiny_model("gon"), Examples(torch.rand(3, 1, 16, 16), ["a", "b", "c"], "random"))
    with pytest.raises(GonError, match=message):
        explorer.example(value)


# -- uploads ---------------------------------------------------------------------------------------
def test_uploads_are_converted_to_the_model_input_with_a_note_per_change():
    rgb_model = Images(tiny_model("gon", channels=3))
    grey = Image.fromarray(np.full((16, 16), 128, np.uint8))
    x, notes = rgb_model.from_upload(grey)
    assert notes == ["greyscale copied to 3 channels"]
    assert x.shape == (1, 3, 16, 16) and torch.allclose(x, torch.full_like(x, 128 / 255))
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    x, notes = rgb_model.from_upload(rgba)
    assert notes == ["transparency dropped", "resized 32x32 to 16x16"] and x[0, 0].min() == 1 and x[0, 1].max() == 0
    deep = Image.fromarray(np.array([[0, 1000], [2000, 4000]], np.int32), mode="I")
    x, notes = Images(tiny_model("gon")).from_upload(deep)
    assert "high bit depth scaled to 8 bits" in notes and x.min() == 0 and x.max() == 1
    tall = Images(tiny_model("implicit", image_size=(12, 6)))
    x, notes = tall.from_upload(Image.new("L", (30, 30)))
    assert x.shape == (1, 1, 12, 6) and "cropped 30x30 to the centre 15x30" in notes


# -- the command ---------------------------------------------------------------------------------
def test_the_command_finds_test_images_offline_and_says_what_is_missing(saved, tmp_path):
    explorer = explorer_of(saved["gon"], "--examples", 4)
    assert explorer.examples is not None and explorer.examples.images.shape == (4, 1, 16, 16)
    assert explorer.examples.names == ["#0", "#1", "#2", "#3"] and not explorer.notes
    elsewhere = explorer_of(saved["gon"], "--dataset", f"folder:{tmp_path / 'gone'}")
    assert elsewhere.examples is None and "No test images to pick" in elsewhere.notes[0]


@pytest.mark.parametrize(
    "flags,culprit",
    [
        (["--port", "70000"], "--port must be from 1 to 65535"),
        (["--port", "busy"], "--port"),
        (["--host", "no-such-host.invalid"], "--host 'no-such-host.invalid'"),
        (["--examples", "0"], "--examples must be from 1 to 256"),
        (["missing"], "does not exist"),
    ],
)
def test_command_errors_are_one_line(saved, capsys, flags, culprit):
    model = str(saved["gon"])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        flags = [str(busy.getsockname()[1]) if f == "busy" else f for f in flags]
        if flags == ["missing"]:
            model, flags = str(saved["gon"] / "missing"), []
        assert main(["explore", model, *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and culprit in err and err.startswith("gon: error: ")


def test_the_command_serves_on_localhost_until_ctrl_c(saved):
    port = free_port()
    proc = subprocess.Popen(
        [str(GON), "explore", str(saved["gon"]), "--port", str(port), "--examples", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = ""
        while "gon explore:" not in line and proc.poll() is None:  # bounded by the test's timeout
            line = proc.stdout.readline()
        assert f"on http://127.0.0.1:{port}/ (Ctrl-C to stop)" in line, line
        assert Client(f"http://127.0.0.1:{port}/", verbose=False).predict(0, None, api_name="/reconstruct")[3]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0 and "Traceback" not in err, err


def test_without_gradio_the_command_says_how_to_get_it(saved, capsys, monkeypatch):
    import sys

    for module in [m for m in sys.modules if m == "gradio" or m.startswith("gon.explore")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    assert main(["explore", str(saved["gon"])]) == 2
    assert "pip install 'gon[explore]'" in capsys.readouterr().err


# -- the page as a person sees it: headless Chromium ------------------------------------------------
BROKEN = "[...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 120))"
WAVS = "[...new Set(performance.getEntriesByType('resource').map(e => e.name).filter(u => u.endsWith('.wav')))]"
#: the seconds of every WAV file the page loaded, as the browser's own decoder reads them
DECODED = f"""async () => Promise.all({WAVS}.map(async url => {{
    const bytes = await (await fetch(url)).arrayBuffer();
    return (await new OfflineAudioContext(1, 1, 44100).decodeAudioData(bytes)).duration;
}}))"""


def test_the_page_renders_in_a_browser_offline_with_no_broken_image(pages, tmp_path):
    from playwright.sync_api import sync_playwright

    explorer, client = pages["implicit"]  # every view: gallery, reconstruction, bars, zoom, samples, slerp
    url = client.src.rstrip("/") + "/"
    (tmp_path / "notes.png").write_text("these are not pixels")
    hosts, failures = set(), []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS[1:])  # it adds --headless
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc) if r.url.startswith("http") else None)
            page.on("pageerror", lambda e: failures.append(str(e)))
            page.goto(url, wait_until="load", timeout=90_000)  # the waits below are for what the test needs
            files = "document.querySelectorAll('img[src*=\"/gradio_api/file=\"]')"
            # the load events draw the 8 test images, what the model sees, its reconstruction and the zoom pair
            page.wait_for_function(f"{files}.length >= 12 && [...{files}].every(i => i.complete)", timeout=90_000)
            page.locator("#latent canvas, #latent svg").first.wait_for(timeout=30_000)  # the latent bars
            assert page.evaluate(BROKEN) == []
            page.screenshot(path=tmp_path / "explore.png", full_page=True)
            for tab, picture_id in (("Sample", "samples"), ("Interpolate", "strip")):
                page.get_by_role("tab", name=tab).click()
                page.locator(f"#{picture_id} img").first.wait_for(timeout=30_000)
                assert page.evaluate(BROKEN) == [], tab
            page.get_by_role("tab", name="Reconstruct").click()
            page.locator("input[type=file]").first.set_input_files(tmp_path / "notes.png")  # not an image
            page.get_by_text("notes.png is not an image gon can read").first.wait_for(timeout=30_000)
        finally:
            browser.close()
    assert hosts == {urlsplit(url).netloc}, hosts  # nothing fetched from anywhere else
    assert failures == []
    with Image.open(tmp_path / "explore.png") as shot:
        assert shot.width == 1280 and shot.height >= 900
        assert np.asarray(shot.convert("L")).std() > 20  # pictures and text, not a blank page


# -- audio and volumes: the same tabs, their own media ---------------------------------------------
@pytest.fixture(scope="module")
def signal_pages(tmp_path_factory):
    """Pages of a tiny implicit GON on 0.1 s clips at 4 kHz and of one on 8^3 volumes, random test signals."""
    served, demos = {}, []
    downloads = tmp_path_factory.mktemp("signal-downloads")
    models = {
        "audio": (tiny_model("implicit", image_size=[400]), {"sample_rate": 4000}),
        "volume": (tiny_model("implicit", image_size=[8, 8, 8]), {}),
    }
    try:
        for name, (model, trained) in models.items():
            model.training_data = {"dataset": f"{name}:generated", **trained}
            model.latent_gaussian = LatentGaussian.fit(torch.randn(32, model.latent_dim))
            signals = torch.rand(3, 1, *model.image_size)
            explorer = Explorer(model, Examples(signals, ["a", "b", "c"], name), source=name)
            demo = serve(explorer, "127.0.0.1", free_port())
            demos.append(demo)
            served[name] = explorer, Client(demo.local_url, verbose=False, download_files=str(downloads))
        yield served
    finally:
        for demo in demos:
            demo.close()


def test_an_audio_model_plays_its_input_reconstruction_and_super_resolved_render(signal_pages, tmp_path):
    from gon.data.audio import read_wav, waveform, write_wav

    explorer, client = signal_pages["audio"]
    _, _, picture_, sound, bars, _ = client.predict(1, None, api_name="/reconstruct")
    recon = explorer.decode(explorer.latents(explorer.examples.images[1:2]))
    played, rate = read_wav(sound)
    assert rate == 4000 and len(played) == 400 and len(bars["data"]) == 8
    np.testing.assert_allclose(played, waveform(recon), atol=1 / 16000)  # 16-bit PCM
    waves = Medium.picture(medium_for(explorer.model), recon)
    with Image.open(picture_) as shown_:  # the waveform above the spectrogram
        assert shown_.mode == "RGB" and shown_.size == (waves.width, 2 * waves.height + 4)
        assert np.array_equal(np.asarray(shown_)[: waves.height, :, 0], np.asarray(waves))
    _, resampled, _, rendered = client.predict(1, None, 16000, api_name="/render")
    assert [read_wav(f)[1] for f in (resampled, rendered)] == [16000, 16000] and len(read_wav(rendered)[0]) == 1600
    _, sound, _ = client.predict(3, 1.0, 0, api_name="/sample")
    assert len(read_wav(sound)[0]) == 3 * 400 + 2 * 1000  # the clips with a quarter second between them
    write_wav(tmp_path / "long.wav", np.sin(np.arange(1600) / 5), 8000)  # 0.2 s at 8 kHz
    *_, note = client.predict(0, handle_file(tmp_path / "long.wav"), api_name="/reconstruct")
    assert "resampled 8,000 Hz to 4,000 Hz" in note and "cut to the first 0.1 s" in note
    (tmp_path / "noise.wav").write_bytes(b"not a RIFF file at all")
    with pytest.raises(AppError, match="cannot read audio .*noise.wav"):
        client.predict(0, handle_file(tmp_path / "noise.wav"), api_name="/reconstruct")


def test_a_volume_model_shows_slices_and_isosurfaces_at_any_grid(signal_pages, tmp_path):
    _, client = signal_pages["volume"]
    slices, surface, _, _, bars, _ = client.predict(0, None, api_name="/reconstruct")
    assert Image.open(slices).size[0] > 4 * Image.open(slices).size[1]  # 8 depth slices in a row
    assert Image.open(surface).size[0] > 100 and len(bars["data"]) == 8
    _, _, rendered, rendered_surface = client.predict(0, None, 12, api_name="/render")
    assert Image.open(rendered_surface).size[0] > 100
    grid = np.zeros((4, 4, 4), np.float32)
    grid[1:3, 1:3, 1:3] = 1
    np.save(tmp_path / "cube.npy", grid)
    *_, note = client.predict(0, handle_file(tmp_path / "cube.npy"), api_name="/reconstruct")
    assert "resized 4x4x4 to 8x8x8 (trilinear)" in note
    np.save(tmp_path / "flat.npy", np.zeros((4, 4), np.float32))
    with pytest.raises(AppError, match="a 3-D grid"):
        client.predict(0, handle_file(tmp_path / "flat.npy"), api_name="/reconstruct")


def test_audio_and_volume_pages_render_in_a_browser(signal_pages):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS[1:])
        try:
            for name, (_, client) in signal_pages.items():
                page = browser.new_page(viewport={"width": 1280, "height": 1100})
                page.goto(client.src, wait_until="load", timeout=90_000)  # the waits below are for what the test needs
                files = "document.querySelectorAll('img[src*=\"/gradio_api/file=\"]')"
                # 3 gallery pictures, then input, reconstruction, baseline and render: 4 pictures (+ 4 isosurfaces)
                enough = 7 if name == "audio" else 11
                page.wait_for_function(
                    f"{files}.length >= {enough} && [...{files}].every(i => i.complete)", timeout=90_000
                )
                assert page.evaluate(BROKEN) == [], name
                if name == "audio":  # the input, reconstruction, resampled input and render: sounds the browser decodes
                    page.wait_for_function(f"{WAVS}.length >= 4")
                    assert page.evaluate(DECODED) == [0.1] * 4
                page.close()
        finally:
            browser.close()


def test_a_model_on_a_grid_no_medium_shows_is_refused_in_one_line():
    with pytest.raises(
        GonError, match="cannot show a ImplicitGON on a .2, 2, 2, 2. grid: it knows image, audio, volume"
    ):
        medium_for(tiny_model("implicit", image_size=[2, 2, 2, 2]))
