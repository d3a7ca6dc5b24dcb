"""The 256-level discretised likelihood behind Table 2's bits/dim (gon.metrics.discretised_elbo_bits_per_dim)."""

from __future__ import annotations

import math

import pytest
import torch

import gon
from gon.metrics import (
    _golden_minimum,
    discretised_elbo_bits_per_dim,
    discretised_logistic_log_prob,
    elbo_bits_per_dim,
)


@pytest.mark.parametrize("mean, log_scale", [(0.0, -3.0), (0.5, -5.0), (0.93, -1.0), (1.0, -8.0), (0.2, 0.5)])
def test_level_probabilities_sum_to_one(mean, log_scale):
    levels = torch.arange(256, dtype=torch.float64) / 255
    probs = discretised_logistic_log_prob(levels, torch.full_like(levels, mean), log_scale).exp()
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-4)
    if log_scale <= -3:  # narrow: the mean's level is the likeliest (wide ones pile mass in the end bins)
        assert probs.argmax().item() == round(mean * 255)


def test_golden_section_finds_the_minimum():
    assert _golden_minimum(lambda v: (v - 1.7) ** 2, -9.0, 3.0) == pytest.approx(1.7, abs=1e-3)


def test_discretised_elbo_is_on_the_8_bit_scale_and_shares_the_kl():
    torch.manual_seed(0)
    model = gon.VariationalGON(latent_dim=8, width=4, image_size=16)
    images = torch.rand(24, 1, 16, 16)
    levels = discretised_elbo_bits_per_dim(model, images, images[:12])
    bernoulli = elbo_bits_per_dim(model, images)
    assert levels["kl_bpd"] == pytest.approx(bernoulli["kl_bpd"], rel=1e-5)
    assert levels["elbo256_bpd"] == pytest.approx(levels["nll256_bpd"] + levels["kl_bpd"])
    # uniform noise images: no model does much better than 8 bits (a uniform guess), an untrained one worse
    assert 7.0 < levels["nll256_bpd"] < 9.0 and -9.0 < levels["log_scale"] < 1.0
    assert levels == discretised_elbo_bits_per_dim(model, images, images[:12])  # seeded
    assert math.isfinite(levels["elbo256_bpd"])
