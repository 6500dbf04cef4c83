"""Reductions vs torch: sum/mean/amax/var/std/logsumexp/prod/argmax, cumsum, softmax, zero-size and 0-d, non-contiguous."""
import numpy as np
import pytest
import torch
from lazygrad import Tensor, dtypes
from helpers import helper_test_op, compare
from .common import arr


# ============================================================ reductions

RED_DIMS = [None, 0, 1, -1, (0, 2), (-1, -2), (0, 1, 2)]


def _dimkw(dim):
  return {} if dim is None else {"dim": dim}


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", RED_DIMS, ids=str)
@pytest.mark.parametrize("op", ["sum", "mean", "amax", "amin", "var", "std", "logsumexp"])
def test_reduce(op, dim, keepdim):
  kw = _dimkw(dim)
  tdim = (0, 1, 2) if dim is None else dim   # torch takes keepdim only with a dim
  tf = (lambda x: torch.logsumexp(x, dim=tdim, keepdim=keepdim)) if op == "logsumexp" else (lambda x: getattr(x, op)(dim=tdim, keepdim=keepdim))
  lf = lambda x: getattr(x, op)(**kw, keepdim=keepdim)
  helper_test_op([(3, 4, 5)], tf, lf)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1, None])
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min(op, dim, keepdim):
  if dim is None:
    helper_test_op([(3, 4, 5)], lambda x: getattr(x, op)())
    return
  helper_test_op([(3, 4, 5)], lambda x: getattr(x, op)(dim, keepdim=keepdim))
  a = arr((3, 4, 5))
  tv, ti = getattr(torch.tensor(a), op)(dim, keepdim=keepdim)
  out = getattr(Tensor(a), op)(dim, keepdim=keepdim)
  lv, li = out
  assert out.values is lv and out.indices is li
  assert li.dtype == dtypes.int64
  compare(li.numpy(), ti.numpy(), 0, 0)
  compare(lv.numpy(), tv.numpy(), 0, 0)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "int8"])
@pytest.mark.parametrize("op", ["max", "min", "amax", "amin", "sum", "prod", "argmax", "argmin", "cumsum"])
def test_reduce_int(op, dtype):
  a = np.random.default_rng(13).integers(0 if dtype == "uint8" else -5, 6, size=(3, 4)).astype(dtype)
  helper_test_op(None, lambda x: getattr(x, op)(1), inputs=[a])
  if op != "cumsum": helper_test_op(None, lambda x: getattr(x, op)(), inputs=[a])


@pytest.mark.parametrize("op", ["sum", "mean", "amax", "prod", "var", "logsumexp", "softmax", "log_softmax", "cumsum"])
def test_reduce_float16(op):
  tf = (lambda x: torch.logsumexp(x, 1)) if op == "logsumexp" else (lambda x: getattr(x, op)(1))
  helper_test_op([(3, 6)], tf, lambda x: getattr(x, op)(1), dtype="float16", rtol=2e-2, atol=2e-2, grad_rtol=5e-2, grad_atol=5e-2)


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_reduce_bool(dim):
  a = np.random.default_rng(14).random((4, 5)) < 0.5
  a[0] = True; a[1] = False
  for op in ("any", "all", "sum", "amax"):
    if op == "amax" and dim is None: continue
    helper_test_op(None, lambda x: getattr(x, op)(**_dimkw(dim)), inputs=[a])


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_any_all_numeric(dim):
  a = np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [3.0, 4.0, -1.0]], dtype=np.float32)
  helper_test_op(None, lambda x: x.any(**_dimkw(dim)), inputs=[a], grad=False)
  helper_test_op(None, lambda x: x.all(**_dimkw(dim)), inputs=[a], grad=False)
  helper_test_op(None, lambda x: x.all(**_dimkw(dim)), inputs=[a.astype(np.int32)])


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_argmin(op, dim, keepdim):
  if dim is None and keepdim: keepdim = False
  helper_test_op([(4, 5)], lambda x: getattr(x, op)(**_dimkw(dim), keepdim=keepdim))
  # ties: the first index wins
  a = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [0, -1, 5, 5]], dtype=np.float32)
  helper_test_op(None, lambda x: getattr(x, op)(**_dimkw(dim), keepdim=keepdim), inputs=[a])


def test_argmax_nan():
  a = np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 0.0]], dtype=np.float32)
  helper_test_op(None, lambda x: x.argmax(1), inputs=[a])
  helper_test_op(None, lambda x: x.amax(1), inputs=[a], grad=False)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_prod(dim, keepdim):
  if dim is None and keepdim: pytest.skip("torch's prod takes no keepdim without dim")
  helper_test_op([(3, 5)], lambda x: x.prod(**_dimkw(dim), keepdim=keepdim) if dim is not None else x.prod(), low=0.5, high=1.5)
  # exact zeros: gradient is the product of the others
  a = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 1.5], [1.0, -2.0, 0.5]], dtype=np.float32)
  helper_test_op(None, lambda x: x.prod(**_dimkw(dim), keepdim=keepdim) if dim is not None else x.prod(), inputs=[a])


@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("dim", [None, 0, (0, 1), -1])
def test_var_std_correction(dim, correction):
  helper_test_op([(4, 6)], lambda x: x.var(**_dimkw(dim), correction=correction))
  helper_test_op([(4, 6)], lambda x: x.std(**_dimkw(dim), correction=correction))


def test_var_unbiased_kw():
  helper_test_op([(4, 6)], lambda x: x.var(1, unbiased=False))
  helper_test_op([(4, 6)], lambda x: x.std(0, unbiased=True, keepdim=True))


def test_reduce_axis_alias():
  a = arr((3, 4))
  for op in ("sum", "mean", "amax"):
    compare(getattr(Tensor(a), op)(axis=1).numpy(), getattr(torch.tensor(a), op)(dim=1).numpy(), 1e-6, 1e-6)


@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_cumsum(dim):
  helper_test_op([(3, 4, 5)], lambda x: x.cumsum(dim))
  helper_test_op([(3, 4, 5)], lambda x: x.permute(2, 0, 1).cumsum(dim))


def test_cumsum_edge():
  helper_test_op([(1,)], lambda x: x.cumsum(0))
  helper_test_op([(0, 3)], lambda x: x.cumsum(0))
  helper_test_op([(0, 3)], lambda x: x.cumsum(1))
  helper_test_op(None, lambda x: x.cumsum(0), inputs=[np.array([True, False, True])])


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax(op, dim):
  helper_test_op([(3, 4, 5)], lambda x: getattr(x, op)(dim))
  helper_test_op([(5, 4)], lambda x: getattr(x, op)(min(dim, 1)), low=-10, high=10)


def test_softmax_int_and_dtype():
  a = np.arange(6, dtype=np.int64).reshape(2, 3)
  helper_test_op(None, lambda x: x.float().softmax(1), inputs=[a])
  helper_test_op([(2, 5)], lambda x: x.softmax(-1, dtype=torch.float32) if isinstance(x, torch.Tensor) else x.softmax(-1, dtype=dtypes.float32),
                 dtype="float16", rtol=1e-2, atol=1e-2)


def test_softmax_neg_inf():
  a = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, 2.0]], dtype=np.float32)
  helper_test_op(None, lambda x: x.softmax(1), inputs=[a])
  helper_test_op(None, lambda x: torch.logsumexp(x, 1), lambda x: x.logsumexp(1), inputs=[a])


@pytest.mark.parametrize("op", ["sum", "mean", "prod", "amax", "logsumexp", "any", "all", "var"])
def test_reduce_zero_size(op):
  # reduce over a non-empty dim of a zero-size tensor
  tf = (lambda x: torch.logsumexp(x, 1)) if op == "logsumexp" else (lambda x: getattr(x, op)(1))
  helper_test_op([(0, 3)], tf, lambda x: getattr(x, op)(1))
  # reduce over the empty dim
  if op in ("amax", "logsumexp", "var"): return
  tf = (lambda x: getattr(x, op)(0))
  helper_test_op([(0, 3)], tf, lambda x: getattr(x, op)(0))
  if op in ("sum", "prod", "any", "all"): helper_test_op([(0, 3)], lambda x: getattr(x, op)())


def test_reduce_0d():
  helper_test_op([()], lambda x: x.sum())
  helper_test_op([()], lambda x: x.sum(0))
  helper_test_op([()], lambda x: x.mean(-1, keepdim=True))
  helper_test_op([()], lambda x: x.amax())
  helper_test_op([()], lambda x: x.softmax(0))
  helper_test_op([()], lambda x: x.argmax())
  helper_test_op([()], lambda x: x.prod())
  helper_test_op([()], lambda x: x.cumsum(0))


@pytest.mark.parametrize("op", ["sum", "mean", "amax", "var", "softmax", "logsumexp", "argmax", "cumsum"])
def test_reduce_noncontiguous(op):
  tf = (lambda x: torch.logsumexp(x, 0)) if op == "logsumexp" else (lambda x: getattr(x, op)(0))
  lf = lambda x: getattr(x, op)(0)
  helper_test_op([(6, 4)], lambda x: tf(x.T.flip(0)[:, 1::2]), lambda x: lf(x.T[::-1, 1::2]))
  helper_test_op([(4,)], lambda x: tf(x.unsqueeze(1).expand(4, 3) * 1.5), lambda x: lf(x.unsqueeze(1).expand(4, 3) * 1.5))


def test_reduce_dim_errors():
  x = Tensor.ones(2, 3)
  with pytest.raises((ValueError, IndexError)): x.sum(2)
  with pytest.raises((ValueError, IndexError)): x.sum(-3)
