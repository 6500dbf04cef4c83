"""The bottom of the Tensor front end: what tensor.py, its theme modules (tensor_*.py) and
autograd share. It imports no other front-end module, so the imports run one way:

  tensor.py -> tensor_{create,math,activations,index,reduce,nn}.py, autograd/ -> tensor_base.py -> ops/, dtype, helpers

The theme modules are mixin classes: their methods run on a Tensor `self` and build new
tensors through `TensorBase._Tensor`, the composed class, which tensor.py sets once when
it defines Tensor (the one late binding in the front end; no module imports tensor.py
back)."""
from __future__ import annotations
from collections import namedtuple
import functools
import threading
import weakref
import numpy as np
from lazygrad.dtype import dtypes
from lazygrad.ops import Ops


class _GradModeState(threading.local):
  """Grad mode, per thread as torch's: the class attribute is every thread's default, an assignment holds for its thread only."""
  enabled = True


_GradMode = _GradModeState()   # no_grad() or a backward in one thread leaves autograd on in the others


class GradModeContext:
  """A context manager and decorator that sets grad mode to `enabled` inside and restores it after; as torch's,
  it decorates with or without parentheses (@no_grad() and @no_grad). no_grad and enable_grad are its two settings."""
  enabled = False
  def __new__(cls, fn=None):
    if fn is None: return super().__new__(cls)
    if not callable(fn): raise TypeError(f"{cls.__name__}: expected a function to decorate, got {type(fn).__name__}")
    return cls()(fn)
  def __enter__(self):
    self.prev, _GradMode.enabled = _GradMode.enabled, self.enabled
  def __exit__(self, *exc):
    _GradMode.enabled = self.prev
  def __call__(self, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
      with type(self)(): return fn(*args, **kwargs)
    return wrapper


class no_grad(GradModeContext):
  """Context manager and decorator: ops inside build nodes that need no gradient.
  As torch's, it decorates with or without parentheses (@no_grad() and @no_grad)."""
  enabled = False


class _AutocastState(threading.local):
  """The innermost autocast region of this thread (lazygrad.amp.autocast sets it): `dtype`, the lower
  precision, or None when autocast is off."""
  dtype = None


_Autocast = _AutocastState()   # per thread, as torch's: one thread's autocast region leaves the others in float32

# What an op does under autocast: torch's CPU op lists (aten/src/ATen/autocast_mode.cpp), on every device.
# Every other op keeps its inputs' dtype; those that reduce (sum, softmax, norms, ...) compute half floats in float32 inside.
LOWER = "lower"   # matmul, linear, conv, attention: floating inputs cast to the autocast dtype (float16/bfloat16)
FP32 = "fp32"     # losses, prod: half-float inputs cast to float32
KEEP = "keep"     # an op composed of listed ones that torch does not list (cumprod of prods): no casts, autocast off inside
_ELIGIBLE = (dtypes.float16, dtypes.bfloat16, dtypes.float32)   # torch casts no float64 and no integer tensor


def _autocast_arg(x, dtype):
  return x.cast(dtype) if isinstance(x, TensorBase) and x.dtype in _ELIGIBLE else x


def autocast_op(policy: str):
  """Decorator marking a Tensor op for autocast: in an autocast region its floating Tensor arguments are cast
  by `policy` (LOWER or FP32; KEEP: not cast), and its body runs with autocast off, as torch's dispatcher runs an
  autocast op (the ops it is composed of are not autocast again). Outside a region: one thread-local read.
  The casts are graph nodes like any other: they fuse into the consumer's kernel (the matmul template's
  prologue), and their gradient casts back, so float32 parameters get float32 gradients."""
  def decorate(fn):
    @functools.wraps(fn)
    def op(*args, **kwargs):
      low = _Autocast.dtype
      if low is None: return fn(*args, **kwargs)
      if policy != KEEP:
        to = low if policy == LOWER else dtypes.float32
        args = tuple(_autocast_arg(a, to) for a in args)
        kwargs = {k: _autocast_arg(v, to) for k, v in kwargs.items()}
      _Autocast.dtype = None
      try: return fn(*args, **kwargs)
      finally: _Autocast.dtype = low
    return op
  return decorate


class _RNG:
  """The global random stream: Tensor.manual_seed sets the seed; each rand() takes the next numel counters."""
  seed, counter = 0, 0


MinMax = namedtuple("MinMax", ["values", "indices"])
MinMax.__doc__ = "(values, indices), what max(dim)/min(dim)/sort/topk return, as torch's named tuples."


class ShapeError(RuntimeError, ValueError):
  """Shapes that do not fit (broadcasting, matmul, cat/stack, conv, reshape, gather/scatter, losses):
  a RuntimeError as torch raises for the same mistake, and a ValueError as API.md promised before."""


class DimError(IndexError, ValueError):
  """A dim or index out of range, or a malformed index: an IndexError as torch raises, and a ValueError as before."""


class DTypeError(NotImplementedError, TypeError):
  """A tensor of a dtype the op has no kernel for (a float index, a float mask, a bool negation): a
  RuntimeError as torch raises (its NotImplementedError, where torch has no kernel), and the TypeError
  lazygrad raised before."""


class IndexTypeError(IndexError, TypeError):
  """An index of a type indexing does not take (a float, a dict, a float tensor): torch raises IndexError
  for most of these and TypeError for some, and lazygrad raised TypeError: this is both."""


IndexError_ = DimError   # the older name, kept for the modules that import it


class ArgumentError(RuntimeError, ValueError):
  """An argument torch rejects with RuntimeError (a non-bool where condition, label_smoothing outside [0, 1]);
  also a ValueError as API.md promises."""


class TensorBase:
  """The root of every Tensor mixin. `isinstance(x, TensorBase)` is the front end's
  "is a Tensor" test; `_Tensor` is the composed lazygrad.tensor.Tensor (set by tensor.py);
  `_params` holds the leaves with requires_grad, for backward() (keyed by id: a WeakSet
  compares members with ==, which is elementwise here)."""
  __slots__ = ()
  _Tensor: type = None   # type: ignore[assignment]
  _params: "weakref.WeakValueDictionary[int, TensorBase]" = weakref.WeakValueDictionary()


# ---- argument checks and shape arithmetic shared by the theme modules

def check_dim(op: str, dim: int, ndim: int) -> int:
  """dim normalised to [0, ndim) (a 0-d tensor accepts -1 and 0), or a TypeError/ValueError naming op."""
  if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
    raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
  lo, hi = (-ndim, ndim - 1) if ndim else (-1, 0)
  if not lo <= dim <= hi: raise DimError(f"{op}: dim {dim} out of range for a tensor of {ndim} dims")
  return dim + ndim if dim < 0 and ndim else (0 if ndim == 0 else dim)


def reject_dtype(op: str, t, bool_: bool = True, int_: bool = False) -> None:
  """A DTypeError naming op where torch has no kernel for t's dtype (bool_: reject bools, int_: reject ints too)."""
  if (bool_ and t.dtype.is_bool) or (int_ and not t.dtype.is_float):
    raise DTypeError(f"{op}: not implemented for {t.dtype.name} tensors (as torch)")


def broadcast_shape(op: str, *shapes) -> tuple[int, ...]:
  """The shape numpy/torch broadcasting gives `shapes`, or a ShapeError naming op."""
  if len(shapes) == 2 and shapes[0] == shapes[1]: return tuple(shapes[0])   # the common case, first
  nd = max(len(s) for s in shapes)
  padded = [(1,) * (nd - len(s)) + tuple(s) for s in shapes]
  out = []
  for dims in zip(*padded):
    sizes = {d for d in dims if d != 1}
    if len(sizes) > 1: raise ShapeError(f"{op}: shapes {' and '.join(str(tuple(s)) for s in shapes)} cannot be broadcast together")
    out.append(sizes.pop() if sizes else 1)
  return tuple(out)


def check_shape(op: str, shape) -> tuple[int, ...]:
  """shape as a tuple of non-negative Python ints, or a TypeError/ValueError naming op."""
  for s in shape:
    if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
      raise TypeError(f"{op}: shape must be a sequence of ints, got {shape}")
    if s < 0: raise ShapeError(f"{op}: negative dimension in shape {tuple(shape)}")
  return tuple(int(s) for s in shape)


def movement_shape(op: Ops, arg, shape) -> tuple[int, ...]:
  """The shape after movement op `op` with `arg` on a value of `shape`."""
  if op is _RESHAPE or op is _EXPAND: return tuple(arg)
  if op is _PERMUTE: return tuple([shape[i] for i in arg])
  if op is _PAD: return tuple([s + b + a for s, (b, a) in zip(shape, arg)])
  if op is _SHRINK: return tuple([hi - lo for lo, hi in arg])
  return tuple(shape)


# movement ops as module constants: on Python 3.11 each `Ops.X` is a call of EnumType's __getattr__ hook
_RESHAPE, _EXPAND, _PERMUTE, _PAD, _SHRINK = Ops.RESHAPE, Ops.EXPAND, Ops.PERMUTE, Ops.PAD, Ops.SHRINK
