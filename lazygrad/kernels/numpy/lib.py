"""Runtime helpers that generated numpy kernels call.

Arrays inside a numpy kernel keep every dim of the iteration space, but a dim the
value is broadcast along has size 1 there, so numpy broadcasting does the expand and
no broadcast product is ever materialised."""
from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from lazygrad.kernels.common import acc_dtype
from lazygrad.kernels.numpy.pool import release, scratch  # noqa: F401 (generated kernels call them as lib helpers)
from lazygrad.kernels.numpy.special import erf, expm1, log1p, tanh  # noqa: F401 (the op table names them as lib helpers)
from lazygrad.ops.view import ShapeTracker, View, affine_split


def is_broadcast(v: View, d: int) -> bool:
  """Whether v reads the same element all along dim d (stride 0, unmasked there): a load keeps size 1 along it."""
  return v.strides[d] == 0 and (v.mask is None or v.mask[d] == (0, v.shape[d]))


_is_broadcast = is_broadcast


def _load_view(buf: np.ndarray, v: View) -> np.ndarray:
  shape = tuple(1 if _is_broadcast(v, d) else s for d, s in enumerate(v.shape))
  box = v.mask or tuple((0, s) for s in v.shape)
  box = tuple((0, 1) if _is_broadcast(v, d) else b for d, b in enumerate(box))
  if any(hi <= lo for lo, hi in box): return np.zeros(shape, dtype=buf.dtype)
  base = v.offset + sum(lo * st for (lo, _), st in zip(box, v.strides))
  sub = as_strided(buf[base:], tuple(hi - lo for lo, hi in box), tuple(st * buf.itemsize for st in v.strides), writeable=False)
  if v.mask is None: return sub
  out = np.zeros(shape, dtype=buf.dtype)
  out[tuple(slice(lo, hi) for lo, hi in box)] = sub
  return out


def _aranges(shape):
  nd = len(shape)
  return [np.arange(s).reshape((1,) * d + (s,) + (1,) * (nd - d - 1)) for d, s in enumerate(shape)]


def _view_addr(v: View, idx):
  # dims with stride 0 / no mask add nothing, so results keep size 1 there (no broadcast blowup)
  addr = v.offset + sum((i * st for i, st in zip(idx, v.strides) if st != 0), np.int64(0))
  valid = np.bool_(True)
  if v.mask:
    for i, (lo, hi), s in zip(idx, v.mask, v.shape):
      if (lo, hi) != (0, s): valid = valid & (i >= lo) & (i < hi)
  return addr, valid


def addresses(st: ShapeTracker):
  """Flat address and validity of every index of st's shape (broadcastable arrays)."""
  idx = _aranges(st.shape)
  addr, valid = _view_addr(st.views[-1], idx)
  for v in reversed(st.views[:-1]):
    addr = np.broadcast_to(addr, np.broadcast_shapes(np.shape(addr), np.shape(valid)))
    idx = np.unravel_index(np.where(valid, addr, 0), v.shape) if v.shape else ()
    a2, v2 = _view_addr(v, idx)
    addr, valid = a2, valid & v2
  return addr, valid


def _through_views(x: np.ndarray, st: ShapeTracker, budget: int):
  """x, the values of st's innermost view (size 1 where it broadcasts), read through the outer views,
  inner first. A view that composes with the one under it without carries (view.affine_split: conv
  windows, also over a padded input) becomes strides on that array, so conv windows are a strided
  view of the (padded) input and nothing the size of the taps is built; a view that needs carries
  (a stride-dilated gradient, a strided slice's gradient) is read from the flattened array under it (a copy:
  5-20x faster than int64 index arithmetic).
  None when such an array would pass `budget` elements (an expand under a reshape): then the gather."""
  x, inner = np.ascontiguousarray(x), st.views[0].shape
  for i, v in enumerate(st.views[1:]):
    split = affine_split(View.contiguous(inner), v)
    if split is None:   # carries: read v from the flattened array of the full inner shape
      if math.prod(inner) > budget: return None
      y = _load_view(np.ascontiguousarray(np.broadcast_to(x, inner)).reshape(-1), v)
    else:
      cidx, coef, _ = split
      xst = [0 if x.shape[k] == 1 else math.prod(x.shape[k + 1:]) for k in range(len(inner))]
      strides = tuple(sum(c * xst[k] for k, c in coef.get(d, {}).items()) for d in range(len(v.shape)))
      y = _load_view(x.reshape(-1), View(v.shape, strides, sum(c * xst[k] for k, c in cidx.items()), v.mask))
    if i == len(st.views) - 2: return y
    x, inner = np.ascontiguousarray(y), v.shape
  return None


def load(buf: np.ndarray, st: ShapeTracker) -> np.ndarray:
  """buf (a flat array) read through st: an array broadcastable to st.shape, masked-out (padded) elements read as 0."""
  # dims the view broadcasts along stay size 1, as _load_view's, even when empty: the value must still broadcast against
  # a reduce's kept (size 1) dims (rsum scales a broadcast dim by its extent, 0), and a buffer broadcast along an empty
  # dim of the space still holds values
  shape = tuple(1 if _is_broadcast(st.views[-1], d) else s for d, s in enumerate(st.shape))
  if 0 in shape or buf.size == 0: return np.zeros(shape, dtype=buf.dtype)   # nothing read, or an empty buffer: all padding
  if len(st.views) == 1: return _load_view(buf, st.views[0])
  if (strided := _through_views(_load_view(buf, st.views[0]), st, 8 * math.prod(shape) + 65536)) is not None: return strided
  addr, valid = addresses(st)
  full = np.broadcast_shapes(np.shape(addr), np.shape(valid))
  addr, valid = np.broadcast_to(addr, full), np.broadcast_to(valid, full)
  vals = buf[np.where(valid, addr, 0)]
  return np.where(valid, vals, np.zeros((), dtype=buf.dtype))


def _load_view_into(dst: np.ndarray, buf: np.ndarray, v: View) -> None:
  """dst[...] = the load of v (dst has v's shape, or size 1 where v broadcasts), written in
  place: no temporary, and only the padding outside the valid box is zeroed."""
  box = tuple((0, dst.shape[d]) if _is_broadcast(v, d) else (v.mask[d] if v.mask else (0, s)) for d, s in enumerate(v.shape))
  if buf.size == 0 or any(hi <= lo for lo, hi in box):
    dst[...] = 0
    return
  base = v.offset + sum(lo * st for (lo, _), st in zip(box, v.strides))
  sub = as_strided(buf[base:], tuple(hi - lo for lo, hi in box), tuple(st * buf.itemsize for st in v.strides), writeable=False)
  for d, (lo, hi) in enumerate(box):
    if lo > 0: dst[(slice(None),) * d + (slice(0, lo),)] = 0
    if hi < dst.shape[d]: dst[(slice(None),) * d + (slice(hi, None),)] = 0
  dst[tuple(slice(lo, hi) for lo, hi in box)] = sub


def cat_loads(pieces, dim: int, out=None) -> np.ndarray:
  """The pieces (disjoint along `dim`, in order) joined along it, each read straight into
  its slice of the result; `out`: write into that array (the kernel's output buffer)."""
  if out is None and any(len(st.views) != 1 for _, st in pieces): return _cat_loads_concatenate(pieces, dim)
  if out is None:
    shapes = [tuple(1 if _is_broadcast(st.views[0], d) else s for d, s in enumerate(st.shape)) for _, st in pieces]
    full = list(np.broadcast_shapes(*[tuple(1 if d == dim else s for d, s in enumerate(sh)) for sh in shapes]))
    full[dim] = sum(st.shape[dim] for _, st in pieces)
    out = np.empty(tuple(full), dtype=pieces[0][0].dtype)
  lo = 0
  for buf, st in pieces:
    w = st.shape[dim]
    dst = out[(slice(None),) * dim + (slice(lo, lo + w),)]
    if len(st.views) == 1: _load_view_into(dst, buf, st.views[0])
    else: dst[...] = load(buf, st)
    lo += w
  return out


def sum_loads(pieces, out=None) -> np.ndarray:
  """The sum of single-view loads of one shape, mostly padding (conv-window gradients
  scattered back: each a shifted copy of a buffer): the first is read into the result,
  each other one is added onto its valid box only, so no zero-padded temporaries."""
  shapes = [tuple(1 if _is_broadcast(st.views[0], d) else s for d, s in enumerate(st.shape)) for _, st in pieces]
  if out is None: out = np.empty(np.broadcast_shapes(*shapes), dtype=pieces[0][0].dtype)
  _load_view_into(out, pieces[0][0], pieces[0][1].views[0])
  for buf, st in pieces[1:]:
    v = st.views[0]
    box = tuple((0, out.shape[d]) if _is_broadcast(v, d) else (v.mask[d] if v.mask else (0, s)) for d, s in enumerate(v.shape))
    if buf.size == 0 or any(hi <= lo for lo, hi in box): continue
    base = v.offset + sum(lo * st_ for (lo, _), st_ in zip(box, v.strides))
    sub = as_strided(buf[base:], tuple(hi - lo for lo, hi in box), tuple(st_ * buf.itemsize for st_ in v.strides), writeable=False)
    dst = out[tuple(slice(lo, hi) for lo, hi in box)]
    np.add(dst, sub, out=dst)
  return out


def _cat_loads_concatenate(pieces, dim: int) -> np.ndarray:
  arrs = [load(buf, st) for buf, st in pieces]
  shape = list(np.broadcast_shapes(*[tuple(1 if d == dim else s for d, s in enumerate(a.shape)) for a in arrs]))
  arrs = [np.broadcast_to(a, tuple(st.shape[d] if d == dim else shape[d] for d in range(a.ndim))) for a, (_, st) in zip(arrs, pieces)]
  return np.concatenate(arrs, axis=dim)


def _valid_view(v: View) -> np.ndarray:
  out = np.bool_(True)
  for d, ar in enumerate(_aranges(v.shape)):
    if v.mask and v.mask[d] != (0, v.shape[d]): out = out & (ar >= v.mask[d][0]) & (ar < v.mask[d][1])
  return np.broadcast_to(out, tuple(1 for _ in v.shape)) if np.ndim(out) == 0 else out


def valid(st: ShapeTracker) -> np.ndarray:
  """The bool mask of st (broadcastable to st.shape): True where it reads the buffer, False in padding.
  Several views: the innermost mask read through the others as a load (conv windows: a strided view)."""
  if len(st.views) == 1: return _valid_view(st.views[0])
  if 0 not in st.shape and (out := _through_views(_valid_view(st.views[0]), st, 8 * math.prod(st.shape) + 65536)) is not None: return out
  return addresses(st)[1]


def const(value, dtype, ndim: int) -> np.ndarray:
  """value as an array of dtype and shape (1,) * ndim, broadcastable over the iteration space."""
  return np.full((1,) * ndim, value, dtype=dtype)


def cast(x: np.ndarray, out: np.ndarray) -> np.ndarray:
  """x converted into out (a scratch array of x's shape): astype's conversion (unsafe casting: float -> int truncates)."""
  np.copyto(out, x, casting="unsafe")
  return out


# ---- WHERE without a branch per element

_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
SELECT_MIN = 4096   # below this many elements np.where's one call is cheaper than select's few


def _blend_mask(c: np.ndarray, it, keep: bool) -> np.ndarray:
  """All ones where c is `keep`, 0 elsewhere, in the unsigned int type it (for and-ing with bits)."""
  m = c.astype(it)
  if keep: np.negative(m, out=m)   # 1 -> all ones (unsigned wrap), 0 -> 0
  else: np.subtract(m, it(1), out=m)   # 0 -> all ones, 1 -> 0
  return m


def select(c: np.ndarray, a: np.ndarray, b: np.ndarray, out=None) -> np.ndarray:
  """np.where(c, a, b), bit for bit, by blending the bits of a and b with a mask of c: b ^ ((a ^ b) & mask).
  np.where branches per element, ~5x slower on a random condition (relu masks, dropout). `out`: an array of the
  result's shape and dtype to write into: a's own array (never b's: b is read again after the first pass), a
  temporary of the kernel nothing reads after. np.where itself (a fresh array) for small arrays, a non-bool
  condition or operands of different dtypes (then it promotes)."""
  n = max(np.size(c), np.size(a), np.size(b))
  if n < SELECT_MIN or c.dtype != np.bool_ or a.dtype != b.dtype or a.dtype.itemsize not in _UINT or a.dtype.hasobject:
    return np.where(c, a, b)
  it = _UINT[a.dtype.itemsize]
  av, bv = a.view(it), b.view(it)
  r = np.bitwise_xor(av, bv, out=None if out is None else out.view(it))
  m = _blend_mask(c, it, True)
  r = np.bitwise_and(r, m, out=r if r.shape == np.broadcast_shapes(r.shape, m.shape) else None)
  np.bitwise_xor(r, bv, out=r)
  return r.view(a.dtype)


def select_zero(c: np.ndarray, x: np.ndarray, keep: bool, out=None) -> np.ndarray:
  """where(c, x, 0) (keep=True) or where(c, 0, x) (keep=False) for a zero whose bits are all 0 (+0.0, 0, False), bit for
  bit: x's bits and-ed with a mask of c (relu's gradient, masked fills). `out`: x's own array, or None."""
  if max(np.size(c), np.size(x)) < SELECT_MIN or c.dtype != np.bool_ or x.dtype.itemsize not in _UINT or x.dtype.hasobject:
    zero = np.zeros((), dtype=x.dtype)
    return np.where(c, x, zero) if keep else np.where(c, zero, x)
  it = _UINT[x.dtype.itemsize]
  m = _blend_mask(c, it, keep)
  if out is None and m.shape == np.broadcast_shapes(m.shape, x.shape): out = m.view(x.dtype)   # the mask's array is the result's
  r = np.bitwise_and(x.view(it), m, out=None if out is None else out.view(it))
  return r.view(x.dtype)


# ---- counter-based random numbers: Philox4x32-10, the generator behind triton's tl.rand

PHILOX_KEY_A, PHILOX_KEY_B = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
PHILOX_ROUND_A, PHILOX_ROUND_B = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)


def philox(seed: int, c0: np.ndarray, c1: np.ndarray, rounds: int = 10) -> np.ndarray:
  """First 32-bit word of Philox4x32 for counters (c0, c1, 0, 0) and a 64-bit seed."""
  k0, k1 = np.uint32(seed & 0xFFFFFFFF), np.uint32((seed >> 32) & 0xFFFFFFFF)
  c0, c1 = c0.astype(np.uint32), c1.astype(np.uint32)
  c2, c3 = np.zeros_like(c0), np.zeros_like(c0)
  with np.errstate(over='ignore'):
    for _ in range(rounds):
      p0 = PHILOX_ROUND_B * c2.astype(np.uint64)   # uses the old c2 and c0
      p1 = PHILOX_ROUND_A * c0.astype(np.uint64)
      c0 = (p0 >> np.uint64(32)).astype(np.uint32) ^ c1 ^ k0
      c2 = (p1 >> np.uint64(32)).astype(np.uint32) ^ c3 ^ k1
      c1 = p0.astype(np.uint32)
      c3 = p1.astype(np.uint32)
      k0, k1 = k0 + PHILOX_KEY_A, k1 + PHILOX_KEY_B
  return c0


def uniform_from_uint32(x: np.ndarray) -> np.ndarray:
  """Triton's uint_to_uniform_float: values in [0, 1)."""
  xi = x.view(np.int32).astype(np.int64)
  xi = np.where(xi < 0, -xi - 1, xi)
  return (xi.astype(np.float32) * np.float32(4.6566127342e-10)).astype(np.float32)


def rand(st: ShapeTracker, seed: int, base: int) -> np.ndarray:
  """Uniform float32 values in [0, 1) for st: Philox4x32-10 keyed by seed with counter = address + base,
  the numbers Triton's tl.rand gives."""
  addr, _ = addresses(st)
  counter = np.asarray(addr, dtype=np.int64) + base
  return uniform_from_uint32(philox(int(seed), counter & 0xFFFFFFFF, counter >> 32))


# ---- reductions

def rsum(x: np.ndarray, axes, shape, dtype) -> np.ndarray:
  """x summed over axes of the iteration space `shape` (kept as size 1) in the accumulation dtype, then cast to dtype;
  an axis x is broadcast along (size 1 in x) multiplies by its extent instead."""
  dtype = np.dtype(dtype)
  acc = _acc_dtype(dtype)
  summed = tuple(a for a in axes if x.shape[a] != 1)
  out = np.sum(x, axis=summed, keepdims=True, dtype=acc) if summed else x.astype(acc)
  scale = math.prod(shape[a] for a in axes if x.shape[a] == 1)   # axes x is broadcast along
  if scale != 1: out = out * np.asarray(scale, dtype=acc)
  return out.astype(dtype, copy=False)


def rmax(x: np.ndarray, axes, shape, dtype) -> np.ndarray:
  """The max of x over axes (kept as size 1); axes x is broadcast along are skipped, an empty axis gives the
  dtype's lowest value (-inf for floats)."""
  dtype = np.dtype(dtype)
  axes = tuple(a for a in axes if x.shape[a] != 1 or shape[a] == 0)
  if not axes: return x
  # ml_dtypes' bfloat16 has kind 'V', not 'f'
  lowest = -np.inf if dtype.kind == 'f' or dtype.name == 'bfloat16' else (False if dtype.kind == 'b' else np.iinfo(dtype).min)
  if any(shape[a] == 0 for a in axes):   # x may be size 1 (broadcast) along an empty axis: nothing to take the max of
    return np.full(tuple(1 if a in axes else s for a, s in enumerate(x.shape)), lowest, dtype=dtype)
  return np.max(x, axis=axes, keepdims=True, initial=lowest).astype(dtype, copy=False)


def _acc_dtype(dtype: np.dtype, contraction: bool = False) -> np.dtype:
  """What a sum accumulates in (common.acc_dtype): float32 for half floats; a contraction
  takes ints and bools to int64, a plain sum bools to int32."""
  acc = acc_dtype(dtype.name, contraction)
  return dtype if acc == dtype.name else np.dtype(acc)


def _conform(a: np.ndarray, b: np.ndarray, dims, nd: int):
  """a and b shaped as `dims` says: size 1 along every dim an operand does not vary along
  (an empty buffer's padding load is all zeros at full size: sliced to one), and equal sizes
  along batch and k dims (a size-1 operand there is broadcast, a strided view)."""
  batch, m, n, k = dims
  for i, own in ((0, set(batch + m + k)), (1, set(batch + n + k))):
    x = (a, b)[i]
    for d in range(nd):
      if x.shape[d] != 1 and d not in own:
        assert not x.any(), f"contract: operand {'ab'[i]} varies along dim {d}, which dims {dims} say it does not"
        x = x[(slice(None),) * d + (slice(0, 1),)]
    a, b = (x, b) if i == 0 else (a, x)
  for d in batch + k:
    if a.shape[d] != b.shape[d]:
      full = max(a.shape[d], b.shape[d])
      if a.shape[d] == 1: a = np.broadcast_to(a, a.shape[:d] + (full,) + a.shape[d + 1:])
      else: b = np.broadcast_to(b, b.shape[:d] + (full,) + b.shape[d + 1:])
  return a, b


def _view_reshape(x: np.ndarray, shape) -> np.ndarray | None:
  """x reshaped to shape as a view, or None when that needs a copy."""
  try: return np.reshape(x, shape, copy=False)
  except ValueError: return None
  except TypeError:   # numpy < 2.1 has no copy=: reshape, and keep it only if it did not copy
    y = x.reshape(shape)
    return y if np.may_share_memory(y, x) else None


def _inner_run(v: np.ndarray) -> int:
  """The length of a copy of v's innermost loop: its last dim of size > 1 with the dims outside it that coalesce
  (stride = size * stride of the one inside). A copy pays per loop, so longer is faster, even strided (a stride-2
  conv's windows: 16 elements 2 apart beat 3 contiguous ones 4x)."""
  run, inner = 1, None
  for size, st in zip(reversed(v.shape), reversed(v.strides)):
    if size == 1: continue
    if inner is not None and st != run * inner: break
    if inner is None: inner = st
    run *= size
  return run


def _matrix(x: np.ndarray, lead, rows, cols) -> np.ndarray:
  """x as a (*lead, prod(rows), prod(cols)) matrix stack for np.matmul. A view when x's strides
  allow it in row-major or column-major order (BLAS takes either: a transposed operand is not
  copied); else one copy, in the order whose innermost contiguous run is longer. Conv windows:
  copied with the output-width run innermost (an im2col whose rows are runs of the input), never
  with the kernel-width run of 3 elements (a 5x slower copy)."""
  rest = [d for d in range(x.ndim) if d not in lead + rows + cols]   # all size 1 in x
  head = [x.shape[d] for d in lead]
  nr, nc = math.prod(x.shape[d] for d in rows), math.prod(x.shape[d] for d in cols)
  row_major, col_major = x.transpose(lead + rows + cols + rest), x.transpose(lead + cols + rows + rest)
  if (y := _view_reshape(row_major, head + [nr, nc])) is not None: return y
  if (y := _view_reshape(col_major, head + [nc, nr])) is not None: return y.swapaxes(-1, -2)
  if _inner_run(col_major) > _inner_run(row_major): return np.ascontiguousarray(col_major).reshape(head + [nc, nr]).swapaxes(-1, -2)
  return np.ascontiguousarray(row_major).reshape(head + [nr, nc])


def _matmul(l2: np.ndarray, r2: np.ndarray) -> np.ndarray:
  """l2 @ r2; a small result with fewer rows than columns as (r2^T @ l2^T)^T, the orientation
  OpenBLAS runs up to 2x faster for a long k (conv weight gradients: 144 x 16 rather than 16 x 144)."""
  m, n = l2.shape[-2], r2.shape[-1]
  if m < n and m * n * math.prod(np.broadcast_shapes(l2.shape[:-2], r2.shape[:-2])) <= 65536:
    return np.matmul(r2.swapaxes(-1, -2), l2.swapaxes(-1, -2)).swapaxes(-1, -2)
  return np.matmul(l2, r2)


def _contract_in_order(a: np.ndarray, b: np.ndarray, dims, nd: int):
  """The contraction as one (broadcast-)batched matmul whose result is already in the
  output's dim order, so the store after it is a plain copy, not a transposition.

  The kept dims, in order, must end with a run of n dims (only b varies along them) after a
  run of m dims (only a), or a run of m dims after one of n dims (then b @ a); every kept dim
  before those is a batch dim of np.matmul, where an m or n dim is one operand broadcast
  (size 1). Conv's input gradient then needs no copy at all, and conv forward no transposed
  output. None when the dims do not fall that way, or when the batch would be many tiny matmuls."""
  batch, m, n, k = dims
  role = {**{d: 0 for d in m}, **{d: 1 for d in n}, **{d: 2 for d in batch}}   # 0: a only, 1: b only, 2: both
  out = sorted(d for d in role if a.shape[d] != 1 or b.shape[d] != 1)
  if not out or role[out[-1]] == 2: return None
  i = len(out)
  while i > 0 and role[out[i - 1]] == role[out[-1]]: i -= 1
  j = i
  while j > 0 and role[out[j - 1]] == 1 - role[out[-1]]: j -= 1
  if j == i: return None
  mbatch, mrun, nrun, kdims = out[:j], out[j:i], out[i:], list(k)
  left, right = (a, b) if role[out[-1]] == 1 else (b, a)
  size = lambda x, ds: math.prod(x.shape[d] for d in ds)
  mm, nn, kk = size(left, mrun), size(right, nrun), size(a, kdims)
  if math.prod(max(a.shape[d], b.shape[d]) for d in mbatch) > 64 and mm * nn * kk < 65536: return None   # many tiny gemms
  c = _chunked_matmul(left, right, mbatch, mrun, nrun, kdims)
  if c is None: c = _matmul(_matrix(left, mbatch, mrun, kdims), _matrix(right, mbatch, kdims, nrun))
  return c.reshape([max(a.shape[d], b.shape[d]) if d in out else 1 for d in range(nd)])


CHUNK = 1 << 18   # elements of an im2col copy per matmul (1 MiB of float32): still in L2 when BLAS reads it


def _overlapping(x: np.ndarray) -> bool:
  """Whether x has more elements than the memory it spans: windows (conv), whose copy is an im2col."""
  return 1 + sum((s - 1) * abs(st) for s, st in zip(x.shape, x.strides)) // x.itemsize < x.size


def _chunked_matmul(left: np.ndarray, right: np.ndarray, mbatch, mrun, nrun, kdims):
  """_contract_in_order's matmul in slices of its outermost batch dim (conv forward: the images) or, when that
  is not one the window operand varies along, of its outermost k dim (conv weight gradient: the images, summed):
  each slice's im2col copy is at most CHUNK elements and still in cache when BLAS reads it (~25% faster than
  one copy of the whole; no gain below ~8 slices). None when neither operand is a window view over CHUNK * 8 elements."""
  win = next((x for x in (left, right) if x.size > 8 * CHUNK and _overlapping(x)), None)
  if win is None: return None
  d0 = next((d for d in mbatch + kdims if win.shape[d] > 1), None)
  if d0 is None: return None
  step = max(1, CHUNK // (win.size // win.shape[d0]))
  if step >= win.shape[d0]: return None
  cut = lambda x, lo: x if x.shape[d0] == 1 else x[(slice(None),) * d0 + (slice(lo, lo + step),)]
  mats = lambda lo: (_matrix(cut(left, lo), mbatch, mrun, kdims), _matrix(cut(right, lo), mbatch, kdims, nrun))
  if d0 in kdims:   # a sum over the slices
    c = _matmul(*mats(0))
    c = np.array(c, copy=True) if not c.flags.writeable or c.base is not None else c
    for lo in range(step, win.shape[d0], step): c += _matmul(*mats(lo))
    return c
  axis, c = mbatch.index(d0), None
  for lo in range(0, win.shape[d0], step):
    l2, r2 = mats(lo)
    if c is None:
      shape = list(np.broadcast_shapes(l2.shape[:-2], r2.shape[:-2])) + [l2.shape[-2], r2.shape[-1]]
      shape[axis] = win.shape[d0]
      c = np.empty(shape, dtype=np.result_type(l2, r2))
    dst = c[(slice(None),) * axis + (slice(lo, lo + step),)]
    if axis == 0: np.matmul(l2, r2, out=dst)   # straight into the result: a slab of it
    else: dst[...] = _matmul(l2, r2)
  return c


def _contract_interleaved(a: np.ndarray, b: np.ndarray, dims, nd: int):
  """A contraction whose kept dims interleave m and n dims (the sub-pixel input gradient: (N, C, Q, R, Q, R), the
  phases R only the weight varies along): _contract_in_order with the interleaved dims moved next to their run
  ((N, C, R, R, Q, Q): a forward conv with C * R * R channels, chunked, result in order), then written into the
  output one index of the moved dims at a time, so each copy's inner loop is a run of the image, not of the 2
  phases (a transposing store of the whole is ~3x slower). None when that does not put it in order, or when the
  moved dims take more than 16 copies."""
  batch, m, n, _ = dims
  kept = sorted(d for d in batch + m + n if a.shape[d] != 1 or b.shape[d] != 1)
  for other, own in ((n, m), (m, n)):   # move `other` dims found after a run of `other` then one of `own` began
    fo = next((d for d in kept if d in other), nd)
    ft = next((d for d in kept if d in own and d > fo), nd)
    moved = [d for d in kept if d in other and d > ft]
    if moved and math.prod(max(a.shape[d], b.shape[d]) for d in moved) <= 16: break
  else: return None
  perm = [d for d in range(nd) if d < ft and d not in moved] + moved + [d for d in range(nd) if d >= ft and d not in moved]
  where = {d: i for i, d in enumerate(perm)}
  pdims = tuple(tuple(sorted(where[d] for d in ds)) for ds in dims)
  c = _contract_in_order(a.transpose(perm), b.transpose(perm), pdims, nd)
  if c is None: return None
  out = np.empty([c.shape[where[d]] for d in range(nd)], dtype=c.dtype)
  for idx in itertools.product(*[range(out.shape[d]) for d in moved]):
    pick = dict(zip(moved, idx))
    dst = out[tuple(pick.get(d, slice(None)) for d in range(nd))]
    dst[...] = c[tuple(pick.get(d, slice(None)) for d in perm)].reshape(dst.shape)
  return out


def _contract_dot(a: np.ndarray, b: np.ndarray, dims, nd: int):
  """A contraction with no m or n dim (batched dots: BatchNorm's per-channel sums of products) by np.einsum, whose
  multiply-accumulate loop reads each operand once: ~3x faster than copying both into BLAS's layout, or than a
  product then a sum. None when an operand varies along an m or n dim."""
  batch, m, n, _ = dims
  if any(a.shape[d] != 1 for d in m) or any(b.shape[d] != 1 for d in n) or a.shape != b.shape or nd > 52: return None
  letter = lambda d: chr(ord("a") + d) if d < 26 else chr(ord("A") + d - 26)
  sub = "".join(letter(d) for d in range(nd))
  kept = [d for d in batch if a.shape[d] != 1]
  return np.einsum(f"{sub},{sub}->{''.join(letter(d) for d in kept)}", a, b).reshape([a.shape[d] if d in kept else 1 for d in range(nd)])


def _contract_transposed(a: np.ndarray, b: np.ndarray, dims, nd: int):
  """The contraction as (batch, m, k) @ (batch, k, n), transposed back into dim order."""
  batch, m, n, k = dims
  bd, md, nd_, kd = [d for d in batch if a.shape[d] != 1], list(m), list(n), list(k)
  c = _matmul(_matrix(a, bd, md, kd), _matrix(b, bd, kd, nd_))
  out_dims = bd + md + nd_
  c = c.reshape([a.shape[d] if d in bd + md else b.shape[d] for d in out_dims] + [1] * (nd - len(out_dims)))
  return c.transpose(np.argsort(out_dims + [d for d in range(nd) if d not in out_dims]))


def contract(a: np.ndarray, b: np.ndarray, dims, shape, dtype, presum=((), ()), scale=1) -> np.ndarray:
  """sum(a * b) over the k dims without forming a * b: a batched matmul over BLAS.

  dims = (batch, m, n, k): dims of the kernel's iteration space `shape`, as Kernel.contraction
  says (the renderer passes them as a constant): a varies along batch, m, k; b along batch,
  n, k; both have size 1 along any other dim. Nothing here looks at the arrays' shapes to
  decide roles. `presum` and `scale` only come from the renderer's fallback for a sum(a * b)
  the IR has no Contraction for: reduced dims only a (resp. b) varies along, summed out of it
  first, and the product of the reduced sizes neither varies along."""
  dtype, nd = np.dtype(dtype), len(shape)
  if 0 in shape: return np.zeros([shape[d] if d in dims[0] + dims[1] + dims[2] else 1 for d in range(nd)], dtype)
  acc = _acc_dtype(dtype, contraction=True)
  a, b = a.astype(acc, copy=False), b.astype(acc, copy=False)
  if presum[0]: a = a.sum(axis=presum[0], keepdims=True)
  if presum[1]: b = b.sum(axis=presum[1], keepdims=True)
  a, b = _conform(a, b, dims, nd)
  c = _contract_dot(a, b, dims, nd)
  if c is None: c = _contract_in_order(a, b, dims, nd)
  if c is None: c = _contract_interleaved(a, b, dims, nd)
  if c is None: c = _contract_transposed(a, b, dims, nd)
  if scale != 1: c = c * np.asarray(scale, dtype=acc)
  return c.astype(dtype, copy=False)


def contract_cat(pieces, dim: int, other: np.ndarray, cat_first: bool, dims, shape, dtype, presum=((), ()), scale=1) -> np.ndarray:
  """contract(cat_loads(pieces, dim), other, dims, ...) for a reduced `dim`, without the
  concatenate: one contraction per piece against the matching slice of `other`, summed.
  Conv's windows are stacked along a kernel dim, so the forward pass never builds the
  im2col matrix whole. A piece may be broadcast (size 1) along a dim the whole varies along."""
  assert dim in dims[3] + presum[0] + presum[1], "contract_cat: the pieces must be joined along a reduced dim"
  acc = _acc_dtype(np.dtype(dtype), contraction=True)
  total, lo = None, 0
  for buf, st in pieces:
    w = st.shape[dim]
    o = other if other.shape[dim] == 1 else other[(slice(None),) * dim + (slice(lo, lo + w),)]
    p, sub = load(buf, st), tuple(w if d == dim else s for d, s in enumerate(shape))
    r = contract(p, o, dims, sub, acc, presum, scale) if cat_first else contract(o, p, dims, sub, acc, presum, scale)
    total = r if total is None else total + r
    lo += w
  return total.astype(dtype, copy=False)


def idiv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Integer division rounding toward zero (C / Triton semantics)."""
  with np.errstate(divide='ignore', invalid='ignore'):
    q = np.floor_divide(a, b)
    fix = (q * b != a) & ((a < 0) ^ (b < 0))
  return (q + fix).astype(a.dtype, copy=False)


def store(out: np.ndarray, value: np.ndarray, shape) -> None:
  """Write value, broadcast to shape, into the flat contiguous output out."""
  out.reshape(shape)[...] = np.broadcast_to(value, shape)


def store_view(out: np.ndarray, value: np.ndarray, st: ShapeTracker) -> None:
  """Store through a one-to-one view of the output buffer (a permuted per-row epilogue)."""
  v = st.views[0]
  dst = as_strided(out[v.offset:], v.shape, tuple(x * out.itemsize for x in v.strides))
  dst[...] = np.broadcast_to(value, v.shape)


def check(x: np.ndarray, lo: int, hi: int, err: np.ndarray, site: int) -> np.ndarray:
  """Ops.CHECK: x unchanged; a value outside [lo, hi) is recorded in the error buffer (runtime/errors.py): slot 0,
  and site's flags, largest value >= hi and smallest value < lo. Two reductions over x (broadcast dims are size 1)."""
  if x.size == 0: return x
  mn, mx = int(x.min()), int(x.max())
  if lo <= mn and mx < hi: return x
  err[0], s = 1, 1 + 3 * site
  if mx >= hi: err[s], err[s + 1] = err[s] | 1, max(int(err[s + 1]), mx)
  if mn < lo: err[s], err[s + 2] = err[s] | 2, min(int(err[s + 2]), mn)
  return x
