"""The Kernel IR: what the scheduler hands to every renderer (numpy, Triton).

A Kernel iterates over `shape`. Its `body` is an expression tree of `Expr` nodes whose
leaves are LOAD (buffer slot + ShapeTracker from the iteration space to the buffer),
CONST, VALID (a view's mask as a bool) and RAND; inner nodes are the elementwise
primitives, and at most one REDUCE (at the root, for now). The result is stored
contiguously into buffer slot 0 with shape `out_shape` (reduced dims kept as 1).
"""
from __future__ import annotations
from dataclasses import dataclass, field
from typing import Any
import math
from lazygrad.dtype import DType
from lazygrad.ops import Ops


@dataclass(frozen=True)
class Expr:
  op: Ops
  srcs: tuple[Expr, ...]
  arg: Any
  dtype: DType

  def __hash__(self):
    # cached: an Expr is a DAG, and an uncached structural hash revisits shared
    # subexpressions once per path (exponential in depth for grad-of-grad graphs)
    h = self.__dict__.get("_hash")
    if h is None:
      h = hash((self.op, self.srcs, self.arg, self.dtype))
      object.__setattr__(self, "_hash", h)
    return h

  def walk(self):
    """Every node once, sources first."""
    seen, order = set(), []
    def visit(e):
      if id(e) in seen: return
      seen.add(id(e))
      for s in e.srcs: visit(s)
      order.append(e)
    visit(self)
    return order


@dataclass(eq=False)
class Kernel:
  name: str
  shape: tuple[int, ...]           # iteration space
  out_shape: tuple[int, ...]       # shape stored into slot 0 (reduced dims are 1)
  body: Expr
  buf_dtypes: tuple[DType, ...]    # slot 0 is the output, the rest are inputs
  var_names: tuple[str, ...] = ()  # runtime scalars (e.g. rand seed) passed at launch
  source: str = ""                 # filled by a renderer
  key: Any = field(default=None)
  out_st: Any = None               # where out_shape's elements land in slot 0 (None: contiguous)

  @property
  def reduce_axes(self) -> tuple[int, ...]:
    """The axes every REDUCE in the body reduces (one set per kernel), () if none."""
    return next((e.arg[1] for e in self.body.walk() if e.op is Ops.REDUCE), ())

  @property
  def flops(self) -> int:
    n = math.prod(self.shape)
    return n * sum(1 for e in self.body.walk() if e.op not in (Ops.LOAD, Ops.CONST, Ops.VALID))


def kernel_name(body: Expr, shape) -> str:
  ops = []
  for e in body.walk():
    if e.op in (Ops.LOAD, Ops.CONST, Ops.VALID, Ops.CAST): continue
    nm = (f"{e.arg[0].name.lower()}" if e.op is Ops.REDUCE else e.op.name.lower())
    if e.op is Ops.REDUCE: nm = {"add": "sum", "max": "max"}[nm]
    if nm not in ops: ops.append(nm)
  prefix = "R" if any(e.op is Ops.REDUCE for e in body.walk()) else "E"
  dims = "x".join(str(s) for s in shape) or "1"
  return "_".join([prefix] + ops[:4] + [dims])
