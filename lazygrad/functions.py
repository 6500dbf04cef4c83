"""torch's module-level API on lazygrad (re-exported by lazygrad/__init__.py), so `import lazygrad as torch`-style
code runs: `lazygrad.tensor(...)`, the factories (zeros, arange, rand, ...), cat/stack/where, grad-mode managers,
dtype names (lazygrad.float32, lazygrad.long, ...) and the functional forms of Tensor methods (lazygrad.exp(x),
lazygrad.matmul(a, b), ...), each forwarding to the Tensor method of the same name."""
from __future__ import annotations
import functools
import numpy as np
from lazygrad.dtype import DType, dtypes
from lazygrad.tensor import Tensor
from lazygrad.tensor_base import TensorBase, GradModeContext, _GradMode, no_grad, broadcast_shape
from lazygrad.nn import functional as F

# ---- dtype names, with torch's aliases
bool = dtypes.bool  # noqa: A001 (torch.bool)
uint8, int8, int16, int32, int64 = dtypes.uint8, dtypes.int8, dtypes.int16, dtypes.int32, dtypes.int64
float16, bfloat16, float32, float64 = dtypes.float16, dtypes.bfloat16, dtypes.float32, dtypes.float64
half, float, double, short, int, long = float16, float32, float64, int16, int32, int64  # noqa: A001
dtype = DType
_DTYPE_NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64", "half", "float",
                "double", "short", "int", "long", "dtype"]


# ---- construction
def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:  # noqa: A002 (torch's argument names)
  """torch.tensor: a new tensor holding a copy of data (number, nested list, numpy array, torch tensor or Tensor)."""
  if isinstance(data, np.ndarray): data = data.copy()
  return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:  # noqa: A002
  """torch.as_tensor: data itself when it already is a Tensor of that dtype and device, else Tensor(data) (numpy shared on cpu)."""
  if isinstance(data, Tensor):
    out = data.to(device) if device is not None else data
    return out.cast(dtype) if dtype is not None else out
  if isinstance(data, np.ndarray) and dtype is None and device is None: return Tensor.from_numpy(data)   # (Tensor(data) copies)
  return Tensor(data, dtype=dtype, device=device)


def from_numpy(a: np.ndarray) -> Tensor:
  """torch.from_numpy: shares the array's memory on the cpu device (later writes show through), copies elsewhere."""
  if not isinstance(a, np.ndarray): raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(a).__name__}")
  return Tensor.from_numpy(a)


def _like(name: str):
  def make(input: Tensor, dtype=None, device=None, requires_grad: bool = False, **kw) -> Tensor:  # noqa: A002
    kw.update({"dtype": dtype or input.dtype, "device": device or input.device})
    t = getattr(Tensor, name)(input.shape, **kw)
    return t.contiguous().requires_grad_() if requires_grad else t
  make.__name__ = f"{name}_like"
  make.__doc__ = f"torch.{name}_like: {name} of input's shape, dtype and device (unless given)."
  return make


zeros, ones, empty, full, rand, randn = Tensor.zeros, Tensor.ones, Tensor.empty, Tensor.full, Tensor.rand, Tensor.randn
arange, eye, randint, randperm, manual_seed = Tensor.arange, Tensor.eye, Tensor.randint, Tensor.randperm, Tensor.manual_seed
zeros_like, ones_like, empty_like, rand_like, randn_like = _like("zeros"), _like("ones"), _like("empty"), _like("rand"), _like("randn")


def full_like(input: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:  # noqa: A002
  """torch.full_like: fill_value in input's shape, dtype and device (unless given)."""
  t = Tensor.full(input.shape, fill_value, dtype=dtype or input.dtype, device=device or input.device)
  return t.contiguous().requires_grad_() if requires_grad else t


def randint_like(input: Tensor, low, high=None, dtype=None, device=None) -> Tensor:  # noqa: A002
  """torch.randint_like: ints in [low, high) (or [0, low)) of input's shape."""
  return Tensor.randint(low, high, input.shape, dtype=dtype or input.dtype, device=device or input.device)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:  # noqa: A002
  """torch.linspace: steps values from start to end inclusive (float32 by default), computed on the host as torch's
  (start + i*step for the first half, end - (steps-1-i)*step for the second)."""
  if steps < 0: raise ValueError(f"linspace: steps must be non-negative, got {steps}")
  i = np.arange(steps, dtype=np.float64)
  step = (end - start) / (steps - 1) if steps > 1 else 0.0
  vals = np.where(i < steps // 2, start + i * step, end - (steps - 1 - i) * step) if steps > 1 else np.full(steps, start, np.float64)
  dt = dtypes.from_any(dtype) if dtype is not None else dtypes.default_float
  return Tensor(vals.astype(dt.np), dtype=dt, device=device, requires_grad=requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, dtype=None, device=None, requires_grad: bool = False) -> Tensor:  # noqa: A002
  """torch.logspace: base ** linspace(start, end, steps)."""
  vals = np.power(base, linspace(start, end, steps, dtype=dtypes.float64, device="cpu").numpy())
  dt = dtypes.from_any(dtype) if dtype is not None else dtypes.default_float
  return Tensor(vals.astype(dt.np), dtype=dt, device=device, requires_grad=requires_grad)


# ---- joining, selecting
cat = concat = concatenate = Tensor.cat
stack = Tensor.stack
einsum = Tensor.einsum


def hstack(tensors) -> Tensor:
  """torch.hstack: cat along dim 1 (dim 0 for 1-D tensors)."""
  tensors = [t if t.ndim else t.reshape(1) for t in tensors]
  return Tensor.cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
  """torch.vstack: cat along dim 0 after making 1-D tensors rows."""
  return Tensor.cat([t.reshape(1, -1) if t.ndim < 2 else t for t in tensors], 0)


def where(condition: Tensor, input=None, other=None) -> Tensor:  # noqa: A002
  """torch.where(condition, input, other): input where condition, else other (scalars broadcast). The one-argument form
  (nonzero) is not supported: its shape depends on the values."""
  if input is None or other is None: raise ValueError("where: the one-argument form where(condition) is not supported; give input and other")
  if not isinstance(condition, TensorBase): raise TypeError(f"where: condition must be a bool Tensor, got {type(condition).__name__}")
  return condition.where(input, other)


def is_tensor(obj) -> bool:
  """torch.is_tensor: True for a lazygrad Tensor."""
  return isinstance(obj, Tensor)


def is_floating_point(input: Tensor) -> bool:  # noqa: A002
  """torch.is_floating_point."""
  return input.dtype.is_float


def numel(input: Tensor) -> int:  # noqa: A002
  """torch.numel."""
  return input.numel()


# ---- grad mode
class enable_grad(GradModeContext):
  """torch.enable_grad: context manager and decorator that turns gradient tracking back on (inside no_grad)."""
  enabled = True


class set_grad_enabled(enable_grad):
  """torch.set_grad_enabled(mode): sets grad mode at once (as a function call) and restores it when used as a context manager."""
  def __new__(cls, mode: bool = True): return object.__new__(cls)
  def __init__(self, mode: bool = True):
    self.prev, self.mode = _GradMode.enabled, mode
    _GradMode.enabled = mode
  def __enter__(self): pass
  def __call__(self, fn):
    mode = self.mode
    _GradMode.enabled = self.prev
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
      with set_grad_enabled(mode): return fn(*args, **kwargs)
    return wrapper


class inference_mode(no_grad):
  """torch.inference_mode: here the same as no_grad (mode=False leaves grad mode alone)."""
  def __new__(cls, mode=True):
    if callable(mode): return no_grad(mode)
    return object.__new__(cls)
  def __init__(self, mode=True): self.mode = mode
  def __enter__(self):
    self.prev = _GradMode.enabled
    if self.mode: _GradMode.enabled = False


def is_grad_enabled() -> bool:
  """torch.is_grad_enabled: whether ops record gradients in this thread."""
  return _GradMode.enabled


# ---- the functional forms of Tensor methods: lazygrad.exp(x) is x.exp()
FORWARDED = (
  "abs", "exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh", "sigmoid", "relu",
  "reciprocal", "square", "sign", "floor", "ceil", "round", "trunc", "frac", "erf", "neg", "negative", "clamp", "clip", "lerp",
  "isnan", "isinf", "isfinite", "nan_to_num", "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "remainder",
  "fmod", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not", "logical_xor",
  "sum", "mean", "prod", "var", "std", "var_mean", "std_mean", "amax", "amin", "argmax", "argmin", "all", "any", "logsumexp", "cumsum",
  "cumprod", "softmax", "log_softmax", "sort", "argsort", "topk", "matmul", "mm", "bmm", "dot", "outer", "reshape", "permute",
  "transpose", "swapaxes", "movedim", "flatten", "unflatten", "unsqueeze", "squeeze", "flip", "narrow", "split", "chunk", "unbind",
  "gather", "scatter_add", "masked_fill", "tril", "triu", "broadcast_to", "tile", "t", "conv2d", "conv1d", "detach", "dropout",
  "layer_norm", "batch_norm", "embedding", "trace", "diag", "diagonal", "roll", "nonzero", "cummax",
  "cummin", "acos", "asin", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "atan2", "logaddexp", "logcumsumexp", "rms_norm",
  # torch functions that are also torch.Tensor methods: forwarded as soon as lazygrad's Tensor has the method
  "addbmm", "addcdiv", "addcmul", "addmm", "addmv", "addr", "allclose", "aminmax", "argwhere", "baddbmm", "bernoulli", "bincount",
  "bitwise_and", "bitwise_left_shift", "bitwise_not", "bitwise_or", "bitwise_right_shift", "bitwise_xor", "clone", "copysign",
  "corrcoef", "count_nonzero", "cov", "cross", "deg2rad", "diag_embed", "diagflat", "diagonal_scatter", "diff", "digamma", "dist",
  "dsplit", "equal", "erfc", "erfinv", "fliplr", "flipud", "float_power", "floor_divide", "fmax", "fmin", "frexp", "gcd", "heaviside",
  "histc", "hsplit", "hypot", "i0", "index_add", "index_copy", "index_fill", "index_put", "index_reduce", "index_select", "inner",
  "is_nonzero", "is_same_size", "is_signed", "isclose", "isneginf", "isposinf", "isreal", "kron", "kthvalue", "lcm", "ldexp",
  "lgamma", "logaddexp2", "logit", "masked_scatter", "masked_select", "matrix_power", "median", "mode", "msort", "multinomial", "mv",
  "nanmean", "nanmedian", "nanquantile", "nansum", "nextafter", "norm", "positive", "quantile", "rad2deg", "renorm",
  "repeat_interleave", "rot90", "scatter", "scatter_reduce", "select", "select_scatter", "signbit", "sinc", "slice_scatter",
  "split_with_sizes", "take", "take_along_dim", "tensor_split", "unique", "unique_consecutive", "vdot", "vsplit", "xlogy",
)


def _forward(name: str):
  def fn(input, *args, **kwargs):  # noqa: A002
    if not isinstance(input, TensorBase): raise TypeError(f"{name}: expected a Tensor as the first argument, got {type(input).__name__}")
    return getattr(input, name)(*args, **kwargs)
  fn.__name__ = fn.__qualname__ = name
  fn.__doc__ = f"torch.{name}(input, ...): input.{name}(...)."
  return fn


def max(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
  """torch.max: the overall max, (values, indices) along dim, or the elementwise maximum with another Tensor."""
  if isinstance(dim, TensorBase): return input.maximum(dim)
  return input.max(dim, keepdim) if dim is not None else input.max()


def min(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
  """torch.min: the overall min, (values, indices) along dim, or the elementwise minimum with another Tensor."""
  if isinstance(dim, TensorBase): return input.minimum(dim)
  return input.min(dim, keepdim) if dim is not None else input.min()


# torch's other spellings of the same methods
ALIASES = {"absolute": "abs", "multiply": "mul", "subtract": "sub", "divide": "div", "true_divide": "div", "negative": "neg",
           "greater": "gt", "greater_equal": "ge", "less": "lt", "less_equal": "le", "not_equal": "ne", "moveaxis": "movedim",
           "swapdims": "transpose", "fix": "trunc", "ravel": "flatten", "arccos": "acos", "arcsin": "asin", "arctan": "atan",
           "arctan2": "atan2", "arccosh": "acosh", "arcsinh": "asinh", "arctanh": "atanh"}
# torch.<name> that are nn.functional's function with the same positional arguments (torch's loss functions take an int
# reduction and torch.embedding/batch_norm/instance_norm order their arguments differently, so those are not here)
FROM_FUNCTIONAL = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "avg_pool1d", "max_pool1d",
                   "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "adaptive_avg_pool1d", "adaptive_max_pool1d", "celu", "selu",
                   "rrelu", "threshold", "prelu", "hardshrink", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
                   "cosine_similarity", "pairwise_distance", "pdist", "bilinear", "dropout", "alpha_dropout", "feature_alpha_dropout",
                   "group_norm", "layer_norm")


def clamp_min(input: Tensor, min) -> Tensor:  # noqa: A002
  """torch.clamp_min: clamp(input, min=min)."""
  return input.clamp(min=min)


def clamp_max(input: Tensor, max) -> Tensor:  # noqa: A002
  """torch.clamp_max: clamp(input, max=max)."""
  return input.clamp(max=max)


def broadcast_shapes(*shapes) -> tuple:
  """torch.broadcast_shapes: the shape the given shapes broadcast to (a RuntimeError-free ValueError naming them otherwise)."""
  return broadcast_shape("broadcast_shapes", *[(s,) if isinstance(s, (type(1),)) else tuple(s) for s in shapes])


def broadcast_tensors(*tensors) -> tuple:
  """torch.broadcast_tensors: the tensors expanded to their common shape (views)."""
  shape = broadcast_shape("broadcast_tensors", *[t.shape for t in tensors])
  return tuple(t.expand(shape) for t in tensors)


def _atleast(n: int, tensors):
  def one(t: Tensor) -> Tensor:
    if t.ndim >= n: return t
    if n == 3 and t.ndim == 2: return t.unsqueeze(-1)
    return t.reshape((1,) * (n - t.ndim - (1 if n == 3 and t.ndim == 1 else 0)) + t.shape + ((1,) if n == 3 and t.ndim == 1 else ()))
  if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)): tensors = tuple(tensors[0])
  out = tuple(one(t) for t in tensors)
  return out[0] if len(out) == 1 else out


def atleast_1d(*tensors):
  """torch.atleast_1d: 0-d tensors become shape (1,)."""
  return _atleast(1, tensors)


def atleast_2d(*tensors):
  """torch.atleast_2d: 0-d and 1-d tensors gain leading dims of size 1."""
  return _atleast(2, tensors)


def atleast_3d(*tensors):
  """torch.atleast_3d: (n,) -> (1, n, 1), (a, b) -> (a, b, 1), as torch."""
  return _atleast(3, tensors)


def meshgrid(*tensors, indexing: str = "ij") -> tuple:
  """torch.meshgrid of 1-D tensors, indexing 'ij' (the default here; torch warns without it) or 'xy' (views)."""
  if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)): tensors = tuple(tensors[0])
  if indexing not in ("ij", "xy"): raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
  ts = list(tensors)
  if indexing == "xy" and len(ts) >= 2: ts[0], ts[1] = ts[1], ts[0]
  shape = tuple(t.numel() for t in ts)
  out = [t.reshape(tuple(-1 if i == j else 1 for j in range(len(ts)))).expand(shape) for i, t in enumerate(ts)]
  if indexing == "xy" and len(out) >= 2: out[0], out[1] = out[1], out[0]   # 'xy' is 'ij' of (y, x, ...) with the first two swapped back
  return tuple(out)


def column_stack(tensors) -> Tensor:
  """torch.column_stack: 0-d and 1-d tensors become columns, then cat along dim 1."""
  return Tensor.cat([t.reshape(-1, 1) if t.ndim < 2 else t for t in tensors], 1)


def dstack(tensors) -> Tensor:
  """torch.dstack: cat along dim 2 after atleast_3d."""
  return Tensor.cat([atleast_3d(t) for t in tensors], 2)


row_stack = vstack

_FORWARDED_NAMES = [n for n in FORWARDED if hasattr(Tensor, n)]
_ALIAS_NAMES = [a for a, n in ALIASES.items() if hasattr(Tensor, n) and a not in _FORWARDED_NAMES]
globals().update({n: _forward(n) for n in _FORWARDED_NAMES})
globals().update({a: _forward(ALIASES[a]) for a in _ALIAS_NAMES})
globals().update({n: getattr(F, n) for n in FROM_FUNCTIONAL})

__all__ = _DTYPE_NAMES + ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "rand", "randn", "arange", "eye", "randint",
                          "randperm", "manual_seed", "zeros_like", "ones_like", "empty_like", "rand_like", "randn_like", "full_like",
                          "randint_like", "linspace", "logspace", "cat", "concat", "concatenate", "stack", "hstack", "vstack", "where",
                          "is_tensor", "is_floating_point", "numel", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
                          "max", "min", "clamp_min", "clamp_max", "broadcast_shapes", "broadcast_tensors", "atleast_1d", "atleast_2d",
                          "atleast_3d", "meshgrid", "column_stack", "dstack", "row_stack",
                          "einsum"] + _FORWARDED_NAMES + _ALIAS_NAMES + list(FROM_FUNCTIONAL)
