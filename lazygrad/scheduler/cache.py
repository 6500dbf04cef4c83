"""The schedule cache: a graph of the same structure as one scheduled before (same ops,
shapes, dtypes, constants and input views; any buffers, any seeds) reuses that schedule,
so a training loop pays for scheduling once. A schedule is stored as a template over the
graph's node positions and filled in with the new graph's nodes.

The key is the targets' structural ids (`ops.structural_id`, computed as each node is made),
so a lookup does not walk the graph. The ids do not say which nodes are shared (`x + y` and
`x + x` have the same), so each key holds one or more layouts: the positions of the nodes in
the graph walk's order, and how to reach each from the targets (a src of a node placed before
it). A hit replays a layout (one list lookup per node, no walk, no hashing) and checks that
the nodes it reached are the graph the schedule was made for: every other src edge lands on the
node the layout says, and no two positions hold one node. Then the graph is the one scheduled,
node for node, and the template's positions are this graph's nodes."""
from __future__ import annotations
from lazygrad.ops import Node, structural_id
from lazygrad.helpers import getenv

SCHEDULE_CACHE_SIZE = 512
LAYOUTS_PER_KEY = 4   # graphs of one structure that differ in what they share: each a layout of its own
KERNEL_KEYS = 1 << 14


class KernelKey:
  """A kernel's structural key (`Kernel.key`: what the devices' compile caches look it up by) with its hash computed
  once, one object per distinct key (`canonical_key`): a lookup of a kernel seen before is then an identity
  comparison and a stored hash, where the plain tuple rehashed its dtypes and views (Python-level hashes) and, for
  an equal key made by another schedule, compared the bodies node by node, on every launch."""
  __slots__ = ("value", "_hash")

  def __init__(self, value):
    self.value, self._hash = value, hash(value)

  def __hash__(self): return self._hash

  def __eq__(self, other):
    return self is other or (isinstance(other, KernelKey) and self._hash == other._hash and self.value == other.value)

  def __repr__(self): return f"<KernelKey {self._hash:#x}>"


_kernel_keys: dict = {}


def canonical_key(value) -> KernelKey:
  """The one KernelKey of a kernel key's value (bounded: when the table is dropped, keys made later are equal by
  value to earlier ones, only slower to compare)."""
  key = _kernel_keys.get(value)
  if key is None:
    if len(_kernel_keys) >= KERNEL_KEYS: _kernel_keys.clear()
    key = _kernel_keys[value] = KernelKey(value)
  return key


def graph_key(targets: list[Node]) -> tuple:
  """The schedule cache's key: the targets' structural ids, and NOFUSE. O(targets) once the nodes have their ids."""
  return tuple([structural_id(t) for t in targets]), getenv("NOFUSE", 0)


def layout_of(targets: list[Node], nodes: list[Node]) -> tuple:
  """How to find the graph walk's nodes from the targets: (number of nodes, the targets' positions, the recipe
  [(position, parent position, src index)] in decreasing position (a parent comes after its srcs in the walk, so it is
  placed first), the checks [(parent position, src index, position)]: every src edge the recipe does not follow)."""
  index = {id(n): i for i, n in enumerate(nodes)}
  tpos = tuple(index[id(t)] for t in targets)
  placed, parent, checks = set(tpos), {}, []
  for q, n in enumerate(nodes):
    if n.realized: continue
    for j, s_ in enumerate(n.srcs):
      e = index[id(s_)]
      if e in placed: checks.append((q, j, e))
      else: placed.add(e); parent[e] = (q, j)
  recipe = tuple(sorted(((p, q, j) for p, (q, j) in parent.items()), reverse=True))
  return len(nodes), tpos, recipe, tuple(checks)


def replay(layout: tuple, targets: list[Node]) -> list[Node] | None:
  """The nodes of targets' graph at the layout's positions, or None when this graph shares nodes differently
  (targets' structural ids must equal the layout's graph's: then every step of the recipe finds a node)."""
  size, tpos, recipe, checks = layout
  nodes: list = [None] * size
  for p, t in zip(tpos, targets): nodes[p] = t
  for p, q, j in recipe: nodes[p] = nodes[q].srcs[j]
  for q, j, e in checks:
    if nodes[q].srcs[j] is not nodes[e]: return None
  return nodes if len(set(nodes)) == size else None


def template_of(sched, nodes: list[Node]):
  """A schedule with every node replaced by its index in nodes (the graph walk's order): what the cache stores."""
  index = {id(n): i for i, n in enumerate(nodes)}
  items = [(it.kernel, index[id(it.out)], tuple(index[id(n)] for n in it.inputs), tuple(index[id(n)] for n in it.rand_nodes),
            it.reason, it.reasons, tuple(index[id(n)] for n in it.check_nodes)) for it in sched.items]
  views = [(index[id(v)], index[id(b)]) for v, b in sched.views]
  aliases = [(index[id(a)], index[id(b)]) for a, b in sched.aliases]
  return items, views, [index[id(r)] for r in sched.roots], aliases


def from_template(template, nodes: list[Node], schedule_cls, item_cls):
  """The schedule of a template over this graph's nodes (the inverse of template_of), built with schedule_cls and item_cls."""
  items, views, roots, aliases = template
  sched = schedule_cls(roots=[nodes[i] for i in roots], aliases=[(nodes[a], nodes[b]) for a, b in aliases])
  sched.items = [item_cls(k, nodes[o], [nodes[i] for i in ins], tuple(nodes[i] for i in rands), reason=why, reasons=whys,
                          check_nodes=tuple(nodes[i] for i in checks)) for k, o, ins, rands, why, whys, checks in items]
  sched.views = [(nodes[v], nodes[b]) for v, b in views]
  return sched
