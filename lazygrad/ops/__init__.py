"""The lazy graph: one node type over a small primitive op set."""
from __future__ import annotations
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any
from lazygrad.dtype import DType


class Ops(Enum):
  """The primitives of the lazy graph (sources, unary, binary, WHERE, REDUCE, movement, CONTIGUOUS, ASSIGN),
  plus LOAD and VALID, which only the kernel IR uses, GATHER (a load at a computed index) and the template ops (ATTENTION,
  SCATTER_ADD), each a kernel of its own."""
  # sources
  BUFFER = auto(); CONST = auto(); RAND = auto()
  # unary
  NEG = auto(); EXP2 = auto(); LOG2 = auto(); EXP = auto(); LOG = auto(); SIN = auto(); SQRT = auto()
  RECIP = auto(); CAST = auto(); BITCAST = auto()
  TANH = auto(); EXPM1 = auto(); LOG1P = auto(); ERF = auto(); COS = auto()   # accurate to a few ulp where a composition cancels
  # binary
  ADD = auto(); MUL = auto(); MAX = auto(); CMPLT = auto(); CMPEQ = auto(); IDIV = auto(); MOD = auto()
  AND = auto(); OR = auto(); XOR = auto(); FDIV = auto()   # FDIV: true (float) division, correctly rounded
  # ternary
  WHERE = auto()
  # reduce (arg = (Ops.ADD | Ops.MAX, axes)); the output keeps reduced dims as size 1
  REDUCE = auto()
  # movement (views, never copies)
  RESHAPE = auto(); PERMUTE = auto(); EXPAND = auto(); PAD = auto(); SHRINK = auto(); FLIP = auto()
  # other
  CONTIGUOUS = auto(); ASSIGN = auto()
  # kernel IR only (never in the lazy graph): read a buffer through a view / the validity mask of a view
  LOAD = auto(); VALID = auto()
  # bounds: CHECK(idx) passes an index through unchanged and records, per schedule, a value outside
  # arg = (lo, hi) (an IndexError at the end of realize); node.origin is its CheckSite
  CHECK = auto()
  # GATHER(src, idx), arg = dim: out[o] = src[o with o[dim] := idx[o]]; idx has out's shape, src too except along dim
  # and where it is 1 (read broadcast). A load at a data-dependent address: src is a buffer, the gather fuses into its
  # readers (ops/gather.py)
  GATHER = auto()
  # template ops: a kernel of their own, rendered by a hand-written template (arg: ops/attention.py's AttentionArg;
  # SCATTER_ADD(idx, vals), arg = (dim, out_shape): zeros(out_shape) with vals added at idx along dim, GATHER's gradient)
  ATTENTION = auto(); SCATTER_ADD = auto()


UNARY = {Ops.NEG, Ops.EXP2, Ops.LOG2, Ops.EXP, Ops.LOG, Ops.SIN, Ops.SQRT, Ops.RECIP, Ops.CAST, Ops.BITCAST,
         Ops.TANH, Ops.EXPM1, Ops.LOG1P, Ops.ERF, Ops.COS}
BINARY = {Ops.ADD, Ops.MUL, Ops.MAX, Ops.CMPLT, Ops.CMPEQ, Ops.IDIV, Ops.MOD, Ops.AND, Ops.OR, Ops.XOR, Ops.FDIV}
ELEMENTWISE = UNARY | BINARY | {Ops.WHERE, Ops.CHECK}
MOVEMENT = {Ops.RESHAPE, Ops.PERMUTE, Ops.EXPAND, Ops.PAD, Ops.SHRINK, Ops.FLIP}


@dataclass(frozen=True)
class CheckSite:
  """Where a bounds check (Ops.CHECK) was built, for its IndexError: the op (`gather`), what the value is (`index`,
  `target`), the dim and its size, and the user's source line (`train.py:12`). seq orders sites by creation, so the
  error names the first check the program reached; it is left out of equality (two sites at one line are alike)."""
  op: str
  what: str
  dim: int | None
  size: int
  where: str
  seq: int = field(default=0, compare=False)


class Node:
  """One lazy value: op applied to srcs. Once realized, `buffer` and `st` (its view on
  the buffer) are set and the scheduler treats the node as a leaf. `vjp`, when set (autograd.custom_vjp),
  is (inputs, fn): autograd differentiates the node as fn(grad) -> one gradient per input node instead of
  walking srcs (conv's input gradient is a transposed conv, not the gradient of its window views)."""
  __slots__ = ('op', 'srcs', 'arg', 'shape', 'dtype', 'device', 'requires_grad', 'buffer', 'st', 'origin', 'vjp', '__weakref__')

  def __init__(self, op: Ops, srcs: tuple[Node, ...], arg: Any, shape: tuple[int, ...], dtype: DType, device: str,
               requires_grad: bool = False):
    self.op, self.srcs, self.arg, self.shape, self.dtype, self.device = op, srcs, arg, shape, dtype, device
    self.requires_grad = requires_grad
    self.buffer, self.st, self.origin, self.vjp = None, None, None, None

  @property
  def realized(self) -> bool:
    """Whether the node has a buffer (then the scheduler reads it as a leaf)."""
    return self.buffer is not None

  def __repr__(self):
    state = "realized" if self.realized else f"{len(self.srcs)} srcs"
    return f"<Node {self.op.name} {self.shape} {self.dtype.name} {state}>"


def toposort(roots: list[Node], stop_at_realized: bool = True) -> list[Node]:
  """Nodes reachable from roots, sources first (iterative: graphs can be deep)."""
  order, seen = [], set()
  for root in roots:
    if id(root) in seen: continue
    stack = [(root, False)]
    while stack:
      node, expanded = stack.pop()
      if expanded:
        order.append(node); continue
      if id(node) in seen: continue
      seen.add(id(node))
      stack.append((node, True))
      if not (stop_at_realized and node.realized):
        for s in reversed(node.srcs):
          if id(s) not in seen: stack.append((s, False))
  return order


TEMPLATES = {Ops.ATTENTION, Ops.SCATTER_ADD}   # template ops: always a kernel of their own, their sources read from buffers
