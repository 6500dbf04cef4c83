"""The numpy device's runtime helpers against plain references: multi-view loads (the
chained strided path vs the index-gather path) and contractions (the in-order batched
matmul, the transposing one, and contract_cat) vs np.einsum. Pure numpy: run once."""
import numpy as np
import pytest

from lazygrad import Tensor
from lazygrad.kernels.numpy import lib as numpy_lib
from lazygrad.scheduler.graph import apply_mops, movement_base
from lazygrad.ops.view import ShapeTracker


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
  assert len(st.views) > 1 and numpy_lib._through_views(numpy_lib._load_view(buf, st.views[0]), st, 10 ** 6) is not None
  np.testing.assert_array_equal(numpy_lib.load(buf, st), gather_load(buf, st))


def test_multi_view_valid_matches_addresses():
  """valid() reads the innermost mask through the outer views (strides where no carries): the same as the index arithmetic."""
  rng = np.random.default_rng(1)
  for _ in range(300):
    st, _ = random_tracker(rng)
    if 0 in st.shape: continue
    want = np.broadcast_to(numpy_lib.addresses(st)[1], st.shape)
    np.testing.assert_array_equal(np.broadcast_to(numpy_lib.valid(st), st.shape), want, err_msg=str(st))


def test_padded_conv_windows_load_is_a_strided_view():
  """conv windows over a padded input (two views, the inner masked): a strided view of the padded input, no gather."""
  x = Tensor(np.arange(2 * 3 * 7 * 6, dtype=np.float32).reshape(2, 3, 7, 6)).realize()
  base, mops = movement_base(x.pad((1, 1, 2, 2))._windows((3, 3), (2, 1), (1, 2)).node)
  st = apply_mops(base.st, mops)
  buf = x.numpy().reshape(-1)
  got = numpy_lib.load(buf, st)
  assert len(st.views) == 2 and got.base is not None   # a view of the padded array, not a copy
  np.testing.assert_array_equal(got, gather_load(buf, st))
  np.testing.assert_array_equal(np.broadcast_to(numpy_lib.valid(st), st.shape), numpy_lib.addresses(st)[1])


def _einsum_contract(a, b, axes, shape):
  nd = len(shape)
  letters = "abcdefghijkl"[:nd]
  sa = "".join(letters[d] for d in range(nd))
  out = np.einsum(f"{sa},{sa}->{''.join(letters[d] for d in range(nd) if d not in axes)}",
                  np.broadcast_to(a, shape).astype(np.float64), np.broadcast_to(b, shape).astype(np.float64))
  return out.reshape([1 if d in axes else shape[d] for d in range(nd)])


def dims_of(a, b, axes, shape):
  """The reference classification (as find_contraction does it, on array shapes): batch,
  m, n, k dims and the reduced dims only one operand varies along (summed out first), plus
  the size of the reduced dims neither varies along (a scale)."""
  batch, m, n, k, pa, pb, scale = [], [], [], [], [], [], 1
  for d, s in enumerate(shape):
    if s == 1: continue
    ma, mb = a.shape[d] != 1, b.shape[d] != 1
    if d in axes:
      if ma and mb: k.append(d)
      elif ma or mb: (pa if ma else pb).append(d)
      else: scale *= s
    elif ma == mb: batch.append(d)
    else: (m if ma else n).append(d)
  return (tuple(batch), tuple(m), tuple(n), tuple(k)), (tuple(pa), tuple(pb)), scale


def contract(a, b, axes, shape, dtype):
  dims, presum, scale = dims_of(a, b, axes, shape)
  return numpy_lib.contract(a, b, dims, shape, dtype, presum, scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int64])
def test_contract_matches_einsum(dtype):
  rng = np.random.default_rng(1)
  cases = 0
  for nd in (3, 4, 5):
    for _ in range(80):
      shape = tuple(int(s) for s in rng.integers(1, 6, nd))
      ma, mb = rng.random(nd) < 0.35, rng.random(nd) < 0.35        # which dims each operand broadcasts
      a = rng.standard_normal(tuple(1 if m else s for m, s in zip(ma, shape)))
      b = rng.standard_normal(tuple(1 if m else s for m, s in zip(mb, shape)))
      if dtype == np.int64: a, b = (a * 4).round(), (b * 4).round()
      a, b = a.astype(dtype), b.astype(dtype)
      axes = tuple(sorted(set(rng.choice(nd, rng.integers(1, nd), replace=False).tolist())))
      got = contract(a, b, axes, shape, dtype)
      want = _einsum_contract(a, b, axes, shape)
      assert got.dtype == dtype and got.ndim == nd   # kept dims both operands broadcast may stay size 1
      tol = 2e-2 if dtype == np.float16 else 1e-4 if dtype == np.float32 else 1e-9
      np.testing.assert_allclose(np.broadcast_to(got, want.shape).astype(np.float64), want, rtol=tol, atol=tol * 10)
      cases += 1
  assert cases == 240


def test_contract_uses_dims_not_shapes():
  """An operand broadcast (size 1) along a dim it varies along by the dims, and the padding
  load of an empty buffer (zeros at full size along a dim it does not vary along)."""
  rng = np.random.default_rng(4)
  a, b = rng.standard_normal((4, 1, 5)).astype(np.float32), rng.standard_normal((1, 6, 5)).astype(np.float32)
  want = np.einsum("ik,jk->ij", a[:, 0], b[0])[:, :, None]
  np.testing.assert_allclose(numpy_lib.contract(a, b, ((), (0,), (1,), (2,)), (4, 6, 5), np.float32), want, rtol=1e-5)
  # k dim 2 with b broadcast along it (constant): the same as b repeated
  b1 = b[:, :, :1]
  want1 = np.einsum("ik,jk->ij", a[:, 0], np.repeat(b1[0], 5, axis=1))[:, :, None]
  np.testing.assert_allclose(numpy_lib.contract(a, b1, ((), (0,), (1,), (2,)), (4, 6, 5), np.float32), want1, rtol=1e-5)
  # batch dim 0 with both operands of size 1 (neither varies along it): the result stays size 1 there
  a3, b3 = rng.standard_normal((1, 3, 5)).astype(np.float32), rng.standard_normal((1, 3, 5)).astype(np.float32)
  got = numpy_lib.contract(a3, b3, ((0, 1), (), (), (2,)), (7, 3, 5), np.float32)
  np.testing.assert_allclose(got, (a3 * b3).sum(2, keepdims=True), rtol=1e-5)
  zeros = np.zeros((4, 6, 5), np.float32)
  np.testing.assert_array_equal(numpy_lib.contract(zeros, b, ((), (0,), (1,), (2,)), (4, 6, 5), np.float32), np.zeros((4, 6, 1)))
  with pytest.raises(AssertionError): numpy_lib.contract(zeros + 1, b, ((), (0,), (1,), (2,)), (4, 6, 5), np.float32)
  np.testing.assert_array_equal(numpy_lib.contract(a[:0], b, ((), (0,), (1,), (2,)), (0, 6, 5), np.float32), np.zeros((0, 6, 1)))


def test_contract_conv_shapes_in_order():
  """conv forward, input and weight gradients as the conv lowering writes them."""
  rng = np.random.default_rng(2)
  n, cout, cin, oh, ow, kh, kw = 3, 5, 4, 6, 7, 3, 3
  shape = (n, 1, cout, cin, oh, ow, kh, kw)
  cols = rng.standard_normal((n, 1, 1, cin, oh, ow, kh, kw)).astype(np.float32)
  w = rng.standard_normal((1, 1, cout, cin, 1, 1, kh, kw)).astype(np.float32)
  g = rng.standard_normal((n, 1, cout, 1, oh, ow, 1, 1)).astype(np.float32)
  for a, b, axes in [(cols, w, (3, 6, 7)), (g, w, (2,)), (g, cols, (0, 4, 5))]:
    dims, presum, scale = dims_of(a, b, axes, shape)
    assert presum == ((), ()) and scale == 1
    got = numpy_lib.contract(a, b, dims, shape, np.float32)
    np.testing.assert_allclose(got, _einsum_contract(a, b, axes, shape), rtol=1e-4, atol=1e-4)
    if axes == (2,): assert numpy_lib._contract_in_order(a, b, dims, len(shape)) is not None   # no transposed copy


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
    a, b = (cat, other) if cat_first else (other, cat)
    dims, presum, scale = dims_of(a, b, axes, shape)
    want = numpy_lib.contract(a, b, dims, shape, np.float32, presum, scale)
    np.testing.assert_allclose(want, _einsum_contract(a, b, axes, shape), rtol=1e-4, atol=1e-4)
    got = numpy_lib.contract_cat(pieces, 3, other, cat_first, dims, shape, np.float32, presum, scale)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  dims, presum, scale = dims_of(cat, other, (1,), shape)
  with pytest.raises(AssertionError): numpy_lib.contract_cat(pieces, 3, other, cat_first, dims, shape, np.float32, presum, scale)


def test_half_float_sums_accumulate_in_fp32():
  """kernels/common.acc_dtype: a bf16/fp16 sum accumulates in fp32 (as on Triton), so 4096 ones sum to 4096."""
  import ml_dtypes
  for dt in (np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16)):
    x = np.ones(4096, dt)
    assert float(numpy_lib.rsum(x, (0,), (4096,), dt)[0]) == 4096.0
  assert numpy_lib.rsum(np.array([True, False, True]), (0,), (3,), np.bool_).dtype == np.bool_



def test_matrix_is_a_view_in_either_order():
  """_matrix: an operand stored k-major is handed to BLAS as a transposed view (no copy), one stored m-major as is."""
  rng = np.random.default_rng(4)
  x = rng.standard_normal((6, 5)).astype(np.float32)      # dims (k, m): wanted as (m, k)
  got = numpy_lib._matrix(x, [], [1], [0])
  assert np.shares_memory(got, x) and got.shape == (5, 6)
  np.testing.assert_array_equal(got, x.T)
  got = numpy_lib._matrix(x, [], [0], [1])
  assert np.shares_memory(got, x)
  np.testing.assert_array_equal(got, x)


def test_matrix_copies_conv_windows_with_the_long_run_inner():
  """Conv windows as the weight gradient's operand, (N*OH*OW, C*KH*KW): the copy is laid out with the output
  width innermost (runs of the input), and handed over transposed; the values are those of the plain reshape."""
  rng = np.random.default_rng(5)
  n, c, h, k = 2, 3, 6, 3
  xp = rng.standard_normal((n, c, h + 2, h + 2)).astype(np.float32)
  s = xp.strides
  win = np.lib.stride_tricks.as_strided(xp, (n, c, h, h, k, k), (s[0], s[1], s[2], s[3], s[2], s[3]))
  got = numpy_lib._matrix(win, [], [0, 2, 3], [1, 4, 5])
  want = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * h, c * k * k)
  np.testing.assert_array_equal(got, want)
  assert got.strides[0] == 4 and got.strides[1] == 4 * n * h * h   # column-major: the (c, kh, kw) rows hold (n, oh, ow) runs


@pytest.mark.parametrize("m,n,k,batch", [(3, 40, 50, 1), (40, 3, 50, 1), (4, 9, 30, 3), (200, 300, 5, 1)])
def test_matmul_orientation(m, n, k, batch):
  """_matmul: a small result with fewer rows than columns is computed transposed; the values do not change."""
  rng = np.random.default_rng(6)
  a, b = rng.standard_normal((batch, m, k)).astype(np.float32), rng.standard_normal((batch, k, n)).astype(np.float32)
  np.testing.assert_allclose(numpy_lib._matmul(a, b), a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64])
def test_contract_batched_dots(dtype):
  """No m or n dim (BatchNorm's per-channel sums of products, a plain dot): the einsum path, against einsum in float64."""
  rng = np.random.default_rng(7)
  shape = (5, 4, 3, 6)
  a, b = (rng.standard_normal(shape) * 4).astype(dtype), (rng.standard_normal(shape) * 4).astype(dtype)
  for axes in [(0, 2, 3), (0, 1, 2, 3), (3,)]:
    dims, presum, scale = dims_of(a, b, axes, shape)
    assert numpy_lib._contract_dot(a, b, dims, len(shape)) is not None
    got = numpy_lib.contract(a, b, dims, shape, dtype)
    assert got.dtype == dtype and got.shape == tuple(1 if d in axes else s for d, s in enumerate(shape))
    np.testing.assert_allclose(got.astype(np.float64), _einsum_contract(a, b, axes, shape), rtol=2e-3 if dtype == np.float16 else 1e-5, atol=1e-1)


@pytest.mark.parametrize("chunk,matmuls", [(64, 23), (2000, 12), (1 << 30, 1)])
def test_contract_conv_windows_in_chunks(monkeypatch, chunk, matmuls):
  """Conv forward (slices of the batch dim) and weight gradient (slices of a k dim, summed) with the im2col copy
  made CHUNK elements at a time: the same values as einsum, for chunks of one image, two (the last one ragged), all."""
  monkeypatch.setattr(numpy_lib, "CHUNK", chunk)
  calls, matrix = [], numpy_lib._matrix
  monkeypatch.setattr(numpy_lib, "_matrix", lambda *a: calls.append(1) or matrix(*a))
  rng = np.random.default_rng(8)
  n, c, co, h = 23, 3, 4, 6
  xp = rng.standard_normal((n, c, h + 2, h + 2)).astype(np.float32)
  s = xp.strides
  win = np.lib.stride_tricks.as_strided(xp, (n, 1, 1, c, h, h, 3, 3), (s[0], 0, 0, s[1], s[2], s[3], s[2], s[3]))
  w = rng.standard_normal((1, 1, co, c, 1, 1, 3, 3)).astype(np.float32)
  g = rng.standard_normal((n, 1, co, 1, h, h, 1, 1)).astype(np.float32)
  shape = (n, 1, co, c, h, h, 3, 3)
  for a, b, axes in [(win, w, (3, 6, 7)), (win, g, (0, 4, 5))]:
    dims, _, _ = dims_of(a, b, axes, shape)
    calls.clear()
    got = numpy_lib.contract(a, b, dims, shape, np.float32)
    np.testing.assert_allclose(got, _einsum_contract(a, b, axes, shape), rtol=1e-4, atol=1e-4)
    assert len(calls) == 2 * matmuls   # two operand matrices per matmul


def test_matrix_copies_strided_windows_with_the_long_loop_inner():
  """Stride-2 conv windows as the forward's operand (N, C*KH*KW, OH*OW): the copy runs along the output width
  (8 elements 2 apart), not the 3 contiguous kernel-width ones: a row-major (k, m) matrix per image."""
  rng = np.random.default_rng(9)
  n, c, h, k = 2, 3, 8, 3
  xp = rng.standard_normal((n, c, 2 * h + 2, 2 * h + 2)).astype(np.float32)
  s = xp.strides
  win = np.lib.stride_tricks.as_strided(xp, (n, c, h, h, k, k), (s[0], s[1], 2 * s[2], 2 * s[3], s[2], s[3]))
  got = numpy_lib._matrix(win, [0], [1, 4, 5], [2, 3])
  np.testing.assert_array_equal(got, win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * k * k, h * h))
  assert got.flags.c_contiguous


def test_contract_interleaved_phases():
  """The sub-pixel input gradient's contraction: kept dims (N, C, Q, R, Q, R), the phases R only the weight varies
  along, interleaved with the image: computed phase-major and written back per phase; the values are einsum's."""
  rng = np.random.default_rng(10)
  shape = (3, 1, 4, 5, 6, 2, 5, 2, 2, 2)       # (N, G, Cin, Cout, Qh, Rh, Qw, Rw, Th, Tw)
  a = rng.standard_normal((3, 1, 1, 5, 6, 1, 5, 1, 2, 2)).astype(np.float32)
  b = rng.standard_normal((1, 1, 4, 5, 1, 2, 1, 2, 2, 2)).astype(np.float32)
  axes = (3, 8, 9)
  dims, _, _ = dims_of(a, b, axes, shape)
  assert numpy_lib._contract_in_order(a, b, dims, len(shape)) is None
  assert numpy_lib._contract_interleaved(a, b, dims, len(shape)) is not None
  got = numpy_lib.contract(a, b, dims, shape, np.float32)
  assert got.flags.c_contiguous
  np.testing.assert_allclose(got, _einsum_contract(a, b, axes, shape), rtol=1e-4, atol=1e-4)
