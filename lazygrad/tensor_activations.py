"""Activation functions (torch.nn.functional names, as Tensor methods), composed from
elementwise ops and written to stay finite (and keep torch's gradients at the kinks).
Compositions of several ops compute fp16/bf16 in float32 and round once, as torch's opmath."""
from __future__ import annotations
import math
from typing import TYPE_CHECKING
from lazygrad.ops import Ops
from lazygrad.tensor_base import TensorBase

if TYPE_CHECKING: from lazygrad.tensor import Tensor


class ActivationMixin(TensorBase):
  """Tensor's activations (relu, gelu, silu, softplus, ...), as torch's; a mixin of the composed Tensor class."""
  __slots__ = ()
  def relu(self) -> Tensor:
    """F.relu: max(x, 0); gradient 0 at 0 and nan stays nan, as torch."""
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
    return pos.where(1.0, e) / (e + 1)
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
    return self._opmath(lambda x: x * x.sigmoid())
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
    return (bx > threshold).where(x, soft / beta)
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
    if approximate == "tanh": return self._opmath(lambda x: 0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)).tanh()))
    if approximate != "none": raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return self._opmath(lambda x: x * 0.5 * (1 + (x * (1 / math.sqrt(2))).erf()))
  def quick_gelu(self) -> Tensor:
    """x * sigmoid(1.702 x), the GELU approximation of CLIP (not in torch)."""
    return self * (self * 1.702).sigmoid()
