"""Scheduler: lazy graph -> list of kernels (ScheduleItems), then run them.

Rules (first version, see DESIGN.md):
- a node gets its own buffer ("root") when it is a realize target, a REDUCE, a
  CONTIGUOUS or an ASSIGN, or an elementwise node needed by two different kernels;
- everything else is inlined into the kernel of the root that uses it: elementwise
  chains fuse, elementwise prologues fuse into a reduce's loads;
- movement ops never become kernels: they are folded into the ShapeTracker of the
  LOADs under them, and a target that is only movement over a buffer becomes a view.
"""
from __future__ import annotations
from dataclasses import dataclass, field
import math
import sys
import numpy as np
from lazygrad.ops import Node, Ops, MOVEMENT, ELEMENTWISE, toposort
from lazygrad.ops.view import ShapeTracker
from lazygrad.kernels.ir import Expr, Kernel, kernel_name, find_contraction
from lazygrad.dtype import dtypes
from lazygrad.helpers import getenv

MAX_FUSE_DEPTH = 100   # longest chain of graph nodes fused into one kernel


@dataclass(eq=False)
class ScheduleItem:
  kernel: Kernel
  out: Node                 # the root this kernel realizes
  inputs: list[Node]        # nodes whose buffers fill slots 1..
  rand_nodes: tuple = ()    # RAND nodes whose (seed, counter) are the kernel's runtime vars
  in_place: bool = False    # ASSIGN writing straight into its target's buffer

  @property
  def var_values(self) -> tuple: return tuple(v for n in self.rand_nodes for v in n.arg)

  @property
  def name(self): return self.kernel.name
  @property
  def source(self): return self.kernel.source


@dataclass
class Schedule:
  items: list[ScheduleItem] = field(default_factory=list)
  views: list[tuple[Node, Node]] = field(default_factory=list)   # (node, realized/rooted base): set after the run
  roots: list[Node] = field(default_factory=list)
  aliases: list[tuple[Node, Node]] = field(default_factory=list)  # (duplicate root, the root computing the same)


def _movement_base(node: Node) -> tuple[Node, tuple]:
  """Follow movement ops down to the first non-movement node; returns it and the ops (inner first)."""
  mops = ()
  while node.op in MOVEMENT and not node.realized:
    mops = ((node.op, node.arg),) + mops
    node = node.srcs[0]
  return node, mops


def _find_roots(targets: list[Node], forced: set[int] = frozenset()) -> tuple[list[Node], list[Node]]:
  nodes = toposort(targets)
  roots: dict[int, Node] = {}
  views: list[Node] = []
  for t in targets:
    if t.realized: continue
    base, mops = _movement_base(t)
    if mops:
      views.append(t)
      if not base.realized: roots[id(base)] = base
    else:
      roots[id(t)] = t
  for n in nodes:
    if not n.realized and (n.op in (Ops.CONTIGUOUS, Ops.ASSIGN) or id(n) in forced): roots[id(n)] = n
    # NOFUSE=1: one kernel per op (the reference the fusion tests compare against)
    if getenv("NOFUSE", 0) and not n.realized and n.op not in MOVEMENT and n.op is not Ops.CONST: roots[id(n)] = n
  # a REDUCE read only as a broadcast back over its own input space (x - x.max(-1,
  # keepdim=True)) is computed inside its consumer's kernel; the lowering promotes it
  # to a root (forced) when that kernel's space or reduce axes do not fit
  consumers: dict[int, list[Node]] = {}
  for n in nodes:
    if not n.realized:
      for s_ in n.srcs: consumers.setdefault(id(s_), []).append(n)
  for n in nodes:
    if not n.realized and n.op is Ops.REDUCE and id(n) not in roots and not _row_broadcast_only(n, consumers, roots): roots[id(n)] = n
  # kernels are lowered (and Exprs hashed) recursively: a fused chain deeper than
  # MAX_FUSE_DEPTH is cut into its own buffer, so a graph of thousands of ops still realizes
  depth: dict[int, int] = {}
  for n in nodes:
    if n.realized or id(n) in roots or not n.srcs: depth[id(n)] = 0; continue
    dd = 1 + max(depth.get(id(s), 0) for s in n.srcs)
    if dd > MAX_FUSE_DEPTH and (n.op in ELEMENTWISE or n.op in MOVEMENT): roots[id(n)], dd = n, 0
    depth[id(n)] = dd
  _realize_before_reuse(nodes, roots)
  # an elementwise node reached from two kernels gets its own buffer instead of being recomputed
  by_id = {id(n): n for n in nodes}
  while True:
    owners: dict[int, set] = {}
    for r in roots.values():
      stack, seen = list(_kernel_srcs(r)), set()
      while stack:
        n = stack.pop()
        if id(n) in seen or n.realized or id(n) in roots: continue
        seen.add(id(n))
        if n.op in ELEMENTWISE or n.op is Ops.REDUCE: owners.setdefault(id(n), set()).add(id(r))
        stack.extend(n.srcs)
    shared = {i for i, o in owners.items() if len(o) > 1 and not _cheap(by_id[i], roots)}
    if not shared: break
    # promote only the outermost shared nodes: what lies under them is then owned by
    # their kernel alone (a shared chain like neg -> add -> exp becomes one kernel, not three)
    covered, stack = set(), [s for i in shared for s in by_id[i].srcs]
    while stack:
      n = stack.pop()
      if id(n) in covered or n.realized or id(n) in roots: continue
      covered.add(id(n))
      stack.extend(n.srcs)
    for n in nodes:
      if id(n) in shared and id(n) not in covered: roots[id(n)] = n
  order = [n for n in nodes if id(n) in roots]
  return order, views


def _realize_before_reuse(nodes: list[Node], roots: dict[int, Node]) -> None:
  """A computed value read many times per output element (random numbers broadcast by a
  growing EXPAND, or any value read through several different views: conv taps, cat
  pieces) is stored once
  instead of being recomputed at every read. Values made only of constants stay inline."""
  consumers: dict[int, list[Node]] = {}
  const_only: dict[int, bool] = {}
  has_rand: dict[int, bool] = {}   # philox is the one leaf too costly to recompute per broadcast read
  for n in nodes:
    const_only[id(n)] = not n.realized and (n.op is Ops.CONST or (bool(n.srcs) and all(const_only[id(s)] for s in n.srcs)))
    has_rand[id(n)] = not n.realized and id(n) not in roots and (n.op is Ops.RAND or any(has_rand[id(s)] for s in n.srcs))
    if not n.realized:
      for s in n.srcs: consumers.setdefault(id(s), []).append(n)
  for n in nodes:
    if n.realized or id(n) in roots or const_only[id(n)] or not (n.op in ELEMENTWISE or n.op is Ops.RAND): continue
    users = consumers.get(id(n), [])
    grows = has_rand[id(n)] and any(u.op is Ops.EXPAND and math.prod(u.shape) > math.prod(n.shape) for u in users)
    if grows or (any(u.op in MOVEMENT for u in users) and _reads_through_views(n, consumers) > 1): roots[id(n)] = n


def _is_row_level(st: ShapeTracker, r: Node) -> bool:
  """st only rearranges r's (reduced) values one to one (reshapes, permutes): still one value per row."""
  if math.prod(st.shape) != math.prod(r.shape) or len(st.views) != 1: return False
  v = st.views[0]
  return v.mask is None and all(stride != 0 for size, stride in zip(v.shape, v.strides) if size != 1)


def _row_broadcast_only(r: Node, consumers: dict, roots: dict) -> bool:
  """Every read of r is per row (elementwise ops and reshapes in r's reduced shape, up to
  a root storing the per-row result) or broadcasts it back over its input shape
  (x - x.max(-1, keepdim=True)): then r is computed inside its consumer's kernel."""
  target = ShapeTracker.from_shape(r.shape).expand(r.srcs[0].shape)
  start = ShapeTracker.from_shape(r.shape)
  stack = [(u, start) for u in consumers.get(id(r), [])]
  if not stack: return False
  seen = set()
  while stack:
    u, st = stack.pop()
    if (id(u), st) in seen: continue
    seen.add((id(u), st))
    if u.op in MOVEMENT:
      nst = st.apply(u.op.name, u.arg)
      if id(u) in roots or not consumers.get(id(u)): return False   # a view of the reduce is stored
      stack.extend((c, nst) for c in consumers[id(u)])
      continue
    if st == target: continue                                      # broadcast back over the input space
    if not _is_row_level(st, r): return False
    if u.op in ELEMENTWISE:
      if id(u) in roots: continue                                  # a root storing a per-row epilogue
      stack.extend((c, st) for c in consumers.get(id(u), []))
      if not consumers.get(id(u)): return False
      continue
    if u.op in (Ops.ASSIGN, Ops.CONTIGUOUS) and id(u) in roots: continue
    return False
  return True


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


def _reads_through_views(n: Node, consumers: dict) -> int:
  """How many differently arranged reads reach n through chains of movement ops.
  Reads that only broadcast (RESHAPE/EXPAND, or none) count once together: they read
  each element once per output; each distinct window (SHRINK/PAD/PERMUTE/FLIP) counts."""
  rearranged, broadcast_only, stack = set(), False, [(u, ()) for u in consumers.get(id(n), [])]
  while stack:
    u, path = stack.pop()
    if u.op in MOVEMENT:
      stack.extend((c, path + ((u.op, u.arg),)) for c in consumers.get(id(u), []))
    elif all(op in (Ops.RESHAPE, Ops.EXPAND) for op, _ in path): broadcast_only = True
    else: rearranged.add(path)
  return len(rearranged) + int(broadcast_only)


def _cheap(n: Node, roots: dict, budget: int = 4) -> bool:
  """Recomputing n costs less than storing and reloading it: a few elementwise ops over
  stored buffers and constants (an ignore_index mask, a cast), no reduce, no random."""
  stack, ops, seen = [n], 0, set()
  while stack:
    x = stack.pop()
    if id(x) in seen or x.realized or (id(x) in roots and x is not n): continue
    seen.add(id(x))
    if x.op in (Ops.REDUCE, Ops.RAND): return False
    if x.op in ELEMENTWISE:
      ops += 1
      if ops > budget: return False
    stack.extend(x.srcs)
  return True


def _kernel_srcs(root: Node):
  if root.op is Ops.ASSIGN: return (root.srcs[1],)
  return root.srcs


def _np_fold_table():
  from lazygrad.kernels.numpy_lib import idiv
  return {Ops.NEG: np.negative, Ops.EXP2: np.exp2, Ops.LOG2: np.log2, Ops.EXP: np.exp, Ops.LOG: np.log, Ops.SIN: np.sin,
          Ops.SQRT: np.sqrt, Ops.RECIP: np.reciprocal, Ops.ADD: np.add, Ops.MUL: np.multiply, Ops.MAX: np.maximum,
          Ops.CMPLT: np.less, Ops.CMPEQ: np.equal, Ops.IDIV: idiv, Ops.MOD: np.fmod, Ops.AND: np.bitwise_and,
          Ops.OR: np.bitwise_or, Ops.XOR: np.bitwise_xor, Ops.WHERE: np.where, Ops.CAST: None}


_FOLD = _np_fold_table()


def _fold(op, values, dtypes_, out_dtype):
  """Constant folding: an op over constants is a constant (evaluated in the op's dtype)."""
  if out_dtype.name == "bfloat16": return None
  with np.errstate(all="ignore"):
    args = [np.asarray(v, dtype=d.np) for v, d in zip(values, dtypes_)]
    out = args[0].astype(out_dtype.np) if op is Ops.CAST else _FOLD[op](*args)
  v = np.asarray(out, dtype=out_dtype.np).item()
  return bool(v) if out_dtype.is_bool else int(v) if out_dtype.is_int else float(v)


class NotInlinable(Exception):
  """A REDUCE met in a kernel whose iteration space or reduce axes it does not share."""
  def __init__(self, node: Node): self.node = node


class _Lowerer:
  """Builds the Expr body of one kernel by walking down from its root."""
  def __init__(self, roots: set[int], seed_vars: list, space: tuple, axes):
    self.roots, self.inputs, self.memo, self.cse = roots, [], {}, {}
    self.vars = seed_vars
    self.space, self.axes = tuple(space), axes   # the kernel's iteration space and reduce axes (None: none yet)

  def expr(self, op, srcs, arg, dtype) -> Expr:
    if srcs and op in _FOLD and all(s_.op is Ops.CONST for s_ in srcs):
      folded = _fold(op, [s_.arg for s_ in srcs], [s_.dtype for s_ in srcs], dtype)
      if folded is not None: op, srcs, arg = Ops.CONST, (), folded
    e = Expr(op, tuple(srcs), arg, dtype)
    return self.cse.setdefault(e, e)   # structural CSE inside the kernel

  def input_slot(self, node: Node) -> int:
    for i, n in enumerate(self.inputs):
      if n is node: return i + 1
    self.inputs.append(node)
    return len(self.inputs)

  def leaf_st(self, base: ShapeTracker, mops) -> ShapeTracker:
    st = base
    for op, arg in mops: st = st.apply(op.name, arg)
    return st

  def lower(self, node: Node, mops: tuple = ()) -> Expr:
    key = (id(node), mops)
    if key not in self.memo: self.memo[key] = self._lower(node, mops)
    return self.memo[key]

  def _gate(self, e: Expr, shape, mops) -> Expr:
    """Values under a PAD read as 0 outside the padded region."""
    st = self.leaf_st(ShapeTracker.from_shape(shape), mops)
    if not st.has_mask: return e
    zero = self.expr(Ops.CONST, (), 0, e.dtype)
    return self.expr(Ops.WHERE, (self.expr(Ops.VALID, (), st, dtypes.bool), e, zero), None, e.dtype)

  def _lower(self, node: Node, mops) -> Expr:
    if node.realized:
      return self.expr(Ops.LOAD, (), (self.input_slot(node), self.leaf_st(node.st, mops)), node.dtype)
    if id(node) in self.roots:
      return self.expr(Ops.LOAD, (), (self.input_slot(node), self.leaf_st(ShapeTracker.from_shape(node.shape), mops)), node.dtype)
    if node.op in MOVEMENT: return self.lower(node.srcs[0], ((node.op, node.arg),) + mops)
    if node.op is Ops.CONST: return self._gate(self.expr(Ops.CONST, (), node.arg, node.dtype), node.shape, mops)
    if node.op is Ops.RAND:
      if node not in self.vars: self.vars.append(node)   # its (seed, counter) become two runtime vars
      st = self.leaf_st(ShapeTracker.from_shape(node.shape), mops)
      return self._gate(self.expr(Ops.RAND, (), (st, 2 * self.vars.index(node)), node.dtype), node.shape, mops)
    if node.op is Ops.REDUCE:
      # inlined: evaluated per row of the kernel, broadcast back over the space
      st = self.leaf_st(ShapeTracker.from_shape(node.shape), mops)
      fits = (node.srcs[0].shape == self.space and st == ShapeTracker.from_shape(node.shape).expand(self.space)
              and self.axes in (None, node.arg[1]))
      if not fits: raise NotInlinable(node)
      self.axes = node.arg[1]
      return self.expr(Ops.REDUCE, (self.lower(node.srcs[0]),), node.arg, node.dtype)
    if node.op in ELEMENTWISE:
      srcs = [self.lower(s, mops) for s in node.srcs]
      arg = node.arg if node.op in (Ops.CAST, Ops.BITCAST) else None
      return self._gate(self.expr(node.op, srcs, arg, node.dtype), node.shape, mops)
    raise RuntimeError(f"scheduler cannot lower {node} here")


def _kernel_for(root: Node, roots: set[int]) -> tuple[Kernel, list[Node], tuple]:
  vars_: list = []
  found = None if root.op is Ops.REDUCE else _row_reduce_of(root, roots)
  row, undo, out_st = None, (), None
  if found is not None:
    row, path = found
    undo = _undo(row, path)
    # where each per-row value lands in the root's (contiguous) buffer
    out_st = ShapeTracker.from_shape(root.shape)
    for op, arg in undo: out_st = out_st.apply(op.name, arg)
    if len(out_st.views) != 1: row, undo, out_st = None, (), None
    elif out_st.is_contiguous: out_st = None
  if root.op is Ops.REDUCE: space, axes, out_shape = root.srcs[0].shape, root.arg[1], root.shape
  elif row is not None: space, axes, out_shape = row.srcs[0].shape, row.arg[1], row.shape   # a per-row epilogue
  else: space, axes, out_shape = root.shape, None, root.shape
  low = _Lowerer(roots - {id(root)}, vars_, space, axes)
  if root.op is Ops.REDUCE:
    body = low.expr(Ops.REDUCE, (low.lower(root.srcs[0]),), root.arg, root.dtype)
  else:
    value = root.srcs[1] if root.op is Ops.ASSIGN else root.srcs[0] if root.op is Ops.CONTIGUOUS else root
    # a per-row result is computed as if broadcast over the reduce's space, and stored per row
    mops = undo + ((Ops.RESHAPE, tuple(row.shape)), (Ops.EXPAND, tuple(space))) if row is not None else ()
    body = low.lower(value, mops)
    if root.op is Ops.ASSIGN and body.dtype != root.dtype: body = low.expr(Ops.CAST, (body,), root.dtype, root.dtype)
  shape = space
  var_names = tuple(f"v{i}" for i in range(2 * len(vars_)))
  buf_dtypes = (root.dtype,) + tuple(n.dtype for n in low.inputs)
  # a contraction's epilogue is per output element: only kernels storing per-row values qualify
  per_row = root.op is Ops.REDUCE or row is not None
  contraction = find_contraction(body, shape) if per_row else None
  kernel = Kernel(kernel_name(body, shape), tuple(shape), tuple(out_shape), body, buf_dtypes, var_names, out_st=out_st,
                  contraction=contraction)
  # Expr equality says 0.0 == -0.0 == False; the constants' reprs keep such kernels apart
  consts = tuple(repr(e.arg) for e in body.walk() if e.op is Ops.CONST)
  kernel.key = (kernel.shape, kernel.out_shape, body, buf_dtypes, var_names, consts, out_st)
  return kernel, low.inputs, tuple(vars_)   # the RAND nodes whose args fill the vars


def create_schedule(targets: list[Node]) -> Schedule:
  """The kernels realizing targets. A graph of the same structure as one seen before
  (same ops, shapes, dtypes, constants and input views; any buffers, any seeds) reuses
  that schedule: a training loop pays for scheduling once."""
  targets = [t for t in dict.fromkeys(targets) if not t.realized]
  key, nodes = _graph_key(targets)
  template = _schedule_cache.get(key)
  if template is None:
    sched = _build_schedule(targets)
    _schedule_cache[key] = _template_of(sched, nodes)
    if len(_schedule_cache) > SCHEDULE_CACHE_SIZE: _schedule_cache.pop(next(iter(_schedule_cache)))
  else:
    sched = _from_template(template, nodes)
    ScheduleStats.hits += 1
  _order_assigns(sched)
  return sched


SCHEDULE_CACHE_SIZE = 512
_schedule_cache: dict = {}


class ScheduleStats:
  hits = 0


def _graph_key(targets: list[Node]):
  nodes = toposort(targets)
  index = {id(n): i for i, n in enumerate(nodes)}
  parts = []
  for n in nodes:
    if n.realized: parts.append((n.shape, n.dtype, n.device, n.st))
    else:
      # constants are compiled into the source (repr keeps 0.0 and -0.0 apart); a RAND's
      # seed and counter are runtime vars, so they are not part of the structure
      arg = repr(n.arg) if n.op is Ops.CONST else None if n.op is Ops.RAND else n.arg
      parts.append((n.op, arg, n.shape, n.dtype, n.device, tuple(index[id(s_)] for s_ in n.srcs)))
  return (tuple(parts), tuple(index[id(t)] for t in targets), getenv("NOFUSE", 0)), nodes


def _template_of(sched: Schedule, nodes: list[Node]):
  index = {id(n): i for i, n in enumerate(nodes)}
  items = [(it.kernel, index[id(it.out)], tuple(index[id(n)] for n in it.inputs), tuple(index[id(n)] for n in it.rand_nodes))
           for it in sched.items]
  views = [(index[id(v)], index[id(b)]) for v, b in sched.views]
  aliases = [(index[id(a)], index[id(b)]) for a, b in sched.aliases]
  return items, views, [index[id(r)] for r in sched.roots], aliases


def _from_template(template, nodes: list[Node]) -> Schedule:
  items, views, roots, aliases = template
  sched = Schedule(roots=[nodes[i] for i in roots], aliases=[(nodes[a], nodes[b]) for a, b in aliases])
  sched.items = [ScheduleItem(k, nodes[o], [nodes[i] for i in ins], tuple(nodes[i] for i in rands)) for k, o, ins, rands in items]
  sched.views = [(nodes[v], nodes[b]) for v, b in views]
  return sched


def _build_schedule(targets: list[Node]) -> Schedule:
  forced: set[int] = set()
  while True:
    roots, views = _find_roots(targets, forced)
    root_ids = {id(r) for r in roots}
    sched = Schedule(roots=roots)
    try:
      for r in roots:
        kernel, inputs, rand_nodes = _kernel_for(r, root_ids)
        sched.items.append(ScheduleItem(kernel, r, inputs, rand_nodes))
      break
    except NotInlinable as e:   # that reduce gets its own kernel; schedule again
      forced.add(id(e.node))
  for v in views:
    sched.views.append((v, _movement_base(v)[0]))
  _dedupe_kernels(sched)
  return sched


def _dedupe_kernels(sched: Schedule) -> None:
  """Common subexpressions across kernels: two roots computing the same kernel from the
  same inputs (e.g. a value built twice by separate calls) share one kernel and buffer."""
  first: dict = {}
  canon: dict[int, Node] = {}
  kept = []
  for it in sched.items:
    inputs = [canon.get(id(n), n) for n in it.inputs]
    it.inputs = inputs
    key = (it.kernel.key, tuple(id(n) for n in inputs), tuple(id(n) for n in it.rand_nodes))
    if it.out.op is not Ops.ASSIGN and key in first:
      canon[id(it.out)] = first[key].out
      sched.aliases.append((it.out, first[key].out))
      continue
    first.setdefault(key, it)
    kept.append(it)
  sched.items = kept


def _order_assigns(sched: Schedule):
  """An ASSIGN writes its target's buffer in place when every other reader of the old
  contents can run first and its own kernel reads the target only elementwise; the
  items are reordered so that holds. If that is impossible (e.g. a swap), assigns write
  fresh buffers instead."""
  items = sched.items
  def in_place_ok(it):
    tgt = it.out.srcs[0]
    if not (tgt.realized and tgt.st.is_contiguous and tgt.buffer.size == math.prod(tgt.shape) and tgt.dtype == it.out.dtype): return False
    for e in it.kernel.body.walk():
      if e.op is Ops.LOAD and it.inputs[e.arg[0] - 1].buffer is tgt.buffer and e.arg[1] != tgt.st: return False
    return True
  def nobody_else_reads(it):
    # a lazy graph still holding the old value (an unrealized loss or .grad built from the
    # old parameter) would read the new contents if we overwrote them: then write fresh.
    # Expected references: the ASSIGN's srcs, `tgt`, getrefcount's argument, and the
    # inputs lists of this schedule's kernels (ordered before the write).
    tgt = it.out.srcs[0]
    seen = sum(1 for other in items for n in other.inputs if n is tgt)
    return sys.getrefcount(tgt) <= 3 + seen
  for it in items:
    it.in_place = it.out.op is Ops.ASSIGN and in_place_ok(it) and nobody_else_reads(it)
  producer = {id(it.out): i for i, it in enumerate(items)}
  deps = [set() for _ in items]
  for i, it in enumerate(items):
    for n in it.inputs:
      if id(n) in producer: deps[i].add(producer[id(n)])
  for a, it in enumerate(items):
    if not it.in_place: continue
    buf = it.out.srcs[0].buffer
    for r, other in enumerate(items):
      if r != a and any(n.buffer is buf for n in other.inputs if n.realized): deps[a].add(r)
  order, done = [], set()
  pending = list(range(len(items)))
  while pending:
    ready = [i for i in pending if deps[i] <= done]
    if not ready:   # a cycle through in-place writes: give them all fresh buffers
      for it in items: it.in_place = False
      return
    for i in ready: order.append(i); done.add(i)
    pending = [i for i in pending if i not in done]
  sched.items = [items[i] for i in order]
