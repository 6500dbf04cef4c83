"""The user API: a lazy Tensor. Every method is a composition of the primitives in
lazygrad.ops; nothing computes until realize() (or numpy()/item()/printing).

This module holds the core (construction from data, properties, graph building, casts,
matmul, autograd entry, in-place assign) and composes the class from the theme mixins:
tensor_create (constructors, interop), tensor_math (elementwise), tensor_activations,
tensor_index (movement, indexing), tensor_reduce (reductions), tensor_nn (conv, pooling,
norms, attention, losses), tensor_extra (torch methods composed from those; first in the bases, so its scatter/sort
wrap theirs). Those import tensor_base only, never this module."""
from __future__ import annotations
from typing import Optional
import numpy as np
from lazygrad.dtype import DType, dtypes, result_type
from lazygrad.ops import Node, Ops
from lazygrad.ops.view import ShapeTracker
from lazygrad.runtime import get_device, canonical_device
from lazygrad.helpers import prod
from lazygrad.runtime import executor
from lazygrad import autograd
from lazygrad.tensor_base import TensorBase, ShapeError, _GradMode, no_grad, MinMax, check_dim, broadcast_shape, movement_shape, autocast_op, LOWER
from lazygrad.tensor_create import CreateMixin, to_numpy
from lazygrad.tensor_math import MathMixin
from lazygrad.tensor_activations import ActivationMixin
from lazygrad.tensor_index import IndexMixin
from lazygrad.tensor_reduce import ReduceMixin
from lazygrad.tensor_nn import NNMixin
from lazygrad.tensor_inplace import InplaceMixin
from lazygrad.tensor_extra import ExtraMixin

_PERMUTE, _FLIP = Ops.PERMUTE, Ops.FLIP   # module constants: on Python 3.11 `Ops.X` calls EnumType's __getattr__ hook

__all__ = ["Tensor", "no_grad", "MinMax", "broadcast_shape"]


class Tensor(ExtraMixin, CreateMixin, MathMixin, ActivationMixin, IndexMixin, ReduceMixin, NNMixin, InplaceMixin):
  """A lazy n-dimensional array with torch's names and semantics (see /API.md).

  Operations build graph nodes (`.node`); realize(), numpy(), item(), tolist(), torch() and
  printing compute, scheduling everything pending into as few kernels as possible.
  Differences from torch: nodes are immutable, an in-place write (add_, x[i] = v, assign, ...) gives the tensor and
  its base a new node that every live view sees (tensor_inplace.py); backward() differentiates through the lazy graph."""
  __slots__ = {"node": "The lazy graph node (lazygrad.ops.Node) holding this tensor's value; assign() replaces it.",
               "grad": "torch's .grad: the accumulated gradient after backward() (a lazy Tensor), or None.",
               "_is_leaf_param": None, "__weakref__": None,
               "_base": "The tensor this one is a view of (never itself a view), or None (tensor_inplace.py).",
               "_chain": "The movement ops (op, arg) from _base to this view; () for a base.",
               "_views": "Weak references to this base's live views, rebuilt after each in-place write; None until the first."}
  __array_ufunc__ = None   # np.float32(2) * t: numpy defers to Tensor's reflected operators instead of making an object array
  no_grad = no_grad

  def __init__(self, data, dtype=None, device=None, requires_grad: bool = False):
    """torch.tensor(data, dtype, device, requires_grad): data is a Python number, nested list, numpy array,
    torch tensor or Tensor (detached, moved and cast). Arrays and torch tensors are copied, as torch.tensor
    (Tensor.from_numpy and from_torch share memory where the device allows)."""
    device = canonical_device(device)
    dtype = dtypes.from_any(dtype) if dtype is not None else None
    self.grad: Optional[Tensor] = None
    self._is_leaf_param = False
    self._base, self._chain, self._views = None, (), None
    if isinstance(data, Tensor):
      src = data.detach().to(device)
      self.node = (src.cast(dtype) if dtype else src).node
    else:
      if isinstance(data, Node): self.node = data
      else:
        arr = to_numpy(data, dtype)
        self.node = Tensor._buffer_node(arr, dtype or dtypes.from_np(arr.dtype), device)
    if requires_grad: self.requires_grad = True

  @staticmethod
  def _buffer_node(arr: np.ndarray, dt: DType, device: str) -> Node:
    """A realized BUFFER node holding arr (the cpu device uses a contiguous array of dt's type in place)."""
    node = Node(Ops.BUFFER, (), None, tuple(arr.shape), dt, device)
    node.buffer, node.st = get_device(device).from_numpy(arr, dt), ShapeTracker.from_shape(arr.shape)
    return node

  @classmethod
  def _shared(cls, arr: np.ndarray, device=None) -> Tensor:
    """A Tensor over arr's memory where the device allows (torch.from_numpy); a copy elsewhere."""
    return cls._from_node(Tensor._buffer_node(arr, dtypes.from_np(arr.dtype), canonical_device(device)))

  @classmethod
  def _from_node(cls, node: Node) -> Tensor:
    t = cls.__new__(cls)
    t.node, t.grad, t._is_leaf_param = node, None, False
    t._base, t._chain, t._views = None, (), None
    return t

  # ---- properties
  @property
  def shape(self) -> tuple[int, ...]:
    """torch's .shape, a plain tuple of ints (torch.Size is a tuple too)."""
    return self.node.shape
  @property
  def dtype(self) -> DType:
    """The element type, a lazygrad DType (dtypes.float32, ...), not a torch.dtype."""
    return self.node.dtype
  @property
  def device(self) -> str:
    """The device name, a str ('cpu', 'cuda' or 'interp'), not a torch.device."""
    return self.node.device
  @property
  def ndim(self) -> int:
    """torch's .ndim: the number of dims."""
    return len(self.shape)
  def numel(self) -> int:
    """torch.numel: the number of elements."""
    return prod(self.shape)
  def size(self, dim=None):
    """torch.Tensor.size: the shape tuple, or the size of one dim."""
    return self.shape if dim is None else self.shape[check_dim("size", dim, self.ndim)]
  def dim(self) -> int:
    """torch.Tensor.dim: the number of dims."""
    return self.ndim
  def element_size(self) -> int:
    """torch.Tensor.element_size: bytes per element."""
    return self.dtype.itemsize
  @property
  def is_realized(self) -> bool:
    """True once the value sits in a device buffer (no pending graph); not in torch."""
    return self.node.realized
  @property
  def T(self) -> Tensor:
    """torch's .T: all dims reversed (a view)."""
    return self.permute(*reversed(range(self.ndim)))
  @property
  def mT(self) -> Tensor:
    """torch's .mT: the last two dims swapped (a view)."""
    return self.transpose(-2, -1)
  def is_floating_point(self) -> bool:
    """torch.is_floating_point."""
    return self.dtype.is_float
  __hash__ = object.__hash__   # by identity: == is elementwise

  @property
  def requires_grad(self) -> bool:
    """torch's .requires_grad: set it on leaves (float only); results of ops on such tensors require grad too."""
    return self.node.requires_grad
  @requires_grad.setter
  def requires_grad(self, value: bool):
    """Set requires_grad: only float tensors can require grad, and only leaves can turn it off (RuntimeError), as torch."""
    if value and not self.dtype.is_float:
      raise RuntimeError(f"requires_grad: only floating point tensors can require gradients, got {self.dtype}")
    if not value and self.node.requires_grad and not self._is_leaf_param:
      raise RuntimeError("requires_grad: you can only change requires_grad flags of leaf tensors; use detach()")
    self.node.requires_grad = bool(value)
    self._is_leaf_param = bool(value)
    if value: self._base, self._chain = None, ()   # a leaf of its own: writes to its old base no longer rebuild it
    if value: TensorBase._params[id(self)] = self
    else: TensorBase._params.pop(id(self), None)
  def requires_grad_(self, requires_grad: bool = True) -> Tensor:
    """torch.Tensor.requires_grad_: set requires_grad in place and return self."""
    self.requires_grad = requires_grad
    return self
  @property
  def is_leaf(self) -> bool:
    """torch's .is_leaf: True unless the tensor is the result of ops on tensors requiring grad."""
    return not self.requires_grad or self._is_leaf_param

  # ---- laziness
  def realize(self, *more: Tensor) -> Tensor:
    """Compute self and `more` in one schedule (kernels fused across all of them) and return self; not in torch."""
    executor.realize_nodes([t.node for t in (self,) + more])   # looked up per call: tests and tools may wrap it
    return self

  def contiguous(self) -> Tensor:
    """torch.Tensor.contiguous: a value stored in its own row-major buffer when realized (a fusion boundary);
    self when it already is one."""
    if self.node.realized and self.node.st.is_contiguous: return self
    return self._new(Ops.CONTIGUOUS, (self.node,), None, self.shape, self.dtype)

  def detach(self) -> Tensor:
    """torch.Tensor.detach: the same value, cut from the graph (no gradient flows back through it)."""
    n = self.node
    if n.realized:
      out = Node(Ops.BUFFER, (), None, n.shape, n.dtype, n.device)
      out.buffer, out.st = n.buffer, n.st
    else: out = Node(n.op, n.srcs, n.arg, n.shape, n.dtype, n.device)
    return Tensor._from_node(out)

  # ---- Python conversions (these realize)
  def __bool__(self): return bool(self.item())
  def __float__(self): return float(self.item())
  def __int__(self): return int(self.item())
  def __index__(self):
    if self.dtype.is_float or self.numel() != 1: raise TypeError("only integer tensors of a single element can be converted to an index")
    return int(self.item())
  def __len__(self):
    if not self.shape: raise TypeError("len() of a 0-d tensor")
    return self.shape[0]
  def __iter__(self): return (self[i] for i in range(len(self)))
  def __repr__(self):
    """One line that never computes: <Tensor (32, 10) float32 cpu lazy requires_grad> (torch's repr prints values)."""
    return f"<Tensor {self.shape} {self.dtype.name} {self.device} {'realized' if self.is_realized else 'lazy'}" + \
      (" requires_grad>" if self.requires_grad else ">")
  def __str__(self):
    """What print() shows: the values (this realizes), dtype and device."""
    return f"Tensor({np.array2string(self.numpy(), separator=', ', precision=4)}, dtype={self.dtype}, device={self.device!r}" + \
      (", requires_grad=True)" if self.requires_grad else ")")

  # ---- graph building: the only places that make op nodes
  def _new(self, op: Ops, srcs: tuple, arg, shape, dtype) -> Tensor:
    rg = False
    if _GradMode.enabled:
      for s in srcs:
        if s.requires_grad: rg = True; break
    return Tensor._from_node(Node(op, srcs, arg, tuple(shape), dtype, self.node.device, rg))

  def _movement(self, op: Ops, arg) -> Tensor:
    node, arg = self.node, tuple(arg)
    shape = movement_shape(op, arg, node.shape)
    if op is _PERMUTE:
      if arg == tuple(range(len(shape))): return self
    elif op is _FLIP:
      if not arg: return self
    elif shape == node.shape: return self
    out = self._new(op, (node,), arg, shape, node.dtype)
    self._track_view(out, op, arg)   # a view: in-place writes to it reach self's base
    return out

  def _reduce(self, op: Ops, axes: tuple[int, ...]) -> Tensor:
    axes = tuple(sorted(axes))
    if not axes: return self
    shape = tuple(1 if i in axes else s for i, s in enumerate(self.shape))
    return self._new(Ops.REDUCE, (self.node,), (op, axes), shape, self.dtype)

  def _alu(self, op: Ops, *others: Tensor, dtype: Optional[DType] = None) -> Tensor:
    return self._new(op, (self.node,) + tuple(o.node for o in others), None, self.shape, dtype or self.dtype)

  def _broadcast_to(self, shape) -> Tensor:
    if self.node.shape == tuple(shape): return self
    # size-1 dims in front: _movement directly (reshape's argument checks cost more than the op, and cannot fail here)
    t = self._movement(Ops.RESHAPE, (1,) * (len(shape) - self.ndim) + self.shape) if self.ndim < len(shape) else self
    return t._movement(Ops.EXPAND, tuple(shape))

  def _const_like(self, value, dtype=None, shape=None) -> Tensor:
    return Tensor.full(self.shape if shape is None else shape, value, dtype=dtype or self.dtype, device=self.device)

  # ---- casts
  def cast(self, dtype) -> Tensor:
    """torch.Tensor.to(dtype): convert the values (float to int truncates toward zero); self when the dtype is already that."""
    if dtype is self.node.dtype: return self   # the common case, before from_any and DType's (Python) __eq__
    dtype = dtypes.from_any(dtype)
    if dtype == self.dtype: return self
    return self._new(Ops.CAST, (self.node,), dtype, self.shape, dtype)
  def type(self, dtype):
    """torch.Tensor.type(dtype): cast (the no-argument form that returns a type name is not supported)."""
    return self.cast(dtype)
  def float(self):
    """torch.Tensor.float: cast to float32."""
    return self.cast(dtypes.float32)
  def half(self):
    """torch.Tensor.half: cast to float16."""
    return self.cast(dtypes.float16)
  def bfloat16(self):
    """torch.Tensor.bfloat16: cast to bfloat16."""
    return self.cast(dtypes.bfloat16)
  def double(self):
    """torch.Tensor.double: cast to float64."""
    return self.cast(dtypes.float64)
  def int(self):
    """torch.Tensor.int: cast to int32."""
    return self.cast(dtypes.int32)
  def long(self):
    """torch.Tensor.long: cast to int64."""
    return self.cast(dtypes.int64)
  def bool(self):
    """torch.Tensor.bool: cast to bool (nonzero is True)."""
    return self.cast(dtypes.bool)
  def bitcast(self, dtype) -> Tensor:
    """torch.Tensor.view(dtype) for same-size dtypes: reinterpret the bits; no gradient flows."""
    dtype = dtypes.from_any(dtype)
    if dtype.itemsize != self.dtype.itemsize: raise ValueError(f"bitcast: {self.dtype} and {dtype} differ in size")
    return self._new(Ops.BITCAST, (self.node,), dtype, self.shape, dtype)

  # ---- linear algebra
  @autocast_op(LOWER)
  def matmul(self, w: Tensor) -> Tensor:
    """torch.matmul (@): 1-D, 2-D and broadcast batched operands, as torch; built as a broadcast multiply and a sum,
    which the scheduler runs as one matmul kernel (with what fuses around it)."""
    if not isinstance(w, Tensor): raise TypeError(f"matmul: expected a Tensor, got {type(w).__name__}")
    if self.dtype.is_bool or w.dtype.is_bool: raise TypeError("matmul: not implemented for bool tensors (as torch)")
    if self.ndim == 0 or w.ndim == 0: raise ShapeError(f"matmul: both arguments need at least 1 dim, got {self.shape} and {w.shape}")
    k_self, k_w = self.shape[-1], w.shape[-2] if w.ndim > 1 else w.shape[0]
    if k_self != k_w: raise ShapeError(f"matmul: shapes {self.shape} and {w.shape} cannot be multiplied ({k_self} != {k_w})")
    dt = result_type(self, w)
    x, y = self.cast(dt), w.cast(dt)
    if x.ndim == 1 and y.ndim == 1: return (x * y).sum().cast(dt)
    xs = x.unsqueeze(0) if x.ndim == 1 else x
    ys = y.unsqueeze(-1) if y.ndim == 1 else y
    try: batch = broadcast_shape("matmul", xs.shape[:-2], ys.shape[:-2])
    except ValueError: raise ShapeError(f"matmul: the batch dims of shapes {self.shape} and {w.shape} cannot be broadcast together") from None
    # (..., n, k, 1) * (..., 1, k, m) summed over k: the numpy device runs it as a BLAS matmul
    a = xs.unsqueeze(-1)
    b = ys.unsqueeze(-3)
    out = (a * b).sum(-2, dtype=dt) if dt.is_float else (a * b).sum(-2).cast(dt)
    out = out._broadcast_to(batch + out.shape[-2:]) if out.shape[:-2] != batch else out
    if x.ndim == 1: out = out.squeeze(-2)
    if y.ndim == 1: out = out.squeeze(-1)
    return out
  __matmul__ = matmul
  def __rmatmul__(self, o): return o.matmul(self)
  def dot(self, w: Tensor) -> Tensor:
    """torch.dot: the inner product of two 1-D tensors."""
    if self.ndim != 1 or w.ndim != 1: raise ShapeError(f"dot: expects 1-D tensors, got {self.shape} and {w.shape}")
    return self.matmul(w)
  def mm(self, w):
    """torch.mm; here simply matmul (it also accepts batched or 1-D operands, which torch.mm rejects)."""
    return self.matmul(w)
  def bmm(self, w):
    """torch.bmm; here simply matmul (it also accepts non-3-D operands, which torch.bmm rejects)."""
    return self.matmul(w)
  def outer(self, w):
    """torch.outer: (n,) x (m,) -> (n, m) (inputs of more dims are flattened)."""
    return self.reshape(-1, 1) * w.reshape(1, -1)
  @autocast_op(LOWER)
  def linear(self, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """F.linear: self @ weight.T + bias with weight (out, in), as torch."""
    if weight.ndim != 2 or weight.shape[1] != self.shape[-1]:
      raise ShapeError(f"linear: input {self.shape} does not match weight {weight.shape} (expected weight (out, {self.shape[-1]}))")
    if bias is not None and bias.shape not in ((weight.shape[0],), ()):
      raise ShapeError(f"linear: bias of shape {bias.shape} does not match weight {weight.shape} (expected ({weight.shape[0]},))")
    out = self.matmul(weight.T)
    return out + bias if bias is not None else out

  # ---- autograd
  def backward(self, gradient: Optional[Tensor] = None, retain_graph: Optional[bool] = None, create_graph: bool = False) -> None:
    """torch.Tensor.backward: accumulate d(self)/d(leaf) into .grad of every leaf requiring grad (lazily: the grads
    are graph nodes, computed with the next realize). gradient is needed unless self has one element.
    retain_graph is accepted for torch compatibility and has no effect: backward never frees the graph, so
    calling it again always works (as torch with retain_graph=True). create_graph=True keeps the grads
    differentiable (for higher-order derivatives)."""
    autograd.backward(self, gradient, create_graph)


TensorBase._Tensor = Tensor   # the mixins and autograd build tensors through this (see tensor_base)
