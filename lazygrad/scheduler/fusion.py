"""Pass 2, fusion decisions: which nodes get a buffer of their own (become kernel roots).

Everything not chosen here is computed inline by the kernel of the root that reads it:
elementwise chains fuse, elementwise prologues fuse into a reduce's loads, a reduce read
per row fuses into its consumer (softmax is one kernel), per-row epilogues (bias,
activation, `w - lr * grad`) fuse into the reduce they follow.

Every decision goes through `buffer_reason`, which returns a `Reason`. The rules come in
tiers, settled in order: a tier is applied until it finds nothing new, then the next one
is looked at (most rules depend on the roots chosen so far). A reduce that turns out not
to fit the kernel it would land in (the last tier) restarts the rules after the first."""
from __future__ import annotations
from enum import Enum
import math
from lazygrad.helpers import getenv
from lazygrad.ops import Node, Ops, MOVEMENT, ELEMENTWISE, TEMPLATES
from lazygrad.scheduler import graph as G
from lazygrad.scheduler.lower import misfit_reduces
from lazygrad.ops.gather import source_view, gather_view_ok

MAX_FUSE_DEPTH = 100   # longest chain of graph nodes fused into one kernel (lowering is recursive)


class Reason(Enum):
  """Why a value is stored in a buffer instead of being computed inside its readers' kernels."""
  INPUT = "realized before this schedule"
  TARGET = "realize target"
  CONTIGUOUS = "contiguous()"
  ASSIGN = "assign"
  NOFUSE = "NOFUSE=1: one kernel per op"
  COSTLY_BROADCAST = "costly value a reduce reads broadcast (a contraction operand): stored once, not recomputed per output"
  REDUCE_NEW_SPACE = "reduce read outside its rows (a new iteration space)"
  DEPTH = f"fused chain deeper than {MAX_FUSE_DEPTH} ops"
  RANDOM_BROADCAST = "random numbers read broadcast"
  MULTI_VIEW = "read through several views (windows, taps)"
  SHARED = "needed by two kernels and costly to recompute"
  REDUCE_MISFIT = "reduce over other axes or another space than the kernel reading it"
  TEMPLATE = "a template op (flash attention): a kernel of its own"
  TEMPLATE_INPUT = "read by a template kernel, which loads its sources from buffers"
  GATHER_SOURCE = "read by a gather at computed addresses (a load from a buffer)"

  def __repr__(self): return f"Reason.{self.name}"


TIERS = [(Reason.TARGET, Reason.CONTIGUOUS, Reason.ASSIGN, Reason.NOFUSE, Reason.TEMPLATE, Reason.TEMPLATE_INPUT, Reason.GATHER_SOURCE),
         (Reason.COSTLY_BROADCAST,), (Reason.REDUCE_NEW_SPACE,),
         (Reason.DEPTH,), (Reason.RANDOM_BROADCAST, Reason.MULTI_VIEW), (Reason.SHARED,), (Reason.REDUCE_MISFIT,)]


class _Round:
  """The analyses the rules read, computed at most once per round (they depend on the roots)."""
  def __init__(self, g: G.Graph, roots: dict, targets: set[int]):
    self.g, self.roots, self.targets = g, roots, targets
    self._cache: dict = {}

  def once(self, name, fn):
    if name not in self._cache: self._cache[name] = fn()
    return self._cache[name]

  def template_inputs(self) -> set[int]:
    """The values template nodes read (through views): stored, as a template loads its sources from buffers. A RAND
    source is not: its seed and counter become the template kernel's runtime vars."""
    def find():
      return {id(b) for n in self.g.nodes if n.op in TEMPLATES and not n.realized
              for b in (_template_source(n, s) for s in n.srcs) if not b.realized and b.op is not Ops.RAND}
    return self.once("template_inputs", find)

  def gather_sources(self) -> set[int]:
    """The buffers gathers read: the node under each GATHER source's movement ops, or the source itself when those
    views do not compose into one the gather can index (the front end copies such sources, so this is rare)."""
    def find():
      out = set()
      for n in self.g.nodes:
        if n.op is not Ops.GATHER or n.realized: continue
        base, st = source_view(n.srcs[0])
        if not gather_view_ok(st, n.arg): base = n.srcs[0]
        if not base.realized: out.add(id(base))
      return out
    return self.once("gather_sources", find)

  def costly_broadcast(self) -> set[int]:
    def find():
      costly, out = G.costly_values(self.g, self.roots), set()
      for r in self.g.nodes:
        if r.op is Ops.REDUCE and not r.realized: out |= {id(x) for x in G.broadcast_into_reduce(r, self.g, self.roots, costly)}
      # only the outermost: a value inside another one that is stored anyway is read from it
      return G.outermost(out, self.g, self.roots)
    return self.once("costly", find)

  def epilogue_ends(self) -> set[int]:
    """For each reduce read outside its rows, the value that ends its per-row epilogue. A reduce whose per-row reads
    all join the epilogue of a sibling (another such reduce over the same rows, itself stored this way) is computed
    in the sibling's kernel: cross-entropy's max, read per row by x[target] - max - log(sum(exp(x - max)))."""
    def find():
      g, roots = self.g, self.roots
      outside = [r for r in g.nodes if r.op is Ops.REDUCE and not r.realized and id(r) not in roots and not G.row_broadcast_only(r, g, roots)]
      paths = {id(r): G.epilogue_path(r, g, roots) for r in outside}
      rows = lambda r: (tuple(r.srcs[0].shape), r.arg[1])
      def joins(r):
        return [o for o in outside if o is not r and rows(o) == rows(r)
                and G.row_broadcast_only(r, g, roots, frozenset(id(x) for x in paths[id(o)][1:]))]
      candidates = {id(r): joins(r) for r in outside}
      joined = {i for i, os_ in candidates.items() if any(not candidates[id(o)] for o in os_)}
      return {id(paths[id(r)][-1]) for r in outside if id(r) not in joined}
    return self.once("epilogue", find)

  def depth_cuts(self) -> set[int]:
    """The nodes where a fused chain reaches MAX_FUSE_DEPTH: cut there, the depth above
    starts again from 0 (so a chain of 10,000 ops becomes 100 kernels, not 9,900)."""
    def find():
      d: dict[int, int] = {}
      cuts: set[int] = set()
      for n in self.g.nodes:
        dd = 0 if n.realized or id(n) in self.roots or not n.srcs else 1 + max(d.get(id(s), 0) for s in n.srcs)
        if dd > MAX_FUSE_DEPTH and (n.op in ELEMENTWISE or n.op in MOVEMENT): cuts.add(id(n)); dd = 0
        d[id(n)] = dd
      return cuts
    return self.once("depth", find)

  def has_rand(self) -> dict[int, bool]:
    def find():
      h: dict[int, bool] = {}
      for n in self.g.nodes:
        h[id(n)] = not n.realized and id(n) not in self.roots and (n.op is Ops.RAND or any(h[id(s)] for s in n.srcs))
      return h
    return self.once("rand", find)

  def shared(self) -> set[int]:
    def find():
      owned = G.owners(self.g, self.roots)
      ids = {id(G.below_casts(self.g.by_id[i], self.roots)) for i, o in owned.items()
             if len(o) > 1 and not G.cheap(self.g.by_id[i], self.roots, self.g.const_only)}
      return G.outermost(ids, self.g, self.roots)
    return self.once("shared", find)

  def misfits(self) -> set[int]:
    def find():
      ids = set(self.roots)
      return {id(r) for root in self.roots.values() for r in misfit_reduces(root, ids)}
    return self.once("misfit", find)


def _template_source(n: Node, s: Node) -> Node:
  """The buffer a template node loads its source s from: the node under s's movement ops; for a scatter-add's index
  that is a bounds check of a stored value, the value under it (the template evaluates the check: no extra kernel)."""
  base = G.movement_base(s)[0]
  if n.op is Ops.SCATTER_ADD and s is n.srcs[0] and base.op is Ops.CHECK and not base.realized: base = G.movement_base(base.srcs[0])[0]
  return base


def buffer_reason(n: Node, rnd: _Round, tier: int) -> Reason | None:
  """Why n needs a buffer of its own, judged by the rules of one tier; None: fuse it.

  The rules, tier by tier (n is an unrealized node that is not a root yet):
  0. structure: a realize target, contiguous(), an assign; NOFUSE=1 makes every op a root; a template op
     (ATTENTION, SCATTER_ADD) and the values it reads are always stored, and so is a gather's source (read at
     data-dependent addresses); the gather itself fuses into its readers.
  1. cost: a value containing a transcendental op, a division, random numbers or a reduce,
     read broadcast along a dim a reduce keeps (a matmul operand: x[:, None, :] under
     sum(x[:, None, :] * w, -1)) would be recomputed for every output column; it is stored
     once instead (loads and casts are always cheap enough to recompute).
  2. a reduce read other than per row or broadcast back over its own input: the value
     ending its per-row epilogue (bias, activation: see graph.epilogue_end) is stored, and
     the reduce is computed inside that value's kernel.
  3. fusion depth: the chain under n is longer than MAX_FUSE_DEPTH.
  4. reuse: random numbers broadcast by a growing expand; a computed value read through
     several different windows (cat pieces), or through overlapping windows (a conv's input:
     on cpu always, on Triton devices unless cheap), is stored, not recomputed per read.
     A cast of a stored value is exempt from the first: each window's load converts (autocast's cast of an input).
  5. sharing: an elementwise node two kernels compute inline, unless cheap to recompute; a shared
     cast stores what it casts (each reader converts on load).
  6. fit: an inline reduce over other axes, or in another space, than the kernel reading it.
  """
  g = rnd.g
  if tier == 0:
    if id(n) in rnd.targets: return Reason.TARGET
    if n.op is Ops.CONTIGUOUS: return Reason.CONTIGUOUS
    if n.op is Ops.ASSIGN: return Reason.ASSIGN
    if n.op in TEMPLATES: return Reason.TEMPLATE
    if n.op is Ops.RAND and g.users(n) and all(u.op in TEMPLATES for u in g.users(n)): return None   # a template's runtime vars
    if getenv("NOFUSE", 0) and n.op not in MOVEMENT and n.op is not Ops.CONST: return Reason.NOFUSE
    if id(n) in rnd.template_inputs(): return Reason.TEMPLATE_INPUT
    if id(n) in rnd.gather_sources(): return Reason.GATHER_SOURCE
  elif tier == 1:
    if id(n) in rnd.costly_broadcast(): return Reason.COSTLY_BROADCAST
  elif tier == 2:
    if id(n) in rnd.epilogue_ends(): return Reason.REDUCE_NEW_SPACE
  elif tier == 3:
    if id(n) in rnd.depth_cuts(): return Reason.DEPTH
  elif tier == 4:
    if g.const_only[id(n)] or not (n.op in ELEMENTWISE or n.op is Ops.RAND): return None
    users = g.users(n)
    if rnd.has_rand()[id(n)] and any(u.op is Ops.EXPAND and math.prod(u.shape) > math.prod(n.shape) for u in users): return Reason.RANDOM_BROADCAST
    if any(u.op in MOVEMENT for u in users):
      if G.reads_through_views(n, g) > 1 and not G.cast_of_stored(n, rnd.roots): return Reason.MULTI_VIEW
      # read through overlapping windows (a conv's input): numpy evaluates an inline value over the whole
      # window space (k*k times its size), so it is stored; a Triton template recomputes a cheap one per tile
      if (n.device == "cpu" or not G.cheap(n, rnd.roots, g.const_only)) and G.window_overlap(n, g) >= 2: return Reason.MULTI_VIEW
  elif tier == 5:
    if id(n) in rnd.shared(): return Reason.SHARED
  elif tier == 6:
    if id(n) in rnd.misfits(): return Reason.REDUCE_MISFIT
  return None


def find_roots(g: G.Graph) -> tuple[list[Node], dict[int, Reason], list[Node]]:
  """The roots (in graph order) with the reason of each, and the targets that are views
  of another node's buffer (movement ops only: realized as views, no kernel)."""
  roots: dict[int, Node] = {}
  reasons: dict[int, Reason] = {}
  views, targets = [], set()
  for t in g.targets:
    if t.realized: continue
    base, mops = G.movement_base(t)
    if mops: views.append(t)
    if not base.realized: targets.add(id(base))
  pending = [n for n in g.nodes if not n.realized]
  tier = 0
  while tier < len(TIERS):
    rnd = _Round(g, roots, targets)
    new = [(n, r) for n in pending if id(n) not in roots and (r := buffer_reason(n, rnd, tier)) is not None]
    for n, r in new: roots[id(n)], reasons[id(n)] = n, r
    if new and TIERS[tier][0] is Reason.REDUCE_MISFIT: tier = 1   # the old analyses no longer hold: decide again
    elif not new or tier in (0, 2, 3, 4): tier += 1                # these tiers find everything in one round
  return [n for n in g.nodes if id(n) in roots], reasons, views
