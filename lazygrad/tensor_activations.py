"""Activation functions (torch.nn.functional names, as Tensor methods), composed from
elementwise ops and written to stay finite (and keep torch's gradients at the kinks).
Compositions of several ops compute fp16/bf16 in float32 and round once, as torch's opmath.

sigmoid, silu, softplus and gelu (both forms) carry analytic gradients (autograd.custom_vjp): torch's
backward formulas as a few Tensor ops of the input (or the saved output), instead of autograd walking
the composition (gelu's tanh form: ~25 backward nodes, a third of a transformer step on cpu). They are
Tensor ops, so the gradient is differentiable again (double backward)."""
from __future__ import annotations
import math
from typing import TYPE_CHECKING
from lazygrad.autograd import custom_vjp
from lazygrad.ops import Ops
from lazygrad.tensor_base import TensorBase, reject_dtype

if TYPE_CHECKING: from lazygrad.tensor import Tensor

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)   # torch's kBeta of the tanh gelu
_GELU_KAPPA = 0.044715
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)   # torch's kBeta of the erf gelu: M_2_SQRTPI * M_SQRT1_2 * 0.5


def _with_derivative(y: Tensor, x: Tensor, derivative) -> Tensor:
  """y = f(x) (a fresh node) with the gradient g * derivative() instead of autograd through f's composition."""
  if not y.requires_grad: return y
  return custom_vjp(y, (x,), lambda g: (g * derivative(),))


def _gelu_tanh_derivative(x: Tensor) -> Tensor:
  """torch's GeluBackward (approximate='tanh'): 0.5 (1 + t) + 0.5 x (1 - t^2) kBeta (1 + 3 kappa x^2), t = tanh(inner)."""
  x_sq = x * x
  t = (_SQRT_2_OVER_PI * (x + _GELU_KAPPA * (x_sq * x))).tanh()
  return 0.5 * (1 + t) + (0.5 * x) * (1 - t * t) * (_SQRT_2_OVER_PI * (1 + 3 * _GELU_KAPPA * x_sq))


def _gelu_derivative(x: Tensor) -> Tensor:
  """torch's GeluBackward (approximate='none'): Phi(x) + x phi(x)."""
  cdf = 0.5 * (1 + (x * (1 / math.sqrt(2))).erf())
  return cdf + x * ((-0.5 * x * x).exp() * _INV_SQRT_2PI)


class ActivationMixin(TensorBase):
  """Tensor's activations (relu, gelu, silu, softplus, ...), as torch's; a mixin of the composed Tensor class."""
  __slots__ = ()
  def relu(self) -> Tensor:
    """F.relu: max(x, 0); gradient 0 at 0 and nan stays nan, as torch."""
    reject_dtype("relu", self)
    return (self <= 0).where(0, self)   # where, not maximum: gradient 0 at 0; nan stays nan
  def sigmoid(self) -> Tensor:
    """torch.sigmoid: 1 / (1 + exp(-x)), finite in value and gradient for any x."""
    # e = exp(-|x|) <= 1 on both branches, so value and gradient stay finite at +-1e4
    # (the where, not abs(): its branches keep the gradient right at exactly 0)
    return self._opmath(self._sigmoid)
  @staticmethod
  def _sigmoid(x: Tensor) -> Tensor:
    pos = x >= 0
    e = pos.where(-x, x).exp()
    y = pos.where(1.0, e) / (e + 1)
    return _with_derivative(y, x, lambda: (1 - y) * y)   # torch's sigmoid_backward, from the output
  def logsigmoid(self) -> Tensor:
    """F.logsigmoid: log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), as torch: no cancellation for any x, +0 for x >> 0."""
    def fn(x):
      pos = x >= 0   # where, not abs and minimum: the branches keep the gradient (1/2) right at 0
      return pos.where(0, x) - pos.where(-x, x).exp().log1p()
    return self._opmath(fn)
  def tanh(self) -> Tensor:
    """torch.tanh (the TANH primitive: a few ulp, -0 stays -0, +-1 at +-inf; gradient 1 - tanh^2, 0 at large |x|)."""
    return self._float()._alu(Ops.TANH)
  def silu(self) -> Tensor:
    """F.silu: x * sigmoid(x)."""
    def derivative(x):
      s = x.sigmoid()   # recomputed from x, not the forward's: the backward then reads x alone and fuses
      return s * (1 + x * (1 - s))   # torch's silu_backward
    return self._opmath(lambda x: _with_derivative(x * x.sigmoid(), x, lambda: derivative(x)))
  def swish(self) -> Tensor:
    """silu under its other name (not in torch)."""
    return self.silu()
  def softplus(self, beta=1.0, threshold=20.0) -> Tensor:
    """F.softplus: log(1 + exp(beta x)) / beta, and x itself where beta x > threshold, as torch."""
    return self._opmath(lambda x: self._softplus(x, beta, threshold))
  @staticmethod
  def _softplus(x: Tensor, beta, threshold) -> Tensor:
    bx = x * beta
    pos = bx >= 0   # x + log1p(exp(-x)) or log1p(exp(x)): finite, accurate (log1p), and the gradient is right at 0
    soft = pos.where(bx, 0) + pos.where(-bx, bx).exp().log1p()
    # the derivative sigmoid(beta x), 1 past the threshold (as torch's softplus_backward)
    return _with_derivative((bx > threshold).where(x, soft / beta), x, lambda: (bx > threshold).where(1.0, bx.sigmoid()))
  def leaky_relu(self, negative_slope=0.01) -> Tensor:
    """F.leaky_relu: x for x > 0, else negative_slope * x."""
    return (self > 0).where(self, self * negative_slope)
  def elu(self, alpha=1.0) -> Tensor:
    """F.elu: x for x > 0, else alpha * (exp(x) - 1); gradient alpha at 0 and 1 at nan, as torch."""
    neg = self <= 0   # not ~(x > 0): nan takes the x branch, so its gradient is 1, as torch
    return neg.where(neg.where(self, 0).expm1() * alpha, self)
  def hardtanh(self, min_val=-1.0, max_val=1.0) -> Tensor:
    """F.hardtanh: x clamped to [min_val, max_val]; unlike clamp, the gradient is 0 at the bounds, as torch."""
    # unlike clamp, torch's gradient is 0 at the bounds themselves
    return (self <= min_val).where(min_val, (self >= max_val).where(max_val, self)).cast(self.dtype)
  def hardsigmoid(self) -> Tensor:
    """F.hardsigmoid: clamp(x / 6 + 1/2, 0, 1)."""
    return (self / 6 + 0.5).clamp(0, 1)
  def mish(self) -> Tensor:
    """F.mish: x * tanh(softplus(x))."""
    return self._opmath(lambda x: x * x.softplus().tanh())
  def erf(self) -> Tensor:
    """torch.erf (the ERF primitive: a few ulp, erf(-0) = -0; gradient 2/sqrt(pi) exp(-x^2), 1.128 at 0 and 0 at +-inf)."""
    return self._float()._alu(Ops.ERF)
  def gelu(self, approximate: str = "none") -> Tensor:
    """F.gelu: x * Phi(x) with erf (approximate='none', the default, as torch) or the tanh approximation."""
    # torch's formulas (so the far negative tail rounds as torch's does), with accurate tanh / erf primitives
    if approximate == "tanh":
      return self._opmath(lambda x: _with_derivative(0.5 * x * (1 + (_SQRT_2_OVER_PI * (x + _GELU_KAPPA * x * x * x)).tanh()), x,
                                                     lambda: _gelu_tanh_derivative(x)))
    if approximate != "none": raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return self._opmath(lambda x: _with_derivative(x * 0.5 * (1 + (x * (1 / math.sqrt(2))).erf()), x, lambda: _gelu_derivative(x)))
  def quick_gelu(self) -> Tensor:
    """x * sigmoid(1.702 x), the GELU approximation of CLIP (not in torch)."""
    return self * (self * 1.702).sigmoid()
