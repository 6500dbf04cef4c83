"""The methods in lazygrad/tensor_extra.py vs torch: values and gradients, incl. non-contiguous inputs and empty dims."""
import numpy as np
import pytest
import torch
from lazygrad import Tensor, dtypes, schedule
from helpers import helper_test_op, compare, compile_for_hopper, hopper_job
from .common import arr

# name -> (low, high) of the random inputs: inside the function's domain
UNARY = {"neg": (-2, 2), "negative": (-2, 2), "atan": (-6, 6), "arctan": (-6, 6), "asin": (-0.95, 0.95), "acos": (-0.95, 0.95),
         "sinh": (-4, 4), "cosh": (-4, 4), "asinh": (-5, 5), "acosh": (1.05, 6), "atanh": (-0.95, 0.95), "arccosh": (1.05, 6)}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary(name):
  lo, hi = UNARY[name]
  helper_test_op([(3, 5)], lambda x: getattr(x, name)(), low=lo, high=hi)
  helper_test_op([(4, 3)], lambda x: getattr(x.T, name)(), low=lo, high=hi)   # non-contiguous
  helper_test_op([(0, 3)], lambda x: getattr(x, name)(), low=lo, high=hi)


def test_unary_edges():
  special = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-8, -1e-8, 1e10, -1e10, 3.0, 0.3], np.float32)
  for name in ("atan", "asin", "acos", "sinh", "cosh", "asinh", "acosh", "atanh"):
    with np.errstate(all="ignore"):
      compare(getattr(Tensor(special), name)().numpy(), getattr(torch.tensor(special), name)().numpy(), 2e-6, 1e-7, name)


def test_unary_half_and_int():
  helper_test_op([(3, 4)], lambda x: x.atan(), dtype="float16")
  helper_test_op([(3, 4)], lambda x: x.sinh(), dtype="int32", low=-3, high=3)


def test_neg_bool_raises():
  with pytest.raises(TypeError, match="neg"): Tensor([True]).neg()


def test_gradient_at_zero():
  for name in ("atan", "asin", "asinh", "atanh", "sinh"):
    helper_test_op([], lambda x: getattr(x, name)(), inputs=[np.zeros((3,), np.float32)])


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1), (1, 3)), ((0, 3), (3,))], ids=str)
def test_binary(shapes):
  helper_test_op(shapes, lambda a, b: a.copysign(b))
  helper_test_op(shapes, lambda a, b: a.logaddexp(b), low=-30, high=30)


def test_copysign_signed_zero_and_scalar():
  a = np.array([1.0, -2.0, 0.0, 3.0], np.float32)
  b = np.array([-0.0, 0.0, -1.0, -np.nan], np.float32)
  compare(Tensor(a).copysign(Tensor(b)).numpy(), torch.tensor(a).copysign(torch.tensor(b)).numpy(), 0, 0)
  helper_test_op([(3,)], lambda a: a.copysign(-1.0))
  helper_test_op([(3,)], lambda a: a.copysign(2), dtype="int32", low=-3, high=3)


def test_logaddexp_edges():
  a = np.array([np.inf, -np.inf, 1e30, -1e30, 0.0, np.nan], np.float32)
  b = np.array([np.inf, -np.inf, 1e30, 5.0, -np.inf, 1.0], np.float32)
  compare(Tensor(a).logaddexp(Tensor(b)).numpy(), torch.tensor(a).logaddexp(torch.tensor(b)).numpy(), 1e-6, 0)
  helper_test_op([], lambda a, b: a.logaddexp(b), inputs=[np.ones(3, np.float32), np.ones(3, np.float32)])   # ties: half each


def test_clamp_min_max():
  helper_test_op([(3, 4)], lambda x: x.clamp_min(-0.5))
  helper_test_op([(3, 4)], lambda x: x.clamp_max(0.5))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_logcumsumexp(dim):
  helper_test_op([(3, 5)], lambda x: x.logcumsumexp(dim))
  helper_test_op([(5, 3)], lambda x: x.T.logcumsumexp(dim))


def test_logcumsumexp_no_underflow_and_empty():
  x = np.array([-1000.0, 0.0, -np.inf, 5.0], np.float32)
  compare(Tensor(x).logcumsumexp(0).numpy(), torch.tensor(x).logcumsumexp(0).numpy(), 1e-6, 0)
  helper_test_op([(0, 3)], lambda x: x.logcumsumexp(0))
  with pytest.raises(TypeError): Tensor([1, 2]).logcumsumexp(0)


@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_cummax_cummin(op):
  for shape, dim in (((3, 5), 1), ((4, 3), 0), ((0, 3), 0), ((), 0)):
    helper_test_op([shape], lambda x: getattr(x, op)(dim)[0])
    x = arr(shape)
    li, ti = getattr(Tensor(x), op)(dim)[1], getattr(torch.tensor(x), op)(dim)[1]
    assert li.dtype == dtypes.int64
    compare(li.numpy(), ti.numpy(), 0, 0, "indices")
  helper_test_op([(5, 4)], lambda x: getattr(x.T, op)(1)[0])   # non-contiguous


@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_cummax_ties_nan_int(op):
  x = np.array([[1.0, 3.0, 3.0, 0.0, 3.0], [2.0, np.nan, 5.0, np.nan, -1.0]], np.float32)
  lv, li = getattr(Tensor(x), op)(1)
  tv, ti = getattr(torch.tensor(x), op)(1)
  compare(lv.numpy(), tv.numpy(), 0, 0, "values")
  compare(li.numpy(), ti.numpy(), 0, 0, "indices")
  helper_test_op([], lambda t: getattr(t, op)(1)[0], inputs=[np.array([[1.0, 3.0, 3.0, 0.0, 3.0]], np.float32)])  # gradient to the index
  xi = np.array([[3, 1, 3, -2], [0, 0, 7, 7]], np.int32)
  lv, li = getattr(Tensor(xi), op)(1)
  tv, ti = getattr(torch.tensor(xi), op)(1)
  compare(lv.numpy(), tv.numpy(), 0, 0)
  compare(li.numpy(), ti.numpy(), 0, 0)


@pytest.mark.parametrize("args", [(0, 0, 1), (1, 0, 1), (-2, 0, 1), (0, 1, 2), (1, -1, 0), (5, 0, 1)], ids=str)
def test_diagonal(args):
  helper_test_op([(2, 3, 4)], lambda x: x.diagonal(*args))
  helper_test_op([(4, 3, 2)], lambda x: x.permute(2, 1, 0).diagonal(*args))


@pytest.mark.parametrize("k", [0, 2, -1])
def test_diag(k):
  helper_test_op([(3,)], lambda x: x.diag(k))
  helper_test_op([(3, 4)], lambda x: x.diag(k))
  helper_test_op([(4, 3)], lambda x: x.T.diag(k))
  helper_test_op([(0,)], lambda x: x.diag(k))
  helper_test_op([(3,)], lambda x: x.diag(k), dtype="int32")


@pytest.mark.parametrize("shifts,dims", [(1, 0), (-2, 1), ((1, 3), (0, 1)), (7, None), (2, -1), (0, 0)], ids=str)
def test_roll(shifts, dims):
  helper_test_op([(3, 4)], lambda x: x.roll(shifts, dims))
  helper_test_op([(4, 3)], lambda x: x.T.roll(shifts, dims))


def test_roll_empty():
  helper_test_op([(0, 3)], lambda x: x.roll(1, 0))


@pytest.mark.parametrize("args", [(1, 2, 1), (1, 2, 2), (0, 3, 1), (-1, 5, 3), (1, 1, 4)], ids=str)
def test_unfold(args):
  helper_test_op([(3, 5)], lambda x: x.unfold(*args))
  helper_test_op([(5, 3)], lambda x: x.T.unfold(*args))


def test_unfold_errors():
  with pytest.raises(ValueError, match="unfold"): Tensor(np.zeros((2, 3), np.float32)).unfold(1, 4, 1)
  with pytest.raises(ValueError, match="unfold"): Tensor(np.zeros((2, 3), np.float32)).unfold(1, 2, 0)


def test_nonzero():
  x = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]], np.float32)
  compare(Tensor(x).nonzero().numpy(), torch.tensor(x).nonzero().numpy(), 0, 0)
  for lt, tt in zip(Tensor(x).nonzero(as_tuple=True), torch.tensor(x).nonzero(as_tuple=True)): compare(lt.numpy(), tt.numpy(), 0, 0)
  assert Tensor(x).nonzero().dtype == dtypes.int64
  compare(Tensor(np.zeros((0, 2), np.float32)).nonzero().numpy(), torch.zeros(0, 2).nonzero().numpy(), 0, 0)


IDX = np.array([[0, 1, 0, 3], [2, 2, 1, 0], [3, 3, 3, 3]])


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce(reduce, include_self):
  idx = IDX
  helper_test_op([(3, 4), (3, 4)], lambda x, s: x.scatter_reduce(1, Tensor(idx) if isinstance(x, Tensor) else torch.tensor(idx), s, reduce,
                                                                 include_self=include_self))
  # dim 0, an index smaller than self, a non-contiguous src (torch's backward needs src shaped as index)
  i0 = IDX[:2, :3] % 3
  helper_test_op([(3, 4), (3, 2)], lambda x, s: x.scatter_reduce(0, Tensor(i0) if isinstance(x, Tensor) else torch.tensor(i0), s.T, reduce,
                                                                 include_self=include_self))


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
def test_scatter_reduce_int(reduce):
  x = np.arange(12, dtype=np.int64).reshape(3, 4) - 5
  s = (np.arange(12, dtype=np.int64).reshape(3, 4) * 3) % 7 - 2
  want = torch.tensor(x).scatter_reduce(1, torch.tensor(IDX), torch.tensor(s), reduce).numpy()
  compare(Tensor(x).scatter_reduce(1, Tensor(IDX), Tensor(s), reduce).numpy(), want, 0, 0)


@pytest.mark.parametrize("reduce", ["sum", "amax"])
def test_scatter_reduce_empty_index(reduce):
  i = np.zeros((2, 0), np.int64)
  helper_test_op([(2, 3), (2, 0)], lambda x, s: x.scatter_reduce(1, Tensor(i) if isinstance(x, Tensor) else torch.tensor(i), s, reduce))


def test_scatter_reduce_errors():
  x = Tensor(np.zeros((3, 4), np.float32))
  with pytest.raises(ValueError, match="scatter_reduce"): x.scatter_reduce(1, Tensor(IDX), x, "max")
  with pytest.raises(TypeError, match="scatter_reduce"): x.scatter_reduce(1, x, x, "sum")


@pytest.mark.parametrize("reduce", ["add", "multiply"])
def test_scatter_reduce_arg(reduce):
  """Values only: torch has no derivative for scatter(reduce=) (lazygrad's is scatter_reduce's, tested above)."""
  idx = IDX
  helper_test_op([(3, 4), (3, 4)], lambda x, s: x.scatter(1, Tensor(idx) if isinstance(x, Tensor) else torch.tensor(idx), s, reduce=reduce),
                 grad=False)
  helper_test_op([(3, 4)], lambda x: x.scatter(1, Tensor(idx) if isinstance(x, Tensor) else torch.tensor(idx), 1.5, reduce=reduce), grad=False)
  # a src bigger than index
  helper_test_op([(3, 4), (3, 4)], lambda x, s: x.scatter(1, Tensor(idx[:, :2]) if isinstance(x, Tensor) else torch.tensor(idx[:, :2]), s,
                                                          reduce=reduce), grad=False)


def test_sort_stable():
  x = np.array([[3.0, 1.0, 3.0, 1.0, 2.0]], np.float32)
  for desc in (False, True):
    compare(Tensor(x).argsort(stable=True, descending=desc).numpy(), torch.tensor(x).argsort(stable=True, descending=desc).numpy(), 0, 0)
    lv, li = Tensor(x).sort(stable=True, descending=desc)
    tv, ti = torch.tensor(x).sort(stable=True, descending=desc)
    compare(li.numpy(), ti.numpy(), 0, 0)
    compare(lv.numpy(), tv.numpy(), 0, 0)


@pytest.mark.parametrize("src,dst", [("float32", "int32"), ("int32", "float32"), ("float16", "int16"),
                                     ("float16", "bfloat16"), ("int64", "float64")], ids=str)
def test_view_dtype_bitcast(src, dst):
  x = np.array([[1.5, -2.0, 0.0], [-0.0, 3.25, 100.0]], np.float32).astype(src)
  want = torch.tensor(x).view(getattr(torch, dst))
  got = Tensor(x).view(getattr(dtypes, dst))
  assert got.dtype == getattr(dtypes, dst)
  compare(got.float().numpy(), want.float().numpy(), 0, 0)
  compare(Tensor(x).T.view(getattr(dtypes, dst)).float().numpy(), want.T.float().numpy(), 0, 0)   # non-contiguous


def test_view_dtype_size_mismatch_and_shape():
  with pytest.raises(ValueError, match="view"): Tensor(np.zeros(4, np.float32)).view(dtypes.float16)
  helper_test_op([(3, 4)], lambda x: x.view(2, 6))


def test_extra_kernels_compile_for_hopper_sm90(device, tmp_path):
  """The kernels of the compositions (forward and backward) compile for sm_90: no construct Triton rejects."""
  if device != "interp": pytest.skip("compiled once, from the interp run")
  x = Tensor(arr((8, 16)), requires_grad=True)
  idx = Tensor(np.random.default_rng(0).integers(0, 16, (8, 16)))
  outs = [x.atan(), x.acosh(), x.cummax(1)[0], x.logcumsumexp(1), x.copysign(-x), x.logaddexp(x.sum(0)), x.unfold(1, 4, 2),
          x.scatter_reduce(1, idx, x, "amax"), x.diagonal(), x.roll(3, 1)]
  sum(o.sum() for o in outs).backward()
  jobs = [hopper_job(it.kernel) for it in schedule(*outs, x.grad)]
  results = compile_for_hopper(jobs, str(tmp_path))
  assert len(results) == len(jobs) > 0


# ---- einsum (lazygrad.einsum / Tensor.einsum) and a 0-d cumprod
EINSUM = [("ij,jk->ik", [(3, 4), (4, 5)]), ("ij,jk", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
          ("ii->i", [(4, 4)]), ("ii", [(4, 4)]), ("ij->ji", [(3, 4)]), ("ij->", [(3, 4)]), ("i,j->ij", [(3,), (4,)]),
          ("i,i->", [(5,)] * 2), ("bii->bi", [(2, 3, 3)]), ("ij,ij->i", [(3, 4), (1, 4)]), ("iij,jk->ik", [(3, 3, 2), (2, 4)]),
          ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]), ("ij,jk->ik", [(0, 4), (4, 5)])]


@pytest.mark.parametrize("eq,shapes", EINSUM, ids=[e for e, _ in EINSUM])
def test_einsum(eq, shapes):
  helper_test_op(shapes, lambda *xs: torch.einsum(eq, *xs), lambda *xs: Tensor.einsum(eq, *xs))


def test_einsum_module_level_list_form_and_non_contiguous():
  import lazygrad
  helper_test_op([(4, 3), (5, 4)], lambda a, b: torch.einsum("ij,jk->ik", [a.T, b.T]), lambda a, b: lazygrad.einsum("ij,jk->ik", [a.T, b.T]))


def test_einsum_matmul_is_one_contraction():
  a, b = Tensor(arr((8, 16))), Tensor(arr((16, 4), seed=1))
  items = schedule(Tensor.einsum("ij,jk->ik", a, b))
  assert len(items) == 1 and items[0].name.startswith("mm_")


@pytest.mark.parametrize("eq,shapes", [("ij,jk->ik", [(3, 4), (5, 6)]), ("ij->k", [(3, 4)]), ("ij", [(3, 4, 5)]), ("i...->i", [(3,)]),
                                       ("ij,jk->ik", [(3, 4)])])
def test_einsum_errors(eq, shapes):
  with pytest.raises((ValueError, RuntimeError)):
    Tensor.einsum(eq, *[Tensor(arr(s)) for s in shapes]).numpy()


def test_cumprod_0d():
  helper_test_op([()], lambda x: x.cumprod(0))
