"""Pass 4, after lowering: kernels computing the same thing from the same inputs run once
(cross-kernel CSE), and ASSIGNs are ordered so that they can write in place."""
from __future__ import annotations
import math
import sys
import weakref
from collections import Counter
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
  (x[1:].add_(1) reads the region of x through a padded view, which puts each element at its own position; a dim
  the mask keeps to one index may have any stride, as x[0] += 1's size-1 dim has)."""
  if st == tgt_st: return True
  if len(st.views) != 1: return False
  v, t = st.views[0], tgt_st.views[0]
  if v.shape != t.shape: return False
  off_v, off_t = v.offset, t.offset
  for (lo, hi), sv, stt in zip(v.mask or tuple((0, s) for s in v.shape), v.strides, t.strides):
    if hi <= lo: return True   # never valid: reads nothing
    if sv == stt: continue
    if hi - lo != 1: return False
    off_v, off_t = off_v + lo * sv, off_t + lo * stt
  return off_v == off_t


def _owns_memory(buf) -> bool:
  """The buffer's memory is its own: not a view of a caller's numpy array or of another tensor's storage."""
  data = buf.data
  return getattr(data, "base", None) is None and getattr(data, "_base", None) is None


def audit_refs(nodes: list[Node], roots: set[int]) -> tuple[dict[int, int], set[int]]:
  """What order_assigns needs to know about references, from the graph walk's list `nodes` and the roots' ids:
  (for every node, how many srcs of the graph's unrealized nodes hold it; the ids of realized nodes that a node
  outside this schedule's own use still reads). A node between a realized node and the roots is not stored by this
  schedule: if anything besides the graph holds it (a Tensor, a lazy graph not being realized, a view realized after
  the run), it will be computed later from the realized node's buffer, which must then keep its old contents.
  Linear: the held nodes are found by reference counts first, then one walk down from them collects what they read."""
  inner = _src_counts(nodes)
  outside = [n for n in nodes if not n.realized and id(n) not in roots and sys.getrefcount(n) > inner.get(id(n), 0) + 3]
  # (expected references: graph srcs, the nodes list, `n`, getrefcount's argument)
  held: set[int] = set()   # realized nodes read from a held node through unrealized non-roots
  seen = {id(n) for n in outside}
  while outside:
    for s_ in outside.pop().srcs:
      if id(s_) in roots or id(s_) in seen: continue
      seen.add(id(s_))
      if s_.realized: held.add(id(s_))
      else: outside.append(s_)
  return inner, held


_kernel_loads: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _loads(kernel) -> tuple:
  """The kernel's loads as (slot, view), walked once per kernel (a cached schedule reuses its kernels every step)."""
  loads = _kernel_loads.get(kernel)
  if loads is None: loads = _kernel_loads[kernel] = tuple(e.arg[:2] for e in kernel.body.walk() if e.op is Ops.LOAD)
  return loads


def _src_counts(nodes: list[Node]) -> dict[int, int]:
  """For every node, how many srcs of the unrealized nodes hold it (a function of its own: no loop variable
  outlives it to hold a reference)."""
  inner: dict[int, int] = {}
  for n in nodes:
    if n.realized: continue
    for s_ in n.srcs: inner[id(s_)] = inner.get(id(s_), 0) + 1
  return inner


def _realized_readers(items) -> dict[int, set[int]]:
  """id(buffer) -> the indices of the items reading it as a realized input."""
  readers: dict[int, set[int]] = {}
  for r, it in enumerate(items):
    for n in it.inputs:
      if n.realized: readers.setdefault(id(n.buffer), set()).add(r)
  return readers


def order_assigns(sched, refs: dict[int, int], held: set[int]) -> None:
  """An ASSIGN writes its target's buffer in place when every other reader of the old
  contents can run first and its own kernel reads the target only elementwise; the
  items are reordered so that holds. If that is impossible (e.g. a swap), assigns write
  fresh buffers instead. refs and held: what audit_refs says about this schedule's graph.
  Linear in the items' inputs (counts and readers are gathered once, by id: no extra references)."""
  items = sched.items
  writes = Counter(id(it.out.srcs[0]) for it in items if it.out.op is Ops.ASSIGN)
  input_refs = Counter(id(n) for it in items for n in it.inputs)   # references the inputs lists hold, per node
  readers = _realized_readers(items)
  def in_place_ok(it):
    tgt = it.out.srcs[0]
    if not (tgt.realized and tgt.st.is_contiguous and tgt.buffer.size == math.prod(tgt.shape) and tgt.dtype == it.out.dtype): return False
    if writes[id(tgt)] > 1: return False   # two writes of one buffer in one schedule: each gets its own
    return all(it.inputs[slot - 1].buffer is not tgt.buffer or _reads_in_place(st, tgt.st) for slot, st in _loads(it.kernel))
  def nobody_else_reads(it):
    # a lazy graph outside this schedule still holding the old value (an unrealized loss or .grad built
    # from the old parameter), a tensor holding it, or another node on the same memory (a realized view,
    # detach(), a caller's numpy array) would see the new contents if we overwrote them: then write fresh.
    # Expected references to the target: srcs of this schedule's nodes, the inputs lists of its kernels,
    # `tgt` and getrefcount's argument; to its buffer: the target's and getrefcount's argument.
    tgt = it.out.srcs[0]
    if id(tgt) in held: return False
    if sys.getrefcount(tgt) > 2 + input_refs[id(tgt)] + refs.get(id(tgt), 0): return False
    return sys.getrefcount(tgt.buffer) <= 2 and _owns_memory(tgt.buffer)
  for it in items:
    it.in_place = it.out.op is Ops.ASSIGN and in_place_ok(it) and nobody_else_reads(it)
  producer = {id(it.out): i for i, it in enumerate(items)}
  deps = [set() for _ in items]
  for i, it in enumerate(items):
    for n in it.inputs:
      if id(n) in producer: deps[i].add(producer[id(n)])
  for a, it in enumerate(items):
    if it.in_place: deps[a] |= readers.get(id(it.out.srcs[0].buffer), set()) - {a}
  order = _rounds(deps)
  if order is None:   # a cycle through in-place writes: give them all fresh buffers
    for it in items: it.in_place = False
    return
  sched.items = [items[i] for i in order]


def _rounds(deps: list[set[int]]) -> list[int] | None:
  """A topological order of items given each one's dependencies, round by round (a round: every item whose
  dependencies ran in earlier rounds, in index order); None on a cycle."""
  users: list[list[int]] = [[] for _ in deps]
  missing = [len(d) for d in deps]
  for i, d in enumerate(deps):
    for j in d: users[j].append(i)
  ready, order = [i for i, m in enumerate(missing) if m == 0], []
  while ready:
    order += ready
    after = []
    for i in ready:
      for u in users[i]:
        missing[u] -= 1
        if missing[u] == 0: after.append(u)
    ready = sorted(after)
  return order if len(order) == len(deps) else None
