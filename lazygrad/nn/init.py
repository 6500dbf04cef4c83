"""torch.nn.init: the initialisers (in place, through Tensor.assign) and the fan/gain rules.

Layers use `uniform_param` etc. to make their parameters with torch's default init;
the `*_` functions re-initialise an existing tensor in place (lazily, as any assign)."""
from __future__ import annotations
import math
from lazygrad.tensor import Tensor, no_grad


def calculate_gain(nonlinearity: str, param=None) -> float:
  if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid", "conv_transpose1d", "conv_transpose2d"): return 1.0
  if nonlinearity == "tanh": return 5.0 / 3
  if nonlinearity == "relu": return math.sqrt(2.0)
  if nonlinearity == "leaky_relu":
    slope = 0.01 if param is None else param
    return math.sqrt(2.0 / (1 + slope ** 2))
  if nonlinearity == "selu": return 3.0 / 4
  raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def fan_in_and_fan_out(shape) -> tuple[int, int]:
  if len(shape) < 2: raise ValueError(f"fan in and fan out need a tensor of at least 2 dims, got shape {tuple(shape)}")
  receptive = math.prod(shape[2:])
  return shape[1] * receptive, shape[0] * receptive


def _fan(shape, mode: str) -> int:
  if mode not in ("fan_in", "fan_out"): raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
  fan_in, fan_out = fan_in_and_fan_out(shape)
  return fan_in if mode == "fan_in" else fan_out


# ---- new parameters (leaf tensors with requires_grad=True)
def uniform_param(*shape, bound: float, dtype=None, device=None) -> Tensor:
  return Tensor.uniform(*shape, low=-bound, high=bound, dtype=dtype, device=device, requires_grad=True)

def normal_param(*shape, std: float = 1.0, dtype=None, device=None) -> Tensor:
  t = Tensor.randn(*shape, dtype=dtype, device=device)
  return (t * std if std != 1.0 else t).detach().requires_grad_()

def const_param(*shape, value: float, dtype=None, device=None) -> Tensor:
  # contiguous: a parameter gets its own full buffer (Tensor.full is a stride-0 view of one element)
  return Tensor.full(shape, value, dtype=dtype, device=device).contiguous().detach().requires_grad_()


# ---- in-place initialisers (torch.nn.init names)
def _set(t: Tensor, value: Tensor) -> Tensor:
  with no_grad(): return t.assign(value.cast(t.dtype))

def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
  return _set(t, Tensor.uniform(*t.shape, low=a, high=b, device=t.device))

def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
  return _set(t, Tensor.randn(*t.shape, device=t.device) * std + mean)

def constant_(t: Tensor, val: float) -> Tensor: return _set(t, Tensor.full(t.shape, val, device=t.device))
def zeros_(t: Tensor) -> Tensor: return constant_(t, 0.0)
def ones_(t: Tensor) -> Tensor: return constant_(t, 1.0)

def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
  fan_in, fan_out = fan_in_and_fan_out(t.shape)
  bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
  return uniform_(t, -bound, bound)

def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
  fan_in, fan_out = fan_in_and_fan_out(t.shape)
  return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))

def kaiming_uniform_(t: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
  bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(t.shape, mode))
  return uniform_(t, -bound, bound)

def kaiming_normal_(t: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
  return normal_(t, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(t.shape, mode)))
