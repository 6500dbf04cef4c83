"""Gradients torch gives where lazygrad gave none or another: the rounding ops and sign have zero gradients (and
results that require grad), max(dim)/min(dim) send the gradient to the returned index while amax/amin and max()
split it among ties; where rejects a non-bool condition and cross_entropy a label_smoothing outside [0, 1], as torch."""
import numpy as np
import pytest
import torch
import lazygrad.nn.functional as F
from lazygrad import Tensor, dtypes

# halves (round's ties), integers, negatives, zeros, inf and nan: the values where rounding ops are subtle
EDGE = np.array([[-2.5, -1.5, -0.5, 0.0, 0.5, 1.5], [2.5, -0.7, 3.0, float("inf"), float("-inf"), float("nan")]], np.float32)
ROUNDING = ["floor", "ceil", "round", "trunc", "sign", "frac"]


def _run_both(x: np.ndarray, fn, weight: np.ndarray):
  """fn applied to x in torch and lazygrad, then (out * weight).sum() backward: (torch out, torch grad, our out, our grad)."""
  tx, lx = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
  tout, lout = fn(tx), fn(lx)
  assert lout.requires_grad == tout.requires_grad
  (tout * torch.tensor(weight)).sum().backward()
  (lout * Tensor(weight)).sum().backward()
  assert lx.grad is not None, "no gradient reached the input"
  return tout.detach().numpy(), tx.grad.numpy(), lout.numpy(), lx.grad.numpy()


@pytest.mark.parametrize("name", ROUNDING)
def test_rounding_zero_grad(name):
  x = np.concatenate([EDGE, np.random.default_rng(0).normal(0, 3, (2, 6)).astype(np.float32)])
  w = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
  w[1, 5] = float("nan")   # a nan upstream gradient: torch's zero gradient stays 0 for the rounding ops
  tout, tg, lout, lg = _run_both(x, lambda t: getattr(t, name)(), w)
  np.testing.assert_array_equal(lout, tout)
  np.testing.assert_array_equal(lg, tg)


@pytest.mark.parametrize("name", ["floor", "ceil", "round", "trunc", "sign"])
def test_rounding_ends_graph(name):
  """A rounding op as the last op: backward works (torch: zeros), no 'does not require grad'."""
  x = np.random.default_rng(2).normal(0, 2, (3, 4)).astype(np.float32)
  lx = Tensor(x, requires_grad=True)
  out = getattr(lx, name)().sum()
  assert out.requires_grad
  out.backward()
  np.testing.assert_array_equal(lx.grad.numpy(), np.zeros_like(x))


def test_rounding_decimals_and_second_order():
  x = np.array([[0.125, -1.375, 2.5]], np.float32)
  tout, tg, lout, lg = _run_both(x, lambda t: t.round(decimals=1) * t, np.ones_like(x))
  np.testing.assert_allclose(lout, tout)
  np.testing.assert_allclose(lg, tg)
  # second order: d/dx of (grad of floor(x) * x), with create_graph, as torch
  tx, lx = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
  (tgx,) = torch.autograd.grad((tx.floor() * tx * tx).sum(), tx, create_graph=True)
  tgx.sum().backward()
  (lx.floor() * lx * lx).sum().backward(create_graph=True)
  lgx = lx.grad
  np.testing.assert_allclose(lgx.numpy(), tgx.detach().numpy())
  lx.grad = None
  lgx.sum().backward()
  np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy())


def test_rounding_no_grad_inputs():
  """Inputs that do not require grad give results that do not (floats and ints), values as torch."""
  for name in ROUNDING:
    assert not getattr(Tensor([1.5, -2.5]), name)().requires_grad
  for name in ["floor", "ceil", "round", "trunc", "sign"]:
    out = getattr(Tensor([1, -2, 0], dtype=dtypes.int32), name)()
    assert not out.requires_grad and out.tolist() == getattr(torch.tensor([1, -2, 0], dtype=torch.int32), name)().tolist()


TIES = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 0.0, 2.0], [-1.0, -4.0, -4.0, -4.0]], np.float32)


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize("dim,keepdim", [(0, False), (1, True), (-1, False)])
def test_max_min_dim_grad_to_index(op, dim, keepdim):
  """max(dim)/min(dim): all the gradient to the returned index at ties, as torch (not split)."""
  w = np.arange(1, 5, dtype=np.float32)[:TIES.shape[1 - (dim % 2)]]
  w = w.reshape((-1, 1) if dim % 2 else (-1,)) if keepdim or dim % 2 == 0 else w
  tout, tg, lout, lg = _run_both(TIES, lambda t: getattr(t, op)(dim, keepdim=keepdim).values, w)
  np.testing.assert_array_equal(lout, tout)
  np.testing.assert_array_equal(lg, tg)
  li = getattr(Tensor(TIES), op)(dim, keepdim=keepdim).indices
  np.testing.assert_array_equal(li.numpy(), getattr(torch.tensor(TIES), op)(dim, keepdim=keepdim).indices.numpy())


def test_max_dim_noncontiguous_and_nan():
  x = np.array([[1.0, float("nan"), 5.0], [5.0, 5.0, float("nan")]], np.float32)
  tout, tg, lout, lg = _run_both(x, lambda t: t.T.max(0).values, np.array([1.0, 2.0], np.float32))
  np.testing.assert_array_equal(lout, tout)
  np.testing.assert_array_equal(lg, tg)
  tout, tg, lout, lg = _run_both(x, lambda t: t[:, ::2].min(1).values, np.array([1.0, 2.0], np.float32))
  np.testing.assert_array_equal(lout, tout)
  np.testing.assert_array_equal(lg, tg)


def test_max_dim_0d():
  tout, tg, lout, lg = _run_both(np.array(3.0, np.float32), lambda t: t.max(0).values * 2, np.array(1.0, np.float32))
  np.testing.assert_array_equal(lg, tg)
  assert lout == tout


@pytest.mark.parametrize("fn", [lambda t: t.amax(1), lambda t: t.amin(0), lambda t: t.amax((0, 1)), lambda t: t.max(),
                                lambda t: t.min()], ids=["amax1", "amin0", "amax_all", "max", "min"])
def test_amax_amin_max_split_ties(fn):
  """amax/amin and max()/min() with no dim split the gradient evenly among ties, as torch."""
  x = np.array([[2.0, 2.0, 1.0], [2.0, -3.0, -3.0]], np.float32)
  w = np.ones(fn(torch.tensor(x)).shape, np.float32)
  tout, tg, lout, lg = _run_both(x, fn, w)
  np.testing.assert_array_equal(lout, tout)
  np.testing.assert_allclose(lg, tg)


def test_where_non_bool_condition_raises_like_torch():
  for cond in ([0.0, 1.0], [0, 2]):
    with pytest.raises(Exception) as theirs: torch.where(torch.tensor(cond), torch.ones(2), torch.zeros(2))
    with pytest.raises(Exception) as ours: Tensor(cond).where(Tensor.ones(2), Tensor.zeros(2))
    assert isinstance(ours.value, type(theirs.value)) and isinstance(ours.value, ValueError)
    assert "boolean" in str(ours.value) and Tensor(cond).dtype.name in str(ours.value)


@pytest.mark.parametrize("smoothing", [1.5, 1.01])
def test_cross_entropy_label_smoothing_range(smoothing):
  x, t = np.random.default_rng(3).normal(size=(3, 4)).astype(np.float32), np.array([0, 1, 3])
  with pytest.raises(Exception) as theirs:
    torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t), label_smoothing=smoothing)
  for call in (lambda: F.cross_entropy(Tensor(x), Tensor(t), label_smoothing=smoothing),
               lambda: Tensor(x).cross_entropy(Tensor(t), label_smoothing=smoothing)):
    with pytest.raises(Exception) as ours: call()
    assert isinstance(ours.value, type(theirs.value)) and "label_smoothing" in str(ours.value)
  # the bounds are accepted, and a negative one means no smoothing, as torch
  for ok in (0.0, 1.0, -0.5):
    want = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t), label_smoothing=ok).item()
    assert abs(F.cross_entropy(Tensor(x), Tensor(t), label_smoothing=ok).item() - want) < 1e-5
