"""Tensor methods no other test named: sort/argsort/topk, var_mean, randperm, nan_to_num, and the rest of the
public API that no test named. Values vs torch, gradients
where torch has them, size-1/empty dims and non-contiguous inputs; every test runs on each test device."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lazygrad import Tensor, dtypes
from helpers import helper_test_op, compare


def distinct(shape, seed=0, dtype=np.float32):
  """random values with no ties (so sort/topk indices are unique), in [-2, 2)."""
  n = int(np.prod(shape))
  return (np.random.default_rng(seed).permutation(n).reshape(shape) * (4.0 / max(n, 1)) - 2.0).astype(dtype)


def both(a, fn_t, fn_l):
  return fn_t(torch.tensor(a)), fn_l(Tensor(a))


# ============================================================ sort, argsort, topk

SORT_CASES = [((5,), -1), ((3, 4), 0), ((3, 4), -1), ((2, 3, 4), 1), ((1, 4), 0), ((3, 1), 1), ((0, 3), 0), ((0, 3), 1), ((2, 0), -1)]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("shape,dim", SORT_CASES, ids=str)
def test_sort(shape, dim, descending):
  a = distinct(shape)
  helper_test_op(None, lambda x: torch.sort(x, dim=dim, descending=descending, stable=True), lambda x: x.sort(dim, descending=descending), inputs=[a])
  (tv, ti), out = both(a, lambda x: x.sort(dim, descending=descending), lambda x: x.sort(dim, descending=descending))
  assert out.values is out[0] and out.indices is out[1] and out.indices.dtype == dtypes.int64
  compare(out.indices.numpy(), ti.numpy(), 0, 0, "indices")
  compare(out.values.numpy(), tv.numpy(), 0, 0, "values")


@pytest.mark.parametrize("descending", [False, True])
def test_sort_noncontiguous_and_ties(descending):
  a = distinct((6, 4), seed=1)
  # permuted, stepped and flipped
  helper_test_op(None, lambda x: torch.sort(x.T.flip(0)[:, ::2], dim=1, descending=descending, stable=True),
                 lambda x: x.T[::-1, ::2].sort(1, descending=descending), inputs=[a])
  # broadcast input (every row the same) and ties: stable order, as torch's stable=True
  helper_test_op([(4,)], lambda x: torch.sort(x.unsqueeze(0).expand(3, 4), dim=0, descending=descending, stable=True),
                 lambda x: x.unsqueeze(0).expand(3, 4).sort(0, descending=descending))
  t = np.array([[1.0, 2.0, 2.0, 1.0, -0.5, 2.0], [0.0, 0.0, 0.0, 3.0, 3.0, 0.0]], dtype=np.float32)
  for fn in (lambda x: x.argsort(1, descending=descending), lambda x: x.sort(1, descending=descending).indices):
    compare(fn(Tensor(t)).numpy(), torch.tensor(t).argsort(dim=1, descending=descending, stable=True).numpy(), 0, 0)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float16", "float64"])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_dtypes(dtype, descending):
  a = np.random.default_rng(2).integers(-50, 50, size=(3, 7)).astype(dtype)
  (tv, ti), out = both(a, lambda x: x.sort(dim=1, descending=descending, stable=True), lambda x: x.sort(1, descending=descending))
  assert out.values.dtype == dtypes.from_any(tv.dtype)
  compare(out.values.numpy(), tv.numpy(), 0, 0)
  compare(out.indices.numpy(), ti.numpy(), 0, 0)


SORT_BUGS = [
  ("uint8_desc", np.array([3, 0, 255, 7], dtype=np.uint8), True),
  ("int8_min_desc", np.array([-128, 5, 127, 0], dtype=np.int8), True),
  ("bool_desc", np.array([True, False, True, False]), True),
  ("nan_desc", np.array([1.0, np.nan, -1.0, np.inf], dtype=np.float32), True),
]


@pytest.mark.parametrize("name,a,descending", [
  ("uint8_asc", np.array([3, 0, 255, 7], dtype=np.uint8), False), ("bool_asc", np.array([True, False, True, False]), False),
  ("nan_asc", np.array([1.0, np.nan, -1.0, np.inf, -np.inf], dtype=np.float32), False),
] + SORT_BUGS, ids=lambda v: v if isinstance(v, str) else "")
def test_sort_edge_values(name, a, descending):
  (tv, ti), out = both(a, lambda x: x.sort(descending=descending, stable=True), lambda x: x.sort(descending=descending))
  compare(out.values.numpy(), tv.numpy(), 0, 0, "values")
  compare(out.indices.numpy(), ti.numpy(), 0, 0, "indices")


def test_sort_0d():
  out = Tensor(np.float32(2.5)).sort()
  assert out.values.shape == () and out.values.item() == 2.5 and out.indices.item() == 0


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("shape,k,dim", [((6,), 3, -1), ((6,), 6, 0), ((6,), 0, 0), ((3, 5), 2, 1), ((3, 5), 1, 0), ((2, 3, 4), 2, 1),
                                         ((1, 4), 1, 0), ((0, 4), 2, 1), ((4, 1), 1, 1)], ids=str)
def test_topk(shape, k, dim, largest):
  a = distinct(shape, seed=3)
  helper_test_op(None, lambda x: x.topk(k, dim, largest=largest), inputs=[a])
  (tv, ti), out = both(a, lambda x: x.topk(k, dim, largest=largest), lambda x: x.topk(k, dim, largest=largest))
  assert out.indices.dtype == dtypes.int64 and out.values is out[0]
  compare(out.indices.numpy(), ti.numpy(), 0, 0, "indices")


def test_topk_noncontiguous_unsorted_and_errors():
  a = distinct((5, 6), seed=4)
  helper_test_op(None, lambda x: (x.T.flip(0) if isinstance(x, torch.Tensor) else x.T[::-1]).topk(2, 0), inputs=[a])
  # sorted=False: torch leaves the order open, so compare the sets
  tv, lv = torch.tensor(a).topk(3, 1, sorted=False).values, Tensor(a).topk(3, 1, sorted=False).values
  compare(np.sort(lv.numpy(), 1), np.sort(tv.numpy(), 1), 0, 0)
  with pytest.raises((ValueError, IndexError, RuntimeError)): Tensor(a).topk(7, 1)


@pytest.mark.parametrize("dtype", ["int32", "float16"])
def test_topk_dtypes(dtype):
  a = distinct((3, 8), seed=5, dtype=np.float32) * 10
  a = a.astype(dtype)
  (tv, ti), out = both(a, lambda x: x.topk(3, 1), lambda x: x.topk(3, 1))
  assert out.values.dtype == dtypes.from_any(tv.dtype)
  compare(out.values.numpy(), tv.numpy(), 0, 0)
  compare(out.indices.numpy(), ti.numpy(), 0, 0)


# ============================================================ var_mean

@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim,correction", [(None, 1), (0, 1), (1, 0), (-1, 2), ((0, 1), 1)], ids=str)
def test_var_mean(dim, correction, keepdim):
  kw_t = {"dim": dim if dim is not None else (0, 1, 2), "correction": correction, "keepdim": keepdim}
  kw_l = {"dim": dim, "correction": correction, "keepdim": keepdim}
  # both outputs stacked: values and gradients of var and mean together
  helper_test_op([(3, 4, 5)], lambda x: torch.stack(torch.var_mean(x, **kw_t)), lambda x: Tensor.stack(list(x.var_mean(**kw_l))))
  v, m = Tensor.ones(3, 4).var_mean(**kw_l)
  tv, tm = torch.var_mean(torch.ones(3, 4), **{**kw_t, "dim": dim if dim is not None else (0, 1)})
  assert v.shape == tuple(tv.shape) and m.shape == tuple(tm.shape)


def test_var_mean_edge():
  helper_test_op([(4, 6)], lambda x: torch.stack(torch.var_mean(x.T[::2], 0)), lambda x: Tensor.stack(list(x.T[::2].var_mean(0))))
  helper_test_op([(4,)], lambda x: torch.stack(torch.var_mean(x.unsqueeze(1).expand(4, 3), 1, correction=0)),
                 lambda x: Tensor.stack(list(x.unsqueeze(1).expand(4, 3).var_mean(1, correction=0))))
  helper_test_op([(1, 3)], lambda x: torch.stack(torch.var_mean(x, 0, correction=0)), lambda x: Tensor.stack(list(x.var_mean(0, correction=0))))
  helper_test_op([(0, 3)], lambda x: torch.stack(torch.var_mean(x, 1)), lambda x: Tensor.stack(list(x.var_mean(1))))
  helper_test_op([(3, 6)], lambda x: torch.stack(torch.var_mean(x, 1)), lambda x: Tensor.stack(list(x.var_mean(1))), dtype="float16",
                 rtol=2e-2, atol=2e-2, grad_rtol=5e-2, grad_atol=5e-2)
  # integer input: refused, as torch refuses it
  with pytest.raises((TypeError, ValueError)): Tensor([[1, 2, 4]]).var_mean(1)


# ============================================================ randperm

@pytest.mark.parametrize("n", [0, 1, 2, 7, 100])
def test_randperm(n):
  Tensor.manual_seed(7)
  p = Tensor.randperm(n)
  assert p.dtype == dtypes.int64 and p.shape == (n,)
  a = p.numpy()
  np.testing.assert_array_equal(np.sort(a), np.arange(n))
  Tensor.manual_seed(7)
  np.testing.assert_array_equal(Tensor.randperm(n).numpy(), a)
  if n == 100:
    assert not np.array_equal(Tensor.randperm(n).numpy(), a) and not np.array_equal(a, np.arange(n))
    # usable as an index, as a shuffle
    x = Tensor.arange(100) * 2
    np.testing.assert_array_equal(x[p].numpy(), a * 2)


# ============================================================ nan_to_num

NTN = np.array([[0.5, np.nan, np.inf], [-np.inf, -2.0, 0.0], [np.nan, 1e-3, -np.inf]], dtype=np.float32)


@pytest.mark.parametrize("kw", [{}, {"nan": 1.5}, {"posinf": 10.0}, {"neginf": -7.0}, {"nan": -1.0, "posinf": 2.0, "neginf": -2.0}], ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_nan_to_num(dtype, kw):
  # (torch's gradient is 1 where finite and 0 where replaced)
  helper_test_op(None, lambda x: x.nan_to_num(**kw), inputs=[NTN.astype(dtype)])


def test_nan_to_num_noncontiguous_and_empty():
  helper_test_op(None, lambda x: (x.T.flip(0) if isinstance(x, torch.Tensor) else x.T[::-1])[:, ::2].nan_to_num(nan=3.0), inputs=[NTN])
  helper_test_op(None, lambda x: x[:1].expand(4, 3).nan_to_num(posinf=1.0), inputs=[NTN])
  helper_test_op([(0, 3)], lambda x: x.nan_to_num())
  helper_test_op(None, lambda x: (x * 2).nan_to_num() * 3, inputs=[NTN])


def test_nan_to_num_int():
  helper_test_op(None, lambda x: x.nan_to_num(), inputs=[np.array([1, -2, 3], dtype=np.int32)])


# ============================================================ the rest of the untested public methods

UNARY = [
  ("expm1", torch.expm1, lambda x: x.expm1(), -2, 2), ("log1p", torch.log1p, lambda x: x.log1p(), -0.5, 3),
  ("log10", torch.log10, lambda x: x.log10(), 0.1, 5), ("frac", torch.frac, lambda x: x.frac(), -3, 3),
  ("hardsigmoid", F.hardsigmoid, lambda x: x.hardsigmoid(), -4, 4), ("swish", F.silu, lambda x: x.swish(), -4, 4),
  ("clip", lambda x: x.clip(-0.5, 0.7), None, -2, 2), ("clip_min", lambda x: x.clip(min=0.1), None, -2, 2),
  ("clip_max", lambda x: x.clip(max=-0.1), None, -2, 2),
]


@pytest.mark.parametrize("name,tf,lf,low,high", UNARY, ids=[u[0] for u in UNARY])
def test_unary_untested(name, tf, lf, low, high):
  helper_test_op([(3, 5)], tf, lf, low=low, high=high)
  lf = lf or tf
  helper_test_op([(5, 4)], lambda x: tf(x.T[:, ::2]), lambda x: lf(x.T[:, ::2]), low=low, high=high)
  helper_test_op([(0, 2)], tf, lf)


def test_unary_untested_edges():
  helper_test_op(None, torch.log1p, lambda x: x.log1p(), inputs=[np.array([-1.0, 0.0, 1.0], dtype=np.float32)], grad=False)
  helper_test_op(None, torch.log10, lambda x: x.log10(), inputs=[np.array([1, 10, 1000], dtype=np.int32)], rtol=1e-6, atol=1e-6)
  helper_test_op(None, torch.frac, lambda x: x.frac(), inputs=[np.array([-2.5, -1.0, 0.0, 0.25, 7.75], dtype=np.float16)])
  # hardsigmoid away from the kinks at +-3
  helper_test_op(None, F.hardsigmoid, lambda x: x.hardsigmoid(), inputs=[np.array([-5.0, -2.9, 0.0, 2.9, 5.0], dtype=np.float32)])
  helper_test_op(None, lambda x: x.clip(-1, 1), inputs=[np.arange(-3, 4, dtype=np.int64)])


@pytest.mark.parametrize("op", ["fmod", "remainder"])
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_fmod_remainder(op, dtype):
  r = np.random.default_rng(8)
  if dtype == "float32":
    a = r.uniform(-5, 5, (3, 4)).astype(np.float32)
    b = (r.uniform(0.5, 2, (4,)) * r.choice([-1.0, 1.0], (4,))).astype(np.float32)
  else:
    a = r.integers(-9, 10, (3, 4)).astype(dtype)
    b = (r.integers(1, 4, (4,)) * np.array([1, -1, 1, -1])).astype(dtype)
  helper_test_op(None, lambda x, y: getattr(x, op)(y), inputs=[a, b])
  helper_test_op(None, lambda x: getattr(x, op)(1.5 if dtype == "float32" else 3), inputs=[a])
  helper_test_op(None, lambda x: getattr(x, op)(-2), inputs=[a])
  helper_test_op(None, lambda x, y: getattr(x.T, op)(y[:3]), inputs=[a, b])


def test_bmm_outer():
  helper_test_op([(2, 3, 4), (2, 4, 5)], lambda a, b: a.bmm(b))
  helper_test_op([(2, 4, 3), (2, 5, 4)], lambda a, b: a.transpose(1, 2).bmm(b.transpose(1, 2)))
  helper_test_op([(1, 1, 3), (1, 3, 0)], lambda a, b: a.bmm(b))
  helper_test_op([(3,), (4,)], lambda a, b: a.outer(b))
  helper_test_op([(6,), (1,)], lambda a, b: a[::2].outer(b.expand(3)) if isinstance(a, Tensor) else a[::2].outer(b.expand(3)))
  helper_test_op([(0,), (2,)], lambda a, b: a.outer(b))
  helper_test_op([(3,), (2,)], lambda a, b: a.outer(b), dtype="int32", low=-4, high=4)


CONV1D = [((2, 3, 9), (4, 3, 3), {}), ((1, 2, 8), (3, 2, 1), {"stride": 2}), ((2, 4, 7), (6, 2, 3), {"groups": 2, "padding": 1}),
          ((1, 2, 9), (2, 2, 2), {"dilation": 3, "padding": 2, "stride": 2}), ((1, 1, 5), (1, 1, 5), {}), ((2, 3, 6), (4, 3, 3), {"padding": "same"})]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("xs,ws,kw", CONV1D, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CONV1D])
def test_conv1d(xs, ws, kw, bias):
  shapes = [xs, ws] + ([(ws[0],)] if bias else [])
  helper_test_op(shapes, lambda x, w, *b: F.conv1d(x, w, *b, **kw), lambda x, w, *b: x.conv1d(w, *b, **kw), atol=1e-4, grad_atol=1e-3)


def test_conv1d_noncontiguous():
  helper_test_op([(3, 2, 7), (4, 3, 3)], lambda x, w: F.conv1d(x.permute(1, 0, 2).flip(2), w), lambda x, w: x.permute(1, 0, 2)[..., ::-1].conv1d(w),
                 atol=1e-4, grad_atol=1e-3)


@pytest.mark.parametrize("xs,out", [((2, 3, 6, 6), 3), ((2, 3, 6, 6), (2, 3)), ((1, 2, 7, 5), (3, 2)), ((1, 2, 5, 5), 1), ((2, 4, 4), (4, 4)),
                                    ((1, 1, 3, 3), 5)], ids=str)
def test_adaptive_avg_pool2d(xs, out):
  helper_test_op([xs], lambda x: F.adaptive_avg_pool2d(x, out), lambda x: x.adaptive_avg_pool2d(out))


def test_adaptive_avg_pool2d_noncontiguous():
  helper_test_op([(2, 1, 7, 6)], lambda x: F.adaptive_avg_pool2d(x.permute(1, 0, 3, 2), (4, 3)),
                 lambda x: x.permute(1, 0, 3, 2).adaptive_avg_pool2d((4, 3)))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumprod(dim):
  helper_test_op([(3, 4)], lambda x: x.cumprod(dim), low=0.5, high=1.5)
  a = np.array([[0.0, 2.0, 3.0, -1.0], [1.0, 0.0, 0.0, 2.0], [-1.5, 1.0, 2.0, 0.5]], dtype=np.float32)
  helper_test_op(None, lambda x: x.cumprod(dim), inputs=[a])   # zeros: torch's gradient there is the product of the others
  helper_test_op(None, lambda x: x.T.cumprod(dim), inputs=[a])


def test_cumprod_edge():
  helper_test_op([(1,)], lambda x: x.cumprod(0))
  helper_test_op([(0, 3)], lambda x: x.cumprod(1))
  helper_test_op(None, lambda x: x.cumprod(1), inputs=[np.array([[1, -2, 3], [0, 4, 5]], dtype=np.int32)])
  helper_test_op([(4,)], lambda x: x.unsqueeze(0).expand(2, 4).cumprod(1), low=0.5, high=1.5)


def test_cumprod_empty_dim():
  helper_test_op([(0, 3)], lambda x: x.cumprod(0))


@pytest.mark.parametrize("diagonal", [0, 1, -1, 3, -4])
@pytest.mark.parametrize("op", ["tril", "triu"])
def test_tril_triu(op, diagonal):
  helper_test_op([(4, 5)], lambda x: getattr(x, op)(diagonal))
  helper_test_op([(2, 3, 3)], lambda x: getattr(x, op)(diagonal))
  helper_test_op([(5, 4)], lambda x: getattr(x.T, op)(diagonal))
  helper_test_op(None, lambda x: getattr(x, op)(diagonal), inputs=[np.arange(12, dtype=np.int32).reshape(3, 4)])
  helper_test_op(None, lambda x: getattr(x, op)(diagonal), inputs=[np.ones((3, 3), dtype=bool)])
  helper_test_op([(0, 3)], lambda x: getattr(x, op)(diagonal))


MOVES = [
  ("movedim", lambda x: x.movedim(0, 2)), ("movedim_neg", lambda x: x.movedim(-1, 0)), ("movedim_same", lambda x: x.movedim(1, 1)),
  ("t_1d", lambda x: x[0, 0].t()), ("t_2d", lambda x: x[0].t()), ("t_0d", lambda x: x[0, 0, 0].t()),
  ("tile", lambda x: x.tile(2, 1, 2)), ("tile_more", lambda x: x.tile(2, 1, 1, 3)), ("tile_tuple", lambda x: x.tile((1, 2, 1))),
  ("expand_as", lambda x: x[:, :1].expand_as(x)), ("expand_as_new", lambda x: x.expand_as(x.unsqueeze(0).expand(2, 2, 3, 4))),
  ("reshape_as", lambda x: x.reshape_as(x.reshape(4, 6))), ("view_as", lambda x: x.view_as(x.reshape(6, 2, 2))),
]


@pytest.mark.parametrize("name,fn", MOVES, ids=[m[0] for m in MOVES])
def test_movement_untested(name, fn):
  helper_test_op([(2, 3, 4)], fn)


@pytest.mark.parametrize("name,fn", [
  pytest.param("movedim_tuple", lambda x: x.movedim((0, 1), (2, 0))),
], ids=lambda v: v if isinstance(v, str) else "")
def test_movement_untested_torch_forms(name, fn):
  helper_test_op([(2, 3, 4)], fn)


def test_tile_fewer_reps_refused():
  # documented: tile is repeat, so fewer reps than dims is an error (torch.tile would pad the reps with leading 1s)
  with pytest.raises(ValueError): Tensor.ones(2, 3).tile(2)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_unbind(dim):
  a = np.random.default_rng(9).uniform(-2, 2, (2, 3, 4)).astype(np.float32)
  t_parts, l_parts = torch.tensor(a).unbind(dim), Tensor(a).unbind(dim)
  assert len(t_parts) == len(l_parts) and all(tuple(t.shape) == lp.shape for t, lp in zip(t_parts, l_parts))
  helper_test_op(None, lambda x: torch.stack([p * (i + 1) for i, p in enumerate(x.unbind(dim))], -1),
                 lambda x: Tensor.stack([p * (i + 1) for i, p in enumerate(x.unbind(dim))], -1), inputs=[a])
  assert Tensor.zeros(0, 3).unbind(0) == [] and len(Tensor.zeros(0, 3).unbind(1)) == 3


@pytest.mark.parametrize("dtype", ["float32", "float16", "int32", "int64", "bool", "uint8", "float64"])
def test_element_size_type(dtype):
  a = np.zeros((2, 3), dtype=dtype)
  assert Tensor(a).element_size() == torch.tensor(a).element_size()
  x = np.array([-1.5, 0.0, 2.7], dtype=np.float32)
  ref, out = torch.tensor(x).type(getattr(torch, dtype)), Tensor(x).type(getattr(dtypes, dtype))
  assert out.dtype == getattr(dtypes, dtype) and out.element_size() == ref.element_size()
  compare(out.numpy(), ref.numpy(), 1e-3, 1e-3)


@pytest.mark.parametrize("dtype", ["float32", "int32", "float16"])
def test_fill_zero_(dtype):
  a = np.arange(6).reshape(2, 3).astype(dtype)
  want_y = a * 2
  x, t = Tensor(a.copy()), torch.tensor(a)
  y = x * 2   # a reader of the old value, computed after the fill: it must see the old value
  assert x.fill_(3) is x
  t.fill_(3)
  assert x.dtype == dtypes.from_any(t.dtype)
  compare(x.numpy(), t.numpy(), 0, 0)
  compare(y.numpy(), want_y, 0, 0)
  x.zero_(); t.zero_()
  compare(x.numpy(), t.numpy(), 0, 0)
  z = Tensor.ones(0, 2, dtype=getattr(dtypes, dtype)).fill_(2)
  assert z.shape == (0, 2)


def test_is_leaf():
  a = np.ones(3, dtype=np.float32)
  for req in (False, True):
    tx, lx = torch.tensor(a, requires_grad=req), Tensor(a, requires_grad=req)
    assert lx.is_leaf == tx.is_leaf
    assert (lx * 2).is_leaf == (tx * 2).is_leaf
    assert lx.detach().is_leaf == tx.detach().is_leaf
  assert Tensor.zeros(2).is_leaf
