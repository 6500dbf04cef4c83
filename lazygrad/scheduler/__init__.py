"""Scheduler: lazy graph -> list of kernels (ScheduleItems). A sequence of named passes:

1. graph.py   the walk: nodes under the targets, their consumers, the questions fusion asks
2. fusion.py  the decisions: which nodes get a buffer of their own, each with a `Reason`
              (one function, `buffer_reason`, holds every rule; read its docstring)
3. lower.py   each root and what fuses into it -> a Kernel (the Kernel IR in
              kernels/ir.py), including its Contraction when it is a matmul
4. assign.py  identical kernels run once; ASSIGNs ordered so they can write in place
   cache.py   a graph of a known structure reuses its schedule (passes 1-3 skipped)

`lazygrad.schedule(*tensors)` returns the items; each says why its output and each of
its inputs is a buffer (`.reason`, `.reasons`); DEBUG=3 prints that per kernel.
"""
from __future__ import annotations
from dataclasses import dataclass, field, replace
from typing import Any
from lazygrad.ops import Node, Ops, toposort
from lazygrad.kernels.ir import Kernel
from lazygrad.scheduler.graph import Graph, movement_base
from lazygrad.scheduler.fusion import Reason, find_roots, MAX_FUSE_DEPTH
from lazygrad.scheduler.lower import lower_kernel
from lazygrad.scheduler.assign import dedupe_kernels, order_assigns, audit_refs
from lazygrad.scheduler import cache as _cache


@dataclass(eq=False)
class ScheduleItem:
  """One kernel of a schedule: the Kernel, the node it realizes (out), the nodes filling its input slots, and why
  the output and each input are buffers (reason, reasons). repr is one line."""
  kernel: Kernel
  out: Node                 # the root this kernel realizes
  inputs: list[Node]        # nodes whose buffers fill slots 1..
  rand_nodes: tuple = ()    # RAND nodes whose (seed, counter) are the kernel's runtime vars
  in_place: bool = False    # ASSIGN writing straight into its target's buffer
  reason: Reason | None = None   # why `out` is a buffer (a kernel of its own)
  reasons: tuple = ()       # why each input is a buffer rather than computed here (slot 1..)
  program: Any = None       # the renderer's program (source, name, ...): set by the executor and schedule()
  check_nodes: tuple = ()   # CHECK nodes the kernel evaluates, in its check order (their CheckSite: node.origin)

  @property
  def var_values(self) -> tuple:
    """The runtime scalars passed at launch: the args of rand_nodes (each RAND's seed and counter), flattened."""
    return tuple(v for n in self.rand_nodes for v in n.arg)

  @property
  def name(self) -> str:
    """The kernel's name."""
    return self.kernel.name
  @property
  def source(self) -> str:
    """The program's source; '' until the executor or lazygrad.schedule sets `program`."""
    return self.program.source if self.program is not None else ""
  @property
  def shape(self) -> tuple:
    """The output's shape."""
    return tuple(self.out.shape)

  def __repr__(self):
    ins = ", ".join(f"in{i + 1}{list(n.shape)}: {r.name.lower()}" for i, (n, r) in enumerate(zip(self.inputs, self.reasons)))
    return f"<ScheduleItem {self.name} -> {list(self.shape)} {self.out.dtype.name} ({self.reason.name.lower()}); {ins}>"


@dataclass
class Schedule:
  """What create_schedule returns: items to run in order, roots, views (nodes that become views of a realized or
  rooted base after the run) and aliases (a duplicate root and the root computing the same value)."""
  items: list[ScheduleItem] = field(default_factory=list)
  views: list[tuple[Node, Node]] = field(default_factory=list)   # (node, realized/rooted base): set after the run
  roots: list[Node] = field(default_factory=list)
  aliases: list[tuple[Node, Node]] = field(default_factory=list)  # (duplicate root, the root computing the same)


_schedule_cache: dict = {}


def create_schedule(targets: list[Node]) -> Schedule:
  """The kernels realizing targets; a graph of a structure seen before reuses its schedule."""
  targets = [t for t in dict.fromkeys(targets) if not t.realized]
  sched, nodes = _cached_schedule(targets)
  # order_assigns counts the references to each ASSIGN's target: the ones from this graph are expected
  if any(it.out.op is Ops.ASSIGN for it in sched.items):
    # an ASSIGN's value is stored too (the executor marks it realized on the ASSIGN's buffer): like a root
    stored = {id(r) for r in sched.roots} | {id(it.out.srcs[1]) for it in sched.items
                                          if it.out.op is Ops.ASSIGN and assign_value_aliased(it.out, it.out.srcs[1])}
    refs, held = audit_refs(nodes, stored)
  else: refs, held = {}, set()
  del nodes   # not a reference of its own
  order_assigns(sched, refs, held)
  _writes_after_checks(sched)
  return sched


def _cached_schedule(targets: list[Node]) -> tuple[Schedule, list[Node]]:
  """(the schedule, the graph's nodes in walk order): from the cache when a layout of this structure fits (cache.py),
  else built and stored. A cache hit walks no graph."""
  key = _cache.graph_key(targets)
  layouts = _schedule_cache.get(key)
  for layout, template in layouts or ():
    nodes = _cache.replay(layout, targets)
    if nodes is not None: return _cache.from_template(template, nodes, Schedule, ScheduleItem), nodes
  nodes = toposort(targets)
  sched = _build_schedule(targets)
  if layouts is None:
    layouts = _schedule_cache[key] = []
    if len(_schedule_cache) > _cache.SCHEDULE_CACHE_SIZE: _schedule_cache.pop(next(iter(_schedule_cache)))
  layouts.insert(0, (_cache.layout_of(targets, nodes), _cache.template_of(sched, nodes)))
  del layouts[_cache.LAYOUTS_PER_KEY:]
  return sched, nodes


def assign_value_aliased(assign: Node, value: Node) -> bool:
  """Whether an ASSIGN's unrealized value node is marked realized on the ASSIGN's buffer after the run (same dtype and shape)."""
  return assign.op is Ops.ASSIGN and not value.realized and value.dtype == assign.dtype and value.shape == assign.shape


def _writes_after_checks(sched: Schedule) -> None:
  """A realize that raises IndexError changes nothing: an in-place ASSIGN that would run before a kernel with
  bounds checks writes a fresh buffer instead (rare: checks normally come first); the ones after are guarded."""
  last = max((i for i, it in enumerate(sched.items) if it.check_nodes), default=-1)
  for it in sched.items[:last + 1]: it.in_place = False


def _build_schedule(targets: list[Node]) -> Schedule:
  roots, reasons, views = find_roots(Graph(targets))
  root_ids = {id(r) for r in roots}
  sched = Schedule(roots=roots)
  lowered = [(r, *lower_kernel(r, root_ids)) for r in roots]
  checked = any(checks for *_, checks in lowered)
  for r, kernel, inputs, rand_nodes, checks in lowered:
    # with bounds checks in the schedule, an ASSIGN writes nothing once one has failed (the realize raises, nothing changes)
    if checked and r.op is Ops.ASSIGN: kernel = replace(kernel, guard=True, key=(kernel.key, "guard"))
    kernel.key = _cache.canonical_key(kernel.key)   # a compile-cache lookup per launch: by identity and a stored hash
    why = tuple(Reason.INPUT if n.realized else reasons[id(n)] for n in inputs)
    sched.items.append(ScheduleItem(kernel, r, inputs, rand_nodes, reason=reasons[id(r)], reasons=why, check_nodes=checks))
  sched.views = [(v, movement_base(v)[0]) for v in views]
  dedupe_kernels(sched)
  return sched


__all__ = ["create_schedule", "Schedule", "ScheduleItem", "Reason", "MAX_FUSE_DEPTH", "assign_value_aliased"]
