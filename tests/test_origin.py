"""The gradient-origin step against a linear decoder F(z) = A z + b, where every latent has a closed form.

With L_in = sum ||A z + b - x||^2, grad_z L_in = 2 A^T (A z + b - x), so from the origin
z1 = 2 A^T (x - b), and each further step is z <- z - a * 2 A^T (A z + b - x).
"""

import pytest
import torch

from gon.origin import Origin, gradient_origin, sum_squared_error


@pytest.fixture(autouse=True)
def float64():
    """Closed forms are compared tightly, so this module computes in double precision."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def linear_problem(batch=5, k=3, d=7):
    A = torch.randn(d, k, requires_grad=True)
    b = torch.randn(d, requires_grad=True)
    x = torch.randn(batch, d)
    return A, b, x, lambda z: sum_squared_error(z @ A.T + b, x)


def test_one_step_from_origin_is_twice_A_transpose_residual():
    A, b, x, inner = linear_problem()
    z = gradient_origin(inner, torch.zeros(5, 3))
    torch.testing.assert_close(z, 2 * (x - b) @ A, rtol=1e-10, atol=1e-10)


def test_latent_of_a_sample_does_not_depend_on_its_batch():
    A, b, x, _ = linear_problem()
    z_all = gradient_origin(lambda z: sum_squared_error(z @ A.T + b, x), torch.zeros(5, 3))
    z_one = gradient_origin(lambda z: sum_squared_error(z @ A.T + b, x[:1]), torch.zeros(1, 3))
    torch.testing.assert_close(z_all[:1], z_one)


@pytest.mark.parametrize("steps,step_size", [(2, 0.1), (10, 0.05)])
def test_several_steps_follow_gradient_descent(steps, step_size):
    A, b, x, inner = linear_problem()
    z = gradient_origin(inner, torch.zeros(5, 3), steps=steps, step_size=step_size)
    expected = torch.zeros(5, 3)
    for _ in range(steps):
        expected = expected - step_size * 2 * (expected @ A.T + b - x) @ A
    torch.testing.assert_close(z, expected)


def test_second_order_gradient_matches_the_closed_form():
    """The outer loss trains A *through* the latent: compare with differentiating the closed form."""
    A, b, x, inner = linear_problem()
    z = gradient_origin(inner, torch.zeros(5, 3))
    outer = sum_squared_error(z @ A.T + b, x)
    grad_A, grad_b = torch.autograd.grad(outer, (A, b))
    z_closed = 2 * (x - b) @ A
    grad_A_closed, grad_b_closed = torch.autograd.grad(sum_squared_error(z_closed @ A.T + b, x), (A, b))
    torch.testing.assert_close(grad_A, grad_A_closed)
    torch.testing.assert_close(grad_b, grad_b_closed)


def test_detach_cuts_the_second_order_terms():
    A, b, x, inner = linear_problem()
    z = gradient_origin(inner, torch.zeros(5, 3), detach=True)
    assert not z.requires_grad
    (grad_A,) = torch.autograd.grad(sum_squared_error(z @ A.T + b, x), A)
    z_const = (2 * (x - b) @ A).detach()
    (grad_A_const,) = torch.autograd.grad(sum_squared_error(z_const @ A.T + b, x), A)
    torch.testing.assert_close(grad_A, grad_A_const)


def test_noisy_start_as_descent_step_or_negative_gradient():
    A, b, x, inner = linear_problem()
    z0 = torch.randn(5, 3)
    grad = 2 * (z0 @ A.T + b - x) @ A
    torch.testing.assert_close(gradient_origin(inner, z0), z0 - grad)
    torch.testing.assert_close(gradient_origin(inner, z0, keep_z0=False), -grad)


def test_under_no_grad_the_latent_is_computed_and_detached():
    A, b, x, inner = linear_problem()
    with torch.no_grad():
        z = gradient_origin(inner, torch.zeros(5, 3))
    assert not z.requires_grad
    torch.testing.assert_close(z, (2 * (x - b) @ A).detach())


def test_origin_options_are_validated():
    with pytest.raises(ValueError, match="steps"):
        Origin(steps=0)
    with pytest.raises(ValueError, match="step_size"):
        Origin(step_size=0)
    with pytest.raises(ValueError, match="z0_std"):
        Origin(z0_std=-1)
    z0 = Origin(z0_std=0.5).start(4, 3, torch.zeros(1))
    assert z0.shape == (4, 3) and z0.std() > 0
    assert Origin().start(4, 3, torch.zeros(1)).abs().sum() == 0
