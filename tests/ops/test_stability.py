"""Numerical stability at +-1e4 and autograd through composed expressions, vs torch."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lazygrad import Tensor
from helpers import helper_test_op


# ============================================================ numerical stability at +-1e4

BIG = np.array([[1e4, -1e4, 0.0, 5.0], [-1e4, -1e4, -1e4, -1e4], [1e4, 1e4, -3.0, 1e4], [1e4, 9999.0, -1e4, 1.0]], dtype=np.float32)


def _finite_check(tf, lf, inputs, **kw):
  out = helper_test_op(None, tf, lf, inputs=inputs, atol=1e-4, rtol=1e-4, grad_atol=1e-4, grad_rtol=1e-3, **kw)
  assert np.isfinite(out.numpy()).all()
  return out


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_stable_softmax_family(dim):
  _finite_check(lambda x: x.softmax(dim), None, [BIG])
  _finite_check(lambda x: x.log_softmax(dim), None, [BIG])
  _finite_check(lambda x: torch.logsumexp(x, dim), lambda x: x.logsumexp(dim), [BIG])
  _finite_check(lambda x: torch.logsumexp(x, (0, 1)), lambda x: x.logsumexp(), [BIG])


def test_stable_grads_finite():
  for lf in (lambda x: x.softmax(1), lambda x: x.log_softmax(1), lambda x: x.logsumexp(1), lambda x: x.sigmoid(),
             lambda x: x.softplus(), lambda x: x.silu(), lambda x: x.tanh(), lambda x: x.gelu(), lambda x: x.elu()):
    x = Tensor(BIG, requires_grad=True)
    lf(x).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softplus", "silu", "gelu", "gelu_tanh", "elu", "logsigmoid"])
def test_stable_unary(name):
  tfs = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "softplus": F.softplus, "silu": F.silu, "gelu": F.gelu, "elu": F.elu,
         "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "logsigmoid": F.logsigmoid}
  lfs = {"gelu_tanh": lambda x: x.gelu(approximate="tanh")}
  _finite_check(tfs[name], lfs.get(name, lambda x: getattr(x, name)()), [BIG])


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_stable_cross_entropy(smoothing):
  tgt = np.array([1, 3, 2, 0])
  _finite_check(lambda x: F.cross_entropy(x, torch.tensor(tgt), label_smoothing=smoothing),
                lambda x: x.cross_entropy(Tensor(tgt), label_smoothing=smoothing), [BIG])
  p = np.full((4, 4), 0.25, dtype=np.float32)
  _finite_check(lambda x: F.cross_entropy(x, torch.tensor(p), label_smoothing=smoothing),
                lambda x: x.cross_entropy(Tensor(p), label_smoothing=smoothing), [BIG])
  _finite_check(lambda x: F.cross_entropy(x, torch.tensor(tgt), reduction="none"), lambda x: x.cross_entropy(Tensor(tgt), reduction="none"), [BIG])


def test_stable_bce_with_logits():
  t = np.array([[1.0, 0.0, 0.5, 1.0]] * 4, dtype=np.float32)
  _finite_check(lambda x: F.binary_cross_entropy_with_logits(x, torch.tensor(t), reduction="none"),
                lambda x: x.binary_cross_entropy_with_logits(Tensor(t), reduction="none"), [BIG])
  _finite_check(lambda x: F.binary_cross_entropy_with_logits(x, torch.tensor(t), pos_weight=torch.tensor([2.0, 1.0, 0.5, 3.0])),
                lambda x: x.binary_cross_entropy_with_logits(Tensor(t), pos_weight=Tensor([2.0, 1.0, 0.5, 3.0])), [BIG])


def test_stable_float16_softmax():
  a = np.array([[30000.0, -30000.0, 0.0], [-30000.0, -30000.0, 1.0]], dtype=np.float16)
  out = helper_test_op(None, lambda x: x.softmax(1), inputs=[a], rtol=1e-2, atol=1e-2)
  assert np.isfinite(out.numpy()).all()
  out = helper_test_op(None, lambda x: x.log_softmax(1), inputs=[a], rtol=1e-2, atol=1e-2)
  assert np.isfinite(out.numpy()).all()


# ============================================================ autograd through composed expressions

def test_grad_shared_input_and_broadcast():
  helper_test_op([(3, 4), (4,)], lambda a, b: (a * b + a.exp() * b.sin() - a / (b.abs() + 1)).sum(0))
  helper_test_op([(3, 1), (1, 4)], lambda a, b: (a @ b).relu() * a + b)
  helper_test_op([(2, 3)], lambda x: x[:, None, :] * x[None, :, :] + x.sum())


def test_grad_accumulates():
  x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
  (x * 2).sum().backward()
  (x * x).sum().backward()
  np.testing.assert_allclose(x.grad.numpy(), 2 + 2 * np.array([1.0, 2.0, 3.0]))
