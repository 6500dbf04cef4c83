"""Activation modules of torch.nn beyond layers.py's (ELU, SELU, ReLU6, Softplus, LogSoftmax, PReLU, ...):
each forward is the lazygrad.nn.functional function; settings and repr as torch's. `inplace` is accepted
and ignored (every op makes a new lazy value)."""
from __future__ import annotations
from typing import Optional
from lazygrad.tensor import Tensor
from lazygrad.nn.module import Module
from lazygrad.nn.init import const_param
from lazygrad.nn import functional as F


class _Elementwise(Module):
  """An activation without settings: forward is F.<_fn>(x)."""
  _fn = "relu"
  def __init__(self, inplace: bool = False):
    super().__init__()
    self.inplace = inplace
  def forward(self, x: Tensor) -> Tensor:
    """Apply the activation elementwise (any shape)."""
    return getattr(F, self._fn)(x)
  def extra_repr(self):
    """torch prints inplace=True only when set."""
    return "inplace=True" if self.inplace else ""


class _NoArgs(Module):
  """An activation whose torch constructor takes no arguments: forward is F.<_fn>(x)."""
  _fn = "tanhshrink"
  def forward(self, x: Tensor) -> Tensor:
    """Apply the activation elementwise (any shape)."""
    return getattr(F, self._fn)(x)


class ReLU6(_Elementwise):
  """torch.nn.ReLU6: min(max(x, 0), 6)."""
  _fn = "relu6"
class SELU(_Elementwise):
  """torch.nn.SELU: scale * elu(x, alpha) with torch's constants."""
  _fn = "selu"
class Hardswish(_Elementwise):
  """torch.nn.Hardswish: x relu6(x + 3) / 6."""
  _fn = "hardswish"
class Hardsigmoid(_Elementwise):
  """torch.nn.Hardsigmoid: relu6(x + 3) / 6."""
  _fn = "hardsigmoid"
class Mish(_Elementwise):
  """torch.nn.Mish: x tanh(softplus(x))."""
  _fn = "mish"
class Tanhshrink(_NoArgs):
  """torch.nn.Tanhshrink: x - tanh(x)."""
  _fn = "tanhshrink"
class Softsign(_NoArgs):
  """torch.nn.Softsign: x / (1 + |x|)."""
  _fn = "softsign"
class LogSigmoid(_NoArgs):
  """torch.nn.LogSigmoid: log(sigmoid(x))."""
  _fn = "logsigmoid"


class ELU(Module):
  """torch.nn.ELU: x for x > 0, else alpha (exp(x) - 1)."""
  def __init__(self, alpha: float = 1.0, inplace: bool = False):
    super().__init__()
    self.alpha, self.inplace = alpha, inplace
  def forward(self, x: Tensor) -> Tensor:
    """Apply ELU elementwise."""
    return F.elu(x, self.alpha)
  def extra_repr(self):
    """As torch's."""
    return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(ELU):
  """torch.nn.CELU: max(0, x) + min(0, alpha (exp(x / alpha) - 1))."""
  def forward(self, x: Tensor) -> Tensor:
    """Apply CELU elementwise."""
    return F.celu(x, self.alpha)


class Hardtanh(Module):
  """torch.nn.Hardtanh: x clamped to [min_val, max_val] (gradient 0 at the bounds)."""
  def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False, min_value=None, max_value=None):
    super().__init__()
    # min_value/max_value: torch's deprecated spellings, which win when given
    min_val, max_val = min_val if min_value is None else min_value, max_val if max_value is None else max_value
    self.min_val, self.max_val, self.inplace = min_val, max_val, inplace
  def forward(self, x: Tensor) -> Tensor:
    """Apply Hardtanh elementwise."""
    return F.hardtanh(x, self.min_val, self.max_val)
  def extra_repr(self):
    """As torch's."""
    return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class Softplus(Module):
  """torch.nn.Softplus: log(1 + exp(beta x)) / beta, linear above threshold."""
  def __init__(self, beta: float = 1.0, threshold: float = 20.0):
    super().__init__()
    self.beta, self.threshold = beta, threshold
  def forward(self, x: Tensor) -> Tensor:
    """Apply Softplus elementwise."""
    return F.softplus(x, self.beta, self.threshold)
  def extra_repr(self):
    """As torch's."""
    return f"beta={self.beta}, threshold={self.threshold}"


class _Shrink(Module):
  """Hardshrink/Softshrink: a threshold lambd."""
  _fn = "hardshrink"
  def __init__(self, lambd: float = 0.5):
    super().__init__()
    self.lambd = lambd
  def forward(self, x: Tensor) -> Tensor:
    """Apply the shrink elementwise."""
    return getattr(F, self._fn)(x, self.lambd)
  def extra_repr(self):
    """As torch's."""
    return f"{self.lambd}"


class Hardshrink(_Shrink):
  """torch.nn.Hardshrink: x where |x| > lambd, else 0."""
  _fn = "hardshrink"
class Softshrink(_Shrink):
  """torch.nn.Softshrink: x shrunk toward 0 by lambd."""
  _fn = "softshrink"


class Threshold(Module):
  """torch.nn.Threshold: x where x > threshold, else value."""
  def __init__(self, threshold: float, value: float, inplace: bool = False):
    super().__init__()
    self.threshold, self.value, self.inplace = threshold, value, inplace
  def forward(self, x: Tensor) -> Tensor:
    """Apply Threshold elementwise."""
    return F.threshold(x, self.threshold, self.value)
  def extra_repr(self):
    """As torch's."""
    return f"threshold={self.threshold}, value={self.value}" + (", inplace=True" if self.inplace else "")


class _DimActivation(Module):
  """Softmin/LogSoftmax/GLU: an activation along `dim`."""
  _fn = "log_softmax"
  def __init__(self, dim: Optional[int] = None):
    super().__init__()
    self.dim = dim
  def forward(self, x: Tensor) -> Tensor:
    """Apply the activation along dim."""
    return getattr(F, self._fn)(x, self.dim)
  def extra_repr(self):
    """As torch's."""
    return f"dim={self.dim}"


class LogSoftmax(_DimActivation):
  """torch.nn.LogSoftmax: log_softmax along dim."""
  _fn = "log_softmax"
class Softmin(_DimActivation):
  """torch.nn.Softmin: softmax(-x) along dim."""
  _fn = "softmin"


class GLU(_DimActivation):
  """torch.nn.GLU: a * sigmoid(b) for the halves of dim (default -1)."""
  _fn = "glu"
  def __init__(self, dim: int = -1): super().__init__(dim)


class Softmax2d(Module):
  """torch.nn.Softmax2d: softmax over the channels of (N, C, H, W) or (C, H, W)."""
  def forward(self, x: Tensor) -> Tensor:
    """Apply softmax along the channel dim (-3)."""
    if x.ndim not in (3, 4): raise ValueError(f"Softmax2d: expects a 3-D or 4-D input, got {x.shape}")
    return x.softmax(-3)


class PReLU(Module):
  """torch.nn.PReLU: leaky ReLU with learned slopes, num_parameters (1 or C) starting at init=0.25."""
  def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
    super().__init__()
    self.num_parameters = num_parameters
    self.weight = const_param(num_parameters, value=init, dtype=dtype, device=device)
  def forward(self, x: Tensor) -> Tensor:
    """Apply PReLU (slope per channel, dim 1)."""
    return F.prelu(x, self.weight)
  def extra_repr(self):
    """As torch's."""
    return f"num_parameters={self.num_parameters}"


class RReLU(Module):
  """torch.nn.RReLU: random negative slopes in [lower, upper] in training (lazygrad's random stream), their mean in eval."""
  def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False):
    super().__init__()
    self.lower, self.upper, self.inplace = lower, upper, inplace
  def forward(self, x: Tensor) -> Tensor:
    """Apply RReLU elementwise."""
    return F.rrelu(x, self.lower, self.upper, self.training)
  def extra_repr(self):
    """As torch's."""
    return f"lower={self.lower}, upper={self.upper}" + (", inplace=True" if self.inplace else "")


__all__ = ["ReLU6", "SELU", "Hardswish", "Hardsigmoid", "Mish", "Tanhshrink", "Softsign", "LogSigmoid", "ELU", "CELU", "Hardtanh",
           "Softplus", "Hardshrink", "Softshrink", "Threshold", "LogSoftmax", "Softmin", "GLU", "Softmax2d", "PReLU", "RReLU"]
