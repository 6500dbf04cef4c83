"""Half-float statistics computed in float32 as torch does (std, norms, softmax family), and zero-size tensors at realize
(empty dims broadcast against reduces, empty softmax dims), vs torch on every test device."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lazygrad import Tensor, dtypes
import lazygrad.nn as nn
from helpers import helper_test_op, compare


def _big(shape, scale=400.0, seed=0):
  # values whose squares (and sums of squares) overflow float16's 65504 while the statistics themselves fit
  return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float16)


# ---- 1. half-float statistics accumulate in float32

def test_std_fp16_square_overflows():
  x = np.array([300, -300], dtype=np.float16)
  out = helper_test_op(None, lambda x: x.std(), inputs=[x], dtype="float16")
  assert out.dtype == dtypes.float16 and np.isfinite(out.numpy())


@pytest.mark.parametrize("kw", [{}, {"correction": 0}, {"keepdim": True}])
def test_std_fp16_rows(kw):
  helper_test_op(None, lambda x: x.std(1, **kw), inputs=[_big((3, 8))], dtype="float16")


def test_var_mean_fp16():
  x = _big((3, 8), 100.0)
  helper_test_op(None, lambda x: torch.var_mean(x, 1)[0], lambda x: x.var_mean(1)[0], inputs=[x], dtype="float16", rtol=2e-2)
  helper_test_op(None, lambda x: torch.var_mean(x, 1)[1], lambda x: x.var_mean(1)[1], inputs=[x], dtype="float16")


def test_mean_fp16_large_values():
  x = np.full((4, 1000), 60000, dtype=np.float16)
  helper_test_op(None, lambda x: x.mean(), inputs=[x], dtype="float16", grad=False)
  helper_test_op(None, lambda x: x.mean(1), inputs=[x], dtype="float16", grad=False)


def test_rms_norm_fp16():
  x, w = _big((3, 8)), np.linspace(0.5, 1.5, 8).astype(np.float16)
  helper_test_op(None, lambda x, w: F.rms_norm(x, (8,), w), lambda x, w: x.rms_norm(8, w), inputs=[x, w], dtype="float16")
  helper_test_op(None, lambda x: F.rms_norm(x, (8,)), lambda x: x.rms_norm(8), inputs=[x], dtype="float16")
  out = nn.RMSNorm(8, dtype="float16")(Tensor(x))
  ref = torch.nn.RMSNorm(8, dtype=torch.float16)(torch.tensor(x))
  assert out.dtype == dtypes.float16
  compare(out.numpy(), ref.detach().numpy(), 1e-2, 1e-2, "RMSNorm")


def test_layer_norm_fp16():
  helper_test_op(None, lambda x: F.layer_norm(x, (8,)), lambda x: x.layer_norm(8), inputs=[_big((3, 8))], dtype="float16")


def test_batch_norm_fp16_training():
  x = _big((4, 3, 5))
  m, tm = nn.BatchNorm1d(3, dtype="float16"), torch.nn.BatchNorm1d(3, dtype=torch.float16)
  out, ref = m(Tensor(x)), tm(torch.tensor(x))
  assert out.dtype == dtypes.float16
  compare(out.numpy(), ref.detach().numpy(), 1e-2, 1e-2, "output")
  compare(m.running_var.numpy(), tm.running_var.numpy(), 1e-2, 1e-2, "running_var")
  compare(m.running_mean.numpy(), tm.running_mean.numpy(), 1e-2, 1e-2, "running_mean")
  # eval with the (large) running statistics
  m.eval(); tm.eval()
  compare(m(Tensor(x)).numpy(), tm(torch.tensor(x)).detach().numpy(), 1e-2, 1e-2, "eval output")


def test_batch_norm_fp16_functional_grad():
  w, b = np.linspace(0.5, 1.5, 3).astype(np.float16), np.linspace(-1, 1, 3).astype(np.float16)
  helper_test_op(None, lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                 lambda x, w, b: x.batch_norm(None, None, w, b, training=True), inputs=[_big((4, 3, 5)), w, b], dtype="float16")


def test_softmax_fp16_long_row():
  # the sum of 70000 exps overflows float16: torch sums in float32
  x = np.zeros((2, 70000), np.float16)
  out = helper_test_op(None, lambda x: x.softmax(-1), inputs=[x], dtype="float16", atol=1e-6, grad=False)
  assert (out.numpy() > 0).all()


@pytest.mark.parametrize("op", ["log_softmax", "logsumexp"])
def test_log_softmax_logsumexp_fp16_long_row(op):
  # torch's cpu float16 kernels give -inf/inf here; lazygrad sums in float32 like torch's cuda ones: compare with float32 rounded
  x = np.zeros((2, 70000), np.float16)
  helper_test_op(None, lambda x: getattr(x.float(), op)(-1).half(), lambda x: getattr(x, op)(-1), inputs=[x], dtype="float16", grad=False)


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
@pytest.mark.parametrize("half", ["half", "bfloat16"])
def test_softmax_family_half(op, half):
  x = np.random.default_rng(0).standard_normal((3, 40)).astype(np.float32) * 8
  helper_test_op(None, lambda x: getattr(getattr(x, half)(), op)(-1).float(), inputs=[x], rtol=2e-2, atol=2e-2)
  helper_test_op(None, lambda x: getattr(getattr(x, half)(), op)(0).float(), inputs=[x], rtol=2e-2, atol=2e-2)


# ---- 2. zero-size tensors

@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
@pytest.mark.parametrize("shape,dim", [((2, 0), -1), ((2, 0), 1), ((0, 3), 1), ((3, 0, 2), 1)])
def test_softmax_family_empty(op, shape, dim):
  helper_test_op([shape], lambda x: getattr(x, op)(dim))


def test_logsumexp_empty_all():
  helper_test_op([(2, 0)], lambda x: x.logsumexp((0, 1)))


def test_empty_matmul_broadcast_sub():
  helper_test_op([(2, 0), (0, 3), (2, 1)], lambda a, b, c: a @ b - c)


@pytest.mark.parametrize("shape", [(2, 0), (3, 0, 4)])
def test_int_sum_empty_axis_plus_tensor(shape):
  rest = tuple(s for i, s in enumerate(shape) if i != 1)
  x, y = np.zeros(shape, np.int32), np.arange(int(np.prod(rest))).reshape(rest)
  helper_test_op(None, lambda x, y: x.sum(1) + y, inputs=[x, y])
  helper_test_op(None, lambda x, y: torch.any(x, 1) | (y > 2), lambda x, y: x.any(1) | (y > 2), inputs=[x, y])


def test_float_sum_empty_axis_plus_tensor():
  helper_test_op([(3, 0), (3,)], lambda x, y: x.sum(1) + y)
  helper_test_op([(3, 0), (3, 1)], lambda x, y: x.sum(1, keepdim=True) * y)


@pytest.mark.parametrize("self_shape,idx_shape", [((3,), (0,)), ((3, 2), (0, 2)), ((3, 2), (2, 0))])
def test_scatter_add_empty_index(self_shape, idx_shape):
  x = np.arange(np.prod(self_shape), dtype=np.float32).reshape(self_shape) + 1
  idx, src = np.zeros(idx_shape, np.int64), np.ones(idx_shape, np.float32)
  out = Tensor(x).scatter_add(0, Tensor(idx), Tensor(src))
  ref = torch.tensor(x).scatter_add(0, torch.tensor(idx), torch.tensor(src))
  compare(out.numpy(), ref.numpy(), 0, 0, "scatter_add")


@pytest.mark.parametrize("xs,ws", [((2, 1), (2, 0)), ((3, 1), (1, 0))])
def test_backward_zero_size_slice(xs, ws):
  helper_test_op([xs, ws], lambda x, w: (x[:, 1:] + x) * w)
