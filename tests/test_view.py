"""View and ShapeTracker (lazygrad/ops/view.py) against numpy index arithmetic: a movement op on a tensor is
the same op on an array of the buffer's flat indices (-1 where a pad reads no element), so any chain of
reshape/permute/expand/pad/shrink/flip can be checked element by element. Pure Python: runs once, on cpu."""
import math
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from lazygrad.ops.view import ShapeTracker, View, merge_views, strides_for


@pytest.fixture(params=["cpu"])
def device(request):
  """view arithmetic involves no device: override conftest's fixture so these run once."""
  return request.param


# ============================================================ the oracle

def view_index(v: View, idx: list) -> tuple[np.ndarray, np.ndarray]:
  """(flat index into what v views, valid) for index arrays idx (one per dim of v)."""
  flat = np.full(idx[0].shape if idx else (), v.offset, dtype=np.int64)
  valid = np.ones(flat.shape, dtype=bool)
  for d, (i, s) in enumerate(zip(idx, v.strides)):
    flat = flat + i * s
    if v.mask is not None: valid &= (v.mask[d][0] <= i) & (i < v.mask[d][1])
  return flat, valid


def st_index(sht: ShapeTracker) -> np.ndarray:
  """the buffer index of every element of sht (-1 where masked), by walking the views outermost first."""
  shape = sht.shape
  idx = list(np.indices(shape, dtype=np.int64)) if shape else []
  flat, valid = view_index(sht.views[-1], idx)
  for v in reversed(sht.views[:-1]):
    # unravel the outer flat index in C order over v's shape
    rem, inner = flat, []
    for s in reversed(v.shape):
      inner.append(rem % s if s else rem); rem = rem // s if s else rem
    flat, ok = view_index(v, inner[::-1])
    valid &= ok
  return np.where(valid, flat, -1)


def np_apply(a: np.ndarray, op: str, arg) -> np.ndarray:
  if op == "reshape": return a.reshape(arg)
  if op == "permute": return a.transpose(arg)
  if op == "expand": return np.broadcast_to(a, arg)
  if op == "pad": return np.pad(a, arg, constant_values=-1)
  if op == "shrink": return a[tuple(slice(lo, hi) for lo, hi in arg)]
  if op == "flip": return np.flip(a, arg) if arg else a
  raise ValueError(op)


def check(sht: ShapeTracker, ref: np.ndarray, what=""):
  assert sht.shape == ref.shape, f"{what}: shape {sht.shape} != {ref.shape}"
  got = st_index(sht)
  np.testing.assert_array_equal(got, ref, err_msg=f"{what}: {sht}")


def run_ops(shape, ops):
  sht, ref = ShapeTracker.from_shape(shape), np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
  for op, arg in ops:
    sht, ref = sht.apply(op, arg), np_apply(ref, op, arg)
    check(sht, ref, f"after {op} {arg}")
  return sht, ref


# ============================================================ random op chains (hypothesis)

def _factor_shapes(n: int):
  """a strategy for shapes with product n (n > 0), with 1s sprinkled in."""
  primes, m, p = [], n, 2
  while m > 1:
    while m % p == 0: primes.append(p); m //= p
    p += 1
  @st.composite
  def make(draw):
    ps = draw(st.permutations(primes)) if primes else []
    cuts = sorted(draw(st.sets(st.integers(1, max(len(ps) - 1, 1)), max_size=max(len(ps) - 1, 0)))) if len(ps) > 1 else []
    groups, last = [], 0
    for c in cuts + [len(ps)]:
      if c > last: groups.append(math.prod(ps[last:c])); last = c
    groups = groups or [1]
    for _ in range(draw(st.integers(0, 2))): groups.insert(draw(st.integers(0, len(groups))), 1)
    return tuple(groups)
  return make()


@st.composite
def op_for(draw, shape):
  kinds = ["permute", "pad", "shrink", "flip", "reshape", "reshape"] + (["expand"] if 1 in shape else [])
  kind = draw(st.sampled_from(kinds))
  nd = len(shape)
  if kind == "reshape":
    n = math.prod(shape)
    return kind, (draw(_factor_shapes(n)) if n else (0,))
  if kind == "permute": return kind, tuple(draw(st.permutations(range(nd))))
  if kind == "expand": return kind, tuple(draw(st.integers(1, 3)) if s == 1 else s for s in shape)
  if kind == "pad": return kind, tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
  if kind == "flip": return kind, tuple(d for d in range(nd) if draw(st.booleans()))
  arg = []
  for s in shape:
    lo = draw(st.integers(0, s)); hi = draw(st.integers(lo, s))
    if hi == lo and draw(st.integers(0, 3)): hi = min(s, lo + 1) if lo < s else lo   # mostly non-empty
    if hi == lo and lo > 0: lo -= 1
    arg.append((lo, hi))
  return kind, tuple(arg)


@st.composite
def chains(draw):
  shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
  ops, cur = [], shape
  for _ in range(draw(st.integers(1, 6))):
    op, arg = draw(op_for(cur))
    ops.append((op, arg))
    cur = np_apply(np.empty(cur, dtype=np.int8), op, arg).shape
    if 0 in cur or math.prod(cur) > 4000: break
  return shape, ops


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains())
def test_random_chains(case):
  shape, ops = case
  sht, _ = run_ops(shape, ops)
  assert 1 <= len(sht.views) <= len(ops) + 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains(), st.data())
def test_merge_views_when_it_merges_is_exact(case, data):
  """merge_views(inner, outer), where it answers, is the composition of the two views."""
  shape, ops = case
  sht, ref = run_ops(shape, ops)
  inner = sht.views[-1]
  n = math.prod(inner.shape)
  if n == 0: return
  outer_st, outer_ref = ShapeTracker.from_shape(data.draw(_factor_shapes(n))), None
  outer_ref = ref.reshape(outer_st.shape)
  for _ in range(data.draw(st.integers(0, 3))):
    op, arg = data.draw(op_for(outer_st.shape))
    if op == "reshape" or (op == "shrink" and 0 in [hi - lo for lo, hi in arg]): continue
    outer_st, outer_ref = outer_st.apply(op, arg), np_apply(outer_ref, op, arg)
  merged = merge_views(inner, outer_st.views[-1]) if len(outer_st.views) == 1 else None
  if merged is not None:
    check(ShapeTracker(sht.views[:-1] + (merged,)), outer_ref, "merged")


# ============================================================ single views where no carry occurs

def st_slice(sht: ShapeTracker, d: int, start: int, stop: int, step: int) -> ShapeTracker:
  """x[start:stop:step] along d (step > 0) as Tensor._slice_dim builds it: shrink, pad to a multiple, reshape, shrink, reshape."""
  n, nd = sht.shape[d], len(sht.shape)
  stop = max(stop, start)
  x = sht.shrink(tuple((start, stop) if i == d else (0, s) for i, s in enumerate(sht.shape)))
  if step == 1: return x
  length = stop - start
  o = -(-length // step)
  if length % step:
    extra = o * step - length
    if stop + extra <= n: x = sht.shrink(tuple((start, stop + extra) if i == d else (0, s) for i, s in enumerate(sht.shape)))
    else: x = x.pad(tuple((0, extra) if i == d else (0, 0) for i in range(nd)))
  sh = x.shape
  x = x.reshape(sh[:d] + (o, step) + sh[d + 1:])
  x = x.shrink(tuple((0, 1) if i == d + 1 else (0, s) for i, s in enumerate(x.shape)))
  return x.reshape(sh[:d] + (o,) + sh[d + 1:])


PRE = {  # ops before the slice: contiguous, permuted, flipped, padded (masked), shrunk, expanded
  "contiguous": [], "permuted": [("permute", (1, 0))], "flipped": [("flip", (0, 1))], "padded": [("pad", ((1, 2), (2, 0)))],
  "shrunk": [("shrink", ((1, 5), (0, 6)))], "expanded": [("shrink", ((0, 1), (0, 7))), ("expand", (5, 7))],
  "padded_flipped_permuted": [("pad", ((0, 3), (1, 1))), ("flip", (1,)), ("permute", (1, 0))],
}


@pytest.mark.parametrize("pre", list(PRE))
@pytest.mark.parametrize("d,start,stop,step", [(0, 0, 5, 2), (0, 1, 5, 3), (1, 0, 7, 2), (1, 2, 7, 4), (1, 6, 7, 5), (0, 0, 5, 5), (1, 1, 6, 10)])
def test_stepped_slice_is_one_view(pre, d, start, stop, step):
  sht, ref = run_ops((6, 7), PRE[pre])
  n = sht.shape[d]
  start, stop = min(start, n), min(stop, n)
  out, want = st_slice(sht, d, start, stop, step), ref[tuple(slice(start, stop, step) if i == d else slice(None) for i in range(2))]
  check(out, want, "slice")
  # one view, unless nothing is valid (merge_views leaves an all-padding view alone)
  assert len(out.views) == len(sht.views) == 1 or (want == -1).all(), out


def test_non_overlapping_windows_are_one_view():
  # max_pool2d's windows when kernel <= stride: narrow, unflatten, narrow, then the tap dims last
  sht, ref = run_ops((2, 7, 9), [("shrink", ((0, 2), (0, 6), (0, 9))), ("reshape", (2, 3, 2, 9)), ("shrink", ((0, 2), (0, 3), (0, 2), (0, 8))),
                                 ("reshape", (2, 3, 2, 4, 2)), ("shrink", ((0, 2), (0, 3), (0, 2), (0, 4), (0, 1))), ("permute", (0, 1, 3, 2, 4))])
  assert len(sht.views) == 1
  np.testing.assert_array_equal(ref[1, 2, 3], [[63 + 4 * 9 + 6], [63 + 5 * 9 + 6]])   # batch 1, rows 4-5, column 6


def test_reshape_carry_needs_two_views_and_round_trip_merges():
  sht, ref = run_ops((2, 3), [("permute", (1, 0)), ("reshape", (6,))])
  assert len(sht.views) == 2                       # (3, 2) with strides (1, 3) flattened: carries
  back, _ = run_ops((2, 3), [("permute", (1, 0)), ("reshape", (6,)), ("reshape", (3, 2))])
  assert len(back.views) == 1 and back.views[0].strides == (1, 3)
  # a split of a permuted dim, or 1s in and out, never carry
  for ops in ([("permute", (1, 0)), ("reshape", (3, 1, 2, 1))], [("permute", (1, 0)), ("reshape", (1, 3, 2))],
              [("reshape", (2, 3, 1)), ("permute", (2, 1, 0)), ("reshape", (3, 2))], [("flip", (1,)), ("reshape", (2, 3, 1, 1))]):
    assert len(run_ops((2, 3), ops)[0].views) == 1, ops
  # merging a padded dim with its neighbour cannot be one view
  assert len(run_ops((2, 3), [("pad", ((0, 0), (1, 0))), ("reshape", (8,))])[0].views) == 2


def test_merge_views_refuses_carries():
  inner = View((3, 2), (1, 3))                      # the transpose of a (2, 3) buffer
  assert merge_views(inner, View.contiguous((6,))) is None
  assert merge_views(inner, View.contiguous((3, 2))) == inner
  m = merge_views(inner, View((3,), (2,)))          # every second flat index: one column, no carry
  assert m == View((3,), (1,)) or (m is not None and st_index(ShapeTracker((m,))).tolist() == [0, 1, 2])


# ============================================================ strides, contiguity, masks

def test_strides_for():
  assert strides_for((2, 3, 4)) == (12, 4, 1)
  assert strides_for((2, 1, 3)) == (3, 0, 1)
  assert strides_for(()) == () and strides_for((5,)) == (1,) and strides_for((1,)) == (0,)
  assert strides_for((0, 3)) == (3, 1)


def test_is_contiguous():
  base = ShapeTracker.from_shape((2, 3, 4))
  assert base.is_contiguous and View.contiguous((2, 3)).is_contiguous
  assert not base.permute((1, 0, 2)).is_contiguous and base.permute((1, 0, 2)).permute((1, 0, 2)).is_contiguous
  assert base.reshape((6, 4)).is_contiguous and base.reshape((4, 6)).reshape((24,)).is_contiguous
  assert not base.flip((1,)).is_contiguous and base.flip((1,)).flip((1,)).is_contiguous
  assert not base.shrink(((0, 2), (1, 3), (0, 4))).is_contiguous and base.shrink(((0, 2), (0, 3), (0, 4))).is_contiguous
  assert not base.shrink(((1, 2), (0, 3), (0, 4))).is_contiguous   # offset
  assert not base.pad(((0, 0), (1, 0), (0, 0))).is_contiguous
  assert base.pad(((0, 0), (1, 0), (0, 0))).shrink(((0, 2), (1, 4), (0, 4))).is_contiguous   # pad undone: mask dropped
  assert not ShapeTracker.from_shape((1, 4)).expand((3, 4)).is_contiguous
  assert ShapeTracker.from_shape((3, 1)).reshape((3,)).is_contiguous
  t = ShapeTracker.from_shape((2, 3)).permute((1, 0)).reshape((6,))
  assert len(t.views) == 2 and not t.is_contiguous


def test_masks():
  v = View.contiguous((3, 4)).pad(((1, 0), (2, 1)))
  assert v.shape == (4, 7) and v.mask == ((1, 4), (2, 6)) and v.offset == -(4 + 2)
  assert v.shrink(((1, 4), (2, 6))) == View.contiguous((3, 4))            # the mask covers everything: no mask
  s = v.shrink(((0, 2), (5, 7)))
  assert s.mask == ((1, 2), (0, 1))
  e = v.shrink(((0, 1), (0, 7)))                                          # only pad rows: nothing valid
  assert e.mask == ((0, 0), (0, 0))
  assert v.flip((1,)).mask == ((1, 4), (1, 5))
  assert v.permute((1, 0)).mask == ((2, 6), (1, 4))
  x = View.contiguous((1, 4)).pad(((0, 0), (1, 1))).expand((3, 6))
  assert x.mask == ((0, 3), (1, 5)) and x.strides == (0, 1)
  sht = ShapeTracker.from_shape((3, 4)).pad(((1, 0), (2, 1)))
  assert sht.has_mask and not ShapeTracker.from_shape((3, 4)).has_mask
  check(sht.flip((0, 1)).permute((1, 0)), np.pad(np.arange(12).reshape(3, 4), ((1, 0), (2, 1)), constant_values=-1)[::-1, ::-1].T)


def test_reshape_of_masked_view():
  v = View.contiguous((3, 4)).pad(((1, 1), (0, 0)))                       # (5, 4), rows 0 and 4 padding
  assert v.reshape((5, 2, 2)) is not None and v.reshape((5, 2, 2)).mask == ((1, 4), (0, 2), (0, 2))
  assert v.reshape((20,)) is None                                         # the masked dim would merge
  assert v.reshape((1, 5, 4, 1)).mask == ((0, 1), (1, 4), (0, 4), (0, 1))
  check(ShapeTracker.from_shape((3, 4)).pad(((1, 1), (0, 0))).reshape((20,)), np.pad(np.arange(12).reshape(3, 4), ((1, 1), (0, 0)),
                                                                                       constant_values=-1).reshape(20))


def test_zero_size():
  sht = ShapeTracker.from_shape((2, 3)).shrink(((0, 0), (0, 3)))
  assert sht.shape == (0, 3) and sht.size() == 0
  assert sht.reshape((3, 0)).shape == (3, 0) and sht.reshape((0,)).views[-1].is_contiguous
  assert ShapeTracker.from_shape((0, 4)).permute((1, 0)).shape == (4, 0) and ShapeTracker.from_shape((0,)).flip((0,)).shape == (0,)
