"""SGD with momentum, dampening, Nesterov and weight decay: torch.optim.SGD's update, step for step."""
from __future__ import annotations
from lazygrad.optim.optimizer import Optimizer


class SGD(Optimizer):
  """Stochastic gradient descent, as torch.optim.SGD (lr default 1e-3 as torch >= 2.2; momentum,
  dampening, weight_decay, nesterov, maximize). torch's formulas (g: gradient, b: momentum
  buffer, starting as the first gradient):
      g = g + weight_decay * p;  b = momentum * b + (1 - dampening) * g
      g = g + momentum * b (nesterov) or b;  p = p - lr * g"""
  def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0, weight_decay: float = 0,
               nesterov: bool = False, *, maximize: bool = False):
    super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                                  maximize=maximize))

  def _check_group(self, group: dict) -> None:
    super()._check_group(group)
    for k in ("momentum", "weight_decay", "dampening"):
      if not isinstance(group[k], (int, float)) or not group[k] >= 0: raise ValueError(f"SGD: invalid {k} value: {group[k]!r}")
    if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
      raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")

  def _scalars(self, group: dict, step: int) -> dict[str, float]:
    return {"lr": group["lr"], "momentum": group["momentum"], "one_minus_dampening": 1 - group["dampening"],
            "weight_decay": group["weight_decay"]}

  def _update(self, p, g, group, state, h):
    if group["maximize"]: g = -g
    if group["weight_decay"] != 0: g = g + h["weight_decay"] * p
    new_state = {}
    if group["momentum"] != 0:
      buf = state.get("momentum_buffer")
      # the first buffer is stored contiguous, like every later one: step 1 then has the same
      # graph structure as step 2 (schedule-cache hit, no new kernels) instead of reading a transposed dW
      buf = g.contiguous() if buf is None else buf * h["momentum"] + g * h["one_minus_dampening"]
      new_state["momentum_buffer"] = buf
      g = g + buf * h["momentum"] if group["nesterov"] else buf
    return p - g * h["lr"], new_state
