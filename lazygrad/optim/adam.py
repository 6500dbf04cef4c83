"""Adam and AdamW: torch.optim.Adam/AdamW's update with bias correction (and amsgrad)."""
from __future__ import annotations
import math
from lazygrad.optim.optimizer import Optimizer


class Adam(Optimizer):
  """Adam, as torch.optim.Adam (defaults lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0;
  amsgrad and maximize supported; no foreach/fused/capturable/differentiable switches).
  torch's formulas, step t (per parameter):
      g = g + weight_decay * p            (Adam: L2 in the gradient)
      p = p * (1 - lr * weight_decay)     (AdamW: decoupled)
      m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
      p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)"""
  _decoupled = False

  def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
               weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False):
    super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize))

  def _check_group(self, group: dict) -> None:
    super()._check_group(group)
    name = type(self).__name__
    b1, b2 = group["betas"]
    if not 0.0 <= b1 < 1.0 or not 0.0 <= b2 < 1.0: raise ValueError(f"{name}: invalid beta parameters: {group['betas']!r}")
    if not group["eps"] >= 0: raise ValueError(f"{name}: invalid epsilon value: {group['eps']!r}")
    if not group["weight_decay"] >= 0: raise ValueError(f"{name}: invalid weight_decay value: {group['weight_decay']!r}")

  def _scalars(self, group: dict, step: int) -> dict[str, float]:
    b1, b2 = group["betas"]
    lr, wd = group["lr"], group["weight_decay"]
    return {"one_minus_beta1": 1 - b1, "beta2": b2, "one_minus_beta2": 1 - b2, "step_size": lr / (1 - b1 ** step),
            "bias_correction2_sqrt": math.sqrt(1 - b2 ** step), "eps": group["eps"], "weight_decay": wd, "decay": 1 - lr * wd}

  def _update(self, p, g, group, state, h):
    if group["maximize"]: g = -g
    if group["weight_decay"] != 0:
      if self._decoupled: p = p * h["decay"]
      else: g = g + p * h["weight_decay"]
    m, v = state.get("exp_avg"), state.get("exp_avg_sq")
    m = g * h["one_minus_beta1"] if m is None else m + (g - m) * h["one_minus_beta1"]    # lerp from zeros
    v = g * g * h["one_minus_beta2"] if v is None else v * h["beta2"] + g * g * h["one_minus_beta2"]
    new_state = {"exp_avg": m, "exp_avg_sq": v}
    if group["amsgrad"]:
      vmax = state.get("max_exp_avg_sq")
      vmax = v if vmax is None else vmax.maximum(v)
      new_state["max_exp_avg_sq"] = vmax
      v = vmax
    denom = v.sqrt() / h["bias_correction2_sqrt"] + h["eps"]
    return p - m / denom * h["step_size"], new_state


class AdamW(Adam):
  """Adam with decoupled weight decay (default 0.01), as torch.optim.AdamW."""
  _decoupled = True

  def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
               weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
    super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
