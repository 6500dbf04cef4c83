"""Training-mode batch_norm (tensor_nn.batch_norm): the apply x * scale + shift and its own gradient
(_batch_norm_vjp: two per-channel sums and one elementwise pass) against torch: values, gradients of every
input alone and together, without weight or bias, 2-D to 5-D inputs, a large mean (no cancellation in the
statistics), half floats, double backward; and fewer kernels than the composed gradient took."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import helper_test_op

import lazygrad
from lazygrad import Tensor, schedule

TOL = {"rtol": 1e-4, "atol": 1e-4, "grad_rtol": 1e-3, "grad_atol": 1e-3}


@pytest.mark.parametrize("xs", [(4, 3), (3, 4, 5), (2, 3, 4, 5), (2, 2, 3, 2, 2), (1, 3, 1, 4)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train_vs_torch(xs, affine):
  c = xs[1]
  shapes = [xs] + ([(c,), (c,)] if affine else [])
  helper_test_op(shapes, lambda x, *wb: F.batch_norm(x, None, None, *wb, training=True),
                 lambda x, *wb: x.batch_norm(None, None, *wb, training=True), **TOL)


@pytest.mark.parametrize("needs", ["x", "w", "b", "wb"])
def test_batch_norm_gradient_of_some_inputs(needs):
  """Only some inputs require grad: the others get none, the rest agree with torch."""
  rng = np.random.default_rng(0)
  arrays = [rng.standard_normal((3, 4, 5)).astype(np.float32), rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)]
  names = "xwb"
  tts = [torch.tensor(a, requires_grad=n in needs) for a, n in zip(arrays, names)]
  lts = [Tensor(a, requires_grad=n in needs) for a, n in zip(arrays, names)]
  proj = rng.standard_normal((3, 4, 5)).astype(np.float32)
  (F.batch_norm(tts[0], None, None, tts[1], tts[2], training=True) * torch.tensor(proj)).sum().backward()
  (lts[0].batch_norm(None, None, lts[1], lts[2], training=True) * Tensor(proj)).sum().backward()
  for n, tt, lt in zip(names, tts, lts):
    if n not in needs: assert lt.grad is None
    else: np.testing.assert_allclose(lt.grad.numpy(), tt.grad.numpy(), rtol=1e-3, atol=1e-4)


def test_batch_norm_large_mean():
  """A mean 1e3 times the spread: the variance is taken of centred values (two passes), so it keeps its digits."""
  rng = np.random.default_rng(1)
  x = (rng.standard_normal((8, 3, 6, 6)) + 1000).astype(np.float32)
  helper_test_op(None, lambda x: F.batch_norm(x, None, None, training=True), lambda x: x.batch_norm(None, None, training=True),
                 inputs=[x], rtol=1e-2, atol=2e-3, grad_rtol=2e-2, grad_atol=2e-2)


def test_batch_norm_running_stats_and_half():
  """Running statistics are updated as torch's; a float16 input normalises in float32 and returns float16."""
  rng = np.random.default_rng(2)
  x = rng.standard_normal((4, 3, 5)).astype(np.float32) * 3 + 1
  trm, trv = torch.zeros(3), torch.ones(3)
  lrm, lrv = Tensor.zeros(3).contiguous().realize(), Tensor.ones(3).contiguous().realize()
  F.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=0.2)
  Tensor(x).batch_norm(lrm, lrv, training=True, momentum=0.2).realize()
  Tensor.realize(lrm, lrv)
  np.testing.assert_allclose(lrm.numpy(), trm.numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(lrv.numpy(), trv.numpy(), rtol=1e-5, atol=1e-6)
  helper_test_op(None, lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                 lambda x, w, b: x.batch_norm(None, None, w, b, training=True),
                 inputs=[x.astype(np.float16), np.ones(3, np.float16), np.zeros(3, np.float16)], rtol=1e-2, atol=1e-2)


def test_batch_norm_double_backward():
  """The gradient is Tensor ops of x, mean and rstd: differentiable again (grad of the input gradient's norm)."""
  rng = np.random.default_rng(3)
  xn, wn, bn = rng.standard_normal((4, 3, 5)).astype(np.float32), rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
  proj = rng.standard_normal((4, 3, 5)).astype(np.float32)
  xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (xn, wn, bn))
  (gx,) = torch.autograd.grad((F.batch_norm(xt, None, None, wt, bt, training=True) * torch.tensor(proj)).pow(2).sum(), xt, create_graph=True)
  (gx * gx).sum().backward()
  x, w, b = (Tensor(a, requires_grad=True) for a in (xn, wn, bn))
  (lx,) = lazygrad.grad((x.batch_norm(None, None, w, b, training=True) * Tensor(proj)).pow(2).sum(), x, create_graph=True)
  (lx * lx).sum().backward()
  np.testing.assert_allclose(lx.numpy(), gx.detach().numpy(), rtol=1e-3, atol=1e-3)
  for lt, tt in ((x, xt), (w, wt), (b, bt)): np.testing.assert_allclose(lt.grad.numpy(), tt.grad.numpy(), rtol=1e-3, atol=1e-2)


def test_batch_norm_kernels():
  """Forward and backward of a training-mode batch_norm: the mean, the variance (centring on the fly: no centred copy
  of x stored), sum(g), sum(g * (x - mean)), two per-channel products and one pass each for out and dx; the composed
  gradient took 9 kernels, 5 of them of x's size."""
  rng = np.random.default_rng(4)
  x = Tensor(rng.standard_normal((4, 3, 5, 5)).astype(np.float32), requires_grad=True)
  w, b = Tensor(np.ones(3, np.float32), requires_grad=True), Tensor(np.zeros(3, np.float32), requires_grad=True)
  out = x.batch_norm(None, None, w, b, training=True)
  (out * Tensor(rng.standard_normal(out.shape).astype(np.float32))).sum().backward()
  items = schedule(out, x.grad, w.grad, b.grad)
  full = [it for it in items if np.prod(it.shape) >= x.numel() and np.prod(it.out.shape) == x.numel()]
  assert len(full) == 2, items    # the forward's output and dx: nothing else of x's size is stored
  assert len(items) <= 8, items
