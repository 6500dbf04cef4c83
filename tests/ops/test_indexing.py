"""Indexing, joining and gathering vs torch: basic/advanced/bool indexing, cat/stack/split/chunk, gather/scatter_add, masked_fill, one_hot."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lazygrad import Tensor
from helpers import helper_test_op, compare
from .common import arr


# ============================================================ indexing

def _idx_cases():
  # each: name, fn(x, mk) where mk(list or array) makes an index tensor of the framework
  return [
    ("int", lambda x, mk: x[1]), ("neg_int", lambda x, mk: x[-1]), ("int_int", lambda x, mk: x[2, -3]),
    ("int3", lambda x, mk: x[1, 2, 3]), ("slice", lambda x, mk: x[1:3]), ("slice_open", lambda x, mk: x[:, 2:]),
    ("slice_neg", lambda x, mk: x[-3:-1, :-2]), ("slice_step", lambda x, mk: x[::2, 1::3]), ("slice_step3", lambda x, mk: x[:, :, 1:6:3]),
    ("slice_step_big", lambda x, mk: x[::10]), ("slice_empty", lambda x, mk: x[3:1]), ("slice_oob", lambda x, mk: x[2:100, -100:2]),
    ("neg_step", lambda x, mk: x[::-1]), ("neg_step2", lambda x, mk: x[:, ::-2]), ("neg_step_bounds", lambda x, mk: x[3:0:-2, 4:1:-1]),
    ("neg_step_all", lambda x, mk: x[::-1, ::-3, ::-4]), ("neg_step_neg_start", lambda x, mk: x[-1:-4:-2]),
    ("neg_step_int", lambda x, mk: x[2, ::-2, mk([1, 0])]),
    ("none", lambda x, mk: x[None]), ("none_mid", lambda x, mk: x[:, None, 1]), ("none_end", lambda x, mk: x[..., None]),
    ("ellipsis", lambda x, mk: x[..., 1]), ("ellipsis_mid", lambda x, mk: x[1, ..., 2:4]), ("ellipsis_only", lambda x, mk: x[...]),
    ("ellipsis_none", lambda x, mk: x[None, ..., None, 0]),
    ("tensor", lambda x, mk: x[mk([0, 2, 2, 1])]), ("tensor_neg", lambda x, mk: x[mk([-1, 0])]),
    ("tensor_2d", lambda x, mk: x[mk([[0, 1], [3, 3]])]), ("tensor_dim1", lambda x, mk: x[:, mk([4, 0])]),
    ("tensor_two", lambda x, mk: x[mk([0, 1, 2]), mk([1, 2, 0])]), ("tensor_bcast", lambda x, mk: x[mk([[0], [3]]), mk([1, 4, 2])]),
    ("tensor_sep", lambda x, mk: x[mk([0, 1]), :, mk([5, 0])]), ("tensor_int", lambda x, mk: x[1, mk([2, 0]), 3]),
    ("tensor_adj", lambda x, mk: x[:, mk([1, 2]), mk([0, 5])]), ("tensor_slice", lambda x, mk: x[mk([2, 0]), 1:4:2]),
    ("tensor_ellipsis", lambda x, mk: x[..., mk([0, 0, 5])]), ("tensor_none", lambda x, mk: x[None, mk([1, 0])]),
    ("list", lambda x, mk: x[[0, 3, 1]]), ("list_neg", lambda x, mk: x[:, [-1, -5]]), ("list_two", lambda x, mk: x[[0, 1], [2, 3]]),
    ("tensor_0d", lambda x, mk: x[mk(2)]),
    ("bool_mask", lambda x, mk: x[mk(np.array([True, False, True, False]))]),
    ("bool_mask_2d", lambda x, mk: x[mk(np.arange(20).reshape(4, 5) % 3 == 0)]),
    ("bool_mask_full", lambda x, mk: x[x > 0.5]), ("bool_mask_dim1", lambda x, mk: x[:, mk(np.array([True, False, False, True, True]))]),
    ("bool_mask_none", lambda x, mk: x[mk(np.zeros(4, dtype=bool))]),
  ]


IDX = _idx_cases()
# torch has no negative slice steps: the same elements, read from a flipped tensor
TORCH_NEG_STEP = {
  "neg_step": lambda x, mk: x.flip(0), "neg_step2": lambda x, mk: x.flip(1)[:, ::2],
  "neg_step_bounds": lambda x, mk: x.flip(0, 1)[0:3:2, 0:3], "neg_step_all": lambda x, mk: x.flip(0, 1, 2)[:, ::3, ::4],
  "neg_step_neg_start": lambda x, mk: x.flip(0)[0:3:2], "neg_step_int": lambda x, mk: x[2].flip(0)[::2, mk([1, 0])],
}


@pytest.mark.parametrize("name,fn", IDX, ids=[i[0] for i in IDX])
def test_indexing(name, fn):
  mk_t = lambda v: torch.tensor(v)
  mk_l = lambda v: Tensor(np.asarray(v))
  tfn = TORCH_NEG_STEP.get(name, fn)
  helper_test_op([(4, 5, 6)], lambda x: tfn(x, mk_t), lambda x: fn(x, mk_l))


@pytest.mark.parametrize("name,fn", [i for i in IDX if i[0] in ("int", "slice_step", "neg_step2", "tensor_two", "bool_mask_2d", "ellipsis_none")],
                         ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("dtype", ["int32", "float16", "bool"])
def test_indexing_dtypes(name, fn, dtype):
  if name == "bool_mask_full" and dtype == "bool": pytest.skip()
  tfn = TORCH_NEG_STEP.get(name, fn)
  helper_test_op([(4, 5, 6)], lambda x: tfn(x, lambda v: torch.tensor(v)), lambda x: fn(x, lambda v: Tensor(np.asarray(v))),
                 dtype=dtype, low=-3, high=3)


def test_indexing_noncontiguous():
  helper_test_op([(4, 6)], lambda x: x.T.flip(0)[::2, [0, 3]], lambda x: x.T[::-2, [0, 3]])
  helper_test_op([(4, 6)], lambda x: x.T.expand(2, 6, 4)[1, 1:5:2, -1])
  helper_test_op([(3,)], lambda x: x.unsqueeze(0).expand(4, 3)[torch.tensor([0, 3, 3])] if isinstance(x, torch.Tensor)
                 else x.unsqueeze(0).expand(4, 3)[Tensor([0, 3, 3])])


def test_indexing_int_dtypes_of_index():
  a = arr((5, 3))
  for dt in (np.int32, np.int64, np.int8, np.uint8):
    idx = np.array([4, 0, 2], dtype=dt)
    compare(Tensor(a)[Tensor(idx)].numpy(), torch.tensor(a)[torch.tensor(idx).long()].numpy(), 0, 0)


def test_index_repeated_grad():
  # repeated indices accumulate gradient
  helper_test_op([(5,)], lambda x: x[torch.tensor([1, 1, 1, 3])] if isinstance(x, torch.Tensor) else x[Tensor([1, 1, 1, 3])])


def test_indexing_errors():
  x = Tensor.ones(3, 4)
  with pytest.raises(IndexError): x[3]
  with pytest.raises(IndexError): x[-4]
  with pytest.raises(IndexError): x[0, 0, 0]


def test_iter_len():
  a = arr((3, 2))
  x = Tensor(a)
  assert len(x) == 3
  for row, ref in zip(x, a): np.testing.assert_array_equal(row.numpy(), ref)


# ============================================================ joining, splitting, gather/scatter

@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim):
  shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
  shapes = [tuple(s if i != dim % 3 else n for i, s in enumerate(sh)) for sh, n in zip(shapes, (1, 3, 2))]
  helper_test_op(shapes, lambda a, b, c: torch.cat([a, b, c], dim), lambda a, b, c: Tensor.cat([a, b, c], dim))
  helper_test_op(shapes, lambda a, b, c: torch.cat((a, b * 2, c.exp()), dim=dim), lambda a, b, c: Tensor.cat((a, b * 2, c.exp()), dim=dim))


def test_cat_edge():
  helper_test_op([(2, 3)], lambda a: torch.cat([a]), lambda a: Tensor.cat([a]))
  helper_test_op([(2, 3), (0, 3)], lambda a, b: torch.cat([a, b]), lambda a, b: Tensor.cat([a, b]))
  helper_test_op([(2, 3), (2, 3)], lambda a, b: torch.cat([a.T, b.flip(1).T], 1), lambda a, b: Tensor.cat([a.T, b[:, ::-1].T], 1))
  helper_test_op([(2, 3)], lambda a: torch.cat([a, a], 0), lambda a: Tensor.cat([a, a], 0))
  with pytest.raises(ValueError): Tensor.cat([Tensor.ones(2, 3), Tensor.ones(3, 3)], 1)


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_stack(dim):
  helper_test_op([(2, 3), (2, 3), (2, 3)], lambda a, b, c: torch.stack([a, b, c], dim), lambda a, b, c: Tensor.stack([a, b, c], dim))


def test_stack_edge():
  helper_test_op([()], lambda a: torch.stack([a, a * 2]), lambda a: Tensor.stack([a, a * 2]))
  helper_test_op([(0, 2)], lambda a: torch.stack([a, a], 1), lambda a: Tensor.stack([a, a], 1))
  with pytest.raises(ValueError): Tensor.stack([Tensor.ones(2), Tensor.ones(3)])


def _join(parts, dim, fw):
  return (torch.cat if fw is torch else Tensor.cat)([p * (i + 1) for i, p in enumerate(parts)], dim)


@pytest.mark.parametrize("args", [(2, 0), (3, 0), (1, 1), (4, 1), (10, 0), ([1, 4], 0), ([2, 0, 3], 1), ([5], 0), (2, -1)], ids=str)
def test_split(args):
  size, dim = args
  shape = (5, 5)
  tl = lambda x: list(torch.split(x, size, dim))
  ll = lambda x: x.split(size, dim)
  t_parts, l_parts = tl(torch.tensor(arr(shape))), ll(Tensor(arr(shape)))
  assert [tuple(p.shape) for p in t_parts] == [p.shape for p in l_parts]
  helper_test_op([shape], lambda x: _join(tl(x), dim, torch), lambda x: _join(ll(x), dim, Tensor))


@pytest.mark.parametrize("args", [(2, 0), (3, 0), (5, 1), (6, 1), (1, 0), (4, -1)], ids=str)
def test_chunk(args):
  n, dim = args
  shape = (5, 7)
  t_parts, l_parts = torch.chunk(torch.tensor(arr(shape)), n, dim), Tensor(arr(shape)).chunk(n, dim)
  assert [tuple(p.shape) for p in t_parts] == [p.shape for p in l_parts]
  helper_test_op([shape], lambda x: _join(list(torch.chunk(x, n, dim)), dim, torch), lambda x: _join(x.chunk(n, dim), dim, Tensor))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather(dim):
  x_shape = (4, 5)
  idx_shape = {0: (3, 5), 1: (4, 3), -1: (2, 6)}[dim]
  if dim == -1: x_shape = (4, 7)
  idx = np.random.default_rng(15).integers(0, x_shape[dim], size=idx_shape)
  helper_test_op([x_shape], lambda x: x.gather(dim, torch.tensor(idx)), lambda x: x.gather(dim, Tensor(idx)))


def test_gather_3d_and_dtypes():
  idx = np.random.default_rng(16).integers(0, 4, size=(2, 3, 4))
  helper_test_op([(2, 4, 5)], lambda x: x.gather(1, torch.tensor(idx)), lambda x: x.gather(1, Tensor(idx)))
  helper_test_op([(2, 4, 5)], lambda x: x.gather(1, torch.tensor(idx)), lambda x: x.gather(1, Tensor(idx)), dtype="int32", low=-9, high=9)
  helper_test_op([(2, 4, 5)], lambda x: torch.gather(x.permute(0, 2, 1), 2, torch.tensor(idx).permute(0, 2, 1)[:, :3]),
                 lambda x: x.permute(0, 2, 1).gather(2, Tensor(idx).permute(0, 2, 1)[:, :3]))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_add(dim):
  idx = np.random.default_rng(17).integers(0, 4, size=(3, 4)) if dim == 0 else np.random.default_rng(17).integers(0, 5, size=(4, 3))
  src_shape = (3, 4) if dim == 0 else (4, 3)
  helper_test_op([(4, 5), src_shape], lambda x, s: x.scatter_add(dim, torch.tensor(idx), s), lambda x, s: x.scatter_add(dim, Tensor(idx), s))


def test_scatter_add_larger_src_and_int():
  idx = np.array([[0, 1, 0], [2, 2, 1]])
  # (torch's own backward rejects a src larger than index: values only)
  helper_test_op([(3, 4), (3, 5)], lambda x, s: x.scatter_add(0, torch.tensor(idx), s), lambda x, s: x.scatter_add(0, Tensor(idx), s), grad=False)
  xi = np.zeros((3, 4), dtype=np.int64); si = np.arange(15).reshape(3, 5)
  helper_test_op(None, lambda x, s: x.scatter_add(1, torch.tensor(idx), s) if isinstance(x, torch.Tensor) else x.scatter_add(1, Tensor(idx), s),
                 inputs=[xi, si])


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 4), (3, 1)), ((3, 4), ())], ids=str)
def test_masked_fill(shapes):
  m = np.asarray(np.random.default_rng(18).random(shapes[1]) < 0.5)
  helper_test_op([shapes[0]], lambda x: x.masked_fill(torch.tensor(m), -2.5), lambda x: x.masked_fill(Tensor(m), -2.5))
  helper_test_op([shapes[0]], lambda x: x.masked_fill(torch.tensor(m), float("-inf")).exp(), lambda x: x.masked_fill(Tensor(m), float("-inf")).exp())
  helper_test_op([shapes[0]], lambda x: x.masked_fill(torch.tensor(m), 3), lambda x: x.masked_fill(Tensor(m), 3), dtype="int32", low=-5, high=5)


@pytest.mark.parametrize("nc", [-1, 5, 7])
def test_one_hot(nc):
  a = np.array([[0, 3, 1], [4, 4, 2]])
  helper_test_op(None, lambda x: F.one_hot(x, nc) if isinstance(x, torch.Tensor) else x.one_hot(nc), inputs=[a])
  helper_test_op(None, lambda x: F.one_hot(x, nc) if isinstance(x, torch.Tensor) else x.one_hot(nc), inputs=[a[0]])
