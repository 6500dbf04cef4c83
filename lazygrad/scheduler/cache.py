"""The schedule cache: a graph of the same structure as one scheduled before (same ops,
shapes, dtypes, constants and input views; any buffers, any seeds) reuses that schedule,
so a training loop pays for scheduling once. A schedule is stored as a template over the
graph's node positions and filled in with the new graph's nodes."""
from __future__ import annotations
from lazygrad.ops import Node, Ops, toposort
from lazygrad.helpers import getenv

SCHEDULE_CACHE_SIZE = 512


def graph_key(targets: list[Node]):
  """(structural key, the nodes in the order the key numbers them)."""
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
