"""The CUDA path: skipped on machines without a GPU (CI), run on one before a release.

Checks that the exact shared-origin pass matches the naive pass on the GPU, that `gon fit` trains
on the GPU, and that what it saves loads and reconstructs the same on the CPU.
"""

import json

import pytest
import torch

import gon
from gon.cli import main
from gon.models import GON, ImplicitGON, VariationalGON
from tests.helpers import TINY, blob_folder
from tests.test_shared_origin import assert_same, twins

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def exact_float32():
    """No TF32 in these comparisons: they check the mathematics, not the matrix units' rounding."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("channels", [1, 3])
def test_shared_origin_pass_matches_the_naive_pass_on_cuda(channels):
    shared, naive = twins(channels, 12)
    assert_same(shared.to(CUDA), naive.to(CUDA), torch.rand(6, channels, 12, 12, device=CUDA))


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: GON(image_size=16, latent_dim=8, width=4), (1, 16, 16)),
        (lambda: VariationalGON(image_size=16, latent_dim=8, width=4), (1, 16, 16)),
        (lambda: ImplicitGON(image_size=12, latent_dim=8, hidden=32, depth=2), (1, 12, 12)),
    ],
)
def test_models_compute_the_same_loss_and_gradients_on_cpu_and_cuda(make, shape):
    torch.manual_seed(0)
    model = make().eval()  # eval: the variational GON's posterior sample is its mean
    x = torch.rand(4, *shape)
    on_cuda = make().eval().to(CUDA)
    on_cuda.load_state_dict(model.state_dict())
    loss_cpu = model.loss_terms(x)["loss"]
    loss_gpu = on_cuda.loss_terms(x.to(CUDA))["loss"]
    assert abs(loss_gpu.item() - loss_cpu.item()) <= 1e-4 * abs(loss_cpu.item())
    grads_cpu = torch.autograd.grad(loss_cpu, list(model.parameters()))
    grads_gpu = torch.autograd.grad(loss_gpu, list(on_cuda.parameters()))
    for g_cpu, g_gpu in zip(grads_cpu, grads_gpu):
        assert (g_gpu.cpu() - g_cpu).norm() <= 1e-3 * g_cpu.norm() + 1e-7


def test_gon_fit_trains_on_cuda_like_on_the_cpu_and_the_saved_model_runs_on_the_cpu(tmp_path):
    dataset = blob_folder(tmp_path / "blobs")
    common = ["--dataset", dataset, *TINY, "--max-epochs", "3", "--lr", "2e-3", "--seed", "0", "--devices", "1"]
    for accelerator in ("gpu", "cpu"):
        assert main(["fit", *common, "--accelerator", accelerator, "--out", str(tmp_path / accelerator)]) == 0
    on_gpu_run, on_cpu_run = (json.loads((tmp_path / a / "metrics.json").read_text()) for a in ("gpu", "cpu"))
    assert on_gpu_run["steps"] == on_cpu_run["steps"] > 0
    # the same seed and data: the same training up to float rounding, so the same test error within 5%
    assert abs(on_gpu_run["test_mse"] - on_cpu_run["test_mse"]) <= 0.05 * on_cpu_run["test_mse"]

    on_cpu, on_gpu = gon.load(tmp_path / "gpu" / "model"), gon.load(tmp_path / "gpu" / "model", device=CUDA)
    assert next(on_gpu.parameters()).is_cuda
    x = torch.rand(3, 1, 16, 16)
    assert torch.allclose(on_gpu.reconstruct(x.to(CUDA)).cpu(), on_cpu.reconstruct(x), atol=1e-4)
    assert (
        main(
            [
                "reconstruct",
                str(tmp_path / "gpu"),
                "--dataset",
                dataset,
                "--device",
                "cuda",
                "-n",
                "4",
                "--out",
                str(tmp_path / "recon.png"),
            ]
        )
        == 0
    )
    assert (tmp_path / "recon.png").is_file()
