"""Reverse-mode autodiff over the lazy graph: the backward pass is built as more nodes.

The gradient rules (one per primitive) are in autograd/gradient.py. This package sits
below tensor.py: it imports tensor_base, never tensor.py, and builds tensors through
TensorBase._Tensor (the composed Tensor class)."""
from __future__ import annotations
from typing import Sequence, TYPE_CHECKING
import numpy as np
from lazygrad.dtype import dtypes
from lazygrad.ops import Node, Ops
from lazygrad.tensor_base import TensorBase, _GradMode
from lazygrad.autograd.gradient import RULES, NO_GRADIENT

if TYPE_CHECKING: from lazygrad.tensor import Tensor

_ASSIGN = Ops.ASSIGN   # compared per node: on Python 3.11 `Ops.X` calls EnumType's __getattr__ hook


def _grad_srcs(node: Node) -> tuple:
  """The nodes autograd sends node's gradient to: a custom vjp's inputs, else its srcs."""
  return node.vjp[0] if node.vjp is not None else node.srcs


def custom_vjp(out: "Tensor", inputs: Sequence["Tensor"], fn) -> "Tensor":
  """Give out (a node made by the caller, computed from inputs) its own gradient: backward calls
  fn(grad) -> one gradient (or None) per input and does not walk out's graph. fn is written with
  Tensor ops, so the gradient is lazy graph and differentiable again. conv2d uses it: its input
  gradient is a transposed convolution and its weight gradient one contraction."""
  if out.node.vjp is not None: raise RuntimeError("custom_vjp: the node already has a custom gradient")
  out.node.vjp = (tuple(i.node for i in inputs), fn)
  return out


def _on_grad_path(roots: list[Node]) -> list[Node]:
  """Nodes that need a gradient, in topological order (sources first)."""
  order, seen = [], set()
  for root in roots:
    stack = [(root, False)]
    while stack:
      node, done = stack.pop()
      if done: order.append(node); continue
      if id(node) in seen or not node.requires_grad: continue
      seen.add(id(node))
      stack.append((node, True))
      if node.op is not _ASSIGN:
        for s in reversed(node.vjp[0] if node.vjp is not None else node.srcs):
          if id(s) not in seen: stack.append((s, False))
  return order


def compute_gradients(root_grads: list[tuple[Node, "Tensor"]], targets: list[Node], create_graph: bool) -> dict[int, "Tensor"]:
  """Gradients (by id of node) for every node on a path from the roots to a target, seeded with root_grads.
  The rules run with grad mode set to create_graph, so the result is differentiable only when asked."""
  Tensor = TensorBase._Tensor
  order = _on_grad_path([n for n, _ in root_grads])
  # only walk nodes from which some target is reachable
  wanted = {id(t) for t in targets}
  reaches: set[int] = set()   # ids of the nodes from which a target is reachable
  for n in order:
    if id(n) in wanted: reaches.add(id(n))
    elif n.op is not _ASSIGN:
      for s in (n.vjp[0] if n.vjp is not None else n.srcs):
        if id(s) in reaches: reaches.add(id(n)); break
  grads: dict[int, Tensor] = {}
  for n, g in root_grads:
    grads[id(n)] = grads[id(n)] + g if id(n) in grads else g
  prev = _GradMode.enabled
  _GradMode.enabled = create_graph
  try:
    for node in reversed(order):
      g = grads.get(id(node))
      srcs = _grad_srcs(node)
      if g is None or not srcs or node.op is _ASSIGN or (node.vjp is None and node.op in NO_GRADIENT): continue
      if not any(id(s) in reaches for s in srcs): continue
      if node.vjp is not None: src_grads = node.vjp[1](g)
      else:
        rule = RULES.get(node.op)
        if rule is None: raise RuntimeError(f"backward: no gradient rule for {node.op.name}")
        src_grads = rule(Tensor._from_node(node), g, *[Tensor._from_node(s) for s in srcs])
      for s, sg in zip(srcs, src_grads):
        if sg is None or not s.requires_grad or id(s) not in reaches: continue
        if sg.shape != s.shape: raise RuntimeError(f"backward: gradient of shape {sg.shape} for a value of shape {s.shape} in {node.op.name}")
        grads[id(s)] = grads[id(s)] + sg if id(s) in grads else sg
  finally:
    _GradMode.enabled = prev
  return grads


def _root_grad(t, gradient, op: str):
  Tensor = TensorBase._Tensor
  if not t.requires_grad:
    raise RuntimeError(f"{op}: element 0 of tensors does not require grad and does not have a grad_fn (shape {t.shape})")
  if gradient is None:
    if t.numel() != 1: raise RuntimeError(f"{op}: grad can be implicitly created only for scalar outputs, got shape {t.shape}")
    return Tensor.ones(t.shape, dtype=t.dtype, device=t.device)
  if not isinstance(gradient, Tensor): gradient = Tensor(gradient, dtype=t.dtype, device=t.device)
  if gradient.shape != t.shape: raise RuntimeError(f"{op}: gradient of shape {gradient.shape} does not match output of shape {t.shape}")
  return gradient.cast(t.dtype)


def backward(t, gradient, create_graph: bool) -> None:
  """Tensor.backward: accumulate the gradients of t into .grad of every live leaf that requires grad."""
  g = _root_grad(t, gradient, "backward")
  params = [p for p in list(TensorBase._params.values()) if p.requires_grad]
  grads = compute_gradients([(t.node, g)], [p.node for p in params], create_graph)
  for p in params:
    pg = grads.get(id(p.node))
    if pg is None: continue
    if not create_graph: pg = pg.detach()
    p.grad = pg if p.grad is None else p.grad + pg


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False, allow_unused: bool = False):
  """torch.autograd.grad: gradients of outputs w.r.t. inputs as Tensors, without touching .grad.
  retain_graph is accepted and has no effect (the graph is never freed)."""
  single = isinstance(inputs, TensorBase)
  outputs = [outputs] if isinstance(outputs, TensorBase) else list(outputs)
  inputs = [inputs] if single else list(inputs)
  if grad_outputs is None: grad_outputs = [None] * len(outputs)
  elif isinstance(grad_outputs, TensorBase): grad_outputs = [grad_outputs]
  if len(grad_outputs) != len(outputs): raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
  for i in inputs:
    if not i.requires_grad: raise RuntimeError(f"grad: one of the differentiated tensors (shape {i.shape}) does not require grad")
  roots = [(o.node, _root_grad(o, go, "grad")) for o, go in zip(outputs, grad_outputs)]
  grads = compute_gradients(roots, [i.node for i in inputs], create_graph)
  out = []
  for i in inputs:
    g = grads.get(id(i.node))
    if g is None and not allow_unused:
      raise RuntimeError(f"grad: one of the differentiated tensors (shape {i.shape}) appears to not have been used in the graph; "
                         "pass allow_unused=True")
    out.append(g if g is None or create_graph else g.detach())
  return tuple(out)


def gradcheck(fn, inputs: Sequence, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> bool:
  """Compare autograd with central differences in float64 (as the seed course's backward_check).

  fn maps Tensors to a Tensor; every float input is checked. Raises AssertionError with
  the worst mismatch, returns True when all gradients agree."""
  Tensor = TensorBase._Tensor
  arrays = [np.asarray(x.numpy() if isinstance(x, Tensor) else x, dtype=np.float64) for x in inputs]
  leaves = [Tensor(a, dtype=dtypes.float64, requires_grad=True) for a in arrays]
  out = fn(*leaves)
  seed = np.random.default_rng(0).standard_normal(out.shape)   # a random projection checks every output
  analytic = grad([out], leaves, [Tensor(seed, dtype=dtypes.float64)], allow_unused=True)
  for k, (a, g) in enumerate(zip(arrays, analytic)):
    g = np.zeros_like(a) if g is None else g.numpy()
    num = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
      vals = []
      for sign in (1, -1):
        pert = [x.copy() for x in arrays]
        pert[k][idx] += sign * eps
        vals.append(float((fn(*[Tensor(p, dtype=dtypes.float64) for p in pert]).numpy() * seed).sum()))
      num[idx] = (vals[0] - vals[1]) / (2 * eps)
    if not np.allclose(g, num, atol=atol, rtol=rtol):
      worst = np.unravel_index(np.argmax(np.abs(g - num)), a.shape) if a.size else ()
      raise AssertionError(f"gradcheck: input {k} gradient mismatch at {worst}: autograd {g[worst]} vs numerical {num[worst]}")
  return True
