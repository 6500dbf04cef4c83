"""Activation functions (torch.nn.functional names, as Tensor methods), composed from
elementwise ops and written to stay finite (and keep torch's gradients at the kinks)."""
from __future__ import annotations
import math
from typing import TYPE_CHECKING
from lazygrad.tensor_base import TensorBase, reject_dtype

if TYPE_CHECKING: from lazygrad.tensor import Tensor


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
    x = self._float()
    pos = x >= 0
    e = pos.where(-x, x).exp()
    return pos.where(1.0, e) / (e + 1)
  def logsigmoid(self) -> Tensor:
    """F.logsigmoid: log(sigmoid(x)) = -softplus(-x)."""
    return -(-self).softplus()
  def tanh(self) -> Tensor:
    """torch.tanh, as 2 * sigmoid(2x) - 1: finite everywhere, but near 0 its error is about 1e-7 absolute, not relative as torch's."""
    return (self._float() * 2).sigmoid() * 2 - 1
  def silu(self) -> Tensor:
    """F.silu: x * sigmoid(x)."""
    return self * self.sigmoid()
  def swish(self) -> Tensor:
    """silu under its other name (not in torch)."""
    return self.silu()
  def softplus(self, beta=1.0, threshold=20.0) -> Tensor:
    """F.softplus: log(1 + exp(beta x)) / beta, and x itself where beta x > threshold, as torch."""
    x = self._float() * beta
    pos = x >= 0   # x + log1p(exp(-x)) or log1p(exp(x)): finite, and the gradient is right at 0
    soft = pos.where(x, 0) + pos.where(-x, x).exp().log1p()
    return (x > threshold).where(self._float(), soft / beta)
  def leaky_relu(self, negative_slope=0.01) -> Tensor:
    """F.leaky_relu: x for x > 0, else negative_slope * x."""
    return (self > 0).where(self, self * negative_slope)
  def elu(self, alpha=1.0) -> Tensor:
    """F.elu: x for x > 0, else alpha * (exp(x) - 1); gradient alpha at 0 and 1 at nan, as torch."""
    neg = self <= 0   # not ~(x > 0): nan takes the x branch, so its gradient is 1, as torch
    return neg.where((neg.where(self, 0).exp() - 1) * alpha, self)
  def hardtanh(self, min_val=-1.0, max_val=1.0) -> Tensor:
    """F.hardtanh: x clamped to [min_val, max_val]; unlike clamp, the gradient is 0 at the bounds, as torch."""
    # unlike clamp, torch's gradient is 0 at the bounds themselves
    return (self <= min_val).where(min_val, (self >= max_val).where(max_val, self)).cast(self.dtype)
  def hardsigmoid(self) -> Tensor:
    """F.hardsigmoid: clamp(x / 6 + 1/2, 0, 1)."""
    return (self / 6 + 0.5).clamp(0, 1)
  def mish(self) -> Tensor:
    """F.mish: x * tanh(softplus(x))."""
    return self * self.softplus().tanh()
  def erf(self) -> Tensor:
    """torch.erf by Abramowitz & Stegun 7.1.26: |error| < 1.5e-7 (torch's is exact to the last ulp)."""
    # composed so it runs on every device
    # odd by a where, not sign(x) * f(|x|): sign has no gradient, so that would give 0 at x = 0 (torch 2/sqrt(pi));
    # exp(-a * a) is cut at a = 9 (erf is 1 in float32 there), so the gradient at +-inf is 0, not 0 * inf = nan
    x = self._float()
    pos = x >= 0
    a = pos.where(x, -x)
    t = 1 / (1 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    c = (a < 9).where(a, 9)
    r = 1 - poly * (-c * c).exp()
    return pos.where(r, -r)
  def gelu(self, approximate: str = "none") -> Tensor:
    """F.gelu: x * Phi(x) with erf (approximate='none', the default, as torch) or the tanh approximation."""
    if approximate == "tanh": return 0.5 * self * (1 + (math.sqrt(2 / math.pi) * (self + 0.044715 * self * self * self)).tanh())
    if approximate != "none": raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * self * (1 + (self * (1 / math.sqrt(2))).erf())
  def quick_gelu(self) -> Tensor:
    """x * sigmoid(1.702 x), the GELU approximation of CLIP (not in torch)."""
    return self * (self * 1.702).sigmoid()
