"""Test-set metrics, computed batch by batch with the model's own ``reconstruct``."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gon.models import GradientOriginModel, per_image_sse


def reconstruction_metrics(model: GradientOriginModel, images: Tensor, batch_size: int = 256) -> dict[str, float]:
    """Mean summed squared error per image (``sse``), per-pixel MSE (``mse``) and PSNR in dB over ``images``.

    PSNR is 10 log10(1 / mse) of the mean per-pixel MSE, for pixels in [0, 1].
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_sse, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(device)
            total_sse += per_image_sse(model.reconstruct(x), x).sum().item()
            count += len(x)
    model.train(was_training)
    sse = total_sse / max(count, 1)
    mse = sse / images[0].numel()
    return {"sse": sse, "mse": mse, "psnr": 10 * math.log10(1 / mse) if mse > 0 else float("inf")}
