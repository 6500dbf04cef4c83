"""The Kernel IR: what the scheduler hands to every renderer (numpy, Triton).

A Kernel iterates over `shape`. Its `body` is an expression tree of `Expr` nodes whose
leaves are LOAD (buffer slot + ShapeTracker from the iteration space to the buffer),
CONST, VALID (a view's mask as a bool) and RAND; inner nodes are the elementwise
primitives and REDUCEs (all over the same axes). The result is stored into buffer
slot 0 with shape `out_shape` (reduced dims kept as 1), contiguously or through `out_st`.

A kernel whose one REDUCE is sum(a * b) over a (batched) matmul split of its space also
carries a `Contraction`: which dims are batch / m / n / k, the two operand expressions
(their "prologue": loads and cheap elementwise ops) and the accumulator node; the rest of
`body` is the epilogue over the accumulator (bias, activation, `w - lr * acc`, ...).
Renderers read the contraction instead of classifying dims themselves: Triton renders it
as a tiled `tl.dot` with prologue and epilogue on the tiles, numpy as one BLAS matmul.
"""
from __future__ import annotations
from dataclasses import dataclass, field
from typing import Any
import functools
import math
from lazygrad.dtype import DType
from lazygrad.ops import Ops, TEMPLATES
from lazygrad.ops.attention import attention_flops


@dataclass(frozen=True)
class Expr:
  """One node of a kernel body: op applied to srcs, with arg (a LOAD's (slot, ShapeTracker), a CONST's value,
  a REDUCE's (op, axes), ...) and the result dtype. Frozen and compared by value; the hash is cached."""
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

  def __eq__(self, other) -> bool:
    """Structural equality in time linear in the DAG: each pair of nodes is compared once
    (the generated dataclass __eq__ recursed once per path: exponential for shared subtrees)."""
    if self is other: return True
    if not isinstance(other, Expr) or hash(self) != hash(other): return False
    seen, stack = set(), [(self, other)]
    while stack:
      x, y = stack.pop()
      if x is y or (id(x), id(y)) in seen: continue
      seen.add((id(x), id(y)))
      if x.op is not y.op or x.dtype != y.dtype or len(x.srcs) != len(y.srcs) or hash(x) != hash(y) or x.arg != y.arg: return False
      stack.extend(zip(x.srcs, y.srcs))
    return True

  def __repr__(self):
    # short: the whole tree can be exponentially long printed (shared subexpressions repeat)
    return f"<Expr {self.op.name} {self.dtype.name} {len(self.srcs)} srcs>"

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
  """Built by the scheduler (scheduler/lower.py) and read-only after: renderers return a
  program (source, launch configs) instead of writing into it."""
  name: str
  shape: tuple[int, ...]           # iteration space
  out_shape: tuple[int, ...]       # shape stored into slot 0 (reduced dims are 1)
  body: Expr
  buf_dtypes: tuple[DType, ...]    # slot 0 is the output, the rest are inputs
  var_names: tuple[str, ...] = ()  # runtime scalars (e.g. rand seed) passed at launch
  key: Any = field(default=None)
  out_st: Any = None               # where out_shape's elements land in slot 0 (None: contiguous)
  contraction: Contraction | None = None   # set when the kernel's one REDUCE is a (batched) matmul
  checks: int = 0                  # CHECK sites in body (bounds checks): the kernel gets the error buffer and var `ebase`
  guard: bool = False              # an ASSIGN in a schedule with checks: it writes nothing once an error is recorded

  @property
  def uses_errors(self) -> bool:
    """Whether the kernel takes the device's error buffer (after its inputs): it has checks or a guard."""
    return bool(self.checks) or self.guard

  @property
  def reduce_axes(self) -> tuple[int, ...]:
    """The axes every REDUCE in the body reduces (one set per kernel), () if none."""
    return next((e.arg[1] for e in self.body.walk() if e.op is Ops.REDUCE), ())

  def __repr__(self):
    # one line: the slot dtypes once each (output <- inputs when they differ), the matmul size (batch, m, n, k) if any
    names = list(dict.fromkeys(d.name for d in self.buf_dtypes))
    dts = names[0] if len(names) == 1 else f"{self.buf_dtypes[0].name} <- {','.join(dict.fromkeys(d.name for d in self.buf_dtypes[1:]))}"
    c = f" contraction {self.contraction.sizes(self.shape)}" if self.contraction is not None else ""
    return f"<Kernel {self.name} space {tuple(self.shape)} -> {tuple(self.out_shape)} {dts}{c}>"

  @functools.cached_property
  def flops(self) -> int:
    """An op count: the iteration space's size times the body's nodes other than LOAD, CONST and VALID (a template:
    its GEMMs' flops). Cached: a kernel is read-only once built, and the executor counts it at every launch."""
    if self.body.op is Ops.SCATTER_ADD: return math.prod(leaf_st(self.body.srcs[1]).shape)   # an add per value
    if self.body.op in TEMPLATES: return attention_flops(self.body.arg, [leaf_st(s).shape for s in self.body.srcs])
    n = math.prod(self.shape)
    return n * sum(1 for e in self.body.walk() if e.op not in (Ops.LOAD, Ops.CONST, Ops.VALID, Ops.CHECK))


LEAVES = (Ops.LOAD, Ops.VALID, Ops.RAND)
READS = LEAVES + (Ops.GATHER,)   # nodes with a view of the iteration space: the leaves and GATHER (arg (slot, st, stride, n))


def leaf_st(e: Expr):
  """The ShapeTracker of a leaf (LOAD, VALID, RAND) or a GATHER: from the iteration space to the buffer (a GATHER's
  with the gathered dim pinned; its index adds idx * stride)."""
  return e.arg[1] if e.op in (Ops.LOAD, Ops.GATHER) else e.arg if e.op is Ops.VALID else e.arg[0]


def moving_dims(e: Expr) -> set[int]:
  """The dims of the iteration space along which the value of e can change (one walk): some
  leaf under it reads with a non-zero stride or a mask along them. (The outermost view
  decides: an inner view is indexed by the outer view's address, which does not change
  along a dim the outer view ignores.)"""
  out: set[int] = set()
  for x in e.walk():
    if x.op in READS:   # a GATHER also moves wherever its index does (a source, walked too)
      v = leaf_st(x).views[-1]
      out.update(d for d in range(len(v.shape)) if v.strides[d] != 0 or (v.mask is not None and v.mask[d] != (0, v.shape[d])))
  return out


@dataclass(frozen=True)
class DimSplit:
  """The dims of sum(a * b)'s space (size-1 dims in none) by which factor moves along them:
  kept dims are batch (both or neither), m (a only), n (b only); reduced dims are k (both),
  only_a / only_b (one factor: a plain sum of it), neither (the sum is a multiple)."""
  batch: tuple[int, ...]
  m: tuple[int, ...]
  n: tuple[int, ...]
  k: tuple[int, ...]
  only_a: tuple[int, ...]
  only_b: tuple[int, ...]
  neither: tuple[int, ...]


def split_dims(a: Expr, b: Expr, shape, axes) -> DimSplit:
  """The one classification of a product's dims; find_contraction and the numpy renderer's
  fallback for sums the IR records no Contraction for both read it."""
  ma, mb = moving_dims(a), moving_dims(b)
  out: dict[str, list[int]] = {f: [] for f in ("batch", "m", "n", "k", "only_a", "only_b", "neither")}
  for d, size in enumerate(shape):
    if size == 1: continue
    in_a, in_b = d in ma, d in mb
    if d in axes: out["k" if in_a and in_b else "only_a" if in_a else "only_b" if in_b else "neither"].append(d)
    else: out["batch" if in_a == in_b else "m" if in_a else "n"].append(d)
  return DimSplit(**{f: tuple(v) for f, v in out.items()})


@dataclass(frozen=True)
class Contraction:
  """sum over k of a * b, with a varying along batch, m, k and b along batch, n, k.

  Dims are those of the kernel's iteration space; size-1 dims are in none of the lists,
  a kept dim neither operand moves along counts as batch (both operands are broadcast)."""
  acc: Expr                  # the REDUCE(ADD, MUL(a, b)) node inside Kernel.body
  a: Expr                    # operand A's expression (its prologue over loads)
  b: Expr                    # operand B's expression
  batch: tuple[int, ...]
  m: tuple[int, ...]
  n: tuple[int, ...]
  k: tuple[int, ...]

  def sizes(self, shape) -> tuple[int, int, int, int]:
    """(batch, m, n, k) extents: the matmul's problem size."""
    return tuple(math.prod(shape[d] for d in ds) for ds in (self.batch, self.m, self.n, self.k))


def find_contraction(body: Expr, shape) -> Contraction | None:
  """The Contraction of a kernel body whose REDUCEs are one REDUCE(ADD) of a product whose
  two factors split the space into batch/m/n/k, else None. Every reduced dim must be one
  both factors move along (a dim only one of them moves along is a sum, not a matmul), and
  loads outside the reduce (the epilogue) read per output element only."""
  reduces = [e for e in body.walk() if e.op is Ops.REDUCE]
  if len(reduces) != 1 or reduces[0].arg[0] is not Ops.ADD: return None
  acc = reduces[0]
  prod = acc.srcs[0]
  if prod.op is Ops.CAST and prod.srcs[0].dtype.is_float and prod.dtype.is_float: prod = prod.srcs[0]
  if prod.op is not Ops.MUL: return None
  a, b = prod.srcs
  s = split_dims(a, b, shape, acc.arg[1])
  if not s.k or s.only_a or s.only_b or s.neither: return None   # every reduced dim must be moved along by both
  return Contraction(acc, a, b, s.batch, s.m, s.n, s.k)


def _epilogue_tags(body: Expr, c: Contraction) -> list[str]:
  """What a contraction's epilogue does, in words: bias (a value per output column or row
  added to the accumulator), relu (a select against 0), act (other transcendental ops),
  scale, and so on."""
  tags = []
  inside = {id(x) for x in c.acc.walk()}
  epi = [e for e in body.walk() if id(e) not in inside]
  if any(e.op is Ops.ADD and any(s.op is Ops.LOAD for s in e.srcs) for e in epi): tags.append("bias")
  if any(e.op in (Ops.WHERE, Ops.MAX) and any(s.op is Ops.CONST and s.arg == 0 for s in e.srcs) for e in epi): tags.append("relu")
  if any(e.op in (Ops.EXP, Ops.EXP2, Ops.LOG, Ops.LOG2, Ops.SIN, Ops.SQRT, Ops.RECIP,
                 Ops.TANH, Ops.EXPM1, Ops.LOG1P, Ops.ERF, Ops.COS) for e in epi): tags.append("act")
  return tags


def _row_name(body: Expr):
  """Names of well-known row kernels, recognised by the reduces and ops they combine."""
  reds = {e.arg[0] for e in body.walk() if e.op is Ops.REDUCE}
  ops = {e.op for e in body.walk()}
  exp = bool(ops & {Ops.EXP, Ops.EXP2})
  if reds == {Ops.ADD, Ops.MAX} and exp: return "logsoftmax" if ops & {Ops.LOG, Ops.LOG2} else "softmax"
  if reds == {Ops.ADD} and Ops.SQRT in ops and Ops.RECIP in ops: return "norm"
  return None


def kernel_name(body: Expr, shape, contraction: Contraction | None = None, update: bool = False) -> str:
  """A name that says what runs: mm_bias_relu_64x96x80, bmm_…, softmax_…, E_add_mul_…
  (E: elementwise, R: other reduce), with _update when it writes a tensor in place."""
  dims = "x".join(str(s) for s in shape) or "1"
  if contraction is not None:
    bsz, msz, nsz, ksz = contraction.sizes(shape)
    # an update's epilogue is `w - lr * acc`: the contraction is the weight's gradient
    # no m or no n: a dot product per output (a row-wise sum of products), not a matmul
    kind = "dot" if not (contraction.m and contraction.n) else "bmm" if bsz > 1 else "mm"
    head = [kind] + (["wgrad", "update"] if update else _epilogue_tags(body, contraction))
    return "_".join(head + [f"{msz}x{nsz}x{ksz}" + (f"x{bsz}" if bsz > 1 else "")])
  if (row := _row_name(body)) is not None: return "_".join([row] + (["update"] if update else []) + [dims])
  ops = []
  for e in body.walk():
    if e.op in (Ops.LOAD, Ops.CONST, Ops.VALID, Ops.CAST, Ops.CHECK): continue
    nm = (f"{e.arg[0].name.lower()}" if e.op is Ops.REDUCE else e.op.name.lower())
    if e.op is Ops.REDUCE: nm = {"add": "sum", "max": "max"}[nm]
    if nm not in ops: ops.append(nm)
  prefix = "R" if any(e.op is Ops.REDUCE for e in body.walk()) else "E"
  return "_".join([prefix] + ops[:4] + [dims])
