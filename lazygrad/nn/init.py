"""torch.nn.init: the initialisers (in place, through Tensor.assign) and the fan/gain rules.

Layers use `uniform_param` etc. to make their parameters with torch's default init;
the `*_` functions re-initialise an existing tensor in place (lazily, as any assign)."""
from __future__ import annotations
import math
from lazygrad.tensor import Tensor, no_grad


def calculate_gain(nonlinearity: str, param=None) -> float:
  """The recommended gain for a nonlinearity, as torch.nn.init.calculate_gain (param: leaky_relu's slope, default 0.01)."""
  if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid", "conv_transpose1d", "conv_transpose2d"): return 1.0
  if nonlinearity == "tanh": return 5.0 / 3
  if nonlinearity == "relu": return math.sqrt(2.0)
  if nonlinearity == "leaky_relu":
    slope = 0.01 if param is None else param
    return math.sqrt(2.0 / (1 + slope ** 2))
  if nonlinearity == "selu": return 3.0 / 4
  raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def fan_in_and_fan_out(shape) -> tuple[int, int]:
  """(fan_in, fan_out) of a weight shape (out, in, *kernel), as torch's _calculate_fan_in_and_fan_out."""
  if len(shape) < 2: raise ValueError(f"fan in and fan out need a tensor of at least 2 dims, got shape {tuple(shape)}")
  receptive = math.prod(shape[2:])
  return shape[1] * receptive, shape[0] * receptive


def _fan(shape, mode: str) -> int:
  if mode not in ("fan_in", "fan_out"): raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
  fan_in, fan_out = fan_in_and_fan_out(shape)
  return fan_in if mode == "fan_in" else fan_out


# ---- new parameters (leaf tensors with requires_grad=True)
def uniform_param(*shape, bound: float, dtype=None, device=None) -> Tensor:
  """A new parameter of `shape` ~ U(-bound, bound) (lazygrad-specific helper for layer constructors)."""
  return Tensor.uniform(*shape, low=-bound, high=bound, dtype=dtype, device=device, requires_grad=True)

def normal_param(*shape, std: float = 1.0, dtype=None, device=None) -> Tensor:
  """A new parameter of `shape` ~ N(0, std^2) (lazygrad-specific helper)."""
  t = Tensor.randn(*shape, dtype=dtype, device=device)
  return (t * std if std != 1.0 else t).detach().requires_grad_()

def const_param(*shape, value: float, dtype=None, device=None) -> Tensor:
  """A new parameter of `shape` filled with `value` (lazygrad-specific helper)."""
  # contiguous: a parameter gets its own full buffer (Tensor.full is a stride-0 view of one element)
  return Tensor.full(shape, value, dtype=dtype, device=device).contiguous().detach().requires_grad_()


# ---- in-place initialisers (torch.nn.init names)
def _set(t: Tensor, value: Tensor) -> Tensor:
  with no_grad(): return t.assign(value.cast(t.dtype))

def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
  """Refill t with U(a, b), in place (a lazy assign), as torch.nn.init.uniform_; returns t."""
  return _set(t, Tensor.uniform(*t.shape, low=a, high=b, device=t.device))

def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
  """Refill t with N(mean, std^2), in place, as torch.nn.init.normal_; returns t."""
  return _set(t, Tensor.randn(*t.shape, device=t.device) * std + mean)

def constant_(t: Tensor, val: float) -> Tensor:
  """Fill t with val, in place, as torch.nn.init.constant_; returns t."""
  return _set(t, Tensor.full(t.shape, val, device=t.device))

def zeros_(t: Tensor) -> Tensor:
  """Fill t with zeros, in place; returns t."""
  return constant_(t, 0.0)

def ones_(t: Tensor) -> Tensor:
  """Fill t with ones, in place; returns t."""
  return constant_(t, 1.0)

def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
  """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)), in place, as torch.nn.init.xavier_uniform_."""
  fan_in, fan_out = fan_in_and_fan_out(t.shape)
  bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
  return uniform_(t, -bound, bound)

def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
  """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)), in place, as torch.nn.init.xavier_normal_."""
  fan_in, fan_out = fan_in_and_fan_out(t.shape)
  return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))

def kaiming_uniform_(t: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
  """U(-b, b) with b = gain * sqrt(3 / fan), in place, as torch.nn.init.kaiming_uniform_."""
  bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(t.shape, mode))
  return uniform_(t, -bound, bound)

def kaiming_normal_(t: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
  """N(0, std^2) with std = gain / sqrt(fan), in place, as torch.nn.init.kaiming_normal_."""
  return normal_(t, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(t.shape, mode)))
