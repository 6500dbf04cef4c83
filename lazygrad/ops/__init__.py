"""The lazy graph: one node type over a small primitive op set."""
from __future__ import annotations
import itertools
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any
from lazygrad.dtype import DType


class Ops(Enum):
  """The primitives of the lazy graph (sources, unary, binary, WHERE, REDUCE, movement, CONTIGUOUS, ASSIGN),
  plus LOAD and VALID, which only the kernel IR uses, and the template ops (ATTENTION), each a kernel of its own."""
  # sources
  BUFFER = auto(); CONST = auto(); RAND = auto()
  # unary
  NEG = auto(); EXP2 = auto(); LOG2 = auto(); EXP = auto(); LOG = auto(); SIN = auto(); SQRT = auto()
  RECIP = auto(); CAST = auto(); BITCAST = auto()
  TANH = auto(); EXPM1 = auto(); LOG1P = auto(); ERF = auto(); COS = auto()   # accurate to a few ulp where a composition cancels
  # binary
  ADD = auto(); MUL = auto(); MAX = auto(); CMPLT = auto(); CMPEQ = auto(); IDIV = auto(); MOD = auto()
  AND = auto(); OR = auto(); XOR = auto(); FDIV = auto()   # FDIV: true (float) division, correctly rounded
  # ternary
  WHERE = auto()
  # reduce (arg = (Ops.ADD | Ops.MAX, axes)); the output keeps reduced dims as size 1
  REDUCE = auto()
  # movement (views, never copies)
  RESHAPE = auto(); PERMUTE = auto(); EXPAND = auto(); PAD = auto(); SHRINK = auto(); FLIP = auto()
  # other
  CONTIGUOUS = auto(); ASSIGN = auto()
  # kernel IR only (never in the lazy graph): read a buffer through a view / the validity mask of a view
  LOAD = auto(); VALID = auto()
  # bounds: CHECK(idx) passes an index through unchanged and records, per schedule, a value outside
  # arg = (lo, hi) (an IndexError at the end of realize); node.origin is its CheckSite
  CHECK = auto()
  # template ops: a kernel of their own, rendered by a hand-written template (arg: ops/attention.py's AttentionArg)
  ATTENTION = auto()


# hot paths compare with these: on Python 3.11 `Ops.X` costs a call of EnumType.__getattr__'s hook (~0.2 us)
_BUFFER, _CONST, _RAND = Ops.BUFFER, Ops.CONST, Ops.RAND

UNARY = {Ops.NEG, Ops.EXP2, Ops.LOG2, Ops.EXP, Ops.LOG, Ops.SIN, Ops.SQRT, Ops.RECIP, Ops.CAST, Ops.BITCAST,
         Ops.TANH, Ops.EXPM1, Ops.LOG1P, Ops.ERF, Ops.COS}
BINARY = {Ops.ADD, Ops.MUL, Ops.MAX, Ops.CMPLT, Ops.CMPEQ, Ops.IDIV, Ops.MOD, Ops.AND, Ops.OR, Ops.XOR, Ops.FDIV}
ELEMENTWISE = UNARY | BINARY | {Ops.WHERE, Ops.CHECK}
MOVEMENT = {Ops.RESHAPE, Ops.PERMUTE, Ops.EXPAND, Ops.PAD, Ops.SHRINK, Ops.FLIP}


@dataclass(frozen=True)
class CheckSite:
  """Where a bounds check (Ops.CHECK) was built, for its IndexError: the op (`gather`), what the value is (`index`,
  `target`), the dim and its size, and the user's source line (`train.py:12`). seq orders sites by creation, so the
  error names the first check the program reached; it is left out of equality (two sites at one line are alike)."""
  op: str
  what: str
  dim: int | None
  size: int
  where: str
  seq: int = field(default=0, compare=False)


class Node:
  """One lazy value: op applied to srcs. Once realized, `buffer` and `st` (its view on
  the buffer) are set and the scheduler treats the node as a leaf. `vjp`, when set (autograd.custom_vjp),
  is (inputs, fn): autograd differentiates the node as fn(grad) -> one gradient per input node instead of
  walking srcs (conv's input gradient is a transposed conv, not the gradient of its window views).

  Every node also carries its structural id (`structural_id`, below), computed when it is made from its srcs' ids,
  so the schedule cache keys a graph by its targets' ids without walking it."""
  __slots__ = ('op', 'srcs', 'arg', 'shape', 'dtype', 'device', 'requires_grad', '_buffer', 'st', 'origin', 'vjp',
               '_sid', '_sepoch', '__weakref__')

  def __init__(self, op: Ops, srcs: tuple[Node, ...], arg: Any, shape: tuple[int, ...], dtype: DType, device: str,
               requires_grad: bool = False):
    self.op, self.srcs, self.arg, self.shape, self.dtype, self.device = op, srcs, arg, shape, dtype, device
    self.requires_grad = requires_grad
    self._buffer, self.st, self.origin, self.vjp = None, None, None, None
    # a BUFFER node is made unrealized and given its buffer right after: its id is the leaf's, computed when asked
    self._sid, self._sepoch = None, None
    if op is _BUFFER: return
    ids = ()   # the srcs' ids: a loop, not a comprehension (a frame of its own on Python 3.11)
    for s_ in srcs: ids += (s_._sid if s_._sepoch == _epoch or s_._sepoch == _LEAF else structural_id(s_),)
    structure = (id(op), repr(arg) if op is _CONST else None if op is _RAND else arg, shape, dtype.name, device, ids)
    sid = _structures.get(structure)
    self._sid, self._sepoch = _intern(structure) if sid is None else sid, _epoch

  @property
  def buffer(self):
    """The Buffer holding the value once realized (None before)."""
    return self._buffer

  @buffer.setter
  def buffer(self, buf) -> None:
    """Realize the node on buf (the executor, and constructors of leaves)."""
    # realizing a node whose structural id was computed makes it a leaf: every id computed over it is stale
    global _epoch
    if self._sid is not None and self._sepoch != _LEAF: _epoch += 1
    self._sid, self._sepoch, self._buffer = None, None, buf   # its leaf id is computed when asked (st is set after)

  @property
  def realized(self) -> bool:
    """Whether the node has a buffer (then the scheduler reads it as a leaf)."""
    return self._buffer is not None

  def __repr__(self):
    state = "realized" if self.realized else f"{len(self.srcs)} srcs"
    return f"<Node {self.op.name} {self.shape} {self.dtype.name} {state}>"


# ---- structural ids (hash-consing): equal ids <=> equal structure, exactly (no hash collisions)
# The structure of an unrealized node: (op, arg, shape, dtype, device, its srcs' ids), with a CONST's arg as its repr
# (0.0 and -0.0 apart; it is compiled into the kernel) and a RAND's left out (seed and counter are runtime vars); of a
# realized node (a leaf to the scheduler): (shape, dtype, device, st), whatever the buffer. The op is its id() and
# the dtype its name: Enum and dataclass hashes are Python functions, too slow for every node made (members and
# dtypes live as long as the process, and a dtype's name says which it is). Each distinct structure
# gets the next integer; numbers are never reused, so when the table is dropped (it is bounded) a structure seen
# again gets a new number: a cache miss, never a wrong hit. Realizing a node changes the structure of every
# unrealized node above it, so an unrealized node's id is valid only in the epoch it was computed in (the epoch
# moves when a node with an id is realized; a step's graph is built after the last realize, so its ids stay valid).
_LEAF = -1
_MAX_STRUCTURES = 1 << 18   # a training step has a few thousand; at ~200 bytes each, a bound of ~50 MB
_structures: dict = {}
_next_sid = itertools.count()
_epoch = 0


def _intern(structure: tuple) -> int:
  sid = _structures.get(structure)
  if sid is None:
    if len(_structures) >= _MAX_STRUCTURES: _structures.clear()
    sid = _structures[structure] = next(_next_sid)
  return sid


def _sid_valid(n: Node) -> bool:
  return n._sid is not None and (n._sepoch == _epoch or n._sepoch == _LEAF)


def structural_id(node: Node) -> int:
  """An int equal for two nodes exactly when the graphs under them have the same structure as the scheduler sees it
  (realized nodes as leaves): ops, args, shapes, dtypes, devices, the leaves' views. Not which nodes are shared:
  `x + y` and `x + x` over two leaves alike have one id. Computed once per node and epoch (iterative: deep graphs)."""
  stack = [node]
  while stack:
    n = stack[-1]
    if _sid_valid(n):
      stack.pop()
    elif n.realized:
      n._sid, n._sepoch = _intern((n.shape, n.dtype.name, n.device, n.st)), _LEAF
      stack.pop()
    elif stale := [s_ for s_ in n.srcs if not _sid_valid(s_)]:
      stack.extend(stale)
    else:
      arg = repr(n.arg) if n.op is _CONST else None if n.op is _RAND else n.arg
      n._sid = _intern((id(n.op), arg, n.shape, n.dtype.name, n.device, tuple([s_._sid for s_ in n.srcs])))
      n._sepoch = _epoch
      stack.pop()
  return node._sid


def toposort(roots: list[Node], stop_at_realized: bool = True) -> list[Node]:
  """Nodes reachable from roots, sources first (iterative: graphs can be deep)."""
  order, seen = [], set()
  for root in roots:
    if id(root) in seen: continue
    stack = [(root, False)]
    while stack:
      node, expanded = stack.pop()
      if expanded:
        order.append(node); continue
      if id(node) in seen: continue
      seen.add(id(node))
      stack.append((node, True))
      if not (stop_at_realized and node.realized):
        for s in reversed(node.srcs):
          if id(s) not in seen: stack.append((s, False))
  return order


TEMPLATES = {Ops.ATTENTION}   # template ops: always a kernel of their own, their sources read from buffers
