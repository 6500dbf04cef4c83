"""How the numpy renderer writes a kernel's elementwise lines as fast as hand-written numpy,
with the same bits as the plain one-fresh-array-per-op form:

- **peepholes**: `a + (-b)` is `np.subtract(a, b)` (the same value; where b is nan, the nan's sign bit is b's, not
  flipped: the one difference from the plain form, docs/accuracy.md); `(a < b) | (a == b)` is one `np.less_equal`;
  relu's `where(x <= 0, +0, x)` is
  `np.maximum(x, +0)` in float32/float64 (checked bit for bit against the where on this numpy:
  -0 -> +0, nan kept; float16's SIMD maximum keeps -0, so it keeps the where);
- **WHERE without branches**: `lib.select` blends the bits of the two branches by a mask of the
  condition (np.where branches per element: ~5x slower on a random condition);
- **in-place temporaries**: an op writes its result into a source array (`out=`) when that array
  is a temporary of this kernel (a fresh ufunc / select / cast / sum result, never a view of a
  buffer or a constant) read by nothing else, of the result's shape and dtype; the body's last
  ufunc writes straight into the output buffer when it has the output's shape and dtype.

Shapes are known at render time: inside a numpy kernel an array has the iteration space's
size along every dim it varies along and 1 along the rest (lib.load's rule)."""
from __future__ import annotations

import functools

import numpy as np

from lazygrad.kernels.ir import Expr
from lazygrad.kernels.numpy.lib import is_broadcast
from lazygrad.ops import Ops

Shape = tuple[int, ...] | None   # None: not known at render time (never written in place)

# False: the renderer writes the plain form instead (one fresh array per op, np.where, every node its own line): the
# reference tests/test_numpy_inplace.py compares the fast form with, bit for bit
FAST = True


@functools.cache
def maximum_is_relu(np_dtype: str) -> bool:
  """Whether np.maximum(x, +0) gives where(x <= 0, +0, x) bit for bit in this dtype on this numpy (SIMD loops and
  scalar tails alike: many lengths and offsets, -0, both nans, infinities, subnormals)."""
  dt = np.dtype(np_dtype)
  vals = np.array([-0.0, 0.0, np.nan, -np.nan, -1.0, 1.0, np.inf, -np.inf, 3.5, -2e-40, 2e-40], dtype=dt)
  rng = np.random.default_rng(0)
  for n in range(1, 80):
    x = rng.choice(vals, n + 3)[n % 3:]
    ref = np.where(x <= 0, dt.type(0), x)
    inplace = x.copy()
    np.maximum(inplace, dt.type(0), out=inplace)
    for got in (np.maximum(x, np.zeros((1,), dt)), inplace):
      if got.tobytes() != ref.tobytes(): return False
  return True


def zero_const(e: Expr) -> bool:
  """A CONST whose bits are all zero (+0.0, 0, False): where(c, x, 0) is then x's bits and-ed with a mask."""
  return e.op is Ops.CONST and not np.full(1, e.arg, dtype=e.dtype.np).view(np.uint8).any()


def rewrites(order, users: dict[int, int]) -> dict[int, tuple[str, tuple[Expr, ...]]]:
  """id(node) -> (numpy function, operands) for the peepholes; the nodes only they read drop out of the kernel.
  users: how many nodes read each node (by id)."""
  out, le = {}, {}
  for e in order:
    if e.op is Ops.ADD and e.dtype.name != "bool":   # a + (-b) (Tensor.sub's form) is a - b, one pass instead of two
      neg = next((i for i, s in enumerate(e.srcs) if s.op is Ops.NEG and users.get(id(s)) == 1), None)
      if neg is not None: out[id(e)] = ("np.subtract", (e.srcs[1 - neg], e.srcs[neg].srcs[0]))
    if e.op is Ops.OR and len(e.srcs) == 2:
      lt, eq = sorted(e.srcs, key=lambda s: s.op is Ops.CMPEQ)
      if lt.op is Ops.CMPLT and eq.op is Ops.CMPEQ and lt.srcs[0] is eq.srcs[0] and lt.srcs[1] is eq.srcs[1]:
        le[id(e)] = lt.srcs
        out[id(e)] = ("np.less_equal", lt.srcs)
    elif e.op is Ops.WHERE and id(e.srcs[0]) in le:
      (x, zero), then, other = le[id(e.srcs[0])], e.srcs[1], e.srcs[2]
      if other is x and zero.op is Ops.CONST and zero.arg == 0 and zero_const(then) and x.dtype == then.dtype \
          and e.dtype.name in ("float32", "float64") and maximum_is_relu(e.dtype.name):
        out[id(e)] = ("np.maximum", (x, then))
  return out


def load_shape(st, nd: int) -> Shape:
  """The shape lib.load returns for a single-view ShapeTracker (1 along broadcast dims); None for several views."""
  if len(st.views) != 1: return None
  v = st.views[0]
  return tuple(1 if is_broadcast(v, d) else s for d, s in enumerate(v.shape))


def broadcast(shapes) -> Shape:
  """numpy's broadcast of known shapes; None if one is unknown."""
  if any(s is None for s in shapes): return None
  return tuple(np.broadcast_shapes(*shapes))


def contract_shape(a: Shape, b: Shape, dims, nd: int) -> Shape:
  """The shape lib.contract returns for operands of shapes a and b: each batch dim the larger of the two, an m dim a's,
  an n dim b's, 1 elsewhere (a non-empty space: an empty one is all padding at full size)."""
  if a is None or b is None: return None
  batch, m, n, _ = dims
  return tuple(max(a[d], b[d]) if d in batch else a[d] if d in m else b[d] if d in n else 1 for d in range(nd))


class Temps:
  """Which arrays of a kernel are its own temporaries (writable, aliasing nothing) and every array's shape, so an op
  can take one of its operands as `out=`: the operand must be a temporary read by this op alone (nreads: reads by
  every line of the kernel, by id) with the result's shape and dtype."""

  def __init__(self, nreads: dict[int, int]):
    self.nreads, self.owned, self.shapes = nreads, set(), {}
    self.made: list[int] = []   # every fresh temporary (known shape or not): released to the scratch pool at the end

  def note(self, e: Expr, shape: Shape, owned: bool) -> None:
    """Record e's array: its shape (None: unknown) and whether it is a fresh temporary of this kernel."""
    self.shapes[id(e)] = shape
    if owned: self.made.append(id(e))
    if owned and shape: self.owned.add(id(e))   # shape (): a 0-d ufunc result is a numpy scalar, no `out=`

  def shape(self, e: Expr) -> Shape:
    """e's array's shape, None if unknown."""
    return self.shapes.get(id(e))

  def reusable(self, e: Expr, srcs: tuple[Expr, ...], shape: Shape) -> Expr | None:
    """The operand of e (computing an array of `shape`, e.dtype) whose array e may overwrite, or None."""
    if shape is None: return None
    for s in srcs:
      if id(s) in self.owned and self.nreads.get(id(s)) == 1 and sum(x is s for x in srcs) == 1 \
          and self.shapes[id(s)] == shape and s.dtype == e.dtype:
        return s
    return None
