"""Pass 1, the graph walk: the nodes to schedule, who reads whom, and the questions the
fusion pass asks about them (is a reduce read per row only? through how many windows is
a value read? is a value cheap to recompute?). Nothing here decides anything."""
from __future__ import annotations
import math
from lazygrad.ops import Node, Ops, MOVEMENT, ELEMENTWISE, toposort
from lazygrad.ops.view import ShapeTracker

# ops that cost more than a load and a cast when recomputed: transcendentals, divisions,
# random numbers (philox is 10 rounds of 32-bit multiplies)
COSTLY_OPS = frozenset({Ops.EXP2, Ops.LOG2, Ops.EXP, Ops.LOG, Ops.SIN, Ops.SQRT, Ops.RECIP, Ops.FDIV, Ops.IDIV, Ops.MOD, Ops.RAND,
                        Ops.TANH, Ops.EXPM1, Ops.LOG1P, Ops.ERF, Ops.COS})


class Graph:
  """The unrealized graph under the targets: nodes sources-first and their consumers."""
  def __init__(self, targets: list[Node]):
    self.targets = targets
    self.nodes = toposort(targets)
    self.by_id = {id(n): n for n in self.nodes}
    self.consumers: dict[int, list[Node]] = {}
    for n in self.nodes:
      if not n.realized:
        for s in n.srcs: self.consumers.setdefault(id(s), []).append(n)
    const_only: dict[int, bool] = {}
    for n in self.nodes:
      const_only[id(n)] = not n.realized and (n.op is Ops.CONST or (bool(n.srcs) and all(const_only[id(s)] for s in n.srcs)))
    self.const_only = const_only

  def users(self, n: Node) -> list[Node]:
    """The unrealized nodes that read n ([] if none)."""
    return self.consumers.get(id(n), [])


def movement_base(node: Node) -> tuple[Node, tuple]:
  """Follow movement ops down to the first non-movement node; returns it and the ops (inner first)."""
  mops = ()
  while node.op in MOVEMENT and not node.realized:
    mops = ((node.op, node.arg),) + mops
    node = node.srcs[0]
  return node, mops


def kernel_srcs(root: Node):
  """The values a root's kernel computes from (an ASSIGN's target is written, not read)."""
  return (root.srcs[1],) if root.op is Ops.ASSIGN else root.srcs


def apply_mops(st: ShapeTracker, mops) -> ShapeTracker:
  """st with the movement ops ((op, arg), ...) applied in order."""
  for op, arg in mops: st = st.apply(op.name, arg)
  return st


def is_row_level(st: ShapeTracker, r: Node) -> bool:
  """st only rearranges r's (reduced) values one to one (reshapes, permutes): still one value per row."""
  if math.prod(st.shape) != math.prod(r.shape) or len(st.views) != 1: return False
  v = st.views[0]
  return v.mask is None and all(stride != 0 for size, stride in zip(v.shape, v.strides) if size != 1)


def row_broadcast_only(r: Node, g: Graph, roots: dict, joins: frozenset = frozenset()) -> bool:
  """Every read of r is per row (elementwise ops and reshapes in r's reduced shape, up to
  a root storing the per-row result, or up to a node of `joins`: the per-row epilogue of another
  reduce over the same rows, whose kernel computes r too) or broadcasts it back over its input shape
  (x - x.max(-1, keepdim=True)): then r is computed inside its consumer's kernel."""
  target = ShapeTracker.from_shape(r.shape).expand(r.srcs[0].shape)
  start = ShapeTracker.from_shape(r.shape)
  stack = [(u, start) for u in g.users(r)]
  if not stack: return False
  seen = set()
  while stack:
    u, st = stack.pop()
    if (id(u), st) in seen: continue
    seen.add((id(u), st))
    if u.op in MOVEMENT:
      nst = st.apply(u.op.name, u.arg)
      if id(u) in roots or not g.users(u): return False              # a view of the reduce is stored
      stack.extend((c, nst) for c in g.users(u))
      continue
    if st == target: continue                                      # broadcast back over the input space
    if not is_row_level(st, r): return False
    if u.op in ELEMENTWISE:
      if id(u) in roots or id(u) in joins: continue                # a root storing a per-row epilogue, or one on the way
      if not g.users(u): return False
      stack.extend((c, st) for c in g.users(u))
      continue
    if u.op in (Ops.ASSIGN, Ops.CONTIGUOUS) and id(u) in roots: continue
    return False
  return True


def epilogue_end(r: Node, g: Graph, roots: dict) -> Node:
  """The last value of r's per-row epilogue: follow r's single consumers through elementwise
  ops, reshapes and permutes (one value per row all along: bias, activation, scale) up to a
  value read by several ops or outside its rows. Storing that value instead of r keeps the
  epilogue in r's kernel (a matmul's bias and activation run on its accumulator tile)."""
  return epilogue_path(r, g, roots)[-1]


def epilogue_path(r: Node, g: Graph, roots: dict) -> list[Node]:
  """r and the elementwise ops of its per-row epilogue (epilogue_end's walk), the end last."""
  x, path = r, [r]
  while len(users := g.users(x)) == 1 and id(x) not in roots:
    u = users[0]
    if u.op not in (Ops.RESHAPE, Ops.PERMUTE) and u.op not in ELEMENTWISE: break
    if u.op in ELEMENTWISE and (id(u) in roots or (u.dtype.itemsize > path[-1].dtype.itemsize and u.op is not Ops.CAST)): break
    x = u
    if u.op in ELEMENTWISE: path.append(u)
  return path


def reads_through_views(n: Node, g: Graph) -> int:
  """How many differently arranged reads reach n through chains of movement ops.
  Reads that only broadcast (RESHAPE/EXPAND, or none) count once together: they read
  each element once per output; each distinct window (SHRINK/PAD/PERMUTE/FLIP) counts."""
  rearranged, broadcast_only, stack = set(), False, [(u, ()) for u in g.users(n)]
  while stack:
    u, path = stack.pop()
    if u.op in MOVEMENT:
      stack.extend((c, path + ((u.op, u.arg),)) for c in g.users(u))
    elif all(op in (Ops.RESHAPE, Ops.EXPAND) for op, _ in path): broadcast_only = True
    else: rearranged.add(path)
  return len(rearranged) + int(broadcast_only)


def window_overlap(n: Node, g: Graph) -> float:
  """The most times a read through one chain of movement ops visits each element of n: the
  size of the final view's non-broadcast dims over n's size. About k*k/(s*s) for conv windows
  (one view with overlapping strides), <= 1 for slices and permutes; broadcast dims (an
  expand that is not merged back by a reshape) do not count."""
  most, stack = 0.0, [(u, ()) for u in g.users(n) if u.op in MOVEMENT]
  size = max(1, math.prod(n.shape))
  while stack:
    u, path = stack.pop()
    path = path + ((u.op, u.arg),)
    for c in g.users(u):
      if c.op in MOVEMENT: stack.append((c, path)); continue
      v = apply_mops(ShapeTracker.from_shape(n.shape), path).views[-1]
      most = max(most, math.prod(sz for d, sz in enumerate(v.shape) if _moves(v, d)) / size)
  return most


def fused_region(n: Node, roots: dict):
  """The nodes a kernel computing n evaluates inline: n and its sources down to stored
  buffers (realized nodes and other roots)."""
  stack, seen = [n], set()
  while stack:
    x = stack.pop()
    if id(x) in seen or x.realized or (id(x) in roots and x is not n): continue
    seen.add(id(x))
    yield x
    stack.extend(x.srcs)


def cheap(n: Node, roots: dict, const_only: dict[int, bool], budget: int = 4) -> bool:
  """Recomputing n costs less than storing and reloading it: a few elementwise ops over
  stored buffers and constants (an ignore_index mask), no reduce, no random. Casts (a convert
  next to a load) and ops on constants alone (folded when lowering) are free: autocast's casts
  around a gradient, and a mean's 1/n, never make a value stored."""
  ops = 0
  for x in fused_region(n, roots):
    if x.op in (Ops.REDUCE, Ops.RAND): return False
    if x.op in ELEMENTWISE and x.op not in (Ops.CAST, Ops.CHECK) and not const_only[id(x)]:   # a bounds check is free too
      ops += 1
      if ops > budget: return False
  return True


def below_casts(n: Node, roots: dict) -> Node:
  """n, or what n casts when n is a cast (of a cast ...) of a computed value: the value worth storing,
  since a cast costs a reader no more than a load does (autocast's half-float copies)."""
  while n.op is Ops.CAST and not n.srcs[0].realized and id(n.srcs[0]) not in roots and n.srcs[0].op not in MOVEMENT: n = n.srcs[0]
  return n


def cast_of_stored(n: Node, roots: dict) -> bool:
  """n is a cast of a stored value (a buffer, or a view of one): reading it is a load and a convert."""
  if n.op is not Ops.CAST: return False
  base, _ = movement_base(n.srcs[0])
  return base.realized or id(base) in roots


def costly_values(g: Graph, roots: dict) -> set[int]:
  """The nodes whose inline computation contains an op that costs more than a load and a
  cast (one pass, sources first). A reduce is a boundary: whether it gets its own kernel is
  decided by its own rules, so its inputs' cost does not count for its readers."""
  out: set[int] = set()
  for n in g.nodes:
    if n.realized or id(n) in roots or g.const_only[id(n)]: continue
    if n.op in COSTLY_OPS or (n.op is not Ops.REDUCE and any(id(s) in out for s in n.srcs)):
      out.add(id(n))
  return out


def _moves(v, d: int) -> bool:
  return v.strides[d] != 0 or (v.mask is not None and v.mask[d] != (0, v.shape[d]))


def broadcast_into_reduce(r: Node, g: Graph, roots: dict, costly: set[int]):
  """The costly values inside reduce r's inline source that its kernel recomputes for every
  output element: they vary along a reduced dim and are broadcast along a kept one
  (x[:, None, :] under sum(x[:, None, :] * w, -1): a matmul operand). A value constant
  along the reduced dims is per row: computed once per row, it is not returned. Only paths
  leading to costly values are walked (`costly`: from costly_values)."""
  axes = set(r.arg[1])
  space = r.srcs[0].shape
  stack, seen = [(r.srcs[0], ())], set()
  while stack:
    x, mops = stack.pop()
    if id(x) not in costly or (id(x), mops) in seen: continue
    seen.add((id(x), mops))
    if x.op in MOVEMENT:
      stack.append((x.srcs[0], ((x.op, x.arg),) + mops))
      continue
    if x.op is Ops.CAST:   # store what is cast, not the cast (autocast's bf16 operand): the matmul converts its tiles
      stack.append((x.srcs[0], mops))
      continue
    v = apply_mops(ShapeTracker.from_shape(x.shape), mops).views[-1]
    kept_broadcast = any(d not in axes and space[d] > 1 and not _moves(v, d) for d in range(len(space)))
    if kept_broadcast and any(_moves(v, d) for d in axes):
      yield x
      continue
    stack.extend((s, mops) for s in x.srcs)


def owners(g: Graph, roots: dict) -> dict[int, set]:
  """For every computed node, the roots whose kernels evaluate it inline."""
  out: dict[int, set] = {}
  for r in roots.values():
    stack, seen = list(kernel_srcs(r)), set()
    while stack:
      n = stack.pop()
      if id(n) in seen or n.realized or id(n) in roots: continue
      seen.add(id(n))
      if n.op in ELEMENTWISE or n.op is Ops.REDUCE: out.setdefault(id(n), set()).add(id(r))
      stack.extend(n.srcs)
  return out


def outermost(ids: set[int], g: Graph, roots: dict) -> set[int]:
  """The nodes of ids that no other node of ids computes inline (promoting only those
  makes a shared chain like neg -> add -> exp one kernel, not three)."""
  covered, stack = set(), [s for i in ids for s in g.by_id[i].srcs]
  while stack:
    n = stack.pop()
    if id(n) in covered or n.realized or id(n) in roots: continue
    covered.add(id(n))
    stack.extend(n.srcs)
  return {i for i in ids if i not in covered}
