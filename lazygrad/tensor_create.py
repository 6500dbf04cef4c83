"""Tensor constructors (full, zeros, arange, rand, ...) and interop with numpy, torch and
Python values: the methods that make tensors from outside the graph, or read them out."""
from __future__ import annotations
import math
from typing import TYPE_CHECKING, Optional
import numpy as np
from lazygrad.dtype import DType, dtypes, result_type
from lazygrad.ops import Node, Ops
from lazygrad.ops.view import ShapeTracker
from lazygrad.runtime import Buffer, canonical_device
from lazygrad.helpers import argfix, prod
from lazygrad.tensor_base import TensorBase, ShapeError, _RNG, check_shape

if TYPE_CHECKING: from lazygrad.tensor import Tensor


def to_numpy(data, dtype: Optional[DType], copy: bool = True) -> np.ndarray:
  """The host array Tensor(data, dtype) holds: Python numbers and nested lists become float32/int64/bool as torch; a numpy
  array or torch tensor is copied (as torch.tensor) unless copy=False (from_numpy, from_torch share where they can)."""
  src = None
  if isinstance(data, np.ndarray): arr = src = data
  elif type(data).__module__.startswith("torch"): arr = src = data.detach().cpu().numpy()
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
  return arr.copy() if copy and src is not None and np.may_share_memory(arr, src) else arr


class CreateMixin(TensorBase):
  """Tensor's constructors (full, zeros, arange, eye, rand, randn, ...) and interop (from_numpy, numpy, torch, to, item)."""
  __slots__ = ()

  # ---- construction
  @staticmethod
  def full(shape, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of `shape` filled with `fill_value` (torch.full): a broadcast constant, no memory until realized.
    The dtype follows the value (bool, int64, float32) unless given; ints wrap into the dtype as torch."""
    shape = check_shape("full", argfix(shape) if isinstance(shape, (tuple, list)) else (shape,))
    if isinstance(fill_value, TensorBase): fill_value = fill_value.item()
    if isinstance(fill_value, np.ndarray) and fill_value.size == 1: fill_value = fill_value.item()
    if not isinstance(fill_value, (int, float, bool, np.number)):
      raise TypeError(f"full: fill_value must be a number, got {type(fill_value).__name__} (shape {shape})")
    dtype = dtypes.from_any(dtype) if dtype is not None else result_type(fill_value)
    # ints wrap into the dtype as torch does (uint8 -1 is 255)
    value = bool(fill_value) if dtype.is_bool else int(np.array(int(fill_value)).astype(dtype.np)) if dtype.is_int else float(fill_value)
    node = Node(Ops.CONST, (), value, (), dtype, canonical_device(device))
    if not shape: t = TensorBase._Tensor._from_node(node)   # a scalar (every `x * 2.0` makes one): no movement ops
    else: t = TensorBase._Tensor._from_node(node).reshape((1,) * len(shape)).expand(shape)._copy()   # not a view: writable, as torch's
    return t.contiguous().requires_grad_() if requires_grad else t

  @staticmethod
  def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """torch.zeros: shape as varargs or one tuple; default float32."""
    return TensorBase._Tensor.full(argfix(*shape), 0.0, dtype=dtype or dtypes.default_float, device=device, requires_grad=requires_grad)
  @staticmethod
  def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """torch.ones: shape as varargs or one tuple; default float32."""
    return TensorBase._Tensor.full(argfix(*shape), 1.0, dtype=dtype or dtypes.default_float, device=device, requires_grad=requires_grad)
  @staticmethod
  def empty(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """torch.empty; unlike torch the contents are defined: zeros."""
    return TensorBase._Tensor.zeros(*shape, dtype=dtype, device=device, requires_grad=requires_grad)
  def zeros_like(self, **kw) -> Tensor:
    """torch.zeros_like: this shape, dtype and device unless overridden by keyword."""
    return self._Tensor.zeros(self.shape, **{"dtype": self.dtype, "device": self.device, **kw})
  def ones_like(self, **kw) -> Tensor:
    """torch.ones_like: this shape, dtype and device unless overridden by keyword."""
    return self._Tensor.ones(self.shape, **{"dtype": self.dtype, "device": self.device, **kw})
  def full_like(self, fill_value, **kw) -> Tensor:
    """torch.full_like: this shape, dtype and device unless overridden by keyword."""
    return self._Tensor.full(self.shape, fill_value, **{"dtype": self.dtype, "device": self.device, **kw})
  def rand_like(self, **kw) -> Tensor:
    """torch.rand_like: uniform [0, 1) of this shape, dtype and device."""
    return self._Tensor.rand(self.shape, **{"dtype": self.dtype, "device": self.device, **kw})
  def randn_like(self, **kw) -> Tensor:
    """torch.randn_like: standard normal of this shape, dtype and device."""
    return self._Tensor.randn(self.shape, **{"dtype": self.dtype, "device": self.device, **kw})

  @staticmethod
  def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """torch.arange: [start, stop) by step; int64 when all three are ints, else float32. Built on the host and copied."""
    if stop is None: start, stop = 0, start
    if step == 0: raise ValueError("arange: step must be nonzero")
    if dtype is None: dtype = dtypes.default_int if all(isinstance(v, int) for v in (start, stop, step)) else dtypes.default_float
    dtype = dtypes.from_any(dtype)
    arr = np.arange(start, stop, step, dtype=np.float64 if dtype.is_float else np.int64)
    return TensorBase._Tensor(arr.astype(dtype.np), dtype=dtype, device=device, requires_grad=requires_grad)

  @staticmethod
  def eye(n: int, m: Optional[int] = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """torch.eye: the (n, m) identity (m defaults to n), as a lazy comparison of two aranges."""
    T = TensorBase._Tensor
    m = n if m is None else m
    check_shape("eye", (n, m))
    t = (T.arange(n, device=device).reshape(n, 1) == T.arange(m, device=device).reshape(1, m))
    t = t.cast(dtype or dtypes.default_float)
    return t.contiguous().requires_grad_() if requires_grad else t

  @staticmethod
  def manual_seed(seed: int = 0):
    """torch.manual_seed: restart the global random stream (the numbers differ from torch's)."""
    _RNG.seed, _RNG.counter = int(seed), 0

  @staticmethod
  def rand(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform [0, 1): counter-based Philox (same numbers as triton's tl.rand for a seed)."""
    shape = check_shape("rand", argfix(*shape))
    base = _RNG.counter
    _RNG.counter += prod(shape)
    node = Node(Ops.RAND, (), (_RNG.seed, base), shape, dtypes.float32, canonical_device(device))
    t = TensorBase._Tensor._from_node(node).cast(dtype or dtypes.default_float)
    return t.contiguous().requires_grad_() if requires_grad else t

  @staticmethod
  def randn(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """torch.randn: standard normal by Box-Muller over two rand() draws (computed in the kernel that reads it)."""
    # Box-Muller; 1 - u is in (0, 1] so the log is finite
    shape = check_shape("randn", argfix(*shape))
    u = TensorBase._Tensor.rand((2,) + shape, device=device)
    t = ((1 - u[0]).log() * -2).sqrt() * (u[1] * (2 * math.pi)).cos()
    t = t.cast(dtype or dtypes.default_float)
    return t.contiguous().requires_grad_() if requires_grad else t

  @staticmethod
  def uniform(*shape, low=0.0, high=1.0, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform [low, high) of shape (tinygrad's Tensor.uniform; torch writes torch.empty(shape).uniform_(low, high))."""
    t = (TensorBase._Tensor.rand(*shape, device=device) * (high - low) + low).cast(dtype or dtypes.default_float)
    return t.contiguous().requires_grad_() if requires_grad else t

  @staticmethod
  def randint(low, high=None, size=None, dtype=None, device=None) -> Tensor:
    """torch.randint: ints uniform in [low, high) of shape size (int64 by default); randint(high, size=...) as torch."""
    if high is None: low, high = 0, low
    if size is None: raise ValueError("randint: size is required")
    if high <= low: raise ValueError(f"randint: empty range [{low}, {high})")
    return (TensorBase._Tensor.rand(*argfix(size), device=device) * (high - low)).floor().cast(dtype or dtypes.int64) + low

  @staticmethod
  def randperm(n: int, device=None) -> Tensor:
    """torch.randperm: a random permutation of range(n) (int64); sorts on the host, so it realizes."""
    return TensorBase._Tensor.rand(n, device=device).argsort()

  # ---- interop
  @staticmethod
  def from_numpy(a: np.ndarray) -> Tensor:
    """torch.from_numpy: on the cpu device a contiguous array of a supported dtype is used in place, so later writes
    to the array show through (as torch); other devices copy. (Tensor(a) copies, as torch.tensor.)"""
    if not isinstance(a, np.ndarray): raise TypeError(f"from_numpy: expected an np.ndarray, got {type(a).__name__}")
    return TensorBase._Tensor._shared(to_numpy(a, None, copy=False))
  @staticmethod
  def from_torch(t, device=None) -> Tensor:
    """Share a torch tensor's memory when it can (contiguous, on a device lazygrad puts in
    torch memory: cuda, or cpu tensors for interp/cpu); copy otherwise."""
    T = TensorBase._Tensor
    dev = canonical_device(device if device is not None else ("cuda" if t.is_cuda else None))
    dt = dtypes.from_any(t.dtype)
    src = t.detach()
    if dev == "cpu" or (dev == "interp" and src.is_cuda):
      if dt.name == "bfloat16" or src.is_cuda:
        return T(src.float().cpu().numpy() if dt.name == "bfloat16" else src.cpu().numpy(), dtype=dt, device=dev)
      return T._shared(src.contiguous().numpy(), device=dev)    # numpy shares the CPU tensor's memory
    if (dev == "cuda") != src.is_cuda: src = src.to("cuda" if dev == "cuda" else "cpu")
    flat = src.contiguous().reshape(-1)
    node = Node(Ops.BUFFER, (), None, tuple(src.shape), dt, dev)
    node.buffer, node.st = Buffer(dev, flat.numel(), dt, flat), ShapeTracker.from_shape(tuple(src.shape))
    return T._from_node(node)
  def torch(self):
    """A torch tensor of this value: sharing memory when realized contiguous (cuda and
    interp buffers are torch tensors, cpu buffers numpy arrays)."""
    import torch   # optional dependency
    n = self.node
    if not (n.realized and n.st.is_contiguous): return self._Tensor._from_node(self.contiguous().realize().node).torch()
    data = n.buffer.data
    if isinstance(data, np.ndarray):
      if self.dtype.name == "bfloat16": return torch.from_numpy(data[:self.numel()].view(np.int16)).view(torch.bfloat16).reshape(self.shape)
      return torch.from_numpy(data[:self.numel()]).reshape(self.shape)
    return data[:self.numel()].reshape(self.shape)
  def to(self, device=None, dtype=None, non_blocking: bool = False, copy: bool = False) -> Tensor:
    """torch.Tensor.to(device, dtype) (either may come first), or to(other) for other's device and dtype; moving devices
    realizes and copies through the host. non_blocking and copy are accepted for torch compatibility."""
    if isinstance(device, TensorBase): device, dtype = device.device, device.dtype
    if isinstance(device, DType) or (dtype is None and device is not None and str(device).startswith("torch.")):
      device, dtype = None, device
    out = self
    if device is not None and canonical_device(device) != self.device:
      out = self._Tensor(self.numpy(), device=device)
    return out.cast(dtype) if dtype is not None else out
  def cpu(self) -> Tensor:
    """torch.Tensor.cpu: to('cpu') (the numpy device)."""
    return self.to("cpu")
  def cuda(self, device=None, non_blocking: bool = False) -> Tensor:
    """torch.Tensor.cuda: to('cuda') (a ValueError naming the devices when there is no GPU); device indices are ignored."""
    return self.to("cuda")

  def numpy(self) -> np.ndarray:
    """Realize and copy to a new numpy array of this shape (torch's .numpy() shares memory; this never does)."""
    t = self
    if not (t.node.realized and t.node.st.is_contiguous and t.node.buffer.size == t.numel()): t = t.contiguous()
    t.realize()
    # a realized contiguous view may be a prefix of a larger buffer (x[:2] realized as a view)
    return t.node.buffer.numpy()[:self.numel()].reshape(self.shape).copy()
  def tolist(self):
    """torch.Tensor.tolist: nested Python lists (a Python scalar for 0-d); realizes."""
    return self.numpy().tolist()
  def item(self):
    """torch.Tensor.item: the one element as a Python number; realizes."""
    if self.numel() != 1: raise ShapeError(f"item: only a tensor of one element converts to a Python scalar, got shape {self.shape}")
    return self.numpy().reshape(()).item()
