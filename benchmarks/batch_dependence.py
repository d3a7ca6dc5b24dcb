"""How much an image's latent depends on its batch, for the paper's BatchNorm GON and gon's default.

    python benchmarks/batch_dependence.py [RUN_OR_CKPT ...]

For each model (freshly initialised, plus any trained checkpoints given), on 8 Fashion-MNIST
test images: the relative change of image 0's latent when encoded alone instead of in the
batch of 8 (train mode), its norm, and the relative difference between its eval-mode and
train-mode latents, and the per-pixel test MSE (2048 test images) in eval mode and in train-mode
batches of 64. Prints a markdown table.
"""

from __future__ import annotations

import sys

import torch

import gon
from gon import GON
from gon.data import load_dataset


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def test_mse(model: GON, images: torch.Tensor, training: bool) -> float:
    """Per-pixel MSE over ``images`` in batches of 64, in train mode (batch statistics) or eval mode."""
    model.train(training)
    errors = [(model.reconstruct(x).detach() - x).pow(2).mean().item() for x in images.split(64)]
    return sum(errors) / len(errors)


def measure(name: str, model: GON, x: torch.Tensor, test: torch.Tensor) -> str:
    mse = f"{test_mse(model, test, False):.5f} | {test_mse(model, test, True):.5f}"
    model.train()
    in_batch = model.encode(x)[0].detach()
    alone = model.encode(x[:1])[0].detach()
    model.eval()
    evaluated = model.encode(x)[0].detach()
    cells = [f"{rel(alone, in_batch):.3g}", f"{in_batch.norm().item():.4g}", f"{rel(evaluated, in_batch):.3g}", mse]
    return f"| {name} | {' | '.join(cells)} |"


def load_trained(path: str) -> tuple[str, GON]:
    model = gon.load(path)
    return f"{path} (norm={model.config.get('norm', 'layer')}, trained)", model


def main(paths: list[str]) -> None:
    test = load_dataset("fashion-mnist", "test", image_size=32, limit=2048).images  # (2048, 1, 32, 32)
    x = test[:8]
    print(
        "| model | latent change alone vs batch of 8 (train mode) | latent norm | eval vs train latent "
        "| test MSE, eval mode | test MSE, train-mode batches of 64 |"
    )
    print("|---|---|---|---|---|---|")
    for norm in ("batch", "layer"):
        torch.manual_seed(0)
        print(measure(f"GON norm={norm} (initialisation)", GON(norm=norm), x, test))
    for path in paths:
        print(measure(*load_trained(path), x, test))


if __name__ == "__main__":
    main(sys.argv[1:])
