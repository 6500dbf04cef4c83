"""Pass 4, after lowering: kernels computing the same thing from the same inputs run once
(cross-kernel CSE), and ASSIGNs are ordered so that they can write in place."""
from __future__ import annotations
import math
import sys
from lazygrad.ops import Node, Ops


def dedupe_kernels(sched) -> None:
  """Common subexpressions across kernels: two roots computing the same kernel from the
  same inputs (e.g. a value built twice by separate calls) share one kernel and buffer."""
  first: dict = {}
  canon: dict[int, Node] = {}
  kept = []
  for it in sched.items:
    inputs = [canon.get(id(n), n) for n in it.inputs]
    it.inputs = inputs
    key = (it.kernel.key, tuple(id(n) for n in inputs), tuple(id(n) for n in it.rand_nodes), tuple(n.origin for n in it.check_nodes))
    if it.out.op is not Ops.ASSIGN and key in first:
      canon[id(it.out)] = first[key].out
      sched.aliases.append((it.out, first[key].out))
      continue
    first.setdefault(key, it)
    kept.append(it)
  sched.items = kept


def _reads_in_place(st, tgt_st) -> bool:
  """A load through st reads every element where the in-place write puts it: the target's own view, maybe masked
  (x[1:].add_(1) reads the region of x through a padded view, which puts each element at its own position)."""
  if st == tgt_st: return True
  if len(st.views) != 1: return False
  v, t = st.views[0], tgt_st.views[0]
  return v.shape == t.shape and v.strides == t.strides and v.offset == t.offset


def _owns_memory(buf) -> bool:
  """The buffer's memory is its own: not a view of a caller's numpy array or of another tensor's storage."""
  data = buf.data
  return getattr(data, "base", None) is None and getattr(data, "_base", None) is None


def graph_refs(nodes: list[Node]) -> dict[int, int]:
  """For each realized node of a schedule's graph (nodes, the walk's list), how many srcs of its unrealized nodes hold it."""
  refs: dict[int, int] = {}
  for n in nodes:
    if n.realized: continue
    for s in n.srcs:
      if s.realized: refs[id(s)] = refs.get(id(s), 0) + 1
  return refs


def order_assigns(sched, refs: dict[int, int]) -> None:
  """An ASSIGN writes its target's buffer in place when every other reader of the old
  contents can run first and its own kernel reads the target only elementwise; the
  items are reordered so that holds. If that is impossible (e.g. a swap), assigns write
  fresh buffers instead. refs: for each realized node, how many srcs of this
  schedule's unrealized nodes hold it (references the schedule accounts for)."""
  items = sched.items
  targets = [id(it.out.srcs[0]) for it in items if it.out.op is Ops.ASSIGN]
  def in_place_ok(it):
    tgt = it.out.srcs[0]
    if not (tgt.realized and tgt.st.is_contiguous and tgt.buffer.size == math.prod(tgt.shape) and tgt.dtype == it.out.dtype): return False
    if targets.count(id(tgt)) > 1: return False   # two writes of one buffer in one schedule: each gets its own
    for e in it.kernel.body.walk():
      if e.op is Ops.LOAD and it.inputs[e.arg[0] - 1].buffer is tgt.buffer and not _reads_in_place(e.arg[1], tgt.st): return False
    return True
  def nobody_else_reads(it):
    # a lazy graph outside this schedule still holding the old value (an unrealized loss or .grad built
    # from the old parameter), a tensor holding it, or another node on the same memory (a realized view,
    # detach(), a caller's numpy array) would see the new contents if we overwrote them: then write fresh.
    # Expected references to the target: srcs of this schedule's nodes, the inputs lists of its kernels,
    # `tgt` and getrefcount's argument; to its buffer: the target's and getrefcount's argument.
    tgt = it.out.srcs[0]
    seen = sum(1 for other in items for n in other.inputs if n is tgt)
    if sys.getrefcount(tgt) > 2 + seen + refs.get(id(tgt), 0): return False
    return sys.getrefcount(tgt.buffer) <= 2 and _owns_memory(tgt.buffer)
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
