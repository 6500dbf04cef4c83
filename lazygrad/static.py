"""A TinyFlow-style static-graph front (the seed course's API) on lazy tensors.

    x = placeholder((32, 64)); W = Variable(np.zeros((64, 10), np.float32))
    loss = (x @ W).cross_entropy(y)                # ordinary Tensor ops build the graph once
    (gW,) = gradients(loss, [W])
    step = assign(W, W - 0.1 * gW)
    sess = Session(); sess.run([step, loss], feed_dict={x: xb, y: yb})

The graph is never realized itself. A placeholder or a Variable is a BUFFER node with no
buffer: a tensor whose buffer is bound at run time. `Session.run` copies the part of the
graph that depends on them, binding each placeholder to its fed array and each Variable to
its current value, and realizes the copies in one schedule (the numpy compile cache
is keyed by kernel structure, so every run after the first reuses the compiled kernels).
Nodes that depend on no placeholder or Variable are shared, not copied: constants are
computed once. All assigns of one run read the values from before the run, then the
Variables take their new values together.

Shapes are static: every placeholder dimension is known when the graph is built (build
a second graph, e.g. for a test set of another size, with the same Variables).
"""
from __future__ import annotations
import itertools
import weakref
from typing import Any, Optional, Sequence
import numpy as np
from lazygrad.dtype import DType, dtypes
from lazygrad.ops import Node, Ops
from lazygrad.tensor import Tensor
from lazygrad.runtime import canonical_device
from lazygrad.autograd import grad

_names = itertools.count()


class _Symbol:
  """The arg of a placeholder's or Variable's BUFFER node: what binds it at run time.
  It holds its tensor, so a graph keeps the Variables it reads alive."""
  __slots__ = ("kind", "name", "owner")
  def __init__(self, kind: str, name: str, owner):
    self.kind, self.name, self.owner = kind, name, owner
  def __repr__(self): return f"{self.kind} {self.name!r}"


class _SymbolNode(Node):
  """A BUFFER node without a buffer; says what it is if someone tries to realize it outside a Session."""
  __slots__ = ()
  def __repr__(self):
    return (f"<{self.arg!r} {self.shape} {self.dtype.name}: a static-graph value, evaluate it with "
            "lazygrad.static.Session.run(fetches, feed_dict)>")


def _symbol_of(node: Node) -> Optional[_Symbol]:
  return node.arg if node.op is Ops.BUFFER and node.buffer is None and isinstance(node.arg, _Symbol) else None


def _symbol_tensor(t: Tensor, kind: str, name: Optional[str], shape, dtype: DType, device) -> None:
  sym = _Symbol(kind, name or f"{kind}_{next(_names)}", t)
  t.node = _SymbolNode(Ops.BUFFER, (), sym, tuple(shape), dtype, canonical_device(device))
  t.grad, t._is_leaf_param = None, dtype.is_float
  t._base, t._chain, t._views = None, (), None   # a base, not a view (tensor_inplace.py)
  t.node.requires_grad = dtype.is_float     # so gradients() can differentiate w.r.t. it


class Placeholder(Tensor):
  """A tensor fed at run time: `Session.run(..., feed_dict={placeholder: array})`."""
  def __init__(self, shape, dtype=dtypes.float32, name: Optional[str] = None, device=None):
    if isinstance(shape, int): shape = (shape,)
    shape = tuple(shape)
    if any(d is None for d in shape):
      raise ValueError(f"placeholder: every dimension must be known, got {list(shape)}; lazygrad graphs have static "
                       "shapes, so build the graph for the batch size you feed")
    if any(not isinstance(d, (int, np.integer)) or d < 0 for d in shape):
      raise ValueError(f"placeholder: shape must be non-negative ints, got {shape}")
    _symbol_tensor(self, "placeholder", name, [int(d) for d in shape], dtypes.from_any(dtype), device)

  @property
  def name(self) -> str:
    """The placeholder's name (given, or placeholder_<n>)."""
    return self.node.arg.name
  def numpy(self):
    """Raises: a placeholder has a value only inside Session.run."""
    raise RuntimeError(f"placeholder {self.name!r} has a value only inside Session.run(fetches, feed_dict={{...}})")


_variables: "weakref.WeakSet[Variable]" = weakref.WeakSet()


class Variable(Tensor):
  """A tensor whose value persists between runs and changes only through `assign`.
  Its value is held here (realized); `v.numpy()` reads it."""
  def __init__(self, init_value, dtype=None, name: Optional[str] = None, device=None):
    value = init_value if isinstance(init_value, Tensor) else Tensor(init_value, dtype=dtype, device=device)
    if _symbol_of(value.node) is not None: raise TypeError("Variable: the initial value must be concrete, not a placeholder or Variable")
    if dtype is not None: value = value.cast(dtypes.from_any(dtype))
    self.initial_value = value.detach().contiguous().realize()
    self.value: Tensor = self.initial_value
    _symbol_tensor(self, "Variable", name, value.shape, value.dtype, value.device)
    _variables.add(self)

  @property
  def name(self) -> str:
    """The Variable's name (given, or Variable_<n>)."""
    return self.node.arg.name
  def numpy(self) -> np.ndarray:
    """The current value (after the last Session.run that assigned it), as a numpy array."""
    return self.value.numpy()
  def __repr__(self): return f"Variable({self.name!r}, {self.numpy()!r})"


def placeholder(shape, dtype=dtypes.float32, name: Optional[str] = None, device=None) -> Placeholder:
  """A graph input of a fixed shape; TensorFlow's argument order (dtype, shape) is accepted too."""
  if not isinstance(shape, (tuple, list, int, np.integer)): shape, dtype = dtype, shape
  if not isinstance(shape, (tuple, list, int, np.integer)): raise TypeError(f"placeholder: needs a shape (a tuple of ints), got {shape!r}")
  return Placeholder(shape, dtype, name, device)


def assign(var: Variable, value) -> Tensor:
  """An op that, when run, gives `var` the value `value` (computed from the values before
  the run); fetching it yields the new value. Reading the returned tensor in the graph
  reads the new value."""
  if not isinstance(var, Variable): raise TypeError(f"assign: the target must be a Variable, got {type(var).__name__}")
  if not isinstance(value, Tensor): value = Tensor(np.asarray(value, dtype=var.dtype.np), device=var.device)
  if value.shape != var.shape:
    try: value = value.expand(var.shape)
    except (ValueError, RuntimeError):
      raise ValueError(f"assign: value of shape {value.shape} does not fit Variable {var.name!r} of shape {var.shape}") from None
  value = value.cast(var.dtype)
  return Tensor._from_node(Node(Ops.ASSIGN, (var.node, value.node), None, var.shape, var.dtype, var.device))


class Group:
  """Several ops run together; `Session.run` returns None for it."""
  def __init__(self, ops: Sequence): self.ops = list(ops)
  def __repr__(self): return f"Group({len(self.ops)} ops)"


def group(*ops) -> Group:
  """tf.group: the ops run together, fetching the group yields None."""
  return Group(ops)


def global_variables_initializer() -> Group:
  """An op that sets every Variable made so far back to its initial value."""
  return Group([assign(v, v.initial_value) for v in list(_variables)])


initialize_all_variables = global_variables_initializer


def gradients(ys, xs: Sequence[Tensor]) -> list[Optional[Tensor]]:
  """d(sum of ys)/dx for each x in xs, as graph tensors (None where x does not affect ys).
  Non-scalar ys are summed, as TensorFlow does. The results are graph tensors themselves,
  so they can be differentiated again."""
  ys = [ys] if isinstance(ys, Tensor) else list(ys)
  single = isinstance(xs, Tensor)
  xs = [xs] if single else list(xs)
  for x in xs:
    if not x.requires_grad: raise TypeError(f"gradients: cannot differentiate with respect to a {x.dtype} tensor (shape {x.shape})")
  live = [y for y in ys if y.requires_grad]
  if not live: return [None] * len(xs)
  ones = [Tensor.ones(y.shape, dtype=y.dtype, device=y.device) for y in live]
  gs = grad(live, xs, grad_outputs=ones, create_graph=True, allow_unused=True)
  return list(gs)


def _variables_in(roots: list[Node]) -> list[Variable]:
  out, seen, stack = [], set(), list(roots)
  while stack:
    n = stack.pop()
    if id(n) in seen: continue
    seen.add(id(n))
    sym = _symbol_of(n)
    if sym is not None and sym.kind == "Variable" and all(v is not sym.owner for v in out): out.append(sym.owner)
    stack.extend(n.srcs)
  return out


class GradientDescentOptimizer:
  """TinyFlow's optimizer: `minimize(loss)` is the group of assigns v <- v - lr * dloss/dv."""
  def __init__(self, learning_rate: float): self.learning_rate = learning_rate
  def minimize(self, loss: Tensor, var_list: Optional[Sequence[Variable]] = None) -> Group:
    """The update op for var_list (default: every float Variable the loss depends on)."""
    var_list = list(var_list) if var_list is not None else [v for v in _variables_in([loss.node]) if v.dtype.is_float]
    grads = gradients(loss, var_list)
    return Group([assign(v, v - self.learning_rate * g) for v, g in zip(var_list, grads) if g is not None])


class Session:
  """Evaluates graph tensors: `run(fetches, feed_dict)`; fetches may be a tensor, a Group,
  or a list/tuple/dict of them (nested), and come back as numpy arrays in the same structure."""
  def __enter__(self): return self
  def __exit__(self, *exc): self.close()
  def close(self):
    """Nothing to free (kept for TensorFlow's `with Session() as sess:` pattern)."""

  def run(self, fetches, feed_dict: Optional[dict] = None):
    """Evaluate `fetches` with the placeholders bound to feed_dict's values (arrays or Tensors of
    the placeholder's shape) and every Variable to its current value, in one schedule; then the
    assigns among them update their Variables. Returns numpy arrays in fetches' structure."""
    leaves: list[Tensor] = []
    _collect(fetches, leaves)
    feeds = self._bind_feeds(feed_dict or {})
    memo: dict[int, Node] = {}
    updates: dict[int, tuple[Variable, Node]] = {}
    outs = [_copy_graph(t.node, feeds, memo, updates) for t in leaves]
    todo = [Tensor._from_node(n) for n in {id(n): n for n in outs + [n for _, n in updates.values()] if not n.realized}.values()]
    if todo: todo[0].realize(*todo[1:])   # every fetch and every update: one schedule
    for var, n in updates.values(): var.value = Tensor._from_node(n)
    results = {id(t): Tensor._from_node(n).numpy() for t, n in zip(leaves, outs)}
    return _rebuild(fetches, results)

  @staticmethod
  def _bind_feeds(feed_dict: dict) -> dict[int, Node]:
    feeds = {}
    for key, val in feed_dict.items():
      if not isinstance(key, Tensor): raise TypeError(f"Session.run: feed_dict keys must be graph tensors, got {type(key).__name__}")
      what = repr(key.node.arg) if _symbol_of(key.node) else f"tensor of shape {key.shape}"
      if isinstance(val, Tensor):   # a (possibly lazy) Tensor joins this run's schedule as it is
        t = val.to(key.device)
        if t.dtype != key.dtype: t = t.cast(key.dtype)
      else:
        arr = np.asarray(val)
        t = Tensor(arr.astype(key.dtype.np, copy=False), dtype=key.dtype, device=key.device) if arr.shape == key.shape else arr
      if t.shape != key.shape: raise ValueError(f"Session.run: fed {what} a value of shape {t.shape}, it needs {key.shape}")
      feeds[id(key.node)] = t.node
    return feeds


def _collect(fetches, out: list) -> None:
  if isinstance(fetches, Tensor): out.append(fetches)
  elif isinstance(fetches, Group):
    for op in fetches.ops: _collect(op, out)
  elif isinstance(fetches, dict):
    for v in fetches.values(): _collect(v, out)
  elif isinstance(fetches, (list, tuple)):
    for v in fetches: _collect(v, out)
  elif fetches is not None: raise TypeError(f"Session.run: cannot fetch a {type(fetches).__name__}")


def _rebuild(fetches, results: dict[int, np.ndarray]) -> Any:
  if isinstance(fetches, Tensor): return results[id(fetches)]
  if isinstance(fetches, Group) or fetches is None: return None
  if isinstance(fetches, dict): return {k: _rebuild(v, results) for k, v in fetches.items()}
  return type(fetches)(_rebuild(v, results) for v in fetches)


def _copy_graph(root: Node, feeds: dict[int, Node], memo: dict[int, Node], updates: dict) -> Node:
  """The node computing `root` with this run's bindings: nodes that depend on a fed value, a
  placeholder or a Variable are copied (sources bound), all others are shared."""
  stack = [(root, False)]
  while stack:
    node, expanded = stack.pop()
    if id(node) in memo: continue
    if id(node) in feeds: memo[id(node)] = feeds[id(node)]; continue
    sym = _symbol_of(node)
    if sym is not None:
      memo[id(node)] = _bind_symbol(sym, node)
      continue
    if node.realized or not node.srcs: memo[id(node)] = node; continue
    if not expanded:
      stack.append((node, True))
      stack.extend((s, False) for s in node.srcs if id(s) not in memo)
      continue
    srcs = tuple(memo[id(s)] for s in node.srcs)
    if node.op is Ops.ASSIGN and _symbol_of(node.srcs[0]) is not None:   # assign(var, value): the value, bound later
      var = node.srcs[0].arg.owner
      if id(var) in updates and updates[id(var)][1] is not srcs[1]:
        raise ValueError(f"Session.run: Variable {var.name!r} is assigned twice in one run")
      updates[id(var)] = (var, srcs[1])
      memo[id(node)] = srcs[1]
    elif all(a is b for a, b in zip(srcs, node.srcs)): memo[id(node)] = node
    else:
      memo[id(node)] = Node(node.op, srcs, node.arg, node.shape, node.dtype, node.device)
      memo[id(node)].origin = node.origin   # a bounds check keeps the line that built it
  return memo[id(root)]


def _bind_symbol(sym: _Symbol, node: Node) -> Node:
  if sym.kind == "placeholder":
    raise ValueError(f"Session.run: {sym!r} (shape {node.shape}, {node.dtype.name}) needs a value in feed_dict")
  value = sym.owner.value.node
  bound = Node(Ops.BUFFER, (), None, node.shape, node.dtype, node.device)
  bound.buffer, bound.st = value.buffer, value.st
  return bound
