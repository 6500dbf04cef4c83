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


def order_assigns(sched) -> None:
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
