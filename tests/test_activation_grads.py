"""The analytic gradients of sigmoid, silu, softplus and gelu (exact and tanh) vs torch: values and gradients
over ranges that reach the tails, broadcasting, empty and non-contiguous inputs, fp16/bf16, second derivatives
(the custom vjp is Tensor ops: differentiable again), and that the backward no longer walks the forward's
composition (the kernel counts of an MLP's gradient: a test that fails if the custom vjp is dropped)."""
import numpy as np
import pytest
import torch
import lazygrad
from lazygrad import Tensor
from helpers import INTERP_BF16, helper_test_op

F = torch.nn.functional
ACTS = {
  "sigmoid": (lambda x: torch.sigmoid(x), lambda x: x.sigmoid()),
  "silu": (F.silu, lambda x: x.silu()),
  "softplus": (F.softplus, lambda x: x.softplus()),
  "softplus_beta": (lambda x: F.softplus(x, beta=2.0, threshold=3.0), lambda x: x.softplus(beta=2.0, threshold=3.0)),
  "gelu": (F.gelu, lambda x: x.gelu()),
  "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: x.gelu(approximate="tanh")),
}


@pytest.mark.parametrize("name", ACTS)
def test_values_and_grads_over_the_tails(name):
  tf, lf = ACTS[name]
  helper_test_op([(6, 40)], tf, lf, low=-12.0, high=12.0)


@pytest.mark.parametrize("name", ACTS)
def test_grads_broadcast_and_noncontiguous(name):
  tf, lf = ACTS[name]
  # x is read through a transpose and broadcast against y: the gradient is summed back over the broadcast dim
  helper_test_op([(5, 3), (4, 1, 5)], lambda x, y: tf(x.T * y), lambda x, y: lf(x.T * y), low=-4.0, high=4.0)


@pytest.mark.parametrize("name", ["sigmoid", "gelu", "gelu_tanh"])
def test_empty_input(name):
  tf, lf = ACTS[name]
  helper_test_op([(0, 3)], tf, lf)


@pytest.mark.parametrize("name", ["sigmoid", "silu", "gelu", "gelu_tanh"])
def test_float64(name):
  tf, lf = ACTS[name]
  helper_test_op([(3, 17)], tf, lf, dtype="float64", low=-6.0, high=6.0)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", ["sigmoid", "silu", "gelu", "gelu_tanh"])
def test_half_floats(name, dtype, device):
  # computed in float32 and rounded once (opmath), the gradient too: torch's values within a few half-float ulps
  if dtype == "bfloat16" and device == "interp": pytest.skip(INTERP_BF16)
  tf, lf = ACTS[name]
  xa = np.random.default_rng(0).uniform(-6, 6, 64).astype(np.float32)
  proj = np.random.default_rng(1).standard_normal(64).astype(np.float32)
  tx = torch.tensor(xa, dtype=getattr(torch, dtype), requires_grad=True)
  (tf(tx).float() * torch.tensor(proj)).sum().backward()
  lx = Tensor(xa).cast(dtype).detach().requires_grad_()
  out = lf(lx)
  assert out.dtype.name == dtype
  (out.float() * Tensor(proj)).sum().backward()
  tol = 2e-3 if dtype == "float16" else 1.6e-2
  np.testing.assert_allclose(out.float().numpy(), tf(tx).float().detach().numpy(), rtol=tol, atol=tol)
  np.testing.assert_allclose(lx.grad.float().numpy(), tx.grad.float().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ACTS)
def test_second_derivative(name):
  tf, lf = ACTS[name]
  xa = np.linspace(-4, 4, 23, dtype=np.float32)   # (near |x| = 5 gelu_tanh'' cancels in float32: torch's own formula too)
  tx = torch.tensor(xa, requires_grad=True)
  tg, = torch.autograd.grad((tf(tx) * torch.tensor(xa + 2)).sum(), tx, create_graph=True)
  tgg, = torch.autograd.grad((tg * tg).sum(), tx)
  lx = Tensor(xa, requires_grad=True)
  lg, = lazygrad.grad((lf(lx) * Tensor(xa + 2)).sum(), lx, create_graph=True)
  lgg, = lazygrad.grad((lg * lg).sum(), lx)
  np.testing.assert_allclose(lg.numpy(), tg.detach().numpy(), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(lgg.numpy(), tgg.numpy(), rtol=1e-3, atol=1e-4)


def test_gradient_at_extremes_is_torchs():
  # far tails: sigmoid's gradient underflows to 0 (not nan), gelu's to 0 below and 1 above
  xa = np.array([-1e4, -100.0, -20.0, -0.0, 0.0, 20.0, 100.0, 1e4], dtype=np.float32)
  for tf, lf in ACTS.values():
    tx, lx = torch.tensor(xa, requires_grad=True), Tensor(xa, requires_grad=True)
    tf(tx).sum().backward()
    lf(lx).sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-7, equal_nan=True)


@pytest.mark.parametrize("name,most", [("gelu_tanh", 6), ("gelu", 6), ("sigmoid", 5), ("silu", 6), ("softplus", 7)])
def test_mlp_gradient_kernels(name, most):
  # the gradients of a 2-layer MLP through the activation: the analytic derivative reads the pre-activation
  # alone and fuses into the matmuls' prologue/epilogue; through the composition the forward's
  # intermediates were materialised for the backward (gelu_tanh 11 kernels, gelu 9, sigmoid 9, silu 10, softplus 10)
  _, lf = ACTS[name]
  rng = np.random.default_rng(0)
  x = Tensor(rng.standard_normal((16, 8)).astype(np.float32))
  w1 = Tensor(rng.standard_normal((8, 32)).astype(np.float32), requires_grad=True)
  w2 = Tensor(rng.standard_normal((32, 4)).astype(np.float32), requires_grad=True)
  g1, g2 = lazygrad.grad((lf(x @ w1) @ w2).square().sum(), [w1, w2])
  names = [it.kernel.name for it in lazygrad.schedule(g1, g2)]
  assert len(names) <= most, names
