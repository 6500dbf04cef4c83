"""The user API: a lazy Tensor. Every method here is a composition of the primitives in
lazygrad.ops; nothing computes until realize() (or numpy()/item()/printing)."""
from __future__ import annotations
import math
from typing import Optional
import weakref
import numpy as np
from lazygrad.dtype import DType, dtypes, result_type, least_upper_float
from lazygrad.ops import Node, Ops
from lazygrad.ops.view import ShapeTracker
from lazygrad.runtime import Buffer, get_device, canonical_device
from lazygrad.helpers import argfix, prod
from lazygrad.tensor_nn import NNMixin
from lazygrad.tensor_index import IndexMixin
from lazygrad.tensor_reduce import ReduceMixin, MinMax  # noqa: F401  (MinMax is public API)



class _GradMode:
  enabled = True


class no_grad:
  """Context manager and decorator: ops inside build nodes that need no gradient.
  As torch's, it decorates with or without parentheses (@no_grad() and @no_grad)."""
  def __new__(cls, fn=None):
    if fn is None: return super().__new__(cls)
    if not callable(fn): raise TypeError(f"no_grad: expected a function to decorate, got {type(fn).__name__}")
    return cls()(fn)
  def __enter__(self):
    self.prev, _GradMode.enabled = _GradMode.enabled, False
  def __exit__(self, *exc):
    _GradMode.enabled = self.prev
  def __call__(self, fn):
    import functools
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
      with no_grad(): return fn(*args, **kwargs)
    return wrapper


class _RNG:
  seed, counter = 0, 0


def _check_dim(op: str, dim: int, ndim: int) -> int:
  if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
    raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
  lo, hi = (-ndim, ndim - 1) if ndim else (-1, 0)
  if not lo <= dim <= hi: raise ValueError(f"{op}: dim {dim} out of range for a tensor of {ndim} dims")
  return dim + ndim if dim < 0 and ndim else (0 if ndim == 0 else dim)


def broadcast_shape(op: str, *shapes) -> tuple[int, ...]:
  nd = max(len(s) for s in shapes)
  padded = [(1,) * (nd - len(s)) + tuple(s) for s in shapes]
  out = []
  for dims in zip(*padded):
    sizes = {d for d in dims if d != 1}
    if len(sizes) > 1: raise ValueError(f"{op}: shapes {' and '.join(str(tuple(s)) for s in shapes)} cannot be broadcast together")
    out.append(sizes.pop() if sizes else 1)
  return tuple(out)


class Tensor(NNMixin, IndexMixin, ReduceMixin):
  __slots__ = ("node", "grad", "_is_leaf_param", "__weakref__")
  __array_ufunc__ = None   # np.float32(2) * t: numpy defers to Tensor's reflected operators instead of making an object array
  no_grad = no_grad
  # leaves with requires_grad, for backward(); keyed by id (a WeakSet compares members with ==, elementwise here)
  _params: "weakref.WeakValueDictionary[int, Tensor]" = weakref.WeakValueDictionary()

  def __init__(self, data, dtype=None, device=None, requires_grad: bool = False):
    device = canonical_device(device)
    dtype = dtypes.from_any(dtype) if dtype is not None else None
    self.grad: Optional[Tensor] = None
    self._is_leaf_param = False
    if isinstance(data, Tensor):
      src = data.detach().to(device)
      self.node = (src.cast(dtype) if dtype else src).node
    else:
      if isinstance(data, Node): self.node = data
      else:
        arr = _to_numpy(data, dtype)
        dt = dtype or dtypes.from_np(arr.dtype)
        buf = get_device(device).from_numpy(arr, dt)
        self.node = Node(Ops.BUFFER, (), None, tuple(arr.shape), dt, device)
        self.node.buffer, self.node.st = buf, ShapeTracker.from_shape(arr.shape)
    if requires_grad: self.requires_grad = True

  @classmethod
  def _from_node(cls, node: Node) -> Tensor:
    t = cls.__new__(cls)
    t.node, t.grad, t._is_leaf_param = node, None, False
    return t

  # ---- properties
  @property
  def shape(self) -> tuple[int, ...]: return self.node.shape
  @property
  def dtype(self) -> DType: return self.node.dtype
  @property
  def device(self) -> str: return self.node.device
  @property
  def ndim(self) -> int: return len(self.shape)
  def numel(self) -> int: return prod(self.shape)
  def size(self, dim=None):
    return self.shape if dim is None else self.shape[_check_dim("size", dim, self.ndim)]
  def dim(self) -> int: return self.ndim
  def element_size(self) -> int: return self.dtype.itemsize
  @property
  def is_realized(self) -> bool: return self.node.realized
  @property
  def T(self) -> Tensor: return self.permute(*reversed(range(self.ndim)))
  @property
  def mT(self) -> Tensor: return self.transpose(-2, -1)
  def is_floating_point(self) -> bool: return self.dtype.is_float
  __hash__ = object.__hash__

  @property
  def requires_grad(self) -> bool: return self.node.requires_grad
  @requires_grad.setter
  def requires_grad(self, value: bool):
    if value and not self.dtype.is_float:
      raise RuntimeError(f"requires_grad: only floating point tensors can require gradients, got {self.dtype}")
    if not value and self.node.requires_grad and not self._is_leaf_param:
      raise RuntimeError("requires_grad: you can only change requires_grad flags of leaf tensors; use detach()")
    self.node.requires_grad = bool(value)
    self._is_leaf_param = bool(value)
    if value: Tensor._params[id(self)] = self
    else: Tensor._params.pop(id(self), None)
  def requires_grad_(self, requires_grad: bool = True) -> Tensor:
    self.requires_grad = requires_grad
    return self
  @property
  def is_leaf(self) -> bool: return not self.requires_grad or self._is_leaf_param

  # ---- laziness
  def realize(self, *more: Tensor) -> Tensor:
    from lazygrad.realize import realize_nodes
    realize_nodes([t.node for t in (self,) + more])
    return self

  def contiguous(self) -> Tensor:
    if self.node.realized and self.node.st.is_contiguous: return self
    return self._new(Ops.CONTIGUOUS, (self.node,), None, self.shape, self.dtype)

  def detach(self) -> Tensor:
    n = self.node
    if n.realized:
      out = Node(Ops.BUFFER, (), None, n.shape, n.dtype, n.device)
      out.buffer, out.st = n.buffer, n.st
    else: out = Node(n.op, n.srcs, n.arg, n.shape, n.dtype, n.device)
    return Tensor._from_node(out)

  def numpy(self) -> np.ndarray:
    t = self
    if not (t.node.realized and t.node.st.is_contiguous and t.node.buffer.size == t.numel()): t = t.contiguous()
    t.realize()
    # a realized contiguous view may be a prefix of a larger buffer (x[:2] realized as a view)
    return t.node.buffer.numpy()[:self.numel()].reshape(self.shape).copy()

  def tolist(self): return self.numpy().tolist()
  def item(self):
    if self.numel() != 1: raise ValueError(f"item: only a tensor of one element converts to a Python scalar, got shape {self.shape}")
    return self.numpy().reshape(()).item()
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
    return f"Tensor({np.array2string(self.numpy(), separator=', ', precision=4)}, dtype={self.dtype}, device={self.device!r}" + \
      (", requires_grad=True)" if self.requires_grad else ")")

  # ---- interop
  @staticmethod
  def from_numpy(a: np.ndarray) -> Tensor: return Tensor(a)
  @staticmethod
  def from_torch(t, device=None) -> Tensor:
    """Share a torch tensor's memory when it can (contiguous, on a device lazygrad puts in
    torch memory: cuda, or cpu tensors for interp/cpu); copy otherwise."""
    dev = canonical_device(device if device is not None else ("cuda" if t.is_cuda else None))
    dt = dtypes.from_any(t.dtype)
    src = t.detach()
    if dev == "cpu" or (dev == "interp" and src.is_cuda):
      if dt.name == "bfloat16" or src.is_cuda: return Tensor(src.float().cpu().numpy() if dt.name == "bfloat16" else src.cpu().numpy(), dtype=dt, device=dev)
      return Tensor(src.contiguous().numpy(), device=dev)            # numpy shares the CPU tensor's memory
    if (dev == "cuda") != src.is_cuda: src = src.to("cuda" if dev == "cuda" else "cpu")
    flat = src.contiguous().reshape(-1)
    node = Node(Ops.BUFFER, (), None, tuple(src.shape), dt, dev)
    node.buffer, node.st = Buffer(dev, flat.numel(), dt, flat), ShapeTracker.from_shape(tuple(src.shape))
    return Tensor._from_node(node)
  def torch(self):
    """A torch tensor of this value: sharing memory when realized contiguous (cuda and
    interp buffers are torch tensors, cpu buffers numpy arrays)."""
    import torch
    n = self.node
    if not (n.realized and n.st.is_contiguous): return Tensor._from_node(self.contiguous().realize().node).torch()
    data = n.buffer.data
    if isinstance(data, np.ndarray):
      if self.dtype.name == "bfloat16": return torch.from_numpy(data[:self.numel()].view(np.int16)).view(torch.bfloat16).reshape(self.shape)
      return torch.from_numpy(data[:self.numel()]).reshape(self.shape)
    return data[:self.numel()].reshape(self.shape)
  def to(self, device=None, dtype=None) -> Tensor:
    if isinstance(device, DType) or (dtype is None and device is not None and str(device).startswith("torch.")):
      device, dtype = None, device
    out = self
    if device is not None and canonical_device(device) != self.device:
      out = Tensor(self.numpy(), device=device)
    return out.cast(dtype) if dtype is not None else out
  def cpu(self) -> Tensor: return self.to("cpu")

  # ---- graph building
  def _new(self, op: Ops, srcs: tuple, arg, shape, dtype) -> Tensor:
    rg = _GradMode.enabled and any(s.requires_grad for s in srcs)
    return Tensor._from_node(Node(op, srcs, arg, tuple(shape), dtype, self.device, rg))

  def _movement(self, op: Ops, arg) -> Tensor:
    shape = _movement_shape(op, arg, self.shape)
    if op is not Ops.FLIP and shape == self.shape and op is not Ops.PERMUTE: return self
    if op is Ops.PERMUTE and tuple(arg) == tuple(range(self.ndim)): return self
    if op is Ops.FLIP and not arg: return self
    return self._new(op, (self.node,), tuple(arg), shape, self.dtype)

  def _reduce(self, op: Ops, axes: tuple[int, ...]) -> Tensor:
    axes = tuple(sorted(a for a in axes if True))
    if not axes: return self
    shape = tuple(1 if i in axes else s for i, s in enumerate(self.shape))
    return self._new(Ops.REDUCE, (self.node,), (op, axes), shape, self.dtype)

  def _alu(self, op: Ops, *others: Tensor, dtype: Optional[DType] = None) -> Tensor:
    return self._new(op, (self.node,) + tuple(o.node for o in others), None, self.shape, dtype or self.dtype)

  def cast(self, dtype) -> Tensor:
    dtype = dtypes.from_any(dtype)
    if dtype == self.dtype: return self
    return self._new(Ops.CAST, (self.node,), dtype, self.shape, dtype)
  def type(self, dtype): return self.cast(dtype)
  def float(self): return self.cast(dtypes.float32)
  def half(self): return self.cast(dtypes.float16)
  def bfloat16(self): return self.cast(dtypes.bfloat16)
  def double(self): return self.cast(dtypes.float64)
  def int(self): return self.cast(dtypes.int32)
  def long(self): return self.cast(dtypes.int64)
  def bool(self): return self.cast(dtypes.bool)
  def bitcast(self, dtype) -> Tensor:
    dtype = dtypes.from_any(dtype)
    if dtype.itemsize != self.dtype.itemsize: raise ValueError(f"bitcast: {self.dtype} and {dtype} differ in size")
    return self._new(Ops.BITCAST, (self.node,), dtype, self.shape, dtype)

  def _const_like(self, value, dtype=None, shape=None) -> Tensor:
    return Tensor.full(self.shape if shape is None else shape, value, dtype=dtype or self.dtype, device=self.device)

  # ---- construction
  @staticmethod
  def full(shape, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape = _check_shape("full", argfix(shape) if isinstance(shape, (tuple, list)) else (shape,))
    if isinstance(fill_value, Tensor): fill_value = fill_value.item()
    if isinstance(fill_value, np.ndarray) and fill_value.size == 1: fill_value = fill_value.item()
    if not isinstance(fill_value, (int, float, bool, np.number)):
      raise TypeError(f"full: fill_value must be a number, got {type(fill_value).__name__} (shape {shape})")
    dtype = dtypes.from_any(dtype) if dtype is not None else result_type(fill_value)
    # ints wrap into the dtype as torch does (uint8 -1 is 255)
    value = bool(fill_value) if dtype.is_bool else int(np.array(int(fill_value)).astype(dtype.np)) if dtype.is_int else float(fill_value)
    node = Node(Ops.CONST, (), value, (), dtype, canonical_device(device))
    t = Tensor._from_node(node).reshape((1,) * len(shape)).expand(shape)
    return t.contiguous().requires_grad_() if requires_grad else t

  @staticmethod
  def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return Tensor.full(argfix(*shape), 0.0, dtype=dtype or dtypes.default_float, device=device, requires_grad=requires_grad)
  @staticmethod
  def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return Tensor.full(argfix(*shape), 1.0, dtype=dtype or dtypes.default_float, device=device, requires_grad=requires_grad)
  @staticmethod
  def empty(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return Tensor.zeros(*shape, dtype=dtype, device=device, requires_grad=requires_grad)
  def zeros_like(self, **kw) -> Tensor: return Tensor.zeros(self.shape, **{"dtype": self.dtype, "device": self.device, **kw})
  def ones_like(self, **kw) -> Tensor: return Tensor.ones(self.shape, **{"dtype": self.dtype, "device": self.device, **kw})
  def full_like(self, fill_value, **kw) -> Tensor:
    return Tensor.full(self.shape, fill_value, **{"dtype": self.dtype, "device": self.device, **kw})
  def rand_like(self, **kw) -> Tensor: return Tensor.rand(self.shape, **{"dtype": self.dtype, "device": self.device, **kw})
  def randn_like(self, **kw) -> Tensor: return Tensor.randn(self.shape, **{"dtype": self.dtype, "device": self.device, **kw})

  @staticmethod
  def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    if stop is None: start, stop = 0, start
    if step == 0: raise ValueError("arange: step must be nonzero")
    if dtype is None: dtype = dtypes.default_int if all(isinstance(v, int) for v in (start, stop, step)) else dtypes.default_float
    dtype = dtypes.from_any(dtype)
    arr = np.arange(start, stop, step, dtype=np.float64 if dtype.is_float else np.int64)
    return Tensor(arr.astype(dtype.np), dtype=dtype, device=device, requires_grad=requires_grad)

  @staticmethod
  def eye(n: int, m: Optional[int] = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    m = n if m is None else m
    _check_shape("eye", (n, m))
    t = (Tensor.arange(n, device=device).reshape(n, 1) == Tensor.arange(m, device=device).reshape(1, m))
    t = t.cast(dtype or dtypes.default_float)
    return t.contiguous().requires_grad_() if requires_grad else t

  @staticmethod
  def manual_seed(seed: int = 0):
    _RNG.seed, _RNG.counter = int(seed), 0

  @staticmethod
  def rand(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform [0, 1): counter-based Philox (same numbers as triton's tl.rand for a seed)."""
    shape = _check_shape("rand", argfix(*shape))
    base = _RNG.counter
    _RNG.counter += prod(shape)
    node = Node(Ops.RAND, (), (_RNG.seed, base), shape, dtypes.float32, canonical_device(device))
    t = Tensor._from_node(node).cast(dtype or dtypes.default_float)
    return t.contiguous().requires_grad_() if requires_grad else t

  @staticmethod
  def randn(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    # Box-Muller; 1 - u is in (0, 1] so the log is finite
    shape = _check_shape("randn", argfix(*shape))
    u = Tensor.rand((2,) + shape, device=device)
    t = ((1 - u[0]).log() * -2).sqrt() * (u[1] * (2 * math.pi)).cos()
    t = t.cast(dtype or dtypes.default_float)
    return t.contiguous().requires_grad_() if requires_grad else t

  @staticmethod
  def uniform(*shape, low=0.0, high=1.0, dtype=None, device=None, requires_grad=False) -> Tensor:
    t = (Tensor.rand(*shape, device=device) * (high - low) + low).cast(dtype or dtypes.default_float)
    return t.contiguous().requires_grad_() if requires_grad else t

  @staticmethod
  def randint(low, high=None, size=None, dtype=None, device=None) -> Tensor:
    if high is None: low, high = 0, low
    if size is None: raise ValueError("randint: size is required")
    if high <= low: raise ValueError(f"randint: empty range [{low}, {high})")
    return (Tensor.rand(*argfix(size), device=device) * (high - low)).floor().cast(dtype or dtypes.int64) + low

  @staticmethod
  def randperm(n: int, device=None) -> Tensor:
    return Tensor.rand(n, device=device).argsort()

  # ---- broadcasting and promotion
  def _broadcasted(self, other, op: str, reverse: bool = False, dtype: Optional[DType] = None) -> tuple[Tensor, Tensor]:
    if not isinstance(other, Tensor):
      if not isinstance(other, (int, float, bool, np.number, np.bool_)):
        raise TypeError(f"{op}: unsupported operand type {type(other).__name__} (shape {self.shape}, {self.dtype})")
      other = other.item() if isinstance(other, (np.number, np.bool_)) else other
      dt = dtype or result_type(self, other)
      other = Tensor.full((), other, dtype=dt, device=self.device)
    else:
      if other.device != self.device: raise ValueError(f"{op}: tensors on different devices ({self.device}, {other.device})")
      dt = dtype or result_type(self, other)
    a, b = self.cast(dt), other.cast(dt)
    shape = broadcast_shape(op, a.shape, b.shape)
    a, b = a._broadcast_to(shape), b._broadcast_to(shape)
    return (b, a) if reverse else (a, b)

  def _broadcast_to(self, shape) -> Tensor:
    if self.shape == tuple(shape): return self
    t = self.reshape((1,) * (len(shape) - self.ndim) + self.shape) if self.ndim < len(shape) else self
    return t._movement(Ops.EXPAND, tuple(shape))

  def _binop(self, op: Ops, other, name: str, reverse=False, out_dtype=None) -> Tensor:
    a, b = self._broadcasted(other, name, reverse)
    return a._alu(op, b, dtype=out_dtype)

  # ---- elementwise (primitives)
  def __neg__(self) -> Tensor:
    if self.dtype.is_bool: raise TypeError("neg: negation of a bool tensor is not supported, use logical_not()")
    return self._alu(Ops.NEG)
  def __add__(self, o): return self._binop(Ops.ADD, o, "add")
  def __radd__(self, o): return self._binop(Ops.ADD, o, "add", True)
  def __mul__(self, o): return self._binop(Ops.MUL, o, "mul")
  def __rmul__(self, o): return self._binop(Ops.MUL, o, "mul", True)
  def __sub__(self, o): return self.sub(o)
  def __rsub__(self, o): return self.sub(o, reverse=True)
  def sub(self, o, reverse=False, alpha=1):
    a, b = self._broadcasted(o, "sub", reverse)
    if a.dtype.is_bool: raise TypeError("sub: subtraction of bool tensors is not supported")
    return a + (-b if alpha == 1 else -b * alpha)
  def add(self, o, alpha=1): return self + (o * alpha if alpha != 1 else o)
  def mul(self, o): return self * o
  def __truediv__(self, o): return self.div(o)
  def __rtruediv__(self, o): return self.div(o, reverse=True)
  def div(self, o, reverse=False, rounding_mode=None):
    if rounding_mode == "floor": return self.__floordiv__(o) if not reverse else self.__rfloordiv__(o)
    # true division casts both operands to float directly: an int operand keeps its value (uint8 / -1 is -x, as torch)
    if isinstance(o, (np.number, np.bool_)): o = o.item()
    a, b = self._broadcasted(o, "div", reverse, dtype=least_upper_float(result_type(self, o)) if rounding_mode is None else None)
    if rounding_mode == "trunc":
      return a._alu(Ops.IDIV, b) if a.dtype.is_int else (a.float() / b.float()).trunc().cast(a.dtype) if not a.dtype.is_float else (a / b).trunc()
    if rounding_mode is not None: raise ValueError(f"div: unknown rounding_mode {rounding_mode!r}")
    dt = least_upper_float(a.dtype)
    return a.cast(dt) * b.cast(dt).reciprocal()
  def __floordiv__(self, o): return self._floordiv(o, False)
  def __rfloordiv__(self, o): return self._floordiv(o, True)
  def _floordiv(self, o, reverse):
    a, b = self._broadcasted(o, "floor_divide", reverse)
    if a.dtype.is_float:
      # as torch (and Python): from fmod, so 1.0 // 0.1 is 9 (floor(a / b) would round the quotient up to 10 first)
      mod = a._alu(Ops.MOD, b)
      div = (a - mod) / b
      div = (mod.ne(0) & (b < 0).ne(mod < 0)).where(div - 1, div)
      fl = div.floor()
      return b.eq(0).where(a / b, (div - fl > 0.5).where(fl + 1, fl)).detach()
    q = a._alu(Ops.IDIV, b)
    # IDIV rounds toward zero; step down when the signs differ and it was inexact
    inexact = (q * b).ne(a) & ((a < 0).ne(b < 0))
    return q - inexact.cast(q.dtype)
  def __mod__(self, o): return self.remainder(o)
  def __rmod__(self, o): return self._broadcasted(o, "remainder", True)[0].remainder(self)
  def remainder(self, o):
    a, b = self._broadcasted(o, "remainder")
    r = a._alu(Ops.MOD, b)
    # MOD has the dividend's sign (C fmod); Python/torch % has the divisor's
    fix = r.ne(0) & ((r < 0).ne(b < 0))
    return fix.where(r + b, r)
  def fmod(self, o):
    a, b = self._broadcasted(o, "fmod")
    return a._alu(Ops.MOD, b)
  def __pow__(self, o): return self.pow(o)
  def __rpow__(self, o): return self._broadcasted(o, "pow", True)[0].pow(self)
  def maximum(self, o):
    a, b = self._broadcasted(o, "maximum")
    return a._alu(Ops.MAX, b) if not a.dtype.is_bool else a | b
  def minimum(self, o):
    a, b = self._broadcasted(o, "minimum")
    if a.dtype.is_bool: return a & b
    # ~x = -1 - x reverses the order of every int type without overflow (-x overflows at the smallest value)
    if a.dtype.is_int: return ~((~a).maximum(~b))
    return -((-a).maximum(-b))
  def where(self, x, y) -> Tensor:
    """Tensor.where(cond, x, y), tinygrad style: self is the condition."""
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
      x = Tensor.full((), x, dtype=result_type(x, y), device=self.device)
    if isinstance(x, Tensor) and not isinstance(y, Tensor): y = Tensor.full((), y, dtype=result_type(x, y), device=self.device)
    if not isinstance(x, Tensor): x = Tensor.full((), x, dtype=result_type(y, x), device=self.device)
    dt = result_type(x, y)
    shape = broadcast_shape("where", self.shape, x.shape, y.shape)
    c = self.cast(dtypes.bool)._broadcast_to(shape)
    return c._new(Ops.WHERE, (c.node, x.cast(dt)._broadcast_to(shape).node, y.cast(dt)._broadcast_to(shape).node), None, shape, dt)
  def masked_fill(self, mask, value) -> Tensor:
    if not isinstance(mask, Tensor) or not mask.dtype.is_bool: raise TypeError("masked_fill: mask must be a bool Tensor")
    broadcast_shape("masked_fill", self.shape, mask.shape)
    return mask.where(Tensor.full((), value, dtype=self.dtype, device=self.device) if not isinstance(value, Tensor) else value.cast(self.dtype), self)._broadcast_to(broadcast_shape("masked_fill", self.shape, mask.shape))

  # comparisons (bool results)
  def __lt__(self, o): return self._binop(Ops.CMPLT, o, "lt", out_dtype=dtypes.bool)
  def __gt__(self, o): return self._binop(Ops.CMPLT, o, "gt", True, out_dtype=dtypes.bool)
  def __eq__(self, o): return self._binop(Ops.CMPEQ, o, "eq", out_dtype=dtypes.bool)
  def __ne__(self, o): return self.eq(o).logical_not()
  def __le__(self, o): return (self < o) | self.eq(o)
  def __ge__(self, o): return (self > o) | self.eq(o)
  def eq(self, o): return self.__eq__(o)
  def ne(self, o): return self.__ne__(o)
  def lt(self, o): return self < o
  def gt(self, o): return self > o
  def le(self, o): return self <= o
  def ge(self, o): return self >= o

  # logic / bitwise
  def _bitop(self, op, o, name, reverse=False):
    a, b = self._broadcasted(o, name, reverse)
    if a.dtype.is_float: raise TypeError(f"{name}: not supported for floating point tensors ({a.dtype})")
    return a._alu(op, b)
  def __and__(self, o): return self._bitop(Ops.AND, o, "bitwise_and")
  def __or__(self, o): return self._bitop(Ops.OR, o, "bitwise_or")
  def __xor__(self, o): return self._bitop(Ops.XOR, o, "bitwise_xor")
  __rand__, __ror__, __rxor__ = __and__, __or__, __xor__
  def __invert__(self):
    if self.dtype.is_float: raise TypeError(f"bitwise_not: not supported for floating point tensors ({self.dtype})")
    return self.logical_not() if self.dtype.is_bool else self ^ -1
  def logical_not(self): return self.cast(dtypes.bool)._alu(Ops.XOR, Tensor.full(self.shape, True, device=self.device), dtype=dtypes.bool)
  def logical_and(self, o): return self.cast(dtypes.bool) & (o.cast(dtypes.bool) if isinstance(o, Tensor) else bool(o))
  def logical_or(self, o): return self.cast(dtypes.bool) | (o.cast(dtypes.bool) if isinstance(o, Tensor) else bool(o))
  def logical_xor(self, o): return self.cast(dtypes.bool) ^ (o.cast(dtypes.bool) if isinstance(o, Tensor) else bool(o))

  # ---- unary math (compositions)
  def _float(self): return self.cast(least_upper_float(self.dtype))
  def exp(self): return self._float()._alu(Ops.EXP)
  def exp2(self): return self._float()._alu(Ops.EXP2)
  def log(self): return self._float()._alu(Ops.LOG)
  def log2(self): return self._float()._alu(Ops.LOG2)
  def log10(self): return self.log2() * math.log10(2)
  def log1p(self): return (self + 1).log()
  def expm1(self): return self.exp() - 1
  def sqrt(self): return self._float()._alu(Ops.SQRT)
  def rsqrt(self): return self.sqrt().reciprocal()
  def reciprocal(self): return self._float()._alu(Ops.RECIP)
  def sin(self): return self._float()._alu(Ops.SIN)
  # 1 - 2 sin(x/2)^2, not sin(pi/2 - x): x/2 is exact, pi/2 - x rounds (an error of 1e-4 already at |x| ~ 1e4)
  def cos(self): return 1 - 2 * (self._float() * 0.5).sin().square()
  def tan(self): return self.sin() / self.cos()
  def square(self): return self * self
  def abs(self):
    if self.dtype.is_bool or self.dtype.kind == 'u': return self
    if self.dtype.is_int: return (self < 0).where(-self, self)   # the smallest int stays itself, as torch
    return self.relu() + (-self).relu()   # gradient 0 at 0, as torch
  def sign(self):
    if self.dtype.is_bool: return self
    return (self > 0).cast(self.dtype) - (self < 0).cast(self.dtype)
  def relu(self): return (self <= 0).where(0, self)   # where, not maximum: gradient 0 at 0; nan stays nan
  def sigmoid(self):
    # e = exp(-|x|) <= 1 on both branches, so value and gradient stay finite at +-1e4
    # (the where, not abs(): its branches keep the gradient right at exactly 0)
    x = self._float()
    pos = x >= 0
    e = pos.where(-x, x).exp()
    return pos.where(1.0, e) / (e + 1)
  def logsigmoid(self): return -(-self).softplus()
  def tanh(self): return (self._float() * 2).sigmoid() * 2 - 1
  def silu(self): return self * self.sigmoid()
  def swish(self): return self.silu()
  def softplus(self, beta=1.0, threshold=20.0):
    x = self._float() * beta
    pos = x >= 0   # x + log1p(exp(-x)) or log1p(exp(x)): finite, and the gradient is right at 0
    soft = pos.where(x, 0) + pos.where(-x, x).exp().log1p()
    return (x > threshold).where(self._float(), soft / beta)
  def leaky_relu(self, negative_slope=0.01): return (self > 0).where(self, self * negative_slope)
  def elu(self, alpha=1.0): return (self > 0).where(self, ((self > 0).where(0, self).exp() - 1) * alpha)   # gradient alpha at 0, as torch
  def hardtanh(self, min_val=-1.0, max_val=1.0):
    # unlike clamp, torch's gradient is 0 at the bounds themselves
    return (self <= min_val).where(min_val, (self >= max_val).where(max_val, self)).cast(self.dtype)
  def hardsigmoid(self): return (self / 6 + 0.5).clamp(0, 1)
  def mish(self): return self * self.softplus().tanh()
  def erf(self):
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), composed so it runs on every device
    x = self._float()
    t = 1 / (1 + 0.3275911 * x.abs())
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return x.sign() * (1 - poly * (-x * x).exp())
  def gelu(self, approximate: str = "none"):
    if approximate == "tanh": return 0.5 * self * (1 + (math.sqrt(2 / math.pi) * (self + 0.044715 * self * self * self)).tanh())
    if approximate != "none": raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * self * (1 + (self * (1 / math.sqrt(2))).erf())
  def quick_gelu(self): return self * (self * 1.702).sigmoid()
  def clamp(self, min=None, max=None):
    if min is None and max is None: raise ValueError("clamp: at least one of min and max must be given")
    x = self
    if min is not None: x = (x < min).where(min, x) if not isinstance(min, Tensor) else (x < min).where(min.cast(x.dtype), x)
    if max is not None: x = (x > max).where(max, x) if not isinstance(max, Tensor) else (x > max).where(max.cast(x.dtype), x)
    return x.cast(self.dtype) if not (isinstance(min, float) or isinstance(max, float)) else x
  clip = clamp
  def lerp(self, end, weight): return self + (end - self) * weight
  def isnan(self): return self.ne(self)
  def isinf(self): return (self == float("inf")) | (self == float("-inf"))
  def isfinite(self): return (self.isinf() | self.isnan()).logical_not()
  def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
    big = np.finfo(self.dtype.np).max if self.dtype.is_float and self.dtype.name != 'bfloat16' else 3.3895e38
    x = self.isnan().where(nan, self)
    x = (x == float("inf")).where(big if posinf is None else posinf, x)
    return (x == float("-inf")).where(-big if neginf is None else neginf, x)

  def trunc(self):
    if not self.dtype.is_float: return self
    # every float beyond 2**mantissa is already an integer
    exact = {2: 2.0 ** 10, 4: 2.0 ** 23, 8: 2.0 ** 52}[self.dtype.itemsize] if self.dtype.name != 'bfloat16' else 2.0 ** 7
    small = self.abs() < exact
    return small.where(self.cast(dtypes.int64).cast(self.dtype), self).detach()
  def floor(self):
    t = self.trunc()
    return t - (t > self).cast(self.dtype) if self.dtype.is_float else self
  def ceil(self):
    t = self.trunc()
    return t + (t < self).cast(self.dtype) if self.dtype.is_float else self
  def round(self, decimals: int = 0):
    if not self.dtype.is_float: return self
    if decimals: return (self * 10 ** decimals).round() / 10 ** decimals
    f = (self + 0.5).floor()
    tie = (f - self).eq(0.5)
    odd = (f - (f / 2).floor() * 2).eq(1)
    return (tie & odd).where(f - 1, f).detach()
  def frac(self): return self - self.trunc()

  def pow(self, exponent) -> Tensor:
    if not isinstance(exponent, Tensor):
      if isinstance(exponent, (int, np.integer)) or (isinstance(exponent, float) and exponent.is_integer() and abs(exponent) <= 8):
        n = int(exponent)
        if n < 0 and not self.dtype.is_float:
          if isinstance(exponent, float): return self._float().pow(exponent)   # int ** -1.0 is a float, as torch
          raise ValueError("pow: integers to negative integer powers are not allowed")
        if abs(n) <= 8:
          base, out = (self if n >= 0 else self.reciprocal()), None
          for _ in range(abs(n)): out = base if out is None else out * base
          # x ** 0 is 1 everywhere (nan too) but stays in the graph: torch gives it a (zero) gradient
          out = out if out is not None else self._const_like(True, dtypes.bool).where(1, self)
          return out.cast(result_type(self, exponent)) if not isinstance(exponent, float) else out._float()
      if exponent == 0.5: return self.sqrt()
    base, exp_ = self._broadcasted(exponent, "pow")
    if not base.dtype.is_float:
      base, exp_ = base._float(), exp_._float()
    mag = (exp_ * base.abs().log2()).exp2()
    # a negative base needs an integer exponent: odd flips the sign, non-integer is nan
    neg = base < 0
    is_int = exp_.eq(exp_.trunc())
    odd = is_int & (exp_ - (exp_ / 2).floor() * 2).eq(1)
    out = (neg & odd).where(-mag, mag)
    out = (neg & is_int.logical_not()).where(float("nan"), out)
    out = exp_.eq(0).where(1.0, out)
    dt = result_type(self, exponent)
    if dt.is_float: return out.cast(dt)
    # an int result is exact in torch: round away the exp2/log2 error before the cast (wrapping as torch);
    # a negative int exponent gives 0 unless the base is 1 or -1
    out = ((exp_ < 0) & base.abs().ne(1)).where(0, out)
    return out.round().cast(dtypes.int64).cast(dt)

  # ---- linear algebra
  def matmul(self, w: Tensor) -> Tensor:
    if not isinstance(w, Tensor): raise TypeError(f"matmul: expected a Tensor, got {type(w).__name__}")
    if self.ndim == 0 or w.ndim == 0: raise ValueError(f"matmul: both arguments need at least 1 dim, got {self.shape} and {w.shape}")
    k_self, k_w = self.shape[-1], w.shape[-2] if w.ndim > 1 else w.shape[0]
    if k_self != k_w: raise ValueError(f"matmul: shapes {self.shape} and {w.shape} cannot be multiplied ({k_self} != {k_w})")
    dt = result_type(self, w)
    x, y = self.cast(dt), w.cast(dt)
    if x.ndim == 1 and y.ndim == 1: return (x * y).sum().cast(dt)
    xs = x.unsqueeze(0) if x.ndim == 1 else x
    ys = y.unsqueeze(-1) if y.ndim == 1 else y
    try: batch = broadcast_shape("matmul", xs.shape[:-2], ys.shape[:-2])
    except ValueError: raise ValueError(f"matmul: the batch dims of shapes {self.shape} and {w.shape} cannot be broadcast together") from None
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
    if self.ndim != 1 or w.ndim != 1: raise ValueError(f"dot: expects 1-D tensors, got {self.shape} and {w.shape}")
    return self.matmul(w)
  def mm(self, w): return self.matmul(w)
  def bmm(self, w): return self.matmul(w)
  def outer(self, w): return self.reshape(-1, 1) * w.reshape(1, -1)
  def linear(self, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    if weight.ndim != 2 or weight.shape[1] != self.shape[-1]:
      raise ValueError(f"linear: input {self.shape} does not match weight {weight.shape} (expected weight (out, {self.shape[-1]}))")
    if bias is not None and bias.shape not in ((weight.shape[0],), ()):
      raise ValueError(f"linear: bias of shape {bias.shape} does not match weight {weight.shape} (expected ({weight.shape[0]},))")
    out = self.matmul(weight.T)
    return out + bias if bias is not None else out

  # ---- autograd
  def backward(self, gradient: Optional[Tensor] = None, retain_graph=None, create_graph: bool = False) -> None:
    from lazygrad.autograd import backward
    backward(self, gradient, create_graph)

  def assign(self, value) -> Tensor:
    """Give this tensor a new value in place (what optimizers do)."""
    if not isinstance(value, Tensor): value = Tensor.full(self.shape, value, dtype=self.dtype, device=self.device)
    if value.shape != self.shape:
      try: value = value._broadcast_to(broadcast_shape("assign", self.shape, value.shape))
      except ValueError: pass
      if value.shape != self.shape: raise ValueError(f"assign: value of shape {value.shape} does not match tensor of shape {self.shape}")
    if value.device != self.device: raise ValueError(f"assign: value on {value.device}, tensor on {self.device}")
    node = Node(Ops.ASSIGN, (self.node, value.cast(self.dtype).node), None, self.shape, self.dtype, self.device, self.node.requires_grad and self.is_leaf)
    self.node = node
    return self
  def zero_(self) -> Tensor: return self.assign(Tensor.zeros(self.shape, dtype=self.dtype, device=self.device))
  def fill_(self, value) -> Tensor: return self.assign(Tensor.full(self.shape, value, dtype=self.dtype, device=self.device))
  def copy_(self, src: Tensor) -> Tensor: return self.assign(src)
  def add_(self, o, alpha=1):
    with no_grad(): return self.assign(self.add(o, alpha=alpha).detach())
  def mul_(self, o):
    with no_grad(): return self.assign((self * o).detach())
  def sub_(self, o, alpha=1):
    with no_grad(): return self.assign(self.sub(o, alpha=alpha).detach())


def _movement_shape(op: Ops, arg, shape) -> tuple[int, ...]:
  if op is Ops.RESHAPE or op is Ops.EXPAND: return tuple(arg)
  if op is Ops.PERMUTE: return tuple(shape[i] for i in arg)
  if op is Ops.PAD: return tuple(s + b + a for s, (b, a) in zip(shape, arg))
  if op is Ops.SHRINK: return tuple(hi - lo for lo, hi in arg)
  return tuple(shape)


def _check_shape(op: str, shape) -> tuple[int, ...]:
  for s in shape:
    if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
      raise TypeError(f"{op}: shape must be a sequence of ints, got {shape}")
    if s < 0: raise ValueError(f"{op}: negative dimension in shape {tuple(shape)}")
  return tuple(int(s) for s in shape)


def _to_numpy(data, dtype: Optional[DType]) -> np.ndarray:
  if isinstance(data, np.ndarray): arr = data
  elif type(data).__module__.startswith("torch"): arr = data.detach().cpu().numpy()
  elif isinstance(data, (bool, int, float, list, tuple, np.number, np.bool_)):
    try: arr = np.array(data)
    except ValueError: raise ValueError(f"Tensor: nested lists must be rectangular, got {type(data).__name__} of uneven lengths") from None
    if arr.dtype == object: raise ValueError("Tensor: nested lists must be rectangular")
    if arr.dtype.kind == 'f' and not isinstance(data, np.number) and arr.dtype != np.float32 and dtype is None: arr = arr.astype(np.float32)
    if arr.dtype.kind in 'iu' and not isinstance(data, np.number) and dtype is None: arr = arr.astype(np.int64)
    if arr.dtype.kind not in 'biuf': raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__} of {arr.dtype}")
  else:
    raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__}")
  if dtype is not None: arr = arr.astype(dtype.np)
  if arr.dtype.kind not in 'biuf' and arr.dtype.name != 'bfloat16': raise TypeError(f"Tensor: unsupported dtype {arr.dtype}")
  return arr
