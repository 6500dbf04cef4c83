"""The numpy device's runtime helpers against plain references: multi-view loads (the
chained strided path vs the index-gather path) and contractions (the in-order batched
matmul, the transposing one, and contract_cat) vs np.einsum. Pure numpy: run once."""
import numpy as np
import pytest
from lazygrad.ops.view import ShapeTracker
from lazygrad.kernels import numpy_lib


@pytest.fixture(autouse=True)
def _once(device):
  if device != "cpu": pytest.skip("device-independent numpy helpers: run on cpu only")


def gather_load(buf, st):
  """The reference: every address computed and gathered (load's fallback)."""
  addr, valid = numpy_lib.addresses(st)
  full = np.broadcast_shapes(np.shape(addr), np.shape(valid), st.shape)
  addr, valid = np.broadcast_to(addr, full), np.broadcast_to(valid, full)
  return np.where(valid, buf[np.where(valid, addr, 0)], 0)


def random_tracker(rng, n_ops=6):
  shape = tuple(int(s) for s in rng.integers(1, 5, rng.integers(2, 4)))
  st = ShapeTracker.from_shape(shape)
  size = int(np.prod(shape))
  for _ in range(n_ops):
    op = rng.choice(["reshape", "permute", "pad", "shrink", "expand", "flip"])
    s = st.shape
    if op == "reshape":
      n = int(np.prod(s))
      cands = [t for t in [(n,), (1, n), (n, 1)] + [(a, n // a) for a in range(2, n) if n % a == 0] +
               [(a, b, n // (a * b)) for a in range(2, 5) for b in range(2, 5) if n % (a * b) == 0]]
      st = st.reshape(cands[rng.integers(len(cands))])
    elif op == "permute": st = st.permute(tuple(rng.permutation(len(s)).tolist()))
    elif op == "pad": st = st.pad(tuple((int(rng.integers(0, 2)), int(rng.integers(0, 3))) for _ in s))
    elif op == "shrink":
      arg = []
      for d in s:
        lo = int(rng.integers(0, d)); hi = int(rng.integers(lo + 1, d + 1)); arg.append((lo, hi))
      st = st.shrink(tuple(arg))
    elif op == "expand":
      ones = [i for i, d in enumerate(s) if d == 1]
      if ones: st = st.expand(tuple(3 if i == ones[0] else d for i, d in enumerate(s)))
    elif op == "flip": st = st.flip(tuple(i for i in range(len(s)) if rng.random() < 0.5))
  return st, size


def test_multi_view_load_matches_gather():
  rng = np.random.default_rng(0)
  multi = 0
  for _ in range(600):
    st, size = random_tracker(rng)
    buf = rng.standard_normal(size).astype(np.float32)
    got = np.broadcast_to(numpy_lib.load(buf, st), st.shape)
    np.testing.assert_array_equal(got, gather_load(buf, st), err_msg=str(st))
    multi += len(st.views) > 1
  assert multi > 50   # the chained path was exercised


def test_strided_conv_gradient_stack_load():
  """The view stack of a stride-2 slice's gradient (pad, reshape, shrink): chained, not gathered."""
  st = ShapeTracker.from_shape((2, 3, 4, 4)).reshape((2, 3, 4, 1, 4, 1)).pad(((0, 0), (0, 0), (0, 0), (0, 1), (0, 0), (0, 1)))
  st = st.reshape((2, 3, 8, 8)).shrink(((0, 2), (0, 3), (1, 8), (0, 7)))
  buf = np.arange(2 * 3 * 16, dtype=np.float32)
  assert len(st.views) > 1 and numpy_lib._load_chain(buf, st) is not None
  np.testing.assert_array_equal(numpy_lib.load(buf, st), gather_load(buf, st))


def _einsum_contract(a, b, axes, shape):
  nd = len(shape)
  letters = "abcdefghijkl"[:nd]
  sa = "".join(letters[d] for d in range(nd))
  out = np.einsum(f"{sa},{sa}->{''.join(letters[d] for d in range(nd) if d not in axes)}",
                  np.broadcast_to(a, shape).astype(np.float64), np.broadcast_to(b, shape).astype(np.float64))
  return out.reshape([1 if d in axes else shape[d] for d in range(nd)])


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_contract_matches_einsum(dtype):
  rng = np.random.default_rng(1)
  cases = 0
  for nd in (3, 4, 5):
    for _ in range(80):
      shape = tuple(int(s) for s in rng.integers(1, 6, nd))
      ma, mb = rng.random(nd) < 0.35, rng.random(nd) < 0.35        # which dims each operand broadcasts
      a = rng.standard_normal(tuple(1 if m else s for m, s in zip(ma, shape))).astype(dtype)
      b = rng.standard_normal(tuple(1 if m else s for m, s in zip(mb, shape))).astype(dtype)
      axes = tuple(sorted(set(rng.choice(nd, rng.integers(1, nd), replace=False).tolist())))
      got = numpy_lib.contract(a, b, axes, shape, dtype)
      want = _einsum_contract(a, b, axes, shape)
      assert got.dtype == dtype and got.ndim == nd   # kept dims both operands broadcast may stay size 1
      tol = 1e-4 if dtype == np.float32 else 2e-2
      np.testing.assert_allclose(np.broadcast_to(got, want.shape).astype(np.float64), want, rtol=tol, atol=tol * 10)
      cases += 1
  assert cases == 240


def test_contract_conv_shapes_in_order():
  """conv forward, input and weight gradients as the conv lowering writes them."""
  rng = np.random.default_rng(2)
  n, cout, cin, oh, ow, kh, kw = 3, 5, 4, 6, 7, 3, 3
  shape = (n, 1, cout, cin, oh, ow, kh, kw)
  cols = rng.standard_normal((n, 1, 1, cin, oh, ow, kh, kw)).astype(np.float32)
  w = rng.standard_normal((1, 1, cout, cin, 1, 1, kh, kw)).astype(np.float32)
  g = rng.standard_normal((n, 1, cout, 1, oh, ow, 1, 1)).astype(np.float32)
  for a, b, axes in [(cols, w, (3, 6, 7)), (g, w, (2,)), (g, cols, (0, 4, 5))]:
    got = numpy_lib.contract(a, b, axes, shape, np.float32)
    np.testing.assert_allclose(got, _einsum_contract(a, b, axes, shape), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cat_first", [True, False])
def test_contract_cat_matches_concatenate(cat_first):
  rng = np.random.default_rng(3)
  shape = (2, 3, 4, 3)                    # pieces of widths 1, 2 along dim 3, reduced with dim 1
  buf = rng.standard_normal(2 * 3 * 4 * 5).astype(np.float32)
  base = ShapeTracker.from_shape((2, 3, 4, 5))
  pieces = [(buf, base.shrink(((0, 2), (0, 3), (0, 4), (0, 1)))), (buf, base.shrink(((0, 2), (0, 3), (0, 4), (2, 4))))]
  other = rng.standard_normal((1, 3, 4, 3)).astype(np.float32)
  for axes in [(1, 3), (3,), (0, 1, 2, 3)]:
    cat = numpy_lib.cat_loads(pieces, 3)
    want = numpy_lib.contract(cat, other, axes, shape, np.float32) if cat_first else numpy_lib.contract(other, cat, axes, shape, np.float32)
    got = numpy_lib.contract_cat(pieces, 3, other, cat_first, axes, shape, np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  with pytest.raises(AssertionError): numpy_lib.contract_cat(pieces, 3, other, cat_first, (1,), shape, np.float32)
