"""GATHER and SCATTER_ADD: the two indexed primitives (see docs/design.md, "Gather and scatter-add").

GATHER(src, idx), arg = dim: out[o] = src[o with o[dim] := idx[o]]. idx has out's shape; src has it too except along
dim (any size n) and along dims where src has size 1 (read broadcast: embedding's weight is (1, .., V, D) under ids
(B, T, 1, D)). It is a load whose address is computed from a loaded index: the kernel IR's GATHER leaf reads src
through a view that ignores dim (stride 0 there) plus idx * stride, so src must be a buffer read through one view that
is not masked along dim (`gather_view_ok`); the front end copies a source that is not.

SCATTER_ADD(idx, vals), arg = (dim, out_shape): zeros(out_shape) with vals[i] added at i with i[dim] := idx[i]; a dim
where out_shape is 1 and idx is not is summed over (the reverse of GATHER's broadcast source). GATHER's gradient;
its own gradient is a GATHER of the incoming one."""
from __future__ import annotations
from lazygrad.ops import MOVEMENT, Node
from lazygrad.ops.view import ShapeTracker


def source_view(src: Node, stop=frozenset()) -> tuple[Node, ShapeTracker]:
  """(the buffer src is read from: a realized node, a node whose id is in stop (a kernel root) or the first computed
  node under src's movement ops; the view of src's shape on it)."""
  mops = []
  while src.op in MOVEMENT and not src.realized and id(src) not in stop:
    mops.append((src.op, src.arg))
    src = src.srcs[0]
  st = src.st if src.realized else ShapeTracker.from_shape(src.shape)
  for op, arg in reversed(mops): st = st.apply(op.name, arg)
  return src, st


def gather_view_ok(st: ShapeTracker, dim: int) -> bool:
  """Whether GATHER can read a source through st: one view, not masked along dim (the address is then linear in the
  gathered index: base + idx * stride)."""
  if len(st.views) != 1: return False
  v = st.views[0]
  return v.mask is None or v.mask[dim] == (0, v.shape[dim])


def gather_st(st: ShapeTracker, dim: int, out_shape) -> tuple[ShapeTracker, int]:
  """(st with dim pinned to 0 and broadcast over out_shape, the stride idx is multiplied by): the gathered address is
  address(pinned, o) + idx[o] * stride."""
  stride = st.views[0].strides[dim]
  pinned = st.shrink(tuple((0, 1) if d == dim else (0, s) for d, s in enumerate(st.shape)))
  return pinned.expand(tuple(out_shape)), stride


def scatter_strides(dim: int, out_shape, idx_shape) -> tuple[int, ...]:
  """Per dim of idx's space, the stride of out_shape's contiguous layout it moves along (0 where out_shape is 1: summed
  over; dim's is the one idx is multiplied by)."""
  strides, acc = [0] * len(out_shape), 1
  for d in reversed(range(len(out_shape))):
    strides[d] = acc if (out_shape[d] != 1 or d == dim) else 0
    acc *= out_shape[d]
  return tuple(strides)
