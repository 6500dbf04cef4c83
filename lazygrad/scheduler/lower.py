"""Pass 3, lowering: one root and the nodes fused into it -> a Kernel (the Kernel IR).

A kernel iterates over a space: a REDUCE root's input shape, the input shape of the
reduce a per-row root stores values of (a per-row epilogue, stored through `out_st`
when reshapes/permutes lie between), or else the root's shape. Movement ops fold into
the ShapeTrackers of the loads under them; constants fold; equal subexpressions are
shared (structural CSE). `kernel_plan` and `misfit_reduces` let the fusion pass check,
before lowering, that every reduce it fuses fits the kernel it lands in."""
from __future__ import annotations
from dataclasses import dataclass
import math
import numpy as np
from lazygrad.ops import Node, Ops, MOVEMENT, ELEMENTWISE, TEMPLATES
from lazygrad.ops.attention import attention_kernel_name
from lazygrad.ops.view import ShapeTracker
from lazygrad.ops.gather import source_view, gather_view_ok, gather_st
from lazygrad.kernels.common import OPS
from lazygrad.kernels.ir import Expr, Kernel, kernel_name, find_contraction
from lazygrad.kernels.numpy import lib
from lazygrad.dtype import dtypes
from lazygrad.scheduler.graph import apply_mops


# ---- where a kernel iterates

@dataclass(frozen=True)
class KernelPlan:
  """Where a root's kernel iterates: the space, the reduce axes, the stored out_shape, the reduce whose per-row
  values it stores (row), the movement ops taking the root's value into the space, and out_st (None: contiguous)."""
  space: tuple              # the iteration space
  axes: tuple | None        # the reduce axes (None: no reduce decided yet)
  out_shape: tuple          # what is stored (reduced dims kept as 1)
  row: Node | None          # the reduce whose per-row values the root stores, if any
  mops: tuple               # movement ops taking the root's value into the space
  out_st: ShapeTracker | None


def _row_reduce_of(root: Node, roots: set[int]):
  """(reduce, movement ops from it up to the root) when the root stores per-row values of
  a reduce (reached through elementwise ops, reshapes and permutes), else None."""
  value = root.srcs[-1] if root.op in (Ops.ASSIGN, Ops.CONTIGUOUS) else root
  n = math.prod(root.shape)
  stack, seen = [(value, ())], set()
  while stack:
    x, path = stack.pop()
    if id(x) in seen or x.realized or (id(x) in roots and x is not root): continue
    seen.add(id(x))
    if x.op is Ops.REDUCE: return (x, path) if math.prod(x.shape) == n else None
    if x.op in (Ops.RESHAPE, Ops.PERMUTE): stack.append((x.srcs[0], ((x.op, x.arg),) + path))
    elif x.op in ELEMENTWISE or x is root: stack.extend((s_, path) for s_ in (x.srcs if x.op is not Ops.ASSIGN else x.srcs[1:]))
  return None


def _undo(r: Node, path: tuple) -> tuple:
  """Movement ops taking the root's shape back to r's (the inverse of path, outermost first)."""
  shapes, shape = [], tuple(r.shape)
  for op, arg in path:
    shapes.append(shape)
    shape = tuple(arg) if op is Ops.RESHAPE else tuple(shape[i] for i in arg)
  inverse = []
  for (op, arg), before in zip(reversed(path), reversed(shapes)):
    inverse.append((Ops.RESHAPE, before) if op is Ops.RESHAPE else (Ops.PERMUTE, tuple(sorted(range(len(arg)), key=lambda i: arg[i]))))
  return tuple(inverse)


def kernel_plan(root: Node, roots: set[int]) -> KernelPlan:
  """The KernelPlan of a root: a REDUCE iterates over its input's shape; a root storing per-row values of a reduce
  over that reduce's space (stored per row, through out_st if permuted); anything else over its own shape."""
  if root.op is Ops.REDUCE:
    return KernelPlan(tuple(root.srcs[0].shape), root.arg[1], tuple(root.shape), None, (), None)
  if root.op in TEMPLATES: return KernelPlan(tuple(root.shape), None, tuple(root.shape), None, (), None)
  found = _row_reduce_of(root, roots)
  if found is not None:
    row, path = found
    undo = _undo(row, path)
    # where each per-row value lands in the root's (contiguous) buffer
    out_st = apply_mops(ShapeTracker.from_shape(root.shape), undo)
    if len(out_st.views) == 1:
      # a per-row result is computed as if broadcast over the reduce's space, and stored per row
      mops = undo + ((Ops.RESHAPE, tuple(row.shape)), (Ops.EXPAND, tuple(row.srcs[0].shape)))
      return KernelPlan(tuple(row.srcs[0].shape), row.arg[1], tuple(row.shape), row, mops,
                        None if out_st.is_contiguous else out_st)
  return KernelPlan(tuple(root.shape), None, tuple(root.shape), None, (), None)


def _root_value(root: Node) -> Node:
  return root.srcs[1] if root.op is Ops.ASSIGN else root.srcs[0] if root.op is Ops.CONTIGUOUS else root


def _reduce_fits(node: Node, mops, space, axes) -> bool:
  """An inline reduce is evaluated per row of the kernel and broadcast back over its space:
  it must reduce that space, over the kernel's reduce axes."""
  st = apply_mops(ShapeTracker.from_shape(node.shape), mops)
  return (tuple(node.srcs[0].shape) == tuple(space) and st == ShapeTracker.from_shape(node.shape).expand(space)
          and axes in (None, node.arg[1]))


def misfit_reduces(root: Node, roots: set[int]) -> list[Node]:
  """The inline reduces that would not fit root's kernel (read in another space, or over
  other axes than the kernel's reduce): the fusion pass gives them their own kernel. Walks
  exactly as lowering does, so lowering never meets a reduce it cannot place."""
  if root.op in TEMPLATES: return []   # its sources are buffers (fusion.Reason.TEMPLATE_INPUT)
  plan = kernel_plan(root, roots)
  others = roots - {id(root)}
  axes, bad, seen = plan.axes, [], set()
  start = (root.srcs[0], ()) if root.op is Ops.REDUCE else (_root_value(root), plan.mops)
  stack = [start]
  while stack:
    node, mops = stack.pop()
    if (id(node), mops) in seen or node.realized or id(node) in others: continue
    seen.add((id(node), mops))
    if node.op in MOVEMENT: stack.append((node.srcs[0], ((node.op, node.arg),) + mops))
    elif node.op is Ops.REDUCE:
      if not _reduce_fits(node, mops, plan.space, axes): bad.append(node); continue
      axes = node.arg[1]
      stack.append((node.srcs[0], ()))
    elif node.op in ELEMENTWISE: stack.extend((s, mops) for s in reversed(node.srcs))   # lowering's order
    elif node.op is Ops.GATHER: stack.append((node.srcs[1], mops))   # its index is computed here, its source is a buffer
  return bad


# ---- constant folding

def _np_fold_table():
  """Each elementwise op's numpy function (the op table the numpy renderer uses), for folding constants."""
  fns = {op: getattr(np, spec.numpy[3:]) if spec.numpy.startswith("np.") else getattr(lib, spec.numpy) for op, spec in OPS.items()}
  return {**fns, Ops.WHERE: np.where, Ops.CAST: None}


_FOLD = _np_fold_table()


class NegZero(float):
  """-0.0 as a CONST's arg: Python's == (so Expr equality, CSE and a template's by-value names) says -0.0 == 0.0, which
  would merge the two constants of a kernel (x / -0.0 is -inf, x / 0.0 inf); this one equals only itself."""
  __slots__ = ()
  def __eq__(self, o): return isinstance(o, NegZero)
  def __ne__(self, o): return not isinstance(o, NegZero)
  def __hash__(self): return hash((NegZero, 0))


def _signed(v):
  """A CONST's arg keeping the sign of zero apart (NegZero for -0.0)."""
  return NegZero(-0.0) if isinstance(v, float) and v == 0 and math.copysign(1.0, v) < 0 else v


def _fold(op, values, dtypes_, out_dtype):
  """Constant folding: an op over constants is a constant (evaluated in the op's dtype)."""
  if out_dtype.name == "bfloat16": return None
  with np.errstate(all="ignore"):
    args = [np.asarray(v, dtype=d.np) for v, d in zip(values, dtypes_)]
    out = args[0].astype(out_dtype.np) if op is Ops.CAST else _FOLD[op](*args)
  v = np.asarray(out, dtype=out_dtype.np).item()
  return bool(v) if out_dtype.is_bool else int(v) if out_dtype.is_int else float(v)


# ---- lowering

class _Lowerer:
  """Builds the Expr body of one kernel by walking down from its root."""
  def __init__(self, roots: set[int], plan: KernelPlan):
    self.roots, self.inputs, self.memo, self.cse, self.vars = roots, [], {}, {}, []
    self.checks: list[Node] = []   # CHECK nodes: their number in the kernel is in their Expr's arg (never folded or merged)
    self.space, self.axes = plan.space, plan.axes

  def expr(self, op, srcs, arg, dtype) -> Expr:
    if srcs and op in _FOLD and all(s_.op is Ops.CONST for s_ in srcs):
      folded = _fold(op, [s_.arg for s_ in srcs], [s_.dtype for s_ in srcs], dtype)
      if folded is not None: op, srcs, arg = Ops.CONST, (), folded
    if op is Ops.CONST: arg = _signed(arg)
    e = Expr(op, tuple(srcs), arg, dtype)
    return self.cse.setdefault(e, e)   # structural CSE inside the kernel

  def input_slot(self, node: Node) -> int:
    for i, n in enumerate(self.inputs):
      if n is node: return i + 1
    self.inputs.append(node)
    return len(self.inputs)

  def lower(self, node: Node, mops: tuple = ()) -> Expr:
    key = (id(node), mops)
    if key not in self.memo: self.memo[key] = self._lower(node, mops)
    return self.memo[key]

  def _gate(self, e: Expr, shape, mops) -> Expr:
    """Values under a PAD read as 0 outside the padded region."""
    st = apply_mops(ShapeTracker.from_shape(shape), mops)
    if not st.has_mask: return e
    zero = self.expr(Ops.CONST, (), 0, e.dtype)
    return self.expr(Ops.WHERE, (self.expr(Ops.VALID, (), st, dtypes.bool), e, zero), None, e.dtype)

  def _lower(self, node: Node, mops) -> Expr:
    if node.realized:
      return self.expr(Ops.LOAD, (), (self.input_slot(node), apply_mops(node.st, mops)), node.dtype)
    if id(node) in self.roots:
      return self.expr(Ops.LOAD, (), (self.input_slot(node), apply_mops(ShapeTracker.from_shape(node.shape), mops)), node.dtype)
    if node.op in MOVEMENT: return self.lower(node.srcs[0], ((node.op, node.arg),) + mops)
    if node.op is Ops.CONST: return self._gate(self.expr(Ops.CONST, (), node.arg, node.dtype), node.shape, mops)
    if node.op is Ops.RAND:
      if node not in self.vars: self.vars.append(node)   # its (seed, counter) become two runtime vars
      st = apply_mops(ShapeTracker.from_shape(node.shape), mops)
      return self._gate(self.expr(Ops.RAND, (), (st, 2 * self.vars.index(node)), node.dtype), node.shape, mops)
    if node.op is Ops.REDUCE:
      # inlined: evaluated per row of the kernel, broadcast back over the space
      assert _reduce_fits(node, mops, self.space, self.axes), "fusion let a reduce into a kernel it does not fit"
      self.axes = node.arg[1]
      return self.expr(Ops.REDUCE, (self.lower(node.srcs[0]),), node.arg, node.dtype)
    if node.op is Ops.CHECK:
      if node not in self.checks: self.checks.append(node)
      src = self.lower(node.srcs[0], mops)
      return self.expr(Ops.CHECK, (src,), node.arg + (self.checks.index(node),), node.dtype)
    if node.op is Ops.GATHER: return self._gather(node, mops)
    if node.op in ELEMENTWISE:
      srcs = [self.lower(s, mops) for s in node.srcs]
      arg = node.arg if node.op in (Ops.CAST, Ops.BITCAST) else None
      return self._gate(self.expr(node.op, srcs, arg, node.dtype), node.shape, mops)
    raise RuntimeError(f"scheduler cannot lower {node} here")

  def _gather(self, node: Node, mops) -> Expr:
    """GATHER as the IR's GATHER leaf: its source buffer read through the source's view with the gathered dim pinned
    to 0 (then node's movement ops to the space), plus the index (computed here, through the same ops) times the
    dim's stride. Masked-out elements (under a PAD) read 0: the view's mask."""
    src, idx = node.srcs
    dim = node.arg
    base, sst = source_view(src, self.roots)
    assert (base.realized or id(base) in self.roots) and gather_view_ok(sst, dim), "fusion left a gather source unstored"
    pinned, stride = gather_st(sst, dim, node.shape)
    index = self.lower(idx, mops)
    return self.expr(Ops.GATHER, (index,), (self.input_slot(base), apply_mops(pinned, mops), stride, src.shape[dim]), node.dtype)


def _template_body(low: _Lowerer, root: Node) -> Expr:
  """A template op's body: the op over its sources, each a LOAD through its view (they are buffers) or, for a RAND
  source, a RAND leaf whose (seed, counter) become runtime vars."""
  srcs = []
  for s_ in root.srcs:
    if s_.op is Ops.RAND and not s_.realized:
      if s_ not in low.vars: low.vars.append(s_)
      srcs.append(low.expr(Ops.RAND, (), (ShapeTracker.from_shape(s_.shape), 2 * low.vars.index(s_)), s_.dtype))
    else: srcs.append(low.lower(s_))
  return Expr(root.op, tuple(srcs), root.arg, root.dtype)


def lower_kernel(root: Node, roots: set[int]) -> tuple[Kernel, list[Node], tuple, tuple]:
  """The Kernel computing root, the nodes whose buffers fill its input slots 1.., the
  RAND nodes whose (seed, counter) fill its runtime vars, and the CHECK nodes it evaluates
  (check k of the kernel records into the schedule's error slots at `ebase + k`, its last var)."""
  plan = kernel_plan(root, roots)
  if root.op in TEMPLATES:
    low = _Lowerer(roots - {id(root)}, plan)
    body = _template_body(low, root)
    var_names = tuple(f"v{i}" for i in range(2 * len(low.vars)))
    buf_dtypes = (root.dtype,) + tuple(n.dtype for n in low.inputs)
    name = attention_kernel_name(root.arg, [s_.shape for s_ in root.srcs]) if root.op is Ops.ATTENTION else \
      "scatter_add_" + "x".join(str(s_) for s_ in root.srcs[0].shape) + f"_to_{'x'.join(str(s_) for s_ in root.shape)}"
    var_names += ("ebase",) if low.checks else ()   # a scatter-add checks its index (a CHECK over a buffer)
    kernel = Kernel(name, plan.space, plan.out_shape, body, buf_dtypes, var_names, checks=len(low.checks))
    kernel.key = (kernel.shape, body, buf_dtypes, var_names)
    return kernel, low.inputs, tuple(low.vars), tuple(low.checks)
  low = _Lowerer(roots - {id(root)}, plan)
  if root.op is Ops.REDUCE:
    body = low.expr(Ops.REDUCE, (low.lower(root.srcs[0]),), root.arg, root.dtype)
  else:
    body = low.lower(_root_value(root), plan.mops)
    if root.op is Ops.ASSIGN and body.dtype != root.dtype: body = low.expr(Ops.CAST, (body,), root.dtype, root.dtype)
  var_names = tuple(f"v{i}" for i in range(2 * len(low.vars))) + (("ebase",) if low.checks else ())
  buf_dtypes = (root.dtype,) + tuple(n.dtype for n in low.inputs)
  # a contraction's epilogue is per output element: only kernels storing per-row values qualify
  per_row = root.op is Ops.REDUCE or plan.row is not None
  contraction = find_contraction(body, plan.space) if per_row else None
  name = kernel_name(body, plan.space, contraction, update=root.op is Ops.ASSIGN)
  kernel = Kernel(name, plan.space, plan.out_shape, body, buf_dtypes, var_names, out_st=plan.out_st, contraction=contraction,
                  checks=len(low.checks))
  # Expr equality says 0.0 == -0.0 == False; the constants' reprs keep such kernels apart
  consts = tuple(repr(e.arg) for e in body.walk() if e.op is Ops.CONST)
  kernel.key = (kernel.shape, kernel.out_shape, body, buf_dtypes, var_names, consts, plan.out_st)
  return kernel, low.inputs, tuple(low.vars), tuple(low.checks)
