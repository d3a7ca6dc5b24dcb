"""Implicit GONs over 1-D and 3-D coordinates: grids, the model, audio:PATH and volume:PATH, pictures and sounds."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

import gon
from gon.core.errors import GonError
from gon.data import load_dataset
from gon.data.audio import read_wav, resample, waveform, write_wav
from gon.nets import coordinate_grid
from gon.report.images import as_pictures, make_grid


# -- coordinate grids and the model ---------------------------------------------------------------
def test_coordinate_grid_is_cell_centres_in_any_dimension():
    torch.testing.assert_close(coordinate_grid(4), torch.tensor([[-0.75], [-0.25], [0.25], [0.75]]))
    grid = coordinate_grid(2, 3, 4)
    assert grid.shape == (24, 3)
    torch.testing.assert_close(grid[0], torch.tensor([-0.5, -2 / 3, -0.75]))
    torch.testing.assert_close(grid[1], torch.tensor([-0.5, -2 / 3, -0.25]))  # row-major: the last axis fastest
    torch.testing.assert_close(coordinate_grid(3, 5)[:, 1], coordinate_grid(5)[:, 0].repeat(3))  # 2-D as before
    with pytest.raises(ValueError, match="positive length"):
        coordinate_grid(4, 0)


@pytest.mark.parametrize("grid", [(40,), (6, 5, 4)], ids=["1d", "3d"])
def test_implicit_gon_in_any_dimension_renders_any_resolution(grid):
    model = gon.ImplicitGON(latent_dim=4, hidden=16, depth=2, image_size=list(grid))
    x = torch.rand(3, 1, *grid)
    z = model.encode(x)
    assert z.shape == (3, 4) and model.dims == len(grid)
    assert model.decode(z).shape == x.shape
    finer = tuple(2 * s for s in grid)
    assert model.decode(z, size=finer).shape == (3, 1, *finer)
    assert model.reconstruct(x, size=finer).shape == (3, 1, *finer)
    with pytest.raises(ValueError, match=f"{len(grid)} grid dimension"):
        model.encode(torch.rand(3, 1, 8, 8) if len(grid) != 2 else torch.rand(3, 1, 8))


@pytest.mark.parametrize("grid", [(30,), (5, 4, 6)], ids=["1d", "3d"])
def test_shared_origin_pass_and_monte_carlo_work_in_any_dimension(grid):
    """The shared pass gives the naive pass's latents and gradients; Monte Carlo over every pixel is the full loss."""
    torch.manual_seed(1)
    shared = gon.ImplicitGON(latent_dim=5, hidden=16, depth=2, channels=2, image_size=list(grid), coord_fraction=1)
    naive = gon.ImplicitGON(**{**shared.config, "origin_pass": "naive"})
    naive.load_state_dict(shared.state_dict())
    x = torch.rand(4, 2, *grid)
    torch.testing.assert_close(shared.encode(x), naive.encode(x), rtol=1e-4, atol=1e-5)
    loss_s, loss_n = shared.loss(x), naive.loss(x)
    loss_s.backward()
    loss_n.backward()
    for a, b in zip(shared.parameters(), naive.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-3, atol=1e-4)
    # Monte Carlo: the estimate over every pixel equals the full loss; over a subset it differs
    total = math.prod(grid)
    everything = torch.arange(total)
    torch.testing.assert_close(shared.loss_terms(x, (everything, everything))["loss"], loss_s)
    mc = gon.ImplicitGON(**{**shared.config, "coord_fraction": 0.25}).train()
    inner, outer = mc.coordinate_subsets(total)
    assert len(inner) == round(0.25 * total) and torch.isfinite(mc.loss(x))


def test_implicit_gon_round_trips_its_dimension_through_a_saved_model(tmp_path):
    model = gon.ImplicitGON(latent_dim=4, hidden=8, depth=1, image_size=[5, 6, 7])
    model.save_pretrained(tmp_path / "m")
    loaded = gon.load(tmp_path / "m")
    assert loaded.image_size == (5, 6, 7) and loaded.dims == 3
    x = torch.rand(2, 1, 5, 6, 7)
    torch.testing.assert_close(loaded.reconstruct(x), model.eval().reconstruct(x))


def test_coord_scale_stretches_the_coordinates_only():
    torch.manual_seed(0)
    scaled = gon.ImplicitGON(latent_dim=3, hidden=8, depth=1, image_size=[10], coord_scale=50.0)
    plain = gon.ImplicitGON(**{**scaled.config, "coord_scale": 1.0})
    plain.load_state_dict(scaled.state_dict())
    z = torch.randn(2, 3)
    torch.testing.assert_close(scaled.decode(z), plain.render(z, 50 * coordinate_grid(10)).transpose(1, 2))
    assert not torch.allclose(scaled.decode(z), plain.decode(z))
    with pytest.raises(ValueError, match="coord_scale"):
        gon.ImplicitGON(coord_scale=0)


@pytest.mark.parametrize("grid", [(2400,), (4, 5, 6)], ids=["1d", "3d"])
def test_mlp_autoencoder_takes_signals_of_any_dimension(grid):
    from gon.models import MLPAutoEncoder

    model = MLPAutoEncoder(hidden=42, image_size=list(grid))
    x = torch.rand(3, 1, *grid)
    assert model.encode(x).shape == (3, 32) and model.reconstruct(x).shape == x.shape
    if grid == (2400,):  # matched to the 4x256 implicit GON on 2,400-sample clips (206,337), as its docstring says
        assert sum(p.numel() for p in model.parameters()) == 206_804


# -- audio:PATH -----------------------------------------------------------------------------------
def wav_bytes(path: Path, samples: np.ndarray, rate: int, width: int = 2, channels: int = 1) -> Path:
    """A PCM WAV file written with the standard library: samples [n] or [n, channels] in [-1, 1]."""
    scale = (1 << (8 * width - 1)) - 1
    ints = np.round(np.clip(samples, -1, 1) * scale).astype(np.int64).reshape(-1)
    if width == 1:
        data = (ints + 128).astype(np.uint8).tobytes()
    else:
        data = b"".join(int(v).to_bytes(width, "little", signed=True) for v in ints)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(data)
    return path


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(round(rate * seconds)) / rate)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_read_wav_decodes_every_pcm_width(tmp_path, width):
    signal = tone(300, 8000, 0.05)
    decoded, rate = read_wav(wav_bytes(tmp_path / "t.wav", signal, 8000, width))
    assert rate == 8000
    np.testing.assert_allclose(decoded, signal, atol=2.0 / (1 << (8 * width - 1)))


def test_read_wav_averages_channels_and_resample_keeps_the_tone(tmp_path):
    stereo = np.stack([tone(440, 22050, 0.2, 0.6), tone(440, 22050, 0.2, 0.2)], 1)
    mono, rate = read_wav(wav_bytes(tmp_path / "s.wav", stereo, 22050, channels=2))
    np.testing.assert_allclose(mono, tone(440, 22050, 0.2, 0.4), atol=1e-4)
    down = resample(mono, rate, 8000)
    assert len(down) == 1600
    spectrum = np.abs(np.fft.rfft(down))
    assert np.argmax(spectrum) * 8000 / len(down) == pytest.approx(440, abs=5)
    np.testing.assert_allclose(down[200:1400], tone(440, 8000, 0.2, 0.4)[200:1400], atol=0.02)


def test_audio_dataset_resamples_crops_pads_and_splits(tmp_path):
    root = tmp_path / "clips"
    for split, n in (("train", 3), ("test", 2)):
        (root / split / "x").mkdir(parents=True)
        for i in range(n):  # 0.05 s and 0.3 s at 16 kHz: one padded, one cropped at 0.1 s
            wav_bytes(root / split / "x" / f"{i}.wav", tone(200 + 100 * i, 16000, 0.05 if i == 0 else 0.3), 16000)
    train = load_dataset(f"audio:{root}", "train", sample_rate=4000, audio_seconds=0.1)
    test = load_dataset(f"audio:{root}", "test", sample_rate=4000, audio_seconds=0.1)
    assert train.images.shape == (3, 1, 400) and test.images.shape == (2, 1, 400)
    assert 0 <= train.images.min() and train.images.max() <= 1
    assert torch.all(train.images[0, 0, 210:] == 0.5)  # padded with silence (0.5 is a zero waveform)
    np.testing.assert_allclose(waveform(train.images[1]), tone(300, 4000, 0.1), atol=0.03)
    flat = tmp_path / "flat"  # no train/ and test/: a seeded held-out subset
    flat.mkdir()
    for i in range(10):
        wav_bytes(flat / f"{i}.wav", tone(100, 8000, 0.01), 8000)
    sizes = [len(load_dataset(f"audio:{flat}", s, audio_seconds=0.01, test_fraction=0.2)) for s in ("train", "test")]
    assert sizes == [8, 2]


def test_write_wav_round_trips(tmp_path):
    signal = tone(500, 8000, 0.1)
    back, rate = read_wav(write_wav(tmp_path / "w.wav", signal, 8000))
    assert rate == 8000
    np.testing.assert_allclose(back, signal, atol=1e-4)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "cannot read audio"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "cannot read audio"),
        (b"not a wav file at all", "cannot read audio"),
    ],
)
def test_bad_wav_files_name_the_file(tmp_path, content, message):
    (tmp_path / "good.wav").write_bytes(wav_bytes(tmp_path / "g.wav", tone(100, 8000, 0.01), 8000).read_bytes())
    (tmp_path / "bad.wav").write_bytes(content)
    with pytest.raises(GonError, match=f"{message} .*bad.wav"):
        for split in ("train", "test"):
            load_dataset(f"audio:{tmp_path}", split, test_fraction=0.5)


def test_audio_options_and_folders_are_validated(tmp_path):
    wav_bytes(tmp_path / "a.wav", tone(100, 8000, 0.01), 8000)
    wav_bytes(tmp_path / "b.wav", tone(100, 8000, 0.01), 8000)
    with pytest.raises(GonError, match="--sample-rate"):
        load_dataset(f"audio:{tmp_path}", sample_rate=0)
    with pytest.raises(GonError, match="--audio-seconds"):
        load_dataset(f"audio:{tmp_path}", audio_seconds=float("nan"))
    with pytest.raises(GonError, match="no such directory"):
        load_dataset(f"audio:{tmp_path / 'missing'}")
    (tmp_path / "sub" / "empty").mkdir(parents=True)
    with pytest.raises(GonError, match="no .wav files"):
        load_dataset(f"audio:{tmp_path / 'sub'}")


# -- volume:PATH ----------------------------------------------------------------------------------
def test_volume_dataset_reads_occupancy_and_signed_distances(tmp_path):
    ball = np.linalg.norm(np.stack(np.meshgrid(*[np.linspace(-1, 1, 8)] * 3, indexing="ij")), axis=0) - 0.5
    for i in range(4):
        np.save(tmp_path / f"occ{i}.npy", ball <= 0)
    np.save(tmp_path / "sdf.npy", ball.astype(np.float32))
    data = load_dataset(f"volume:{tmp_path}", "train", test_fraction=0.2)
    assert data.images.shape == (4, 1, 8, 8, 8)
    occupancy = load_dataset(f"volume:{tmp_path}", "train", test_fraction=0.2).images
    torch.testing.assert_close((occupancy > 0.5).float(), occupancy.round())  # bool grids as 0 and 1
    both = torch.cat([data.images, load_dataset(f"volume:{tmp_path}", "test", test_fraction=0.2).images])
    inside = torch.from_numpy(ball <= 0)
    for v in both:  # occupancy and SDF agree on what is inside (0.5 is the surface)
        assert torch.equal(v[0] >= 0.5, inside)
    resized = load_dataset(f"volume:{tmp_path}", "train", image_size=12, test_fraction=0.2)
    assert resized.images.shape == (4, 1, 12, 12, 12)


@pytest.mark.parametrize(
    "array,message",
    [
        (np.zeros((4, 4)), "3-D grid"),
        (np.full((4, 4, 4), np.nan), "NaN"),
        (np.array([[["a"]]]), "holds <U1 values"),
        (np.zeros((4, 4, 5)), "is \\(4, 4, 5\\) but"),
    ],
    ids=["2d", "nan", "strings", "shape"],
)
def test_bad_volumes_name_the_file(tmp_path, array, message):
    for i in range(3):
        np.save(tmp_path / f"a{i}.npy", np.zeros((4, 4, 4), dtype=bool))
    np.save(tmp_path / "b_bad.npy", array)
    with pytest.raises(GonError, match=f"{message}"):
        for split in ("train", "test"):
            load_dataset(f"volume:{tmp_path}", split, test_fraction=0.5)
    (tmp_path / "b_bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(GonError, match="cannot read volume .*b_bad.npy"):
        for split in ("train", "test"):
            load_dataset(f"volume:{tmp_path}", split, test_fraction=0.5)


def test_pickled_volumes_are_refused(tmp_path):
    np.save(tmp_path / "p.npy", np.array([{"a": 1}], dtype=object).reshape(1, 1, 1), allow_pickle=True)
    np.save(tmp_path / "q.npy", np.zeros((2, 2, 2)))
    with pytest.raises(GonError, match="p.npy"):
        for split in ("train", "test"):
            load_dataset(f"volume:{tmp_path}", split, test_fraction=0.5)


# -- pictures -------------------------------------------------------------------------------------
def test_signals_become_pictures():
    clips = torch.full((2, 1, 500), 0.5)
    clips[1, 0, :250] = 1.0  # loud first half
    pics = as_pictures(clips)
    assert pics.shape[:2] == (2, 1) and pics.shape[-1] <= 500
    middle = pics.shape[2] // 2
    assert pics[0, 0, middle].all() and not pics[0, 0, 0].any()  # silence: one line across the middle
    assert pics[1, 0, 0, 0] == 1 and pics[1, 0, 0, -1] == 0  # the loud half reaches the top row
    volumes = torch.zeros(3, 1, 8, 6, 5)
    volumes[:, :, 4:] = 1
    slices = as_pictures(volumes)
    assert slices.shape == (3, 1, 6, 4 * 5 + 3)
    assert slices[0, 0, :, :5].max() == 0 and slices[0, 0, :, -5:].min() == 1  # first slice empty, last full
    assert make_grid(volumes).size[1] > 6


# -- the generators -------------------------------------------------------------------------------
def run_script(name: str, *args: str):
    import subprocess
    import sys

    script = Path(__file__).parent.parent / "scripts" / name
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120)


def test_shape_generator_writes_rotated_shapes_of_every_kind(tmp_path):
    done = run_script("make_shapes.py", str(tmp_path / "s"), "--count", "8", "--size", "12", "--seed", "3")
    assert done.returncode == 0, done.stderr
    files = sorted((tmp_path / "s").rglob("*.npy"))
    assert len(files) == 8 and {f.name.split("_")[0] for f in files} == {"sphere", "box", "torus", "capsule"}
    grids = [np.load(f) for f in files]
    assert all(g.dtype == bool and g.shape == (12, 12, 12) and 0 < g.sum() < g.size for g in grids)
    again = run_script("make_shapes.py", str(tmp_path / "s2"), "--count", "8", "--size", "24", "--seed", "3")
    assert again.returncode == 0
    fine = np.load(sorted((tmp_path / "s2").rglob("*.npy"))[0])  # the same shape on a 2x grid
    coarse = torch.from_numpy(fine).float()[None, None]
    down = torch.nn.functional.avg_pool3d(coarse, 2)[0, 0].numpy() >= 0.5
    assert (down == grids[0]).mean() > 0.9
    refused = run_script("make_shapes.py", str(tmp_path / "s"), "--count", "8")
    assert refused.returncode == 2 and "already holds" in refused.stderr


def test_spoken_digit_generator_speaks_every_digit(tmp_path):
    done = run_script("make_spoken_digits.py", str(tmp_path / "d"), "--per-digit", "2", "--test-fraction", "0.5")
    assert done.returncode == 0, done.stderr
    for split in ("train", "test"):
        assert sorted(p.name for p in (tmp_path / "d" / split).iterdir()) == [str(d) for d in range(10)]
    clips = load_dataset(f"audio:{tmp_path / 'd'}", "test", sample_rate=8000, audio_seconds=0.5).images
    assert clips.shape == (10, 1, 4000) and all(c.std() > 0.01 for c in clips)  # speech, not silence


# -- end to end: gon fit, render, sample, interpolate and the report ------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny 1-D (WAV tones) and 3-D (.npy balls) implicit GON trained through ``gon fit``."""
    from gon.cli import main

    root = tmp_path_factory.mktemp("signals")
    rng = np.random.default_rng(0)
    axis = np.linspace(-1, 1, 8)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)
    for split, n in (("train", 12), ("test", 4)):
        (root / "wav" / split).mkdir(parents=True)
        (root / "npy" / split).mkdir(parents=True)
        for i in range(n):
            wav_bytes(root / "wav" / split / f"{i}.wav", tone(rng.uniform(100, 400), 4000, 0.05), 4000)
            ball = np.linalg.norm(grid - rng.uniform(-0.3, 0.3, 3), axis=-1) <= rng.uniform(0.3, 0.6)
            np.save(root / "npy" / split / f"{i}.npy", ball)
    tiny = ["--model", "implicit", "--hidden", "16", "--depth", "2", "--latent-dim", "4", "--batch-size", "4"]
    tiny += ["--max-steps", "2", "--picture-every", "1", "--val-size", "4"]
    runs = {"audio": root / "run-audio", "volume": root / "run-volume"}
    audio = ["--dataset", f"audio:{root / 'wav'}", "--sample-rate", "2000", "--audio-seconds", "0.05"]
    assert main(["fit", *tiny, *audio, "--out", str(runs["audio"])]) == 0
    assert main(["fit", *tiny, "--dataset", f"volume:{root / 'npy'}", "--out", str(runs["volume"])]) == 0
    return runs


def test_fit_writes_signal_pictures_sounds_and_the_report(trained):
    audio, volume = trained["audio"], trained["volume"]
    assert gon.load(audio).image_size == (100,) and gon.load(volume).image_size == (8, 8, 8)
    assert {p.name for p in (audio / "audio").iterdir()} >= {"original_0.wav", "reconstruction_0.wav", "render_0.wav"}
    assert read_wav(audio / "audio" / "render_0.wav")[1] == 8000  # 4x the training rate
    for picture in ("recon.png", "samples.png", "interpolation.png", "audio.png"):
        assert (audio / picture).stat().st_size > 1000
    for picture in ("recon.png", "samples.png", "isosurfaces.png", "slices.png"):
        assert (volume / picture).stat().st_size > 150
    page = (audio / "report.html").read_text()
    assert page.count("<audio controls") == 12 and "Sounds" in page
    assert "Isosurfaces" in (volume / "report.html").read_text()


@pytest.mark.parametrize("kind", ["audio", "volume"])
def test_inference_commands_handle_signals(trained, tmp_path, kind):
    from gon.cli import main

    run = str(trained[kind])
    assert main(["render", run, "-n", "2", "--out", str(tmp_path / "sr.png")]) == 0
    assert main(["sample", run, "-n", "3", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["interpolate", run, "--pairs", "1", "--steps", "3", "--out", str(tmp_path / "i.png")]) == 0
    if kind == "audio":
        assert read_wav(tmp_path / "sr" / "render_1.wav")[1] == 8000
        assert len(read_wav(tmp_path / "sr" / "render_1.wav")[0]) == 400  # 4x the samples
        assert len(list((tmp_path / "s").glob("sample_*.wav"))) == 3
        assert len(read_wav(tmp_path / "i" / "pair_0.wav")[0]) == 5 * 100  # the 5 clips of the row
    else:
        assert (tmp_path / "sr-isosurface.png").is_file() and (tmp_path / "s-isosurface.png").is_file()
    assert main(["render", run, "--resolution", "0", "--out", str(tmp_path / "x.png")]) == 2


def test_image_models_refuse_signals_with_a_clear_error(trained, tmp_path, capsys):
    from gon.cli import main

    dataset = gon.load(trained["volume"]).training_data["dataset"]
    assert main(["fit", "--model", "gon", "--dataset", dataset, "--out", str(tmp_path / "r"), "--max-steps", "1"]) == 2
    assert "works on images; volume:" in capsys.readouterr().err
